"""``yuqing ingest serve`` and ``poll`` with a registry they cannot use: one line, a non-zero
exit, before anything starts (the server's startup printed a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ingest.sources import ENV, registry_toml
from yuqing.cli import app

UNSET_SECRET = """
[[sources]]
id = "app-x"
channel = "app"
owner = "tests"
hmac_secret_env = "YUQING_TEST_SECRET_NEVER_SET"
"""


@pytest.mark.parametrize("command", ["serve", "poll"])
@pytest.mark.parametrize(("text", "message"), [
    (UNSET_SECRET, "source 'app-x': environment variable YUQING_TEST_SECRET_NEVER_SET is not set"),
    ("not = [toml\n", "not valid TOML"),
])
def test_a_registry_it_cannot_use_is_one_line(tmp_path: Path, command: str, text: str,
                                              message: str) -> None:
    registry = tmp_path / "sources.toml"
    registry.write_text(text, encoding="utf-8")

    result = CliRunner().invoke(app, ["ingest", command],
                                env={"YUQING_INGEST_SOURCES_PATH": str(registry)})

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {registry}: ") or line.startswith("error: source ")
    assert message in line


@pytest.mark.parametrize(("text", "source", "message"), [
    (UNSET_SECRET, "app-x", "environment variable YUQING_TEST_SECRET_NEVER_SET is not set"),
    (registry_toml(), "crm", "unknown source 'crm'"),
])
def test_publish_with_a_source_it_cannot_use_is_one_line_and_1(tmp_path: Path, text: str, source: str,
                                                               message: str) -> None:
    # it printed the registry's error wrapped over two lines, without "error:", and exited 2
    registry = tmp_path / "sources.toml"
    registry.write_text(text, encoding="utf-8")
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"external_id": "1", "text": "停电了"}\n', encoding="utf-8")

    result = CliRunner().invoke(app, ["publish", "--source", source, str(posts)],
                                env={**ENV, "YUQING_INGEST_SOURCES_PATH": str(registry), "COLUMNS": "40"})

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ") and message in line
