"""Back-fill from JSONL: each line validated on its own, rejected lines reported by number."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.ingest.backfill import backfill, iter_lines, parse_line
from services.ingest.publisher import PublishError
from tests.ingest.sources import registry
from yuqing.contracts import Channel, RawPost, make_post_id

SOURCE = registry().get("partner")
NOW = datetime.now(UTC)
GOOD = {"external_id": "t-1", "text": "城关镇又停电了", "created_at": (NOW - timedelta(days=3)).isoformat()}


class RecordingPublisher:
    def __init__(self, fail_on_call: int | None = None) -> None:
        self.batches: list[list[RawPost]] = []
        self._fail_on_call = fail_on_call

    def publish(self, posts: Sequence[RawPost]) -> None:
        if len(self.batches) + 1 == self._fail_on_call:
            raise PublishError("broker unavailable")
        self.batches.append(list(posts))

    def close(self) -> None:
        pass


def line(**fields: object) -> bytes:
    return json.dumps({**GOOD, **fields}, ensure_ascii=False).encode()


def test_good_line_becomes_a_post_of_the_source() -> None:
    post = parse_line(line(), SOURCE)

    assert (post.post_id, post.channel, post.region) == (
        make_post_id("partner", "t-1"), Channel.INTEGRATION, "城关镇")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "invalid JSON"),
    (line(created_at="yesterday"), "created_at"),
    (line(created_at="2026-11-28T20:15:00"), "created_at"),  # no UTC offset
    (line(external_id=""), "external_id"),
    (line(colour="red"), "colour"),
    (b"[1, 2]", "must be a post object"),
    (line(created_at=(NOW + timedelta(days=1)).isoformat()), "created_at must lie between"),
    (line(created_at="9999-12-31T23:59:59-23:59"), "created_at must lie between"),
    (line(created_at=(NOW - timedelta(days=400)).isoformat()), "created_at must lie between"),
    (line(attributes={"a": "x" * 5_000}), "attributes.a"),
])
def test_bad_lines_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_line(raw, SOURCE)


@pytest.mark.parametrize("codec", ["gbk", "utf-16"])
def test_a_line_not_in_utf8_is_refused_saying_so(codec: str) -> None:
    # orjson's own message spoke of surrogates, which says nothing to whoever exported the file
    with pytest.raises(ValueError, match=r"^not UTF-8 \(invalid byte at \d+\): save the file as UTF-8"):
        parse_line(line().decode().encode(codec), SOURCE)


def test_blank_lines_are_skipped_and_numbering_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"a\n\n  \nb\n")

    assert [line.number for line in iter_lines(path)] == [1, 4]


def test_backfill_reports_rejected_line_numbers_and_publishes_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    lines = [line(external_id=f"t-{i}") for i in range(5)]
    lines[1], lines[3] = b"{broken", line(external_id="t-3", created_at="nope")
    path.write_bytes(b"\n".join(lines) + b"\n")
    publisher = RecordingPublisher()

    report = backfill(path, source=SOURCE, publisher=publisher, batch_size=2)

    assert (report.accepted, report.lines) == (3, 5)
    assert [number for number, _ in report.rejected] == [2, 4]
    assert [[p.external_id for p in b] for b in publisher.batches] == [["t-0", "t-2"], ["t-4"]]


def test_a_failed_publish_raises_so_nothing_is_reported_as_kept(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"\n".join(line(external_id=f"t-{i}") for i in range(4)))

    with pytest.raises(PublishError):
        backfill(path, source=SOURCE, publisher=RecordingPublisher(fail_on_call=2), batch_size=2)


def test_a_line_over_the_limit_is_refused_as_it_is_read_and_the_lines_after_it_are_read(
        tmp_path: Path) -> None:
    # a file with no line ends (a JSON array exported on one line) was read whole and parsed: a
    # file of a few gigabytes took the machine's memory
    path = tmp_path / "array.jsonl"
    with path.open("wb") as handle:
        handle.write(b"[" + b",".join([line(external_id="x")] * 100_000) + b"]\r\n")
        handle.write(line(external_id="after") + b"\n")
    publisher, read = RecordingPublisher(), []

    tracemalloc.start()
    try:
        report = backfill(path, source=SOURCE, publisher=publisher, max_line_bytes=20_000,
                          on_progress=read.append)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 1_000_000 < path.stat().st_size / 10
    assert [(number, reason.split(":")[0]) for number, reason in report.rejected] == [
        (1, "longer than 20,000 bytes")]
    assert [post.external_id for batch in publisher.batches for post in batch] == ["after"]
    assert sum(read) == path.stat().st_size


def test_rejected_lines_are_counted_and_the_first_ones_kept_with_their_reason(tmp_path: Path) -> None:
    # every line of a file of the wrong kind is rejected: millions of reasons filled the memory
    path = tmp_path / "export.csv"
    path.write_bytes(b"id,text\n" + "".join(f"{i},停电了\n" for i in range(5_000)).encode())

    report = backfill(path, source=SOURCE, publisher=RecordingPublisher(), keep_rejected=20)

    assert (report.accepted, report.rejected_lines, report.lines) == (0, 5_001, 5_001)
    assert [number for number, _ in report.rejected] == list(range(1, 21))
