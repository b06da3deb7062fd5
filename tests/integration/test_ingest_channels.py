"""Every channel through the real HTTP app into the real Kafka: APP webhook, WeChat push, forum poller."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.demo.forum import FixtureForum, discourse_post
from services.ingest.api import create_app
from services.ingest.app_webhook import signed_headers
from services.ingest.pollers import run_pollers
from services.ingest.settings import IngestSettings
from services.ingest.wechat import WeChatCrypto, text_message_xml
from tests.conftest import free_port
from tests.ingest.live import read_posts, serve
from tests.ingest.sources import (
    API_KEY,
    APP_SECRET,
    ENV,
    WECHAT_AES_KEY,
    WECHAT_APP_ID,
    WECHAT_TOKEN,
    registry,
    registry_toml,
)
from yuqing.contracts import Channel
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration


def ingest(kafka: KafkaSettings, tmp_path: Path, **options: Any) -> Any:
    forum_url = options.pop("forum_url", None)
    settings = IngestSettings(kafka=kafka, cursor_dir=tmp_path / "cursors",
                              poll_forums=forum_url is not None, **options)
    return serve(create_app(settings, registry=registry(forum_url=forum_url)))


def send_feedback(url: str, feedback_id: str, request_id: str) -> httpx.Response:
    body = json.dumps({"feedback_id": feedback_id, "content": "这个月电费218，是不是表走快了？",
                       "created_at": datetime.now(UTC).isoformat(), "platform": "ios"},
                      ensure_ascii=False).encode()
    headers = signed_headers(APP_SECRET, body, timestamp=int(time.time()), request_id=request_id)
    return httpx.post(f"{url}/v1/app/app-main", content=body, headers=headers, timeout=10)


def push_wechat(url: str, msg_id: int) -> httpx.Response:
    crypto = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID)
    xml = text_message_xml(to_user="gh_account", from_user="oUser42", create_time=int(time.time()),
                           content="柳塘镇停电三个小时了，什么时候来电？", msg_id=msg_id)
    query, body = crypto.push_request(xml, timestamp=str(int(time.time())),
                                      nonce=uuid.uuid4().hex[:10], openid="oUser42")
    return httpx.post(f"{url}/v1/wechat/wechat-service", params=query, content=body,
                      headers={"Content-Type": "text/xml"}, timeout=10)


def test_signed_app_feedback_reaches_posts_raw_once(kafka_settings: KafkaSettings,
                                                    tmp_path: Path) -> None:
    with ingest(kafka_settings, tmp_path) as url:
        first = send_feedback(url, "fb-1", "req-1")
        resend = send_feedback(url, "fb-1", "req-2")  # the APP resending after a timeout
        replay = send_feedback(url, "fb-1", "req-1")

    assert first.status_code == 202, first.text
    assert (resend.status_code, resend.json()["duplicates"]) == (202, 1)
    assert replay.status_code == 409
    [post] = read_posts(kafka_settings, at_least=1)
    assert (post.source, post.channel, post.external_id, post.unit) == (
        "app-main", Channel.APP, "fb-1", "城关供电所")
    assert post.post_id == first.json()["post_ids"][0]


def test_encrypted_wechat_push_reaches_posts_raw_and_retries_are_deduplicated(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    with ingest(kafka_settings, tmp_path) as url, ThreadPoolExecutor(3) as pool:
        concurrent = list(pool.map(lambda _: push_wechat(url, 6_200_000_001), range(3)))
        later = push_wechat(url, 6_200_000_001)

    assert [(r.status_code, r.text) for r in [*concurrent, later]] == [(200, "success")] * 4
    [post] = read_posts(kafka_settings, at_least=1)
    assert (post.channel, post.external_id, post.region) == (Channel.WECHAT, "6200000001", "柳塘镇")
    assert post.text == "柳塘镇停电三个小时了，什么时候来电？"
    assert post.author is not None and post.author.startswith("wx-")


def test_a_shared_article_over_the_contracts_bounds_is_kept_not_refused(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    # WeChat drops a message refused with a 4xx once its retries are spent: a link whose address
    # was over 2,048 characters was a 422, and the user's message was lost
    long_url = "https://mp.weixin.qq.com/s?__biz=" + "A" * 3_000
    xml = (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[oUser42]]>"
           f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[link]]>"
           f"</MsgType><Title><![CDATA[网传阶梯电价翻倍？]]></Title><Url><![CDATA[{long_url}]]></Url>"
           f"<MsgId>6200000077</MsgId></xml>").encode()
    crypto = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID)
    query, body = crypto.push_request(xml, timestamp=str(int(time.time())), nonce="n0nce77",
                                      openid="oUser42")
    with ingest(kafka_settings, tmp_path) as url:
        resp = httpx.post(f"{url}/v1/wechat/wechat-service", params=query, content=body,
                          headers={"Content-Type": "text/xml"}, timeout=10)

    assert (resp.status_code, resp.text) == (200, "success")
    [post] = read_posts(kafka_settings, at_least=1)
    assert (post.external_id, post.title, post.url) == ("6200000077", "网传阶梯电价翻倍？", None)


def forum_posts(first_id: int, count: int) -> list[dict[str, Any]]:
    created = datetime.now(UTC) - timedelta(minutes=10)
    return [discourse_post(post_id, topic_id=700 + post_id % 3, title="夜班排班",
                           text=f"第{post_id}楼：排班能不能均匀一点？", username=f"emp{post_id}",
                           created_at=created + timedelta(seconds=post_id))
            for post_id in range(first_id, first_id + count)]


def test_forum_poller_publishes_new_posts_and_resumes_after_a_restart(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    forum = FixtureForum(page_size=2)  # several pages per poll: the walk back is exercised
    try:
        forum.add(*forum_posts(1, 5))
        with ingest(kafka_settings, tmp_path, forum_url=forum.url):
            assert forum.wait_until_polled(5, timeout_s=30)
        forum.add(*forum_posts(6, 3))
        with ingest(kafka_settings, tmp_path, forum_url=forum.url):
            assert forum.wait_until_polled(8, timeout_s=30)
    finally:
        forum.close()

    posts = read_posts(kafka_settings, at_least=8)
    assert sorted(int(p.external_id) for p in posts) == list(range(1, 9))  # none twice, none lost
    assert {p.channel for p in posts} == {Channel.FORUM}
    assert json.loads((tmp_path / "cursors" / "forum-intranet.json").read_text())["last_id"] == 8


def test_pollers_run_on_their_own_without_the_api(kafka_settings: KafkaSettings, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    forum = FixtureForum()
    forum.add(*forum_posts(1, 3))
    registry_path = tmp_path / "sources.toml"
    registry_path.write_text(registry_toml(forum_url=forum.url), encoding="utf-8")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    settings = IngestSettings(kafka=kafka_settings, sources_path=registry_path,
                              cursor_dir=tmp_path / "cursors")

    async def poll_until_fetched() -> bool:
        stop = asyncio.Event()
        pollers = asyncio.create_task(run_pollers(settings, stop=stop))
        fetched = await asyncio.to_thread(forum.wait_until_polled, 3, 30)
        stop.set()
        await pollers
        return fetched

    try:
        assert asyncio.run(poll_until_fetched())
    finally:
        forum.close()
    assert sorted(int(p.external_id) for p in read_posts(kafka_settings, at_least=3)) == [1, 2, 3]


def test_without_kafka_every_channel_answers_503_and_keeps_nothing(tmp_path: Path) -> None:
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with ingest(nowhere, tmp_path, publish_timeout_s=2, wechat_timeout_s=2) as url:
        partner = httpx.post(f"{url}/v1/posts", headers={"X-Api-Key": API_KEY}, timeout=10, json={
            "external_id": "x-1", "text": "停电", "created_at": datetime.now(UTC).isoformat()})
        app = send_feedback(url, "fb-9", "req-9")
        wechat = push_wechat(url, 9)

    for resp in (partner, app, wechat):
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "5"
