"""The demo's sources in the registry match what services/demo/stream.py sends."""

from __future__ import annotations

import os
from pathlib import Path

from services.demo.stream import (
    APP_SOURCE,
    DEMO_FORUM_PORT,
    FORUM_SOURCE,
    WECHAT_APP_ID,
    WECHAT_SOURCE,
    demo_environment,
    load_demo,
)
from services.ingest.registry import load_registry
from tests.conftest import REPO_ROOT
from yuqing.contracts import Channel


def registry_path() -> Path:
    return Path(os.environ.get("YUQING_INGEST_SOURCES_PATH", REPO_ROOT / "config" / "sources.toml"))


def test_demo_sources_are_registered_with_the_demo_secrets() -> None:
    registry = load_registry(registry_path(), demo_environment())

    assert registry.get(APP_SOURCE).channel == Channel.APP
    wechat = registry.get(WECHAT_SOURCE)
    assert wechat.channel == Channel.WECHAT
    assert wechat.config.app_id == WECHAT_APP_ID  # type: ignore[union-attr]
    assert wechat.optional_secret("encoding_aes_key") is not None  # safe mode
    forum = registry.get(FORUM_SOURCE)
    assert forum.config.base_url == f"http://127.0.0.1:{DEMO_FORUM_PORT}"  # type: ignore[union-attr]


def test_demo_environment_keeps_set_values_and_makes_the_rest() -> None:
    made = demo_environment({"YUQING_DEMO_API_KEY": "x" * 40})

    assert made["YUQING_DEMO_API_KEY"] == "x" * 40
    assert made["YUQING_DEMO_APP_SECRET"] != demo_environment()["YUQING_DEMO_APP_SECRET"]
    assert len(made["YUQING_DEMO_WECHAT_AES_KEY"]) == 43


def test_demo_stream_uses_every_channel() -> None:
    assert {post.channel for post in load_demo()} == {"app", "wechat", "forum"}
