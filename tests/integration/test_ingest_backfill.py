"""``yuqing publish``: a JSONL file with good and bad lines, into the real Kafka and back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.ingest.live import read_posts
from tests.ingest.sources import ENV, registry_toml
from yuqing.contracts import Channel, make_post_id
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_publish_command_sends_the_good_lines_and_reports_the_bad_ones(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    registry_path = tmp_path / "sources.toml"
    registry_path.write_text(registry_toml(), encoding="utf-8")
    now = datetime.now(UTC)
    good = [{"external_id": f"hist-{i}", "text": f"{i}个月前停电太多了",
             "created_at": (now - timedelta(days=30 * i + 15)).isoformat()} for i in range(1, 8)]
    lines = [json.dumps(post, ensure_ascii=False) for post in good]
    lines[2:2] = ["{this is not json"]
    lines[5:5] = ["", json.dumps({"external_id": "hist-x", "text": "no date"})]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, **ENV, "YUQING_INGEST_SOURCES_PATH": str(registry_path),
           "YUQING_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix, "PYTHONPATH": str(REPO_ROOT)}

    result = subprocess.run([sys.executable, "-m", "yuqing.cli", "publish", "--source", "partner",
                             "--batch-size", "3", str(path)], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 3, result.stderr  # 3: some lines were rejected
    assert "line 3: invalid JSON" in result.stderr
    assert "line 7: created_at" in result.stderr
    assert "9 lines" in result.stderr and "7 accepted" in result.stderr
    posts = read_posts(kafka_settings, at_least=7)
    assert sorted(p.post_id for p in posts) == sorted(
        make_post_id("partner", post["external_id"]) for post in good)
    assert {p.channel for p in posts} == {Channel.INTEGRATION}


def test_publish_needs_the_secrets_of_its_own_source_only(kafka_settings: KafkaSettings,
                                                          tmp_path: Path) -> None:
    # a back-fill publishes straight to posts.raw: it stopped at the first other source whose
    # secret was not set ("source 'app-main': environment variable T_APP_SECRET is not set"), so an
    # operator had to export every source's HMAC, WeChat and salt secrets to back-fill a file
    registry_path = tmp_path / "sources.toml"
    registry_path.write_text(registry_toml(), encoding="utf-8")
    path = tmp_path / "history.jsonl"
    created = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    path.write_text(json.dumps({"external_id": "only-1", "text": "去年停电太多了", "created_at": created},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update({"T_API_KEY": ENV["T_API_KEY"], "YUQING_INGEST_SOURCES_PATH": str(registry_path),
                "YUQING_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
                "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix, "PYTHONPATH": str(REPO_ROOT)})

    done = subprocess.run([sys.executable, "-m", "yuqing.cli", "publish", "--source", "partner", str(path)],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert [p.post_id for p in read_posts(kafka_settings, at_least=1)] == [make_post_id("partner", "only-1")]
