"""UTC offsets that RFC 3339 (and the contract) allow but Elasticsearch cannot read.

RFC 3339 writes an offset as ``±HH:MM`` with hours up to 23; Elasticsearch (java.time)
reads at most ``±18:00``. A post accepted with ``+23:59`` must still be indexed, and a
query time with such an offset must still be answered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.search.bulk import build_actions, write_bulk
from tests.integration.conftest import AdminSearch
from tests.search.factory import as_messages, make_post
from yuqing.contracts import Alert, EnrichedPost

pytestmark = pytest.mark.integration
OFFSETS = [timedelta(hours=23, minutes=59), timedelta(hours=-23, minutes=-59),
           timedelta(hours=18, minutes=1), timedelta(hours=-19), timedelta(hours=8)]


@pytest.fixture
def api(admin_search: AdminSearch) -> AdminSearch:
    return admin_search


def test_a_post_with_any_rfc3339_offset_is_indexed_at_its_instant(api: AdminSearch) -> None:
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
def test_query_times_with_any_rfc3339_offset_are_answered(api: AdminSearch, path: str, param: str) -> None:
    resp = api.http.get(path, params={param: "2026-12-01T00:00:00+23:59"},
                        headers={"X-Api-Key": api.key})
    assert resp.status_code == 200, resp.text
    resp = api.http.get(path, params={param: "2026-12-01T00:00:00-19:00"},
                        headers={"X-Api-Key": api.key})
    assert resp.status_code == 200, resp.text
