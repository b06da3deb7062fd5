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


def _history(env: Env, issue_id: str, key: str = "responder") -> list[dict[str, object]]:
    resp = env.get(f"/v1/issues/{issue_id}/actions", key=key)
    assert resp.status_code == 200, resp.text
    actions: list[dict[str, object]] = resp.json()["actions"]
    return actions


def test_a_split_is_in_the_history_of_the_new_issue_too_with_the_same_correction(env: Env) -> None:
    city = _issue_of(env, "城关镇")
    post_id = env.get(f"/v1/issues/{city}").json()["members"][0]["post_id"]

    split = env.call("POST", f"/v1/issues/{city}/posts/{post_id}/split")
    assert split.status_code == 201, split.text
    new = split.json()["target_issue_id"]

    [source] = _history(env, city)
    [arrival] = _history(env, new)
    assert arrival["action"] == "split" and arrival["responder"] == "responder"
    assert arrival["note"] == f"post {post_id} split out into this issue from {city}"
    assert arrival["correction_id"] and arrival["correction_id"] == source["correction_id"]
    assert arrival["from_state"] == arrival["to_state"] == "open"


def test_a_move_is_in_the_history_of_the_issue_the_post_joined(env: Env) -> None:
    hekou, city = _issue_of(env, "河口镇"), _issue_of(env, "城关镇")
    env.call("POST", f"/v1/issues/{hekou}/actions", json={"action": "acknowledge"})
    post_id = env.get(f"/v1/issues/{city}").json()["members"][0]["post_id"]

    moved = env.call("POST", f"/v1/issues/{city}/posts/{post_id}/move",
                     json={"to": hekou, "note": "同一条线路"})
    assert moved.status_code == 201, moved.text

    [source] = _history(env, city)
    arrival = next(a for a in _history(env, hekou) if a["action"] == "move")
    assert arrival["note"] == f"post {post_id} moved here from {city}: 同一条线路"
    assert arrival["correction_id"] == source["correction_id"] and arrival["responder"] == "responder"
    assert arrival["from_state"] == arrival["to_state"] == "acknowledged"


def test_a_township_whose_post_joined_an_issue_later_sees_what_was_done_before(env: Env) -> None:
    hekou, city = _issue_of(env, "河口镇"), _issue_of(env, "城关镇")
    acked = env.call("POST", f"/v1/issues/{city}/actions", json={"action": "acknowledge", "note": "已派人"})
    assert acked.status_code == 201, acked.text
    assert env.get(f"/v1/issues/{city}/actions", key="hekou").status_code == 404
    assert acked.json()["action_id"] not in [a["action_id"] for a in _all_actions(env, "hekou")]

    post_id = env.get(f"/v1/issues/{hekou}").json()["members"][0]["post_id"]
    moved = env.call("POST", f"/v1/issues/{hekou}/posts/{post_id}/move", json={"to": city})
    assert moved.status_code == 201, moved.text

    history = [a["action_id"] for a in _history(env, city, key="hekou")]
    assert acked.json()["action_id"] in history
    assert acked.json()["action_id"] in [a["action_id"] for a in _all_actions(env, "hekou")]
    assert [a["action_id"] for a in env.get(f"/v1/issues/{city}", key="hekou").json()["actions"]] == history
    # the unit-scoped key sees no post of the issue: neither the issue nor its history
    assert env.get(f"/v1/issues/{city}/actions", key="shimen-unit").status_code == 404
    assert _all_actions(env, "shimen-unit") == []


def test_the_history_of_an_issue_merged_into_a_township_s_issue_follows_the_merge(env: Env) -> None:
    hekou, city = _issue_of(env, "河口镇"), _issue_of(env, "城关镇")
    acked = env.call("POST", f"/v1/issues/{city}/actions", json={"action": "acknowledge"}).json()

    merged = env.call("POST", f"/v1/issues/{city}/merge", json={"into": hekou})
    assert merged.status_code == 201, merged.text

    assert acked["action_id"] in [a["action_id"] for a in _all_actions(env, "hekou")]


def _all_actions(env: Env, key: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    cursor = None
    while True:  # a page at a time: each page is full, its cursor goes on
        page = env.get("/v1/actions", key=key, limit=1, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        found += page.json()["actions"]
        if not (cursor := page.json()["next_cursor"]):
            return found
