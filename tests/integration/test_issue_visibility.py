"""What hangs off an issue, read by the issue's current posts: the surge alert of an issue (a
``cluster`` alert, keyed by issue id, no region) and the history of its corrections and actions,
seen by a township's responder who sees the issue, against the real Elasticsearch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration import test_search_api as endpoints
from tests.integration.test_search_api import Env
from tests.search.factory import BASE_TIME, make_alert
from yuqing.contracts import Alert, AlertExplanation, AlertKey, AlertState, Severity

pytestmark = pytest.mark.integration
env = endpoints.env  # the endpoint tests' fixture: keys (hekou: 河口镇), corpus and alerts
SINCE = (BASE_TIME - timedelta(days=1)).isoformat()


def _cluster_alert(alert_id: str, issue_id: str, minutes: int = 0) -> Alert:
    at = BASE_TIME + timedelta(minutes=minutes)
    return Alert(alert_id=alert_id, key=AlertKey(family="cluster", cluster=issue_id),
                 state=AlertState.FIRING, severity=Severity.WARNING, score=0.8,
                 window_start=at - timedelta(minutes=30), window_end=at + timedelta(minutes=30),
                 observed=3, expected=0.5, sample_post_ids=[],
                 explanation=AlertExplanation(summary="issue surge"), emitted_at=at)


def _issue_of(env: Env, region: str) -> str:
    issues = env.get("/v1/issues", since=SINCE).json()["issues"]
    return next(i["issue_id"] for i in issues if set(i["regions"]) == {region})


def _listed(env: Env, key: str) -> list[str]:
    found, cursor = [], None
    while True:  # a page at a time: the scope is applied in the query, so every page is full
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = env.get("/v1/alerts", key=key, **params)
        assert page.status_code == 200, page.text
        found += [a["alert_id"] for a in page.json()["alerts"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return found


def test_a_township_responder_sees_the_surge_alert_of_its_issue_and_no_other(env: Env) -> None:
    hekou, city = _issue_of(env, "河口镇"), _issue_of(env, "城关镇")
    env.index([_cluster_alert("cluster-hekou-01", hekou, 1), _cluster_alert("cluster-city-01", city, 2),
               make_alert("alert-city-02", region="城关镇")])

    assert env.get("/v1/alerts/cluster-hekou-01", key="hekou").status_code == 200
    assert env.get("/v1/alerts/cluster-city-01", key="hekou").status_code == 404
    assert sorted(_listed(env, "hekou")) == ["alert-hekou-01", "cluster-hekou-01"]
    # a unit-scoped key sees no region's alert, and the alert of an issue only where it sees a post
    assert _listed(env, "shimen-unit") == []
    assert len(_listed(env, "viewer")) == 5


def test_the_alert_of_an_issue_merged_into_a_township_s_issue_follows_the_merge(env: Env) -> None:
    hekou, city = _issue_of(env, "河口镇"), _issue_of(env, "城关镇")
    env.index([_cluster_alert("cluster-city-01", city)])
    assert env.get("/v1/alerts/cluster-city-01", key="hekou").status_code == 404

    merged = env.call("POST", f"/v1/issues/{city}/merge", json={"into": hekou})
    assert merged.status_code == 201, merged.text

    assert env.get("/v1/alerts/cluster-city-01", key="hekou").status_code == 200
    assert "cluster-city-01" in _listed(env, "hekou")
