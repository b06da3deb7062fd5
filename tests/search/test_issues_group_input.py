"""``yuqing issues group`` input: a file as editors save it is read, a bad line is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.search.issue_offline import read_posts
from yuqing.cli import app

ROW = {"id": "p1", "text": "河口镇停电了", "created_at": "2026-11-28T08:00:00+08:00", "topic": "outage"}


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(data)
    return path


def test_a_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    line = json.dumps(ROW, ensure_ascii=False).encode()
    path = _file(tmp_path, b"\xef\xbb\xbf" + line + b"\r\n" + line.replace(b"p1", b"p2") + b"\r\n")

    assert [row["id"] for row in read_posts(path)] == ["p1", "p2"]


@pytest.mark.parametrize(("line", "message"), [
    (b"not json", "line 2: not a JSON object"),
    (json.dumps({**ROW, "text": None}).encode(), "line 2: text must be a string"),
    (json.dumps({**ROW, "created_at": True}).encode(), "line 2: created_at must be a string"),
    (json.dumps({**ROW, "created_at": 1e300}).encode(), "line 2: created_at 1e[+]300 is no time since"),
    (json.dumps({**ROW, "region": ["河口镇"]}).encode(), "line 2: region must be a string"),
    (json.dumps({**ROW, "id": None}).encode(), "line 2: id must be a string or a whole number"),
])
def test_a_bad_line_is_named_with_its_number(tmp_path: Path, line: bytes, message: str) -> None:
    path = _file(tmp_path, json.dumps(ROW).encode() + b"\n" + line + b"\n")

    with pytest.raises(ValueError, match=message):
        read_posts(path)


def test_the_command_answers_a_bad_line_in_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path, json.dumps({**ROW, "text": None}).encode() + b"\n")

    result = CliRunner().invoke(app, ["issues", "group", "--input", str(path),
                                      "--output", str(tmp_path / "out.jsonl")])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {path}: line 1: text must be a string, not null"]


def test_a_text_holding_a_line_separator_is_one_post(tmp_path: Path) -> None:
    # JSON keeps U+2028 and U+2029 unescaped inside a string; the file was split there too,
    # and a valid line was refused as "not a JSON object"
    rows = [{**ROW, "text": "河口镇停电了\u2028已经两个小时"},
            {**ROW, "id": "p2", "text": "新街村\u2029也停了"}]
    path = _file(tmp_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())

    assert [(row["id"], row["text"]) for row in read_posts(path)] == [(r["id"], r["text"]) for r in rows]


def test_a_file_not_in_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    # saved in GBK (editors on Chinese Windows): "'utf-8' codec can't decode byte 0xba", no file named
    gbk = json.dumps(ROW, ensure_ascii=False).encode("gbk")
    path = _file(tmp_path, json.dumps(ROW).encode() + b"\n" + gbk)

    done = CliRunner().invoke(app, ["issues", "group", "--input", str(path), "--output", str(tmp_path / "o")])

    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        f"error: {path}: line 2: not UTF-8 text (save the file as UTF-8)"]
