"""APP feedback whose optional fields came blank from a form reaches the real posts.raw."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.ingest.app_webhook import signed_headers
from tests.ingest.live import read_posts
from tests.ingest.sources import APP_SECRET
from tests.integration.test_ingest_channels import ingest
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_blank_optional_fields_take_the_sources_defaults(kafka_settings: KafkaSettings,
                                                         tmp_path: Path) -> None:
    body = json.dumps({"feedback_id": "fb-blank", "content": "停电一上午了", "region": "",
                       "unit": " ", "category": "", "user": "", "platform": "",
                       "created_at": datetime.now(UTC).isoformat()}, ensure_ascii=False).encode()
    headers = signed_headers(APP_SECRET, body, timestamp=int(time.time()), request_id="req-blank")

    with ingest(kafka_settings, tmp_path) as url:
        answer = httpx.post(f"{url}/v1/app/app-main", content=body, headers=headers, timeout=10)

    assert answer.status_code == 202, answer.text
    [post] = read_posts(kafka_settings, at_least=1)
    assert (post.external_id, post.text, post.region, post.unit, post.author) == (
        "fb-blank", "停电一上午了", None, "城关供电所", None)
    assert post.attributes == {"attachment_count": 0}
