"""The responders' API against the real Elasticsearch: corrections, issue records and pages
probed with inputs the endpoint tests do not send (an adversarial probe, second round)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.integration import test_search_api as endpoints
from tests.integration.test_search_api import Env
from tests.search.factory import BASE_TIME, make_post

pytestmark = pytest.mark.integration
env = endpoints.env  # the endpoint tests' fixture: their keys, corpus and alerts
SINCE = (BASE_TIME - timedelta(days=1)).isoformat()
GROWTH = ("size", "last_hour", "before", "negative_share", "priority")


def test_an_issue_read_alone_has_the_priority_and_growth_the_list_gives_it(env: Env) -> None:
    now = datetime.now(UTC)
    env.index([make_post("柳塘镇东街村刚刚停电了", external_id=f"now-{i}", region="柳塘镇",
                         created_at=now - timedelta(minutes=50 - 30 * i), received_at=now)
               for i in range(2)])
    listed = {i["issue_id"]: i for i in env.get("/v1/issues", since=SINCE).json()["issues"]}
    assert any(i["negative_share"] > 0 for i in listed.values())
    assert any(i["last_hour"] > 0 for i in listed.values())

    for issue_id, summary in listed.items():
        alone = env.get(f"/v1/issues/{issue_id}").json()
        assert {k: alone[k] for k in GROWTH} == {k: summary[k] for k in GROWTH}, issue_id


def _edited(cursor: str, after: list[object]) -> str:
    data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return base64.urlsafe_b64encode(orjson.dumps({**data, "a": after})).rstrip(b"=").decode()


@pytest.mark.parametrize(("path", "params"), [("/v1/actions", {}), ("/v1/alerts", {}),
                                              ("/v1/posts/search", {"sort": "time"})])
def test_a_cursor_with_edited_sort_values_is_malformed_on_every_paged_list(
        env: Env, path: str, params: dict[str, str]) -> None:
    for issue in env.get("/v1/issues", since=SINCE).json()["issues"][:2]:
        env.call("POST", f"/v1/issues/{issue['issue_id']}/actions", json={"action": "acknowledge"})
    cursor = env.get(path, limit=1, size=1, **params).json()["next_cursor"]
    assert cursor

    resp = env.get(path, limit=1, size=1, cursor=_edited(cursor, ["abc", "x"]), **params)

    assert resp.status_code == 400 and resp.json()["detail"] == "malformed cursor", resp.text
