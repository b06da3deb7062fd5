"""Event-time tumbling windows: bucket arithmetic, closing and idle time (pure).

Windows are tumbling buckets of ``bucket_seconds`` aligned to the Unix epoch.

The *watermark* is how far event time has got: for each partition of
``posts.enriched`` the largest event time read from it, and over partitions
the smallest of those (:class:`Watermarks`), so a partition read ahead of the
others, as happens in any replay or back-fill, does not make the others late.
A partition that has delivered nothing for a while (wall clock) is *idle* and
does not hold the watermark back (:class:`PartitionActivity`).

A bucket ``[s, s + B)`` closes once the watermark reaches ``s + B + grace``:
posts up to ``grace`` seconds out of order within their partition still count.
A post whose bucket has already closed is *late*: it is counted in
``yuqing_alerts_posts_late_total`` and left out of detection, since that
bucket's verdict has been given (detectors only move forward in time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


def bucket_of(event_time: float, bucket_seconds: int) -> int:
    """Start (epoch seconds) of the bucket holding ``event_time``."""
    return int(event_time // bucket_seconds) * bucket_seconds


def bucket_datetime(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket, UTC)


def event_time(created_at: datetime, received_at: datetime, max_future_seconds: float,
               *, now: float | None = None) -> float:
    """When a post happened, trusting the source's clock only up to a bound.

    A post dated in the future (a wrong clock at the source) would move the
    watermark ahead and make every later post late, so it is taken as
    received at most ``max_future_seconds`` before its own date. Its arrival
    is trusted only up to ``now``, the reader's own clock, for the same reason
    (an ingest clock gone wrong, a message written to the topic directly):
    one post received "in 9999" made every later one late.
    """
    received = received_at.timestamp() if now is None else min(received_at.timestamp(), now)
    return min(created_at.timestamp(), received + max_future_seconds)


@dataclass(frozen=True)
class WindowPolicy:
    bucket_seconds: int
    grace_seconds: int

    def closable_through(self, watermark: float) -> int:
        """Start of the last bucket that may close at this watermark."""
        return bucket_of(watermark - self.grace_seconds, self.bucket_seconds) - self.bucket_seconds

    def to_close(self, closed_through: int, watermark: float) -> range:
        """Starts of the buckets to close now, oldest first."""
        last = self.closable_through(watermark)
        return range(closed_through + self.bucket_seconds, last + 1, self.bucket_seconds)


class IdleClock:
    """Moves event time forward while a live stream is silent.

    Buckets close when newer posts arrive. When none arrive at all (a quiet
    night), the last buckets, and with them the resolution of a surge, would
    wait for the next post. If the stream was live (its event times close to
    the wall clock) and nothing arrived for ``idle_seconds``, event time is
    taken to advance with the wall clock. A replay of old posts is never live,
    so a pause in a back-fill does not make its later posts late.
    """

    def __init__(self, idle_seconds: float, live_lag_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.live_lag_seconds = live_lag_seconds
        self._max_event: float | None = None
        self._arrived: float = 0.0

    def observe(self, event_time: float, wall: float) -> None:
        if self._max_event is None or event_time > self._max_event:
            self._max_event = event_time
        self._arrived = wall

    def tick(self, wall: float) -> float | None:
        """The event time to advance to now, or None."""
        if self.idle_seconds <= 0 or self._max_event is None:
            return None
        silent = wall - self._arrived
        live = self._arrived - self._max_event <= self.live_lag_seconds
        if silent < self.idle_seconds or not live:
            return None
        return self._max_event + silent


class PartitionActivity:
    """When each source partition last delivered a post, to tell idle partitions."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._last: dict[int, float] = {}

    def saw(self, partition: int, wall: float) -> None:
        last = self._last.get(partition)
        if last is not None and wall - last >= self.idle_seconds:
            # The stream resumes after a silence: every partition gets ``idle_seconds`` to
            # speak again before it is reported idle (see Watermarks.observe).
            self._last = dict.fromkeys(self._last, wall)
        self._last[partition] = wall

    def idle(self, assigned: Iterable[int], wall: float) -> list[int]:
        """Assigned partitions silent for ``idle_seconds`` (counted from first sight)."""
        idle = []
        for partition in sorted(assigned):
            last = self._last.setdefault(partition, wall)
            if wall - last >= self.idle_seconds:
                idle.append(partition)
        return idle


class Watermarks:
    """Event time reached over all partitions of the source topic: the slowest active one."""

    def __init__(self) -> None:
        self.partitions: int | None = None
        self._marks: dict[int, float] = {}
        self._idle: set[int] = set()

    def observe(self, partition: int, partitions: int, event_time: float) -> None:
        """Count a post's event time; a post from an idle partition wakes every partition.

        After a silence every partition is idle. When the stream resumes (a
        burst, or a replay of minutes of posts within seconds), the partition
        that delivers first would move the watermark alone and close windows
        the other partitions' posts still belong to. So all of them hold it back
        again until each has delivered or been reported idle once more.
        """
        self.partitions = partitions
        if partition in self._idle:
            self._idle.clear()
        self._marks[partition] = max(self._marks.get(partition, event_time), event_time)

    def mark_idle(self, idle: Iterable[int], partitions: int) -> None:
        self.partitions = partitions
        self._idle.update(idle)

    def watermark(self) -> float | None:
        """None until every active partition has delivered something."""
        if self.partitions is None:
            return None
        active = [p for p in range(self.partitions) if p not in self._idle]
        if any(p not in self._marks for p in active):
            return None
        if not active:
            return max(self._marks.values(), default=None)
        return min(self._marks[p] for p in active)
