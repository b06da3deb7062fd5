"""Back-fill history from a JSONL file: validate line by line, publish in batches.

Lines pass the edge's :class:`~services.ingest.admission.Admission` like posts sent
over HTTP, with a wider window into the past (:data:`DEFAULT_BACKFILL_MAX_AGE`,
the search retention): what the index would not keep is refused with its line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import ValidationError

from services.ingest.admission import Admission, PostRefused
from services.ingest.models import PostIn
from services.ingest.publisher import Publisher
from services.ingest.registry import RegisteredSource
from yuqing.contracts import RawPost
from yuqing.contracts.codec import describe_validation_error
from yuqing.contracts.limits import DEFAULT_BACKFILL_MAX_AGE

MAX_LINE_BYTES = 2_000_000
"""The longest line read as a post: the ingest API's default request limit
(``YUQING_INGEST_MAX_BODY_BYTES``). A longer line is refused as it is read, never held: a file
with no line ends (a JSON array exported on one line, a file of another kind) was read whole
into memory and parsed, and a file of a few gigabytes took the machine's memory."""

KEPT_REJECTIONS = 1_000
"""Rejected lines remembered with their reason; the others are counted. A file of the wrong
kind has every line rejected, and millions of reasons filled the memory before the summary."""


@dataclass
class BackfillReport:
    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # the first ``keep`` of them
    rejected_lines: int = 0
    keep: int = KEPT_REJECTIONS

    @property
    def lines(self) -> int:
        return self.accepted + self.rejected_lines

    def reject(self, number: int, reason: str) -> None:
        self.rejected_lines += 1
        if len(self.rejected) < self.keep:
            self.rejected.append((number, reason))


@dataclass(frozen=True)
class Line:
    number: int
    data: bytes  # a line over the limit: its first bytes only
    size: int  # its bytes in the file, line end included
    too_long: bool = False


def parse_line(line: bytes, source: RegisteredSource, admission: Admission | None = None,
               ) -> RawPost:
    """One JSONL line (an integrator post object) -> RawPost, or ValueError with the reason."""
    post = _parse(line, source)
    try:
        return (admission or Admission(max_age=DEFAULT_BACKFILL_MAX_AGE)).admit(post)
    except PostRefused as exc:
        raise ValueError(f"{exc.field or 'post'}: {exc}") from exc


def _parse(line: bytes, source: RegisteredSource) -> RawPost:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:  # orjson would speak of surrogates
        raise ValueError(f"not UTF-8 (invalid byte at {exc.start}): save the file as UTF-8 "
                         "(a GBK or UTF-16 export is refused line by line)") from exc
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc
    try:
        post = PostIn.model_validate(data)
        return post.to_raw(source=source.id, channel=source.channel,
                           region=source.config.region, unit=source.config.unit)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from exc


_SKIP_BYTES = 1 << 16  # what is read at a time of a line past the limit


def iter_lines(path: Path, max_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Non-blank lines and their numbers; a byte order mark (Windows exports write one) is
    skipped rather than costing the file its first post. A line of more than ``max_bytes`` is
    read past in pieces and comes ``too_long``."""
    with path.open("rb") as handle:
        number = 0
        while data := handle.readline(max_bytes + 1):
            number += 1
            size, too_long = len(data), len(data.rstrip(b"\r\n")) > max_bytes
            end = data
            while too_long and not end.endswith(b"\n") and (end := handle.readline(_SKIP_BYTES)):
                size += len(end)
            if number == 1:
                data = data.removeprefix(b"\xef\xbb\xbf")
            if data.strip():
                yield Line(number, data, size, too_long)


def backfill(path: Path, *, source: RegisteredSource, publisher: Publisher, batch_size: int = 500,
             on_progress: Callable[[int], None] = lambda _: None,
             admission: Admission | None = None, max_line_bytes: int = MAX_LINE_BYTES,
             keep_rejected: int = KEPT_REJECTIONS) -> BackfillReport:
    """Publish every valid line; a failed publish raises, so nothing is reported as kept."""
    admission = admission or Admission(max_age=DEFAULT_BACKFILL_MAX_AGE)
    report = BackfillReport(keep=keep_rejected)
    batch: list[RawPost] = []
    for line in iter_lines(path, max_line_bytes):
        try:
            if line.too_long:
                raise ValueError(f"longer than {max_line_bytes:,} bytes: one post per line, "
                                 "each line ended by a line break")
            batch.append(parse_line(line.data, source, admission))
        except ValueError as exc:
            report.reject(line.number, str(exc))
        if len(batch) >= batch_size:
            publisher.publish(batch)
            report.accepted += len(batch)
            batch = []
        on_progress(line.size)
    if batch:
        publisher.publish(batch)
        report.accepted += len(batch)
    return report
