"""A command whose Kafka or Elasticsearch does not answer ends in one line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer
from kafka.errors import KafkaTimeoutError
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from yuqing.clikit import command_group


def test_elasticsearch_unreachable_is_one_line_and_a_nonzero_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "yuqing.cli", "search", "templates"], capture_output=True, text=True,
        cwd=REPO_ROOT, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "YUQING_ES_URL": "http://127.0.0.1:1"})

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: Elasticsearch: ") and "127.0.0.1" in line


def _group_raising(exc: Exception) -> typer.Typer:
    group = command_group("test")

    @group.command("go")
    def go() -> None:
        raise exc

    @group.command("other")
    def other() -> None:  # a group of one command would run it without its name
        return None

    return group


def test_a_kafka_client_error_is_one_line_and_a_nonzero_exit() -> None:
    # What `yuqing dlq tail` and `yuqing topics` raised after 30 s without a broker.
    error = KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:1']")

    result = CliRunner().invoke(_group_raising(error), ["go"])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: Kafka: KafkaTimeoutError: Unable to bootstrap from ['127.0.0.1:1']"]


def test_other_errors_still_show_their_traceback() -> None:
    result = CliRunner().invoke(_group_raising(RuntimeError("a bug")), ["go"])

    assert isinstance(result.exception, RuntimeError)


def test_debug_shows_a_kafka_errors_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_DEBUG", "1")
    result = CliRunner().invoke(_group_raising(KafkaTimeoutError("x")), ["go"])

    assert isinstance(result.exception, KafkaTimeoutError)
