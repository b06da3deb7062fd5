"""The integrators guide's curl examples, run as written against a live ingest service and real Kafka.

The guide's ``sh`` blocks are run by ``bash`` with its public host name swapped
for the test server's URL, the registry example of the guide (plus the APP
source the APP example calls), and the secrets in the variables the blocks read.
Only the example's date is moved to today, so that it stays inside the event-time
window whatever day the test runs. Each answer must be the documented answer's
shape, and the posts must be on ``posts.raw``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from doc_text import REPO_ROOT, code_blocks

from services.ingest.api import create_app
from services.ingest.registry import parse_registry
from services.ingest.settings import IngestSettings
from tests.ingest.live import read_posts, serve
from yuqing.contracts import Channel
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration

INTEGRATORS = REPO_ROOT / "docs" / "integrators.md"
DOC_HOST = "https://yuqing-ingest.intranet.example.com"
DOC_DATE = "2026-11-28T20:15:00+08:00"
APP_SOURCE = """
[[sources]]
id = "app-main"
channel = "app"
owner = "APP"
hmac_secret_env = "YUQING_SECRET_APP_MAIN"
"""
SECRETS = {"YUQING_API_KEY_CRM_95598": "k" * 40, "YUQING_SECRET_APP_MAIN": "s" * 40}


def doc_blocks(language: str) -> list[str]:
    return [b.text for b in code_blocks(INTEGRATORS) if b.language == language]


def documented_answer_keys() -> set[str]:
    (answer,) = [json.loads(t) for t in doc_blocks("json") if "accepted" in t]
    return set(answer)


def run_example(block: str, url: str) -> dict[str, object]:
    today = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0).isoformat()
    script = block.replace(DOC_HOST, url).replace(DOC_DATE, today)
    env = {**os.environ, **SECRETS, "INGEST_API_KEY": SECRETS["YUQING_API_KEY_CRM_95598"]}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                            text=True, timeout=60, check=False, env=env)
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")),
                    reason="the examples need curl and openssl")
def test_the_curl_examples_publish_their_posts(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    (registry_example,) = doc_blocks("toml")
    registry = parse_registry(registry_example + APP_SOURCE, SECRETS, origin="integrators.md")
    examples = [b for b in doc_blocks("sh") if b.lstrip().startswith(("curl", "SECRET="))]
    assert len(examples) == 2 and all(DOC_HOST in b for b in examples)
    settings = IngestSettings(kafka=kafka_settings, poll_forums=False, cursor_dir=tmp_path)

    with serve(create_app(settings, registry=registry)) as url:
        answers = [run_example(block, url) for block in examples]
        again = run_example(examples[0], url)  # a retry: the same post id, not published twice

    assert [set(a) for a in answers] == [documented_answer_keys()] * 2
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(1, 0), (1, 0)]
    assert (again["accepted"], again["duplicates"], again["post_ids"]) == (0, 1, answers[0]["post_ids"])
    posts = {p.source: p for p in read_posts(kafka_settings, at_least=2)}
    assert posts.keys() == {"crm-95598", "app-main"}
    partner, app = posts["crm-95598"], posts["app-main"]
    assert (partner.channel, partner.external_id, partner.region, partner.unit) == (
        Channel.INTEGRATION, "ticket-20261128-0042", "城关镇", "城关供电所")
    assert (app.channel, app.external_id, app.author) == (Channel.APP, "fb-20261128-000123", "u_7f3a9c21e0")
    assert re.fullmatch(r"[0-9a-f]{32}", partner.post_id)
    assert abs(partner.created_at - datetime.now(UTC)) < timedelta(minutes=5)
