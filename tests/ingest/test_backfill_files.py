"""Back-fill files as editors and exports on Windows save them: a byte order mark, CRLF."""

from __future__ import annotations

from pathlib import Path

from services.ingest.backfill import backfill
from tests.ingest.test_backfill import SOURCE, RecordingPublisher, line


def test_a_byte_order_mark_and_crlf_line_ends_lose_no_post(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line(external_id="a") + b"\r\n" + line(external_id="b")
                     + b"\r\n\r\n")
    publisher = RecordingPublisher()

    report = backfill(path, source=SOURCE, publisher=publisher)

    assert report.rejected == []
    assert [post.external_id for batch in publisher.batches for post in batch] == ["a", "b"]
