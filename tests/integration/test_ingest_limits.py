"""The edge's bounds through the real app and the real Kafka (issue: adversarial probe).

A post at fault refuses its request before anything is published: its batch mates
are not on ``posts.raw``; over-size posts do not touch the shared producer; event
time is bounded around arrival; control characters never reach the topic.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.ingest.app_webhook import signed_headers
from services.ingest.wechat import WeChatCrypto, text_message_xml
from tests.ingest.live import read_posts
from tests.ingest.sources import API_KEY, APP_SECRET, WECHAT_APP_ID, WECHAT_TOKEN
from yuqing.contracts import make_post_id
from yuqing.contracts.limits import MAX_RAW_MESSAGE_BYTES
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration


def post(external_id: str, **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "text": "城关镇又停电了",
            "created_at": datetime.now(UTC).isoformat(), **fields}


def send(http: httpx.Client, *posts: dict[str, Any]) -> httpx.Response:
    return http.post("/v1/posts", json={"posts": list(posts)}, headers={"X-Api-Key": API_KEY})


def published_ids(kafka: KafkaSettings, marker: str, http: httpx.Client) -> set[str]:
    """The post ids on posts.raw, read once a marker post sent last has arrived."""
    assert send(http, post(marker)).status_code == 202
    posts = read_posts(kafka, at_least=1)
    assert make_post_id("partner", marker) in {p.post_id for p in posts}
    return {p.post_id for p in posts} - {make_post_id("partner", marker)}


def oversize_post(external_id: str) -> dict[str, Any]:
    """Every field within its own bound, the whole message over the topic's budget."""
    attributes = {f"k{i}": "停" * 2_000 for i in range(50)}
    return post(external_id, text="停" * 100_000, attributes=attributes)


def test_an_oversize_post_refuses_its_request_before_anything_is_published(
        ingest: httpx.Client, kafka_settings: KafkaSettings,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for attempt in range(3):  # three in a row: the shared producer must stay as it is
        resp = send(ingest, post(f"a-{attempt}"), oversize_post(f"big-{attempt}"),
                    post(f"c-{attempt}"))
        assert resp.status_code == 413, resp.text
        assert resp.json()["detail"].startswith("posts[1]: ")
        assert f"at most {MAX_RAW_MESSAGE_BYTES:,}" in resp.json()["detail"]
        assert "Retry-After" not in resp.headers

    assert published_ids(kafka_settings, "marker", ingest) == set()
    assert not [r for r in caplog.records if "reconnecting" in r.getMessage()]


def test_an_oversize_attribute_is_refused_with_its_field(
        ingest: httpx.Client, kafka_settings: KafkaSettings) -> None:
    huge = post("big", attributes={"x": "a" * 700_000, "y": "b" * 700_000})

    resp = send(ingest, post("a"), huge, post("c"))

    assert resp.status_code == 422, resp.text
    assert ["posts", 1, "attributes", "x"] in [e["loc"][:4] for e in resp.json()["detail"]]
    assert published_ids(kafka_settings, "marker", ingest) == set()


@pytest.mark.parametrize("created_at", [
    "5138-11-16T09:46:39+00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:00",
    "1970-01-01T00:00:00+00:00",
])
def test_far_dated_posts_are_refused_at_the_edge(
        ingest: httpx.Client, kafka_settings: KafkaSettings, created_at: str) -> None:
    resp = send(ingest, post("ok-1"), post("far", created_at=created_at))

    assert resp.status_code == 422, resp.text
    [error] = resp.json()["detail"]
    assert error["loc"] == ["posts", 1, "created_at"] and error["type"] == "out_of_window"
    assert published_ids(kafka_settings, "marker", ingest) == set()


def test_event_time_window_holds_for_the_app_and_wechat(
        ingest: httpx.Client, kafka_settings: KafkaSettings) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = json.dumps({"feedback_id": "fb-far", "content": "电费太贵", "created_at": future}).encode()
    resp = ingest.post("/v1/app/app-main", content=body, headers=signed_headers(
        APP_SECRET, body, timestamp=int(time.time()), request_id=uuid.uuid4().hex))
    assert resp.status_code == 422, resp.text

    crypto = WeChatCrypto(WECHAT_TOKEN, None, WECHAT_APP_ID)
    xml = text_message_xml(to_user="gh", from_user="oUser1", create_time=99_999_999_999,
                           content="停电了", msg_id=42)
    query, content = crypto.push_request(xml, timestamp=str(int(time.time())), nonce="n",
                                         openid="oUser1", safe_mode=False)
    resp = ingest.post("/v1/wechat/wechat-plain", params=query, content=content,
                       headers={"Content-Type": "text/xml"})
    assert resp.status_code == 422, resp.text
    assert published_ids(kafka_settings, "marker", ingest) == set()


def test_control_characters_never_reach_the_topic(
        ingest: httpx.Client, kafka_settings: KafkaSettings) -> None:
    resp = send(ingest, post("ctl", text="停电\x01了\x02，\x00真的\x1b", title="标\x7f题\x85",
                             attributes={"k": "v\x01"}))

    assert resp.status_code == 202, resp.text
    [published] = read_posts(kafka_settings, at_least=1)
    assert (published.text, published.title, published.attributes) == ("停电了，真的", "标题", {"k": "v"})


def test_replayed_and_stale_pushes_are_refused(ingest: httpx.Client,
                                               kafka_settings: KafkaSettings) -> None:
    body = json.dumps({"feedback_id": "fb-1", "content": "电费太贵",
                       "created_at": datetime.now(UTC).isoformat()}).encode()
    headers = signed_headers(APP_SECRET, body, timestamp=int(time.time()), request_id="id-1")
    headers["X-Yuqing-Request-Id"] = "id-2"  # a captured request resent under a new id
    assert ingest.post("/v1/app/app-main", content=body, headers=headers).status_code == 401

    xml = text_message_xml(to_user="gh", from_user="oUser1", create_time=int(time.time()),
                           content="停电了", msg_id=7)
    plain = WeChatCrypto(WECHAT_TOKEN, None, WECHAT_APP_ID)
    stale, content = plain.push_request(xml, timestamp="1577836800", nonce="n", openid="oUser1",
                                        safe_mode=False)  # signed in 2020
    resp = ingest.post("/v1/wechat/wechat-plain", params=stale, content=content,
                       headers={"Content-Type": "text/xml"})
    assert resp.status_code == 401, resp.text
    fresh, content = plain.push_request(xml, timestamp=str(int(time.time())), nonce="n",
                                        openid="oUser1", safe_mode=False)
    resp = ingest.post("/v1/wechat/wechat-service", params=fresh, content=content,
                       headers={"Content-Type": "text/xml"})  # an account in safe mode
    assert resp.status_code == 401 and "safe mode" in resp.text
    assert published_ids(kafka_settings, "marker", ingest) == set()


def test_conformance_of_dates_and_methods(ingest: httpx.Client,
                                          kafka_settings: KafkaSettings) -> None:
    for created_at in (0, 1764332100, "1764332100", "0.5"):
        resp = send(ingest, post("num", created_at=created_at))
        assert resp.status_code == 422, (created_at, resp.text)
        assert resp.json()["detail"][0]["loc"] == ["posts", 0, "created_at"]
    resp = ingest.put("/v1/wechat/wechat-plain")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, POST"
    assert published_ids(kafka_settings, "marker", ingest) == set()
