"""UTC offsets that RFC 3339 (and the contract) allow but Elasticsearch cannot read.

RFC 3339 writes an offset as ``±HH:MM`` with hours up to 23; Elasticsearch (java.time)
reads at most ``±18:00``. A post accepted with ``+23:59`` must still be indexed, and a
query time with such an offset must still be answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.search.api import create_app
from services.search.auth import hash_key, new_key
from services.search.bulk import build_actions, write_bulk
from services.search.es import ensure_templates, make_client
from services.search.settings import SearchSettings
from tests.search.factory import as_messages, make_post
from yuqing.contracts import Alert, EnrichedPost
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration
OFFSETS = [timedelta(hours=23, minutes=59), timedelta(hours=-23, minutes=-59),
           timedelta(hours=18, minutes=1), timedelta(hours=-19), timedelta(hours=8)]


@dataclass
class Api:
    http: TestClient
    es: Elasticsearch
    prefix: str
    key: str


@pytest.fixture
def api(es_settings: ElasticsearchSettings, tmp_path: Path) -> Iterator[Api]:
    key = new_key("admin")
    (tmp_path / "keys.toml").write_text(
        f'[[keys]]\nid = "admin"\nrole = "admin"\nsha256 = "{hash_key(key)}"\n', encoding="utf-8")
    settings = SearchSettings(es=es_settings, api_keys_path=tmp_path / "keys.toml",
                              jwt_secret=SecretStr("offset-test-secret-0123456789abcdef"),
                              rate_limit_per_minute=0)
    es = make_client(es_settings)
    ensure_templates(es, es_settings)
    with TestClient(create_app(settings, client=es), raise_server_exceptions=False) as http:
        yield Api(http, es, es_settings.index_prefix, key)


def test_a_post_with_any_rfc3339_offset_is_indexed_at_its_instant(api: Api) -> None:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    posts: list[EnrichedPost | Alert] = [
        make_post("城关镇停电了", external_id=f"offset-{i}", received_at=moment,
                  created_at=moment.astimezone(timezone(offset))) for i, offset in enumerate(OFFSETS)]
    actions, kept, rejected = build_actions(as_messages(posts), api.prefix)
    assert rejected == []
    assert write_bulk(api.es, actions, kept, max_retries=1).rejected == []
    api.es.indices.refresh(index=f"{api.prefix}-*", ignore_unavailable=True)

    for post in posts:
        assert isinstance(post, EnrichedPost)
        resp = api.http.get(f"/v1/posts/{post.post_id}", headers={"X-Api-Key": api.key})
        assert resp.status_code == 200, resp.text
        assert datetime.fromisoformat(resp.json()["created_at"]) == moment
    window = {"since": (moment - timedelta(minutes=1)).isoformat(),
              "until": (moment + timedelta(minutes=1)).isoformat()}
    found = api.http.get("/v1/posts/search", params=window, headers={"X-Api-Key": api.key})
    assert found.json()["total"] == len(OFFSETS)


@pytest.mark.parametrize("path", ["/v1/posts/search", "/v1/issues", "/v1/alerts", "/v1/actions"])
@pytest.mark.parametrize("param", ["since", "until"])
def test_query_times_with_any_rfc3339_offset_are_answered(api: Api, path: str, param: str) -> None:
    resp = api.http.get(path, params={param: "2026-12-01T00:00:00+23:59"},
                        headers={"X-Api-Key": api.key})
    assert resp.status_code == 200, resp.text
    resp = api.http.get(path, params={param: "2026-12-01T00:00:00-19:00"},
                        headers={"X-Api-Key": api.key})
    assert resp.status_code == 200, resp.text
