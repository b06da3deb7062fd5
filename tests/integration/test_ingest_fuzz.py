"""Fuzz the ingest API from its own OpenAPI schema (schemathesis): no input may cause a 5xx.

The live app runs on real Kafka. Requests are sent as generated, three in four of them
with valid credentials (API key, APP signature over the generated body, WeChat
signature over the generated query), so that the fuzzing reaches the parsers
behind the authentication.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core import NOT_SET
from schemathesis.generation import GenerationMode

from services.ingest.api import create_app
from services.ingest.app_webhook import signed_headers
from services.ingest.settings import IngestSettings
from services.ingest.wechat import compute_signature
from tests.ingest.live import serve
from tests.ingest.sources import API_KEY, APP_SECRET, WECHAT_TOKEN, registry
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION_AND_MODE = 25
FUZZ = settings(max_examples=EXAMPLES_PER_OPERATION_AND_MODE, deadline=None, database=None,
                derandomize=True, suppress_health_check=list(HealthCheck))
SOURCES = {"/v1/app/{source_id}": "app-main", "/v1/wechat/{source_id}": "wechat-plain"}


def encode_body(case: Any, fresh: bool) -> bytes | None:
    if case.body is NOT_SET:
        return None
    if isinstance(case.body, bytes):  # negative mode sends raw bytes too
        return case.body
    if case.media_type == "application/json":
        body = with_fresh_dates(case.body) if fresh else case.body
        return json.dumps(body, default=str).encode()
    return str(case.body).encode()


def with_fresh_dates(body: Any) -> Any:
    """Generated date-times lie anywhere in the calendar; the edge takes event times near
    arrival only, so well-formed ones are moved to now to let posts through to Kafka."""
    if isinstance(body, list):
        return [with_fresh_dates(item) for item in body]
    if not isinstance(body, dict):
        return body
    now = datetime.now(UTC).isoformat()
    return {key: now if key == "created_at" and isinstance(value, str) and len(value) > 18
            else with_fresh_dates(value) for key, value in body.items()}


def credentials(path: str, body: bytes | None, query: dict[str, Any]) -> dict[str, str]:
    """Valid credentials for the request (the query is signed in place for WeChat)."""
    if path == "/v1/posts":
        return {"X-Api-Key": API_KEY}
    if path.startswith("/v1/app/"):
        return signed_headers(APP_SECRET, body or b"", timestamp=int(time.time()),
                              request_id=uuid.uuid4().hex)
    if path.startswith("/v1/wechat/"):
        query["timestamp"] = str(int(time.time()))
        query["signature"] = compute_signature(WECHAT_TOKEN, str(query.get("timestamp", "")),
                                               str(query.get("nonce", "")))
    return {}


def send(http: httpx.Client, case: Any, with_credentials: bool) -> httpx.Response:
    body, query = encode_body(case, with_credentials), dict(case.query or {})
    try:
        headers = httpx.Headers({key: str(value) for key, value in (case.headers or {}).items()})
        if case.media_type and body is not None:
            headers.setdefault("Content-Type", case.media_type)
        if with_credentials:  # replaces generated values whatever their case
            for key, value in credentials(case.formatted_path, body, query).items():
                headers[key] = value
        return http.request(case.method, case.formatted_path, params=query, headers=headers,
                            content=body)
    except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
        reject()  # not sendable over HTTP at all: nothing for the server to answer
        raise


def fuzz(http: httpx.Client, operation: Any, mode: GenerationMode, seen: Counter[tuple[str, int]],
         ) -> None:
    path_parameters = {"source_id": SOURCES[operation.path]} if operation.path in SOURCES else None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @FUZZ
    @given(case=strategy, with_credentials=st.sampled_from([True, True, True, False]))
    def check(case: Any, with_credentials: bool) -> None:
        response = send(http, case, with_credentials)
        seen[(f"{case.method} {operation.path}", response.status_code)] += 1
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")

    try:
        check()
    except Unsatisfiable:
        # Nothing in the operation can be made invalid (e.g. GET /healthz takes no input).
        assert mode is GenerationMode.NEGATIVE, operation.path


def test_no_generated_request_gets_a_server_error(kafka_settings: KafkaSettings) -> None:
    settings = IngestSettings(kafka=kafka_settings, poll_forums=False, rate_limit_per_s=0)
    started = time.monotonic()
    with serve(create_app(settings, registry=registry())) as url, \
            httpx.Client(base_url=url, timeout=15) as http:
        schema = schemathesis.openapi.from_dict(http.get("/openapi.json").json())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/v1/posts", *SOURCES}
        seen: Counter[tuple[str, int]] = Counter()
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(http, operation, mode, seen)
    assert time.monotonic() - started < 60
    # The credentials let generated requests through to the parsers and into Kafka.
    assert seen[("POST /v1/posts", 202)] and seen[("POST /v1/app/{source_id}", 202)], seen
    assert seen[("GET /v1/wechat/{source_id}", 200)], seen
