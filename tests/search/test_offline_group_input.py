"""`yuqing issues group`'s input: what a county's own export writes is read, what cannot be read
is refused naming the line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.search.issue_offline import group_rows, parse_time, read_posts

LINES = [
    '{"id": "a", "text": "河口镇停电了啥时候来电", "created_at": "2026-03-02 08:15:00", "region": "河口镇"}',
    '{"id": "b", "text": "河口镇停电+1", "created_at": "2026-03-02T00:17:00Z", "region": "河口镇"}',
    '{"id": 3, "text": "河口镇新街也没电了", "created_at": "2026-03-02T08:19:00+08:00", "region": "河口镇"}',
    '{"id": "d", "text": "河口镇停电了，什么时候来电", "created_at": 1772410800000, "region": "河口镇"}',
]


def _file(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_time_without_a_zone_is_local_time() -> None:
    assert parse_time("2026-03-02 08:15:00") == datetime(2026, 3, 2, 0, 15, tzinfo=UTC)
    assert parse_time("2026-03-02T08:15:00", utc_offset_hours=0) == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    assert parse_time("2026-03-02T08:15:00Z") == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


def test_a_spreadsheets_slashed_date_and_an_epoch_number_are_read() -> None:
    # a spreadsheet writes 2026/3/2 8:15, a database export seconds or milliseconds since the epoch
    assert parse_time("2026/3/2 8:15") == datetime(2026, 3, 2, 0, 15, tzinfo=UTC)
    assert parse_time("2026/03/02 08:15:00") == datetime(2026, 3, 2, 0, 15, tzinfo=UTC)
    assert parse_time(1772410500) == datetime(2026, 3, 2, 0, 15, tzinfo=UTC)
    assert parse_time(1772410500000) == datetime(2026, 3, 2, 0, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_time("2026/13/02 08:00")


def test_an_export_with_local_times_is_grouped(tmp_path: Path) -> None:
    rows = read_posts(_file(tmp_path, "\r\n".join(LINES) + "\r\n", "utf-8-sig"))
    assert [r["id"] for r in rows] == ["a", "b", 3, "d"]
    assert rows[0]["created_at"] == "2026-03-02T08:15:00+08:00"
    # the four are one outage within minutes, whichever way their times were written
    assert len(set(group_rows([{**r, "topic": "outage"} for r in rows], classify=None))) == 1


def test_a_time_that_is_not_iso_8601_is_named(tmp_path: Path) -> None:
    # the other unreadable lines: test_issues_group_input.py
    bad = '{"id": "x", "text": "停电", "created_at": "02.03.2026 08:00"}'
    with pytest.raises(ValueError, match="line 2: created_at is not an ISO 8601 time"):
        read_posts(_file(tmp_path, LINES[0] + "\n" + bad + "\n"))


def test_a_topic_is_read_whatever_its_case_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    # "Billing" was a topic of its own, compatible with none, in an issue id "Billing-…"
    rows = read_posts(_file(tmp_path, LINES[0][:-1] + ', "topic": " Outage"}\n'
                            + LINES[1][:-1] + ', "topic": ""}\n'))
    assert [r["topic"] for r in rows] == ["outage", None]  # an empty topic: the model classifies
    assert group_rows(rows, classify=None)[0].startswith("outage-")
    bad = LINES[2][:-1] + ', "topic": "停电"}'
    with pytest.raises(ValueError, match="line 2: topic '停电' is none of billing, employee"):
        read_posts(_file(tmp_path, LINES[0] + "\n" + bad + "\n"))
