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
    (json.dumps({"id": "b", "text": "x", "title": ["a"]}).encode(),
     r'line 2: title must be a string, not \["a"\]'),
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


def test_predict_reads_title_and_text_as_the_worker_does(tmp_path: Path) -> None:
    # the title was ignored and the text not normalised: a post whose title said it all was
    # classified as an empty text, unlike in the worker
    from datetime import UTC, datetime

    from services.nlp.classifier import load_classifier
    from services.nlp.enrich import model_input
    from yuqing.contracts import Channel, RawPost, make_post_id

    now = datetime.now(UTC)
    posts = [RawPost(post_id=make_post_id("s1", str(i)), source="s1", channel=Channel.FORUM,
                     external_id=str(i), title=title, text=text, created_at=now, received_at=now)
             for i, (title, text) in enumerate([("小区又停电三个小时了，什么时候来电？", ""),
                                                ("ＡＰＰ", "登录不上，\u200b交不了  电费")])]
    path = _file(tmp_path, "\n".join(json.dumps({"id": p.external_id, "title": p.title, "text": p.text})
                                      for p in posts).encode())
    out = tmp_path / "out.jsonl"

    result = CliRunner().invoke(app, ["nlp", "predict", "--input", str(path), "--output", str(out)])

    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = load_classifier().predict([model_input(p) for p in posts])
    assert [g["topic"] for g in got] == [e.topic for e in expected]
    assert [g["topic_scores"] for g in got] == [e.topic_scores for e in expected]
    assert got[0]["topic"] == "outage"


@pytest.mark.parametrize(("data", "message"), [
    (b'{"text": "x", "topic": "outage"}\nnot json\n', "line 2: not a JSON object"),
    (b'{"text": "x", "topic": "outage"}\n[1]\n', "line 2: not a JSON object"),
    (b'{"text": "x", "topic": ["outage"]}\n', r'line 1: topic must be a string, not \["outage"\]'),
])
def test_training_data_names_a_bad_line(tmp_path: Path, data: bytes, message: str) -> None:
    # evaluate and train printed json's "Expecting value: line 1 column 1 (char 0)", naming no
    # file, or a traceback for a line that was not an object
    from services.nlp.training import read_examples

    path = _file(tmp_path, data)
    with pytest.raises(ValueError, match=f"{path.name}: {message}"):
        read_examples(path)
    assert read_examples(_file(tmp_path, '\ufeff{"text": "停电", "topic": "outage"}\r\n'.encode()))[0].topic \
        == "outage"


def test_evaluate_refuses_data_without_labels_before_loading_the_model(tmp_path: Path) -> None:
    # it printed a progress line and nothing else, and exited 0
    path = _file(tmp_path, b'{"text": "\xe5\x81\x9c\xe7\x94\xb5"}\n')

    result = CliRunner().invoke(app, ["nlp", "evaluate", "--data", str(path),
                                      "--model", str(tmp_path / "no-model")])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {path}: no line with a topic or sentiment label (all split)"]
