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


@dataclass
class BackfillReport:
    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.accepted + len(self.rejected)


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


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines and their numbers; a byte order mark (Windows exports write one) is
    skipped rather than costing the file its first post."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if line.strip():
                yield number, line


def backfill(path: Path, *, source: RegisteredSource, publisher: Publisher, batch_size: int = 500,
             on_progress: Callable[[int], None] = lambda _: None,
             admission: Admission | None = None) -> BackfillReport:
    """Publish every valid line; a failed publish raises, so nothing is reported as kept."""
    admission = admission or Admission(max_age=DEFAULT_BACKFILL_MAX_AGE)
    report = BackfillReport()
    batch: list[RawPost] = []
    for number, line in iter_lines(path):
        try:
            batch.append(parse_line(line, source, admission))
        except ValueError as exc:
            report.rejected.append((number, str(exc)))
        if len(batch) >= batch_size:
            publisher.publish(batch)
            report.accepted += len(batch)
            batch = []
        on_progress(len(line))
    if batch:
        publisher.publish(batch)
        report.accepted += len(batch)
    return report
