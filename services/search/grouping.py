"""Near-duplicate posts grouped into issues, at index time (pure, no I/O).

A post's 64-bit SimHash is cut into four 16-bit bands, and a table of recent
fingerprints is indexed by (topic, band number, band value). Two fingerprints
within Hamming distance ``d`` have at least one band that differs in at most
``r = ceil((d + 1) / 4) - 1`` bits (pigeonhole), so probing every band value
within ``r`` bits of the post's own bands finds *every* neighbour within ``d``:
``d = 3`` needs exact band matches only (4 lookups), ``d = 7`` 1-bit probes
(4 x 17 lookups). Light edits of a short Chinese post move its character-3-gram
SimHash by 6-10 bits (measured on the corpus; docs/search.md), so the default
is ``d = 7`` rather than the 3 used for long web pages.

A post joins the issue of the nearest earlier fingerprint of the same topic
within ``max_distance`` whose post was created within ``window``; ties go to
the smaller issue id. Otherwise it founds a new issue whose id is
``<topic>-<its fingerprint>``. The decision depends only on the posts seen
before in the stream, so re-indexing the same stream in the same order gives
the same ids; a fingerprint already in the table keeps its issue, so a replay
over an index that already holds the posts keeps them too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

BANDS = 4
BAND_BITS = 16
_BAND_MASK = (1 << BAND_BITS) - 1


def bands(fingerprint: int) -> list[int]:
    """The four 16-bit bands of a 64-bit fingerprint, most significant first."""
    return [(fingerprint >> (BAND_BITS * (BANDS - 1 - i))) & _BAND_MASK for i in range(BANDS)]


def band_terms(fingerprint: str) -> list[str]:
    """Bands as keyword terms (``"<band>:<hex>"``), stored on the post for lookups."""
    return [f"{i}:{b:04x}" for i, b in enumerate(bands(int(fingerprint, 16)))]


def probe_radius(max_distance: int) -> int:
    """Bits to flip per band so that no neighbour within ``max_distance`` is missed."""
    return max(0, -(-(max_distance + 1) // BANDS) - 1)


def _masks(radius: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most ``radius`` bits set."""
    masks = [0] if radius == 0 else [0, *(1 << i for i in range(BAND_BITS))]
    if radius >= 2:
        masks += [(1 << i) | (1 << j) for i in range(BAND_BITS) for j in range(i + 1, BAND_BITS)]
    return tuple(masks)


def seed_of(issue_id: str) -> int | None:
    """The founding fingerprint encoded in an issue id, if it has the usual form."""
    head, _, tail = issue_id.rpartition("-")
    try:
        return int(tail, 16) if head and len(tail) == 16 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Assignment:
    issue_id: str
    distance: int  # Hamming distance to the issue's founding fingerprint


@dataclass
class _Entry:
    topic: str
    fingerprint: int
    issue_id: str
    created_at: datetime


class IssueTable:
    """Recent fingerprints by (topic, band), bounded in size; oldest insertions go first."""

    def __init__(self, *, max_distance: int = 7, window: timedelta = timedelta(days=3),
                 max_entries: int = 200_000):
        if not 0 <= max_distance <= 11:
            raise ValueError("max_distance must be within 0..11")
        self.max_distance = max_distance
        self.radius = probe_radius(max_distance)
        self._probe_masks = _masks(self.radius)
        self.window = window
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        # per topic, per band number: band value -> fingerprints
        self._by_band: dict[str, list[dict[int, set[int]]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def assign(self, *, topic: str, fingerprint: str, created_at: datetime) -> Assignment:
        """The issue of a post; remembers its fingerprint for the posts after it."""
        value = int(fingerprint, 16)
        known = self._entries.get((topic, value))
        if known is not None:
            return Assignment(known.issue_id, _seed_distance(known.issue_id, value))
        nearest = self._nearest(topic, value, created_at)
        issue_id = nearest.issue_id if nearest else f"{topic}-{value:016x}"
        self.remember(topic=topic, fingerprint=value, issue_id=issue_id, created_at=created_at)
        return Assignment(issue_id, _seed_distance(issue_id, value))

    def remember(self, *, topic: str, fingerprint: int, issue_id: str, created_at: datetime) -> None:
        key = (topic, fingerprint)
        if key in self._entries:
            return
        self._entries[key] = _Entry(topic, fingerprint, issue_id, created_at)
        tables = self._by_band.setdefault(topic, [{} for _ in range(BANDS)])
        for table, band in zip(tables, bands(fingerprint), strict=True):
            table.setdefault(band, set()).add(fingerprint)
        while len(self._entries) > self.max_entries:
            self._forget(*self._entries.popitem(last=False))

    def load(self, rows: Iterable[tuple[str, str, str, datetime]]) -> int:
        """Warm the table from indexed posts: (topic, fingerprint hex, issue id, created_at)."""
        count = 0
        for topic, fingerprint, issue_id, created_at in rows:
            self.remember(topic=topic, fingerprint=int(fingerprint, 16), issue_id=issue_id,
                          created_at=created_at)
            count += 1
        return count

    def _candidates(self, topic: str, value: int) -> set[int]:
        found: set[int] = set()
        tables = self._by_band.get(topic)
        if tables is None:
            return found
        for table, band in zip(tables, bands(value), strict=True):
            for mask in self._probe_masks:
                members = table.get(band ^ mask)
                if members:
                    found.update(members)
        return found

    def _nearest(self, topic: str, value: int, created_at: datetime) -> _Entry | None:
        best: tuple[int, str] | None = None
        found: _Entry | None = None
        for candidate in self._candidates(topic, value):
            entry = self._entries[(topic, candidate)]
            distance = (candidate ^ value).bit_count()
            if distance > self.max_distance or abs(entry.created_at - created_at) > self.window:
                continue
            rank = (distance, entry.issue_id)
            if best is None or rank < best:
                best, found = rank, entry
        return found

    def _forget(self, key: tuple[str, int], entry: _Entry) -> None:
        topic, value = key
        for table, band in zip(self._by_band[topic], bands(value), strict=True):
            members = table.get(band)
            if members is not None:
                members.discard(value)
                if not members:
                    del table[band]


def _seed_distance(issue_id: str, value: int) -> int:
    seed = seed_of(issue_id)
    return (seed ^ value).bit_count() if seed is not None else 0
