"""What a new partner system meets following docs/integrators.md: the answers it is promised."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.ingest.api import create_app
from services.ingest.app_webhook import signed_headers
from services.ingest.registry import InvalidApiKeyError, SourceDisabledError, parse_registry
from services.ingest.settings import IngestSettings
from tests.ingest.fakes import FakePublisher
from tests.ingest.sources import APP_SECRET, registry

KEY = "county-callcentre-key-0123456789abcdef"
RETIRED_KEY = "retired-partner-key-0123456789abcdef"
REGISTRY = """
[[sources]]
id = "county-callcentre"
channel = "integration"
owner = "县客服中心"
api_key_env = "T_COUNTY_KEY"

[[sources]]
id = "retired-partner"
channel = "integration"
owner = "县客服中心"
api_key_env = "T_RETIRED_KEY"
enabled = false
"""
ENV = {"T_COUNTY_KEY": KEY, "T_RETIRED_KEY": RETIRED_KEY}


@pytest.fixture
def http() -> Iterator[tuple[TestClient, FakePublisher]]:
    publisher = FakePublisher()
    app = create_app(IngestSettings(poll_forums=False), registry=parse_registry(REGISTRY, ENV),
                     publisher=publisher)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, publisher


def post(**fields: Any) -> dict[str, Any]:
    return {"external_id": "ticket-1", "text": "幸福小区停电了", "created_at": datetime.now(UTC).isoformat(),
            **fields}


def test_the_key_of_a_disabled_source_is_told_so_not_that_it_is_wrong() -> None:
    registry = parse_registry(REGISTRY, ENV)

    with pytest.raises(SourceDisabledError, match="retired-partner"):
        registry.authenticate_api_key(RETIRED_KEY)
    with pytest.raises(InvalidApiKeyError):
        registry.authenticate_api_key(RETIRED_KEY + "x")
    assert registry.authenticate_api_key(KEY).id == "county-callcentre"


def test_a_disabled_source_needs_no_key() -> None:
    registry = parse_registry(REGISTRY, {"T_COUNTY_KEY": KEY})

    with pytest.raises(InvalidApiKeyError):
        registry.authenticate_api_key(RETIRED_KEY)


def test_a_disabled_source_is_answered_403(http: tuple[TestClient, FakePublisher]) -> None:
    client, publisher = http

    resp = client.post("/v1/posts", json=post(), headers={"X-Api-Key": RETIRED_KEY})

    assert resp.status_code == 403, resp.text
    assert "retired-partner" in resp.json()["detail"] and "disabled" in resp.json()["detail"]
    assert publisher.published == []


@pytest.mark.parametrize(("value", "says"), [
    ({"street": "幸福路"}, "string, number, boolean or null"),
    (["a", "b"], "string, number, boolean or null"),
    ("电" * 2_001, "at most 2,000 characters (this one has 2,001)"),
])
def test_an_attribute_value_that_does_not_fit_is_one_error_saying_why(
        http: tuple[TestClient, FakePublisher], value: object, says: str) -> None:
    client, publisher = http

    resp = client.post("/v1/posts", json=post(attributes={"address": value}), headers={"X-Api-Key": KEY})

    assert resp.status_code == 422, resp.text
    [error] = resp.json()["detail"]
    assert error["loc"] == ["attributes", "address"]
    assert says in error["msg"]
    assert publisher.published == []


@pytest.mark.parametrize("field", ["schema_version", "post_id", "source", "channel", "received_at"])
def test_a_field_yuqing_sets_is_named_as_such(http: tuple[TestClient, FakePublisher], field: str) -> None:
    client, publisher = http

    resp = client.post("/v1/posts", json={"posts": [post(**{field: "v1", "colour": "red"})]},
                       headers={"X-Api-Key": KEY})

    assert resp.status_code == 422, resp.text
    errors = {tuple(error["loc"]): error["msg"] for error in resp.json()["detail"]}
    assert "set by Yuqing" in errors[("posts", 0, field)] and "leave it out" in errors[("posts", 0, field)]
    assert errors[("posts", 0, "colour")] == "Extra inputs are not permitted"
    assert publisher.published == []


def test_a_post_out_of_the_window_is_named_where_the_sender_wrote_it(
        http: tuple[TestClient, FakePublisher]) -> None:
    client, publisher = http
    stale = "2020-01-01T08:00:00+08:00"

    single = client.post("/v1/posts", json=post(created_at=stale), headers={"X-Api-Key": KEY})
    batch = client.post("/v1/posts", json={"posts": [post(), post(external_id="t-2", created_at=stale)]},
                        headers={"X-Api-Key": KEY})

    assert (single.status_code, batch.status_code) == (422, 422)
    assert [(e["loc"], e["type"]) for e in single.json()["detail"]] == [(["created_at"], "out_of_window")]
    assert [(e["loc"], e["type"]) for e in batch.json()["detail"]] == [(["posts", 1, "created_at"],
                                                                      "out_of_window")]
    assert publisher.published == []


def test_an_app_feedback_out_of_the_window_is_named_by_its_own_field() -> None:
    publisher = FakePublisher()
    app = create_app(IngestSettings(poll_forums=False), registry=registry(), publisher=publisher)
    body = json.dumps({"feedback_id": "fb-1", "content": "电费", "created_at": "2020-01-01T08:00:00+08:00"})
    headers = signed_headers(APP_SECRET, body.encode(), timestamp=int(time.time()), request_id="r-1")
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/v1/app/app-main", content=body, headers=headers)

    assert resp.status_code == 422, resp.text
    assert [error["loc"] for error in resp.json()["detail"]] == [["body", "created_at"]]
    assert publisher.published == []


@pytest.mark.parametrize(("body", "loc", "says"), [
    ([{"external_id": "a"}], [], '{"posts": [...]}'),
    ("ticket-1", [], "must be a post object"),
    ({"posts": [post(), "ticket-2"]}, ["posts", 1], "must be a post object"),
])
def test_a_body_of_the_wrong_shape_says_what_to_send(http: tuple[TestClient, FakePublisher], body: object,
                                                     loc: list[object], says: str) -> None:
    client, publisher = http

    resp = client.post("/v1/posts", json=body, headers={"X-Api-Key": KEY})

    assert resp.status_code == 422, resp.text
    [error] = resp.json()["detail"]
    assert error["loc"] == loc and says in error["msg"] and "PostIn" not in error["msg"]
    assert publisher.published == []
