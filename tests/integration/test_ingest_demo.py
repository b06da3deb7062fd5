"""``make run``'s demo replay: every post of the stream through its real connector into Kafka."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from services.demo.forum import FixtureForum
from services.demo.stream import DEMO_FORUM_PORT, demo_environment, load_demo, replay_demo
from services.ingest.api import create_app
from services.ingest.registry import parse_registry
from services.ingest.settings import IngestSettings
from tests.conftest import REPO_ROOT
from tests.ingest.live import read_posts, serve
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration


def demo_registry_text(forum_url: str) -> str:
    """The registry ``make run`` uses, with the demo forum on this test's port."""
    path = Path(os.environ.get("YUQING_INGEST_SOURCES_PATH", REPO_ROOT / "config" / "sources.toml"))
    return path.read_text(encoding="utf-8").replace(f"http://127.0.0.1:{DEMO_FORUM_PORT}", forum_url)


def test_demo_stream_arrives_through_every_connector(kafka_settings: KafkaSettings,
                                                     tmp_path: Path) -> None:
    environ = demo_environment()
    forum = FixtureForum()
    registry = parse_registry(demo_registry_text(forum.url), environ)
    settings = IngestSettings(kafka=kafka_settings, cursor_dir=tmp_path / "cursors")
    try:
        with serve(create_app(settings, registry=registry)) as url:
            report = replay_demo(url, environ, forum=forum, timeout_s=60)
    finally:
        forum.close()

    expected = Counter(post.channel for post in load_demo())
    assert (report.app, report.wechat, report.forum) == (
        expected["app"], expected["wechat"], expected["forum"])
    posts = read_posts(kafka_settings, at_least=report.total)
    assert Counter(post.channel.value for post in posts) == expected
    assert {post.source for post in posts} == {"demo-app", "demo-wechat", "demo-forum"}
    assert all(post.text for post in posts)
