"""Bodies an integrator may send by mistake get an answer that says what is wrong.

Compressed bodies, bodies in another encoding than UTF-8, and date-times that
RFC 3339 spells but the contract cannot hold are refused with a message naming the
cause, through the real app and the real Kafka.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from services.ingest.metrics import REGISTRY
from tests.ingest.live import read_posts
from tests.ingest.sources import API_KEY
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration
HEADERS = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}


def body(**fields: str) -> bytes:
    post = {"external_id": "enc-1", "text": "城关镇停电了", "created_at": datetime.now(UTC).isoformat()}
    return json.dumps({**post, **fields}, ensure_ascii=False).encode()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_refused_naming_its_encoding(ingest: httpx.Client, encoding: str) -> None:
    resp = ingest.post("/v1/posts", content=gzip.compress(body()),
                       headers={**HEADERS, "Content-Encoding": encoding})
    assert resp.status_code == 415, resp.text
    assert f"Content-Encoding {encoding}" in resp.json()["detail"]


def test_an_identity_content_encoding_is_accepted(ingest: httpx.Client) -> None:
    resp = ingest.post("/v1/posts", content=body(), headers={**HEADERS, "Content-Encoding": "identity"})
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("codec", ["utf-16", "gb18030", "latin-1"])
def test_a_body_not_in_utf8_is_refused_saying_so(ingest: httpx.Client, codec: str) -> None:
    text = body(text="café 停电" if codec != "latin-1" else "café").decode()
    resp = ingest.post("/v1/posts", content=text.encode(codec), headers=HEADERS)
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "not UTF-8" in detail and "byte" in detail and "surrogate" not in detail


@pytest.mark.parametrize("content_type", ["application/json; charset=gbk",
                                          'application/json;charset="GB2312"',
                                          "application/json; charset=latin-1"])
def test_json_declared_in_another_charset_is_refused_naming_it(ingest: httpx.Client,
                                                                content_type: str) -> None:
    resp = ingest.post("/v1/posts", content=body(), headers={**HEADERS, "Content-Type": content_type})
    assert resp.status_code == 415, resp.text
    charset = content_type.split("=")[1].strip('"').lower()
    assert f"charset {charset}" in resp.json()["detail"] and "UTF-8" in resp.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json; Charset=UTF8",
                                          "Application/JSON"])
def test_json_declared_as_utf8_is_accepted(ingest: httpx.Client, content_type: str) -> None:
    resp = ingest.post("/v1/posts", content=body(external_id=f"cs-{content_type[-4:]}"),
                       headers={**HEADERS, "Content-Type": content_type})
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("external_id", ["   ", "\t", "\u3000"])
def test_a_blank_external_id_is_refused(ingest: httpx.Client, external_id: str) -> None:
    resp = ingest.post("/v1/posts", json={**json.loads(body()), "external_id": external_id}, headers=HEADERS)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["external_id"] and "blank" in resp.json()["detail"][0]["msg"]


def test_an_attribute_key_with_a_control_character_is_refused(ingest: httpx.Client) -> None:
    post = json.loads(body())
    resp = ingest.post("/v1/posts", json={**post, "attributes": {"ok": 1, "line\nbreak": 2}}, headers=HEADERS)
    assert resp.status_code == 422, resp.text
    assert "control characters" in resp.json()["detail"][0]["msg"]
    fine = {**post, "external_id": "attr-ok", "attributes": {"工单 类型": "报修"}}
    assert ingest.post("/v1/posts", json=fine, headers=HEADERS).status_code == 202


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://x.example/a", "/t/12"])
def test_a_url_that_is_not_a_web_link_is_refused(ingest: httpx.Client, url: str) -> None:
    resp = ingest.post("/v1/posts", content=body(url=url), headers=HEADERS)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["url"]
    assert "http" in resp.json()["detail"][0]["msg"]


def test_a_web_link_is_accepted(ingest: httpx.Client) -> None:
    resp = ingest.post("/v1/posts", content=body(url="https://crm.example.internal/t/42"), headers=HEADERS)
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("sent", [
    # A region with a stray space would be a region of its own: out of the scope of the responders
    # of the real one, and counted apart in its alerts. A blank one is no region: the source's
    # default applies, as when the field is absent.
    {"ws-1": {"region": " 河口镇\u3000", "unit": "\t河口供电所 "}, "ws-2": {"region": "   ", "unit": ""}},
    # A zero-width space or byte order mark pasted along with a place name made a region of its
    # own, which no responder scoped to the real one saw; one of nothing but such characters kept
    # the post out of the source's default region.
    {"zw-1": {"region": "\ufeff河口\u200b镇\u200b", "unit": "\u202a河口供电所\u202c"},
     "zw-2": {"region": "\u200b", "unit": "\u2060 "}},
], ids=["whitespace", "invisible"])
def test_region_and_unit_are_published_as_their_plain_names(
        ingest: httpx.Client, kafka_settings: KafkaSettings, sent: dict[str, dict[str, str]]) -> None:
    for external_id, fields in sent.items():
        resp = ingest.post("/v1/posts", content=body(external_id=external_id, **fields),
                           headers=HEADERS)
        assert resp.status_code == 202, resp.text
    published = {p.external_id: (p.region, p.unit) for p in read_posts(kafka_settings, at_least=2)}
    first, blank = sent
    assert published == {first: ("河口镇", "河口供电所"), blank: ("城关镇", None)}


@pytest.mark.parametrize("literal", ["12345678901234567890123", "-9223372036854775809", "1e30"])
def test_an_attribute_number_too_large_to_keep_exactly_is_refused(ingest: httpx.Client,
                                                                   literal: str) -> None:
    """JSON parsers read such a number as a float: 12345678901234567890123 would be published
    as 1.2345678901234568e+22, digits lost without a word."""
    raw = body()[:-1] + b', "attributes": {"order_no": ' + literal.encode() + b"}}"
    resp = ingest.post("/v1/posts", content=raw, headers=HEADERS)
    assert resp.status_code == 422, resp.text
    error = resp.json()["detail"][0]
    assert error["loc"][:2] == ["attributes", "order_no"] and "string" in error["msg"], error


def test_attribute_numbers_within_64_bits_are_published_exactly(
        ingest: httpx.Client, kafka_settings: KafkaSettings) -> None:
    raw = body(external_id="num-1")[:-1] + (b', "attributes": {"a": 9223372036854775807, '
                                             b'"b": -9223372036854775808, "c": 0.1, "d": 1e18}}')
    assert ingest.post("/v1/posts", content=raw, headers=HEADERS).status_code == 202
    [post] = read_posts(kafka_settings, at_least=1)
    assert post.attributes == {"a": 2**63 - 1, "b": -(2**63), "c": 0.1, "d": 1e18}


def test_a_client_that_leaves_mid_body_is_not_a_server_error(
        ingest: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    """A body shorter than its Content-Length, then the connection closed: nobody is left to
    answer, and it is the client's doing, so no 500 is counted and no traceback logged."""
    def server_errors() -> float:
        labels = {"channel": "integration", "status": "500"}
        return REGISTRY.get_sample_value("yuqing_ingest_requests_rejected_total", labels) or 0.0

    before = server_errors()
    host, port = str(ingest.base_url.host), int(ingest.base_url.port or 80)
    head = (f"POST /v1/posts HTTP/1.1\r\nHost: {host}\r\nX-Api-Key: {API_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n").encode()
    with socket.create_connection((host, port)) as conn:
        conn.sendall(head + body()[:20])
    time.sleep(1.0)
    assert ingest.get("/healthz").status_code == 200
    assert server_errors() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
