"""Replay the bundled demo stream into a running ingest service, through the real connectors.

``data/demo/stream.jsonl`` has one post per line (``channel`` app|wechat|forum,
``text``, ``region``, ``unit``, ``offset_s``, optional ``title`` and ``story``, which marks the
posts of the surges the demo shows). :func:`replay_demo`
sends each the way its channel really arrives:

* app: a signed ``POST /v1/app/demo-app`` (HMAC-SHA256 webhook);
* wechat: an encrypted (safe mode) ``POST /v1/wechat/demo-wechat`` push;
* forum: a post on a local Discourse-style forum (``/posts.json`` on
  ``DEMO_FORUM_PORT``) that the ingest service's forum poller picks up.

The sources are declared in ``config/sources.toml``; their secrets come from
:func:`demo_environment`. Timestamps are spread over the minutes before the replay,
and ids are new on every replay, so a second ``make run`` adds the stream again.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.demo.forum import FixtureForum, discourse_post
from services.ingest.app_webhook import signed_headers
from services.ingest.wechat import WeChatCrypto, text_message_xml
from yuqing.paths import project_paths

DEMO_STREAM = project_paths().root / "data" / "demo" / "stream.jsonl"

APP_SOURCE = "demo-app"
WECHAT_SOURCE = "demo-wechat"
FORUM_SOURCE = "demo-forum"
WECHAT_APP_ID = "wx5823bf96d3bd56c7"
WECHAT_ACCOUNT = "gh_7f3a9c21e0d4"
DEMO_FORUM_PORT = 8011

_ALNUM = string.ascii_letters + string.digits
# Variable -> how to make a value when it is unset (formats required by the registry).
_SECRETS: dict[str, Callable[[], str]] = {
    "YUQING_DEMO_API_KEY": lambda: secrets.token_urlsafe(32),
    "YUQING_DEMO_APP_SECRET": lambda: secrets.token_urlsafe(32),
    "YUQING_DEMO_WECHAT_TOKEN": lambda: "".join(secrets.choice(_ALNUM) for _ in range(32)),
    "YUQING_DEMO_WECHAT_AES_KEY": lambda: "".join(secrets.choice(_ALNUM) for _ in range(43)),
    "YUQING_DEMO_SALT": lambda: secrets.token_urlsafe(24),
}


def demo_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The demo sources' secrets: the values in ``environ`` where set, new random ones otherwise."""
    environ = environ or {}
    return {name: environ.get(name) or make() for name, make in _SECRETS.items()}


@dataclass(frozen=True)
class DemoPost:
    channel: str
    text: str
    region: str | None
    unit: str | None
    offset_s: float
    title: str | None = None


def load_demo(path: Path = DEMO_STREAM) -> list[DemoPost]:
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            posts.append(DemoPost(row["channel"], row["text"], row.get("region"),
                                  row.get("unit"), float(row["offset_s"]), row.get("title")))
    return posts


@dataclass
class DemoReport:
    app: int = 0
    wechat: int = 0
    forum: int = 0

    @property
    def total(self) -> int:
        return self.app + self.wechat + self.forum

    def __str__(self) -> str:
        return (f"{self.total} posts ({self.app} APP webhook, {self.wechat} WeChat push, "
                f"{self.forum} forum poll)")


def start_demo_forum(port: int = DEMO_FORUM_PORT) -> FixtureForum:
    """The local forum the ``demo-forum`` source polls; start it before the ingest service."""
    return FixtureForum(port=port)


def replay_demo(ingest_url: str, environ: Mapping[str, str], *, forum: FixtureForum | None = None,
                path: Path = DEMO_STREAM, timeout_s: float = 60) -> DemoReport:
    """Send the demo stream through the connectors; returns once every post is in Kafka.

    ``environ`` holds the secrets of :func:`demo_environment`. ``forum`` is the
    running demo forum (one is started if None; it keeps serving afterwards).
    Raises ``httpx.HTTPStatusError`` if the ingest service refuses a post and
    ``TimeoutError`` if the poller does not pick up the forum posts in time.
    """
    posts = load_demo(path)
    start = datetime.now(UTC) - timedelta(seconds=max(p.offset_s for p in posts) + 1)
    forum = forum or start_demo_forum()
    sender = _Sender(ingest_url, environ, start)
    report, last_forum_id = DemoReport(), 0
    with sender:
        for index, post in enumerate(posts):
            created = start + timedelta(seconds=post.offset_s)
            if post.channel == "app":
                report.app += sender.app(post, index, created)
            elif post.channel == "wechat":
                report.wechat += sender.wechat(post, index, created)
            elif post.channel == "forum":
                last_forum_id = sender.forum_id(index)
                forum.add(_forum_post(post, last_forum_id, created))
                report.forum += 1
            else:
                raise ValueError(f"{path}: line {index + 1}: unknown channel {post.channel!r}")
    if last_forum_id and not forum.wait_until_polled(last_forum_id, timeout_s):
        raise TimeoutError(f"the forum poller did not fetch the demo forum posts in {timeout_s:.0f} s")
    return report


class _Sender:
    """Builds each channel's request the way the real sender does."""

    def __init__(self, ingest_url: str, environ: Mapping[str, str], start: datetime) -> None:
        self._http = httpx.Client(base_url=ingest_url, timeout=30, trust_env=False)
        self._app_secret = environ["YUQING_DEMO_APP_SECRET"]
        self._run_tag = f"{start:%Y%m%d%H%M%S}"
        self._base_id = int(start.timestamp()) * 1_000
        self._wechat = WeChatCrypto(environ["YUQING_DEMO_WECHAT_TOKEN"],
                                    environ["YUQING_DEMO_WECHAT_AES_KEY"], WECHAT_APP_ID)

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def forum_id(self, index: int) -> int:
        return self._base_id + index  # grows from replay to replay, as the forum's cursor needs

    def app(self, post: DemoPost, index: int, created: datetime) -> int:
        feedback = {"feedback_id": f"demo-{self._run_tag}-{index:04d}", "user": f"u_demo{index % 9}",
                    "content": post.text, "title": post.title, "created_at": created.isoformat(),
                    "region": post.region, "unit": post.unit, "platform": "android",
                    "app_version": "5.12.0", "category": "意见反馈"}
        body = json.dumps({k: v for k, v in feedback.items() if v is not None},
                          ensure_ascii=False).encode()
        headers = signed_headers(self._app_secret, body, timestamp=int(time.time()),
                                 request_id=f"demo-{self._run_tag}-{index:04d}")
        resp = self._http.post(f"/v1/app/{APP_SOURCE}", content=body, headers=headers)
        resp.raise_for_status()
        return int(resp.json()["accepted"])

    def wechat(self, post: DemoPost, index: int, created: datetime) -> int:
        xml = text_message_xml(to_user=WECHAT_ACCOUNT, from_user=f"oDemoUser{index % 11:02d}",
                               create_time=int(created.timestamp()), content=post.text,
                               msg_id=self._base_id + index)
        query, body = self._wechat.push_request(xml, timestamp=str(int(time.time())),
                                                nonce=secrets.token_hex(8),
                                                openid=f"oDemoUser{index % 11:02d}")
        resp = self._http.post(f"/v1/wechat/{WECHAT_SOURCE}", params=query, content=body,
                               headers={"Content-Type": "text/xml"})
        resp.raise_for_status()
        return 1 if resp.text == "success" else 0


def _forum_post(post: DemoPost, post_id: int, created: datetime) -> dict[str, Any]:
    return discourse_post(post_id, topic_id=post_id, title=post.title or post.text[:24],
                          text=post.text, username=f"emp{post_id % 13:02d}", created_at=created)


# ---- the integration source (partner systems, back-fill) ----------------------------------


def to_integration_post(post: DemoPost, index: int, start: datetime) -> dict[str, Any]:
    return {
        "external_id": f"demo-{start:%Y%m%d%H%M}-{index:04d}",
        "text": post.text, "title": post.title,
        "created_at": (start + timedelta(seconds=post.offset_s)).isoformat(),
        "region": post.region, "unit": post.unit,
        "attributes": {"demo_channel": post.channel},
    }


def replay_via_api(base_url: str, api_key: str, *, path: Path = DEMO_STREAM) -> int:
    """Send the demo posts to ``POST /v1/posts`` (timestamps spread over the last ten minutes)."""
    posts = load_demo(path)
    start = datetime.now(UTC) - timedelta(seconds=max(p.offset_s for p in posts) + 1)
    body = {"posts": [to_integration_post(p, i, start) for i, p in enumerate(posts)]}
    resp = httpx.post(f"{base_url}/v1/posts", json=body, headers={"X-Api-Key": api_key},
                      timeout=30)
    resp.raise_for_status()
    return int(resp.json()["accepted"])
