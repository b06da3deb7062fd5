"""``POST /v1/posts`` exactly at its limits and one over, through the real app and Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.ingest.sources import API_KEY

pytestmark = pytest.mark.integration
HEADERS = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
BODY_LIMIT = 2_000_000  # IngestSettings.max_body_bytes
MAX_BATCH = 50  # the test registry's max_batch for the source "partner"


def _post(i: int) -> dict[str, Any]:
    return {"external_id": f"limit-{i}", "text": "城关镇又停电了",
            "created_at": datetime.now(UTC).isoformat()}


def _padded(size: int) -> bytes:
    """One post in a body of exactly ``size`` bytes (JSON whitespace before the closing brace)."""
    body = orjson.dumps({"posts": [_post(0)]})
    return body[:-1] + b" " * (size - len(body)) + body[-1:]


def test_a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_a_413(ingest: httpx.Client) -> None:
    at_limit = ingest.post("/v1/posts", content=_padded(BODY_LIMIT), headers=HEADERS)
    over = ingest.post("/v1/posts", content=_padded(BODY_LIMIT + 1), headers=HEADERS)

    assert at_limit.status_code == 202, at_limit.text
    assert over.status_code == 413 and over.json()["detail"] == f"body larger than {BODY_LIMIT} bytes"


def test_a_batch_of_exactly_max_batch_is_accepted_and_one_more_is_a_413(ingest: httpx.Client) -> None:
    full = ingest.post("/v1/posts", content=orjson.dumps({"posts": [_post(i) for i in range(MAX_BATCH)]}),
                       headers=HEADERS)
    over = ingest.post("/v1/posts", headers=HEADERS,
                       content=orjson.dumps({"posts": [{}] * (MAX_BATCH + 1)}))

    assert full.status_code == 202 and full.json()["accepted"] == MAX_BATCH
    assert over.status_code == 413, over.text
    assert over.json()["detail"] == f"at most {MAX_BATCH} posts per request (this one has {MAX_BATCH + 1})"
