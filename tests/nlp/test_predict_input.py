"""``yuqing nlp predict`` reads its whole input before loading the model: a bad line is named
by number in one line, at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.nlp.nlp_cli import read_texts
from yuqing.cli import app


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(data)
    return path


def test_a_byte_order_mark_crlf_and_blank_lines_are_read(tmp_path: Path) -> None:
    path = _file(tmp_path, '\ufeff{"id": "a", "text": "停电"}\r\n\r\n{"id": 2}\r\n'.encode())

    assert read_texts(path) == [{"id": "a", "text": "停电"}, {"id": 2}]


@pytest.mark.parametrize(("line", "message"), [
    (b"[1, 2]", "line 2: not a JSON object"),
    (b"{oops", "line 2: not a JSON object"),
    (json.dumps({"id": "b", "text": 42}).encode(), "line 2: text must be a string, not 42"),
])
def test_a_bad_line_is_named(tmp_path: Path, line: bytes, message: str) -> None:
    path = _file(tmp_path, b'{"id": "a", "text": "x"}\n' + line + b"\n")

    with pytest.raises(ValueError, match=message):
        read_texts(path)


def test_the_command_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path, b"[1, 2]\n")

    result = CliRunner().invoke(app, ["nlp", "predict", "--input", str(path),
                                      "--output", str(tmp_path / "out.jsonl")])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {path}: line 1: not a JSON object"]
