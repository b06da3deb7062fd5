"""The HTTP edge of every channel, with a publisher fake (Kafka itself: tests/integration)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.ingest.api import create_app
from services.ingest.app_webhook import signed_headers
from services.ingest.metrics import REGISTRY
from services.ingest.settings import IngestSettings
from services.ingest.wechat import WeChatCrypto, text_message_xml
from tests.ingest.fakes import FakePublisher
from tests.ingest.sources import (
    API_KEY,
    APP_SECRET,
    APP_SECRET_PREVIOUS,
    WECHAT_AES_KEY,
    WECHAT_APP_ID,
    WECHAT_TOKEN,
    registry,
)
from yuqing.contracts import Channel, make_post_id
from yuqing.contracts.limits import MAX_TEXT_CHARS

NOW = datetime.now(UTC).isoformat()


@dataclass
class Api:
    http: TestClient
    publisher: FakePublisher

    def posts(self, body: Any, *, key: str | None = API_KEY, **headers: str) -> Any:
        if key is not None:
            headers["X-Api-Key"] = key
        return self.http.post("/v1/posts", json=body, headers=headers)

    def app(self, feedback: dict[str, Any] | bytes, *, secret: str = APP_SECRET,
            request_id: str | None = None, timestamp: int | None = None,
            source: str = "app-main") -> Any:
        body = feedback if isinstance(feedback, bytes) else json.dumps(feedback).encode()
        headers = signed_headers(secret, body, timestamp=timestamp or int(time.time()),
                                 request_id=request_id or uuid.uuid4().hex)
        return self.http.post(f"/v1/app/{source}", content=body, headers=headers)

    def wechat(self, xml: bytes, *, safe_mode: bool = True, source: str = "wechat-service",
               crypto: WeChatCrypto | None = None) -> Any:
        crypto = crypto or WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID)
        query, body = crypto.push_request(xml, timestamp=str(int(time.time())), nonce="n0nce",
                                          openid="oUser1", safe_mode=safe_mode)
        return self.http.post(f"/v1/wechat/{source}", params=query, content=body,
                              headers={"Content-Type": "text/xml"})


def make_api(rate_limit_per_s: float | None = None, **settings: Any) -> Iterator[Api]:
    publisher = FakePublisher()
    config = IngestSettings(poll_forums=False, **settings)
    app = create_app(config, registry=registry(rate_limit_per_s=rate_limit_per_s), publisher=publisher)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield Api(http, publisher)


@pytest.fixture
def api() -> Iterator[Api]:
    yield from make_api(max_body_bytes=4_096, wechat_timeout_s=0.5, publish_timeout_s=0.5)


def post(external_id: str = "t-1", **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "text": "城关镇又停电了", "created_at": NOW, **fields}


def feedback(feedback_id: str = "fb-1", **fields: Any) -> dict[str, Any]:
    return {"feedback_id": feedback_id, "content": "电费怎么这么高", "created_at": NOW, **fields}


def text_xml(msg_id: int = 1001, content: str = "停电了，什么时候来电？") -> bytes:
    return text_message_xml(to_user="gh_account", from_user="oUser1", create_time=int(time.time()),
                            content=content, msg_id=msg_id)


# ---- POST /v1/posts --------------------------------------------------------------------


def test_post_is_published_with_the_source_defaults(api: Api) -> None:
    resp = api.posts(post())

    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 1, "duplicates": 0,
                           "post_ids": [make_post_id("partner", "t-1")]}
    [published] = api.publisher.published
    assert (published.source, published.channel, published.region) == (
        "partner", Channel.INTEGRATION, "城关镇")


def test_batch_and_redelivery(api: Api) -> None:
    assert api.posts({"posts": [post("a"), post("b"), post("a")]}).json()["accepted"] == 2
    again = api.posts({"posts": [post("a"), post("c")]}).json()

    assert (again["accepted"], again["duplicates"]) == (1, 1)
    assert [p.external_id for p in api.publisher.published] == ["a", "b", "c"]


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong" * 10, 401)])
def test_api_key_is_required(api: Api, key: str | None, status: int) -> None:
    resp = api.posts(post(), key=key)

    assert resp.status_code == status
    assert resp.headers["WWW-Authenticate"] == "ApiKey"
    assert api.publisher.published == []


def test_bad_bodies_get_precise_errors(api: Api) -> None:
    headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
    assert api.http.post("/v1/posts", content=b"{not json", headers=headers).status_code == 400
    assert api.http.post("/v1/posts", content=b"x=1", headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert api.http.post("/v1/posts", content=b"[" * 5_000, headers=headers).status_code == 413
    assert api.posts({"posts": [post(str(i)) for i in range(51)]}).status_code == 413


def test_a_leading_byte_order_mark_is_skipped(api: Api) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(post()).encode()
    resp = api.http.post("/v1/posts", content=body,
                         headers={"X-Api-Key": API_KEY, "Content-Type": "application/json"})

    assert resp.status_code == 202, resp.text
    assert [p.external_id for p in api.publisher.published] == ["t-1"]


def test_invalid_post_lists_the_fields(api: Api) -> None:
    resp = api.posts({"posts": [post(), post("t-2", created_at="2026-11-28 20:15", colour="red")]})

    assert resp.status_code == 422
    locations = [tuple(error["loc"]) for error in resp.json()["detail"]]
    assert ("posts", 1, "created_at") in locations and ("posts", 1, "colour") in locations
    assert api.publisher.published == []


def test_kafka_down_is_503_and_nothing_is_kept(api: Api) -> None:
    api.publisher.broker_down()
    resp = api.posts(post())

    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    api.publisher.broker_up()
    assert api.posts(post()).json()["accepted"] == 1  # not mistaken for a duplicate


def test_slow_kafka_is_503_within_the_publish_timeout(api: Api) -> None:
    api.publisher.delay_s = 2
    started = time.monotonic()

    assert api.posts(post()).status_code == 503
    assert time.monotonic() - started < 1.5


def test_rate_limit_is_429_with_retry_after() -> None:
    for api in make_api(rate_limit_per_s=0.01):
        statuses = [api.posts(post(str(i))).status_code for i in range(3)]

        assert statuses == [202, 202, 429]
        assert int(api.posts(post("x")).headers["Retry-After"]) >= 1


def test_unknown_errors_are_500_without_internals(api: Api) -> None:
    api.publisher.fail_with = RuntimeError("secret internals /etc/passwd")
    resp = api.posts(post(), **{"X-Request-Id": "req-42"})

    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error", "request_id": "req-42"}


def test_request_ids_are_echoed_or_made(api: Api) -> None:
    assert api.http.get("/healthz", headers={"X-Request-Id": "abc-1"}).headers["X-Request-Id"] == "abc-1"
    made = api.http.get("/healthz", headers={"X-Request-Id": "bad id\n"}).headers["X-Request-Id"]
    assert made != "bad id" and len(made) == 32


def test_refusals_are_logged_with_the_request_id(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="yuqing.http_edge"):
        api.posts(post(), key="wrong" * 10, **{"X-Request-Id": "req-7"})

    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.request_id == "req-7"  # type: ignore[attr-defined]
    assert "401" in record.getMessage()


# ---- POST /v1/app/{source_id} ----------------------------------------------------------


def test_signed_feedback_is_published(api: Api) -> None:
    resp = api.app(feedback(platform="android"))

    assert resp.status_code == 202, resp.text
    [published] = api.publisher.published
    assert (published.channel, published.external_id, published.unit) == (
        Channel.APP, "fb-1", "城关供电所")
    assert published.attributes["platform"] == "android"


def test_previous_secret_is_accepted_during_rotation(api: Api) -> None:
    assert api.app(feedback(), secret=APP_SECRET_PREVIOUS).status_code == 202


def test_feedback_with_a_byte_order_mark_is_verified_as_sent_and_read_without_it(api: Api) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(feedback()).encode()
    assert api.app(body).status_code == 202
    signed_without = signed_headers(APP_SECRET, body.removeprefix(b"\xef\xbb\xbf"),
                                    timestamp=int(time.time()), request_id="r-bom")
    resp = api.http.post("/v1/app/app-main", content=body, headers=signed_without)

    assert resp.status_code == 401
    assert [p.external_id for p in api.publisher.published] == ["fb-1"]


@pytest.mark.parametrize("tamper", ["secret", "stale", "headers"])
def test_bad_signatures_are_401(api: Api, tamper: str) -> None:
    if tamper == "headers":
        resp = api.http.post("/v1/app/app-main", json=feedback())
    else:
        resp = api.app(feedback(), secret="x" * 40 if tamper == "secret" else APP_SECRET,
                       timestamp=int(time.time()) - 3_600 if tamper == "stale" else None)

    assert resp.status_code == 401
    assert api.publisher.published == []


def test_replayed_request_id_is_409_and_a_resend_is_a_duplicate(api: Api) -> None:
    assert api.app(feedback(), request_id="r-1").status_code == 202
    assert api.app(feedback(), request_id="r-1").status_code == 409
    assert api.app(feedback(), request_id="r-2").json()["duplicates"] == 1


@pytest.mark.parametrize(("body", "status"), [(b"{oops", 400), (b"[1]", 422)])
def test_malformed_feedback_after_a_good_signature(api: Api, body: bytes, status: int) -> None:
    assert api.app(body, request_id="r-bad").status_code == status


def test_invalid_feedback_lists_fields_and_frees_the_request_id(api: Api) -> None:
    resp = api.app(feedback(user="13812345678"), request_id="r-1")

    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "user"]
    assert api.app(feedback(), request_id="r-1").status_code == 202


def test_feedback_field_errors_have_the_keys_of_post_errors(api: Api) -> None:
    app_errors = api.app(feedback(user="13812345678")).json()["detail"]
    post_errors = api.posts(post(created_at="2026-11-28 20:15")).json()["detail"]
    not_an_object = api.app(b"[1]", request_id="r-list").json()["detail"]

    assert {key for error in app_errors + not_an_object for key in error} == set(post_errors[0])
    assert (app_errors[0]["type"], not_an_object[0]["type"]) == ("value_error", "model_type")


def test_app_kafka_down_is_503_and_the_request_id_can_be_retried(api: Api) -> None:
    api.publisher.broker_down()
    assert api.app(feedback(), request_id="r-1").status_code == 503
    api.publisher.broker_up()
    assert api.app(feedback(), request_id="r-1").status_code == 202


@pytest.mark.parametrize(("source", "status"), [
    ("app-unknown", 404), ("wechat-service", 404), ("app-retired", 403)])
def test_unknown_wrong_and_disabled_sources(api: Api, source: str, status: int) -> None:
    assert api.app(feedback(), source=source).status_code == status


# ---- GET/POST /v1/wechat/{source_id} ---------------------------------------------------


@pytest.mark.parametrize("timestamp", ["¹", "１２", "1e3", "", "-5", "9" * 40])
def test_wechat_timestamps_that_are_not_ascii_digits_are_a_401(api: Api, timestamp: str) -> None:
    params = {"signature": "s", "timestamp": timestamp, "nonce": "n", "echostr": "e"}

    assert api.http.get("/v1/wechat/wechat-plain", params=params).status_code == 401
    resp = api.http.post("/v1/wechat/wechat-plain", params=params, content=b"<xml/>",
                         headers={"Content-Type": "text/xml"})
    assert resp.status_code == 401


def test_wechat_url_verification(api: Api) -> None:
    crypto = WeChatCrypto(WECHAT_TOKEN, None, WECHAT_APP_ID)
    query, _ = crypto.push_request(b"", timestamp=str(int(time.time())), nonce="abc", openid="o",
                                   safe_mode=False)
    params = {**query, "echostr": "echo-123"}

    ok = api.http.get("/v1/wechat/wechat-service", params=params)
    assert (ok.status_code, ok.text) == (200, "echo-123")
    assert api.http.get("/v1/wechat/wechat-service", params={**params, "nonce": "x"}).status_code == 401


@pytest.mark.parametrize("safe_mode", [True, False])
def test_wechat_message_is_published_and_acknowledged(api: Api, safe_mode: bool) -> None:
    source = "wechat-service" if safe_mode else "wechat-plain"
    resp = api.wechat(text_xml(), safe_mode=safe_mode, source=source)

    assert (resp.status_code, resp.text) == (200, "success")
    [published] = api.publisher.published
    assert (published.channel, published.external_id, published.text) == (
        Channel.WECHAT, "1001", "停电了，什么时候来电？")
    assert published.author is not None and "oUser1" not in published.author


def test_wechat_retry_is_published_once(api: Api) -> None:
    for _ in range(3):
        assert api.wechat(text_xml(msg_id=77)).text == "success"

    assert len(api.publisher.published) == 1


def test_wechat_events_are_acknowledged_not_published(api: Api) -> None:
    event = (f"<xml><ToUserName>gh_account</ToUserName><FromUserName>oUser1</FromUserName>"
             f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
             f"<Event>subscribe</Event></xml>").encode()

    assert api.wechat(event).text == "success"
    assert api.publisher.published == []


def test_wechat_kafka_down_or_slow_is_503_so_wechat_retries(api: Api) -> None:
    api.publisher.delay_s = 2
    assert api.wechat(text_xml(msg_id=5)).status_code == 503
    api.publisher.delay_s = 0
    assert api.wechat(text_xml(msg_id=5)).text == "success"


def test_wechat_refusals(api: Api) -> None:
    other_account = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, "wx0000000000000000")
    assert api.wechat(text_xml(), crypto=other_account).status_code == 403
    assert api.wechat(text_xml(), crypto=WeChatCrypto("othertoken", WECHAT_AES_KEY,
                                                      WECHAT_APP_ID)).status_code == 401
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>'
    assert api.wechat(bomb, safe_mode=False, source="wechat-plain").status_code == 400
    json_body = api.http.post("/v1/wechat/wechat-plain", params={"signature": "s", "timestamp": "1",
                              "nonce": "n"}, json={}).status_code
    assert json_body == 415
    assert api.publisher.published == []


def test_wechat_text_over_the_contracts_bound_is_cut_not_refused(api: Api) -> None:
    # WeChat drops a message refused with a 4xx once its retries are spent: it was a 422
    too_long = text_xml(content="a" * (MAX_TEXT_CHARS + 1))
    assert api.wechat(too_long, safe_mode=False, source="wechat-plain").text == "success"
    assert [len(post.text) for post in api.publisher.published] == [MAX_TEXT_CHARS]


# ---- metrics ------------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_per_channel(api: Api) -> None:
    before = {channel: sample("yuqing_ingest_posts_accepted_total", channel=channel)
              for channel in ("integration", "app", "wechat")}
    refused = sample("yuqing_ingest_requests_rejected_total", channel="app", status="401")

    api.posts(post("m-1"))
    api.app(feedback("m-1"))
    api.wechat(text_xml(msg_id=4242))
    api.app(feedback("m-2"), secret="x" * 40)

    for channel, count in before.items():
        assert sample("yuqing_ingest_posts_accepted_total", channel=channel) == count + 1
    assert sample("yuqing_ingest_requests_rejected_total", channel="app", status="401") == refused + 1
    assert "yuqing_ingest_request_seconds_bucket" in api.http.get("/metrics").text


# ---- the schema ------------------------------------------------------------------------


def test_openapi_documents_every_request_body(api: Api) -> None:
    paths = api.http.get("/openapi.json").json()["paths"]

    assert "posts" in json.dumps(paths["/v1/posts"]["post"]["requestBody"])
    assert "feedback_id" in json.dumps(paths["/v1/app/{source_id}"]["post"]["requestBody"])
    assert "text/xml" in paths["/v1/wechat/{source_id}"]["post"]["requestBody"]["content"]
