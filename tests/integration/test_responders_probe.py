"""The responders' API against the real Elasticsearch: corrections, issue records and pages
probed with inputs the endpoint tests do not send (an adversarial probe, second round)."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from services.search import issues
from services.search.issue_live import LiveIssues
from services.search.mappings import small_index
from services.search.metrics import API_REGISTRY as REGISTRY
from tests.integration import test_search_api as endpoints
from tests.integration.test_search_api import Env
from tests.search.factory import BASE_TIME, make_alert, make_post
from yuqing.contracts import AlertKey, Severity, Topic

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
    cursor = env.get(path, limit=1, **params).json()["next_cursor"]
    assert cursor

    resp = env.get(path, limit=1, cursor=_edited(cursor, ["abc", "x"]), **params)

    assert resp.status_code == 400 and resp.json()["detail"] == "malformed cursor", resp.text


def _lone_post(env: Env) -> tuple[str, str]:
    issue = next(i for i in env.get("/v1/issues", since=SINCE).json()["issues"] if i["size"] == 1)
    return issue["issue_id"], issue["representative"]["post_id"]


def test_splitting_the_only_post_of_an_issue_is_a_409_and_records_nothing(env: Env) -> None:
    issue_id, post_id = _lone_post(env)

    resp = env.call("POST", f"/v1/issues/{issue_id}/posts/{post_id}/split")

    assert resp.status_code == 409 and "only post" in resp.json()["detail"], resp.text
    assert env.get(f"/v1/posts/{post_id}").json()["issue_id"] == issue_id
    assert env.get(f"/v1/issues/{issue_id}/actions").json()["actions"] == []


def test_a_split_post_cannot_be_split_again_into_the_issue_it_is_in(env: Env) -> None:
    issue = next(i for i in env.get("/v1/issues", since=SINCE).json()["issues"] if i["size"] > 2)
    post_id = issue["representative"]["post_id"]
    split = env.call("POST", f"/v1/issues/{issue['issue_id']}/posts/{post_id}/split")
    assert split.status_code == 201, split.text
    alone = split.json()["target_issue_id"]

    again = env.call("POST", f"/v1/issues/{alone}/posts/{post_id}/split")

    assert again.status_code == 409 and "split out into" in again.json()["detail"], again.text
    # the split that made it, and nothing of the refused one
    history = env.get(f"/v1/issues/{alone}/actions").json()["actions"]
    assert [(a["action"], a["issue_id"]) for a in history] == [("split", alone)]


def test_a_unit_scoped_responder_finds_its_correction_in_the_history(env: Env) -> None:
    created = env.call("POST", "/v1/admin/keys", "admin",
                       json={"key_id": "shimen-unit-desk", "role": "responder", "units": ["石门供电所"]})
    assert created.status_code == 201, created.text
    unit_key = {"X-Api-Key": created.json()["key"]}
    env.index([make_post("石门镇的电费单这个月怎么没寄到", external_id="shimen-bill", topic=Topic.BILLING,
                         region="石门镇", unit="石门供电所", created_at=BASE_TIME + timedelta(days=2))])
    mine = env.api.get("/v1/issues", params={"since": SINCE}, headers=unit_key).json()["issues"]
    assert len(mine) == 2
    gone, stays = (i["issue_id"] for i in mine)

    merged = env.api.post(f"/v1/issues/{gone}/merge", json={"into": stays}, headers=unit_key)

    assert merged.status_code == 201, merged.text
    history = env.api.get(f"/v1/issues/{stays}/actions", headers=unit_key).json()["actions"]
    assert [(a["action"], a["responder"]) for a in history] == [("merge", "shimen-unit-desk")]
    listed = env.api.get("/v1/actions", headers=unit_key).json()["actions"]
    assert [a["action"] for a in listed] == ["merge"]


@pytest.mark.parametrize("order_by", ["priority", "size", "last_seen"])
def test_the_issue_list_pages_through_every_issue_with_a_cursor(env: Env, order_by: str) -> None:
    env.index([make_post(f"{town}昨晚停电了", external_id=f"page-{town}", region=town, topic=topic,
                         created_at=BASE_TIME + timedelta(hours=5 + i))
               for i, (town, topic) in enumerate([("石门镇", Topic.OUTAGE), ("柳塘镇", Topic.SAFETY),
                                                  ("青山乡", Topic.SERVICE), ("河口镇", Topic.POLICY)])])
    every = env.get("/v1/issues", since=SINCE, order_by=order_by, limit=100).json()
    assert every["next_cursor"] is None and len(every["issues"]) == every["total_issues"] == 9

    pages, cursor = [], None
    while True:
        page = env.get("/v1/issues", since=SINCE, order_by=order_by, limit=2,
                       **({"cursor": cursor} if cursor else {})).json()
        pages.append([i["issue_id"] for i in page["issues"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    assert [i for p in pages for i in p] == [i["issue_id"] for i in every["issues"]]
    first = env.get("/v1/issues", since=SINCE, order_by=order_by, limit=2).json()["next_cursor"]
    other = env.get("/v1/issues", since=SINCE, order_by=order_by, limit=2, min_size=2, cursor=first)
    assert other.status_code == 400 and "another query" in other.json()["detail"]


def _two_issues_of_one_town(env: Env) -> tuple[str, str]:
    issues = env.get("/v1/issues", since=SINCE).json()["issues"]
    first, second = [i["issue_id"] for i in issues if set(i["regions"]) == {"城关镇"}][:2]
    return first, second


def test_opposite_merges_at_once_merge_once_and_the_grouping_agrees_with_the_index(env: Env) -> None:
    a, b = _two_issues_of_one_town(env)
    posts = {p for p, issue in _issue_of_posts(env).items() if issue in (a, b)}
    statuses: dict[str, int] = {}
    start = threading.Barrier(2)

    def merge(source: str, target: str) -> None:
        start.wait()
        statuses[source] = env.call("POST", f"/v1/issues/{source}/merge", json={"into": target}).status_code

    threads = [threading.Thread(target=merge, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses.values()) in ([201, 404], [201, 409]), statuses
    survivors = {issue for p, issue in _issue_of_posts(env).items() if p in posts}
    assert len(survivors) == 1
    live = LiveIssues()
    live.warm(env.es, env.prefix)
    assert {live.grouper.resolve(a), live.grouper.resolve(b)} == survivors


def _hold_correction_lock(env: Env, issue_id: str) -> tuple[str, dict[str, str]]:
    """A correction of the issue in progress elsewhere: its lock held now, by someone else; the
    index of the lock and the lock."""
    states = small_index(env.prefix, "issue-states")
    held = {"issue_id": issue_id, "state": "correcting", "responder": "someone",
            "updated_at": datetime.now(UTC).isoformat()}
    env.es.index(index=states, id=f"lock:{issue_id}", document=held, refresh=True)
    return states, held


def test_a_correction_in_progress_makes_another_of_the_same_issue_a_409(env: Env) -> None:
    a, b = _two_issues_of_one_town(env)
    states, held = _hold_correction_lock(env, a)

    busy = env.call("POST", f"/v1/issues/{a}/merge", json={"into": b})

    assert busy.status_code == 409 and "in progress" in busy.json()["detail"], busy.text
    stale = {**held, "updated_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}
    env.es.index(index=states, id=f"lock:{a}", document=stale, refresh=True)
    assert env.call("POST", f"/v1/issues/{a}/merge", json={"into": b}).status_code == 201
    assert env.es.get(index=states, id=f"lock:{a}", ignore=404)["found"] is False


def _issue_of_posts(env: Env) -> dict[str, str]:
    env.es.indices.refresh(index=f"{env.prefix}-*")
    hits = env.es.search(index=f"{env.prefix}-posts", body={"size": 1000})["hits"]["hits"]
    return {h["_id"]: h["_source"]["issue_id"] for h in hits}


@pytest.mark.parametrize("scope", ["regions", "units"])
def test_a_key_scoped_to_an_empty_list_is_refused_naming_the_field(env: Env, scope: str) -> None:
    resp = env.call("POST", "/v1/admin/keys", "admin", json={"key_id": "empty-scope", "role": "viewer",
                                                             scope: []})

    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", scope]
    assert env.get("/v1/admin/keys", key="admin").json() == []


@pytest.mark.parametrize("scope", ["regions", "units"])
def test_a_key_scoped_to_a_blank_value_is_refused_naming_it(env: Env, scope: str) -> None:
    resp = env.call("POST", "/v1/admin/keys", "admin", json={"key_id": "blank-scope", "role": "viewer",
                                                             scope: ["河口镇", "\u3000 "]})

    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", scope, 1]
    assert env.get("/v1/admin/keys", key="admin").json() == []


def test_the_issue_total_counts_the_issues_the_state_and_size_filters_keep(env: Env) -> None:
    listed = env.get("/v1/issues", since=SINCE, limit=100).json()
    assert listed["total_issues"] == len(listed["issues"]) >= 3
    first = listed["issues"][0]["issue_id"]
    assert env.call("POST", f"/v1/issues/{first}/actions", json={"action": "acknowledge"}).status_code == 201

    for params, expected in (
            ({"state": "acknowledged"}, [first]),
            ({"state": "open"}, [i["issue_id"] for i in listed["issues"] if i["issue_id"] != first]),
            ({"min_size": 2}, [i["issue_id"] for i in listed["issues"] if i["size"] >= 2])):
        page = env.get("/v1/issues", since=SINCE, limit=100, **params).json()
        assert sorted(i["issue_id"] for i in page["issues"]) == sorted(expected), params
        assert page["total_issues"] == len(expected), params


def test_the_history_of_an_issue_outside_the_scope_or_of_none_is_a_404(env: Env) -> None:
    # it answered 200 with an empty history, as for an issue nobody has acted on yet
    issues = env.get("/v1/issues", since=SINCE, limit=100).json()["issues"]
    outside = next(i["issue_id"] for i in issues if "河口镇" not in i["regions"])
    quiet = next(i["issue_id"] for i in issues if "河口镇" in i["regions"])

    assert env.get(f"/v1/issues/{outside}/actions", key="hekou").status_code == 404
    assert env.get("/v1/issues/outage-0000000000000000/actions").status_code == 404
    assert env.get(f"/v1/issues/{quiet}/actions", key="hekou").status_code == 200  # acted on or not
    assert env.get(f"/v1/issues/{outside}/actions").status_code == 200


def _refused_403() -> float:
    return REGISTRY.get_sample_value("yuqing_search_auth_failures_total", {"status": "403"}) or 0.0


def test_a_request_outside_the_callers_scope_is_counted_as_a_403(env: Env) -> None:
    # yuqing_search_auth_failures_total says "role/scope (403)"; only refused roles were counted
    before = _refused_403()

    resp = env.get("/v1/posts/search", key="hekou", region="城关镇")

    assert resp.status_code == 403, resp.text
    assert _refused_403() == before + 1
    assert env.get("/v1/posts/search", key="viewer", region="城关镇").status_code == 200
    assert _refused_403() == before + 1


def test_a_key_scoped_to_a_region_and_a_unit_sees_no_alert_of_the_region(env: Env) -> None:
    # the region's alert counts every unit's posts there: such a key saw it, its counts and the
    # ids of posts of other units, while it saw none of those posts
    created = env.call("POST", "/v1/admin/keys", "admin", json={
        "key_id": "hekou-other-unit", "role": "viewer", "regions": ["河口镇"], "units": ["石门供电所"]})
    assert created.status_code == 201, created.text
    key = {"X-Api-Key": created.json()["key"]}
    assert env.api.get("/v1/posts/search", headers=key).json()["total"] == 0

    assert env.api.get("/v1/alerts", headers=key).json()["alerts"] == []
    assert env.api.get("/v1/alerts/alert-hekou-01", headers=key).status_code == 404
    assert [a["alert_id"] for a in env.get("/v1/alerts", key="hekou").json()["alerts"]] == ["alert-hekou-01"]


def test_the_key_list_lists_every_key(env: Env) -> None:
    # the endpoint has no pages, and it listed the first 100 keys only
    ids = [f"desk-{n:03d}" for n in range(120)]
    body: list[dict[str, object]] = []
    for key_id in ids:
        body += [{"index": {"_index": small_index(env.prefix, "api-keys"), "_id": key_id}},
                 {"key_id": key_id, "role": "viewer", "sha256": "0" * 64, "description": "",
                  "created_at": BASE_TIME.isoformat(), "created_by": "admin", "revoked": False}]
    assert not env.es.bulk(body=body, refresh=True)["errors"]

    listed = env.get("/v1/admin/keys", key="admin").json()

    assert [k["key_id"] for k in listed] == ids


def test_an_action_on_an_issue_being_corrected_is_a_409_and_records_nothing(env: Env) -> None:
    # a merge of the issue in progress: the resolution was recorded on the issue the merge was
    # taking away, answered 201, and lost with it
    a, _ = _two_issues_of_one_town(env)
    states, _ = _hold_correction_lock(env, a)

    busy = env.call("POST", f"/v1/issues/{a}/actions", json={"action": "resolve"})

    assert busy.status_code == 409 and "in progress" in busy.json()["detail"], busy.text
    assert env.get(f"/v1/issues/{a}").json()["state"] == "open"
    assert env.get(f"/v1/issues/{a}/actions").json()["actions"] == []
    env.es.delete(index=states, id=f"lock:{a}", refresh=True)
    assert env.call("POST", f"/v1/issues/{a}/actions", json={"action": "resolve"}).status_code == 201
    assert env.es.get(index=states, id=f"lock:{a}", ignore=404)["found"] is False


def test_a_cluster_alert_names_its_matter_after_its_issue_is_merged(env: Env) -> None:
    # a cluster alert is keyed by its issue's id: once the issue was merged (by a responder, or by
    # the grouping itself) the alert listed no driving issue at all
    a, b = _two_issues_of_one_town(env)
    at = BASE_TIME + timedelta(hours=1)
    alert = make_alert("alert-cluster-01", emitted_at=at).model_copy(update={
        "key": AlertKey(family="cluster", cluster=a), "window_start": BASE_TIME - timedelta(minutes=5)})
    env.index([alert])
    assert [d["issue_id"] for d in env.get("/v1/alerts/alert-cluster-01").json()["driving_issues"]] == [a]

    assert env.call("POST", f"/v1/issues/{a}/merge", json={"into": b}).status_code == 201

    listed = env.get("/v1/alerts").json()["alerts"]
    for found in (env.get("/v1/alerts/alert-cluster-01").json(),
                  next(x for x in listed if x["alert_id"] == "alert-cluster-01")):
        assert [d["issue_id"] for d in found["driving_issues"]] == [b], found
    c = next(i["issue_id"] for i in env.get("/v1/issues", since=SINCE).json()["issues"]
             if set(i["regions"]) == {"城关镇"} and i["issue_id"] != b)
    assert env.call("POST", f"/v1/issues/{b}/merge", json={"into": c}).status_code == 201
    driving = env.get("/v1/alerts/alert-cluster-01").json()["driving_issues"]
    assert [d["issue_id"] for d in driving] == [c]  # merges are followed


def test_an_admin_scoped_to_a_region_stays_in_it(env: Env) -> None:
    # such an admin made itself an admin key for every region, saw every region's keys and sources,
    # and revoked other regions' keys
    made = env.call("POST", "/v1/admin/keys", "admin",
                    json={"key_id": "hekou-admin", "role": "admin", "regions": ["河口镇"]})
    assert made.status_code == 201, made.text
    scoped = {"X-Api-Key": made.json()["key"]}

    for wider in ({}, {"regions": ["石门镇"]}, {"regions": ["河口镇", "石门镇"]}, {"units": ["河口供电所"]}):
        resp = env.api.post("/v1/admin/keys", headers=scoped,
                            json={"key_id": "escape-desk", "role": "admin", **wider})
        assert resp.status_code == 403, (wider, resp.text)
    within = env.api.post("/v1/admin/keys", headers=scoped, json={
        "key_id": "hekou-desk-2", "role": "responder", "regions": ["河口镇"], "units": ["河口供电所"]})
    assert within.status_code == 201, within.text
    other = env.call("POST", "/v1/admin/keys", "admin", json={"key_id": "shimen-desk-2", "role": "viewer",
                                                               "regions": ["石门镇"]})
    assert other.status_code == 201, other.text
    listed = [k["key_id"] for k in env.api.get("/v1/admin/keys", headers=scoped).json()]
    assert listed == ["hekou-admin", "hekou-desk-2"]  # not the other region's, nor the root's
    assert env.api.delete("/v1/admin/keys/shimen-desk-2", headers=scoped).status_code == 404
    assert env.api.get("/v1/me", headers={"X-Api-Key": other.json()["key"]}).status_code == 200
    sources = env.api.get("/v1/admin/sources", headers=scoped).json()
    assert [(s["source"], s["posts"]) for s in sources] == [("app-main", 3)]
    assert sum(s["posts"] for s in env.get("/v1/admin/sources", key="admin").json()) > 3


@pytest.mark.parametrize("body", [{"action": "acknowledge", "assignee": "石门所-赵工"},
                                  {"action": "respond", "reply_text": "已派人", "assignee": "石门所-赵工"},
                                  {"action": "resolve", "reply_text": "已处理完毕"},
                                  {"action": "assign", "assignee": "石门所-赵工",
                                   "reply_text": "已处理完毕"}])
def test_an_action_given_a_field_of_another_action_is_refused(env: Env, body: dict[str, str]) -> None:
    # an acknowledge with an assignee reassigned the issue (state acknowledged, no assign in the
    # history), and a resolve with a reply changed the public reply with no respond recorded
    issue_id = env.get("/v1/issues", since=SINCE).json()["issues"][0]["issue_id"]
    path = f"/v1/issues/{issue_id}/actions"
    before: tuple[str, str | None, str | None] = ("open", None, None)
    if body["action"] != "acknowledge":
        for step in ({"action": "assign", "assignee": "城关所-李工"},
                     {"action": "respond", "reply_text": "抢修人员已出发"}):
            assert env.call("POST", path, json=step).status_code == 201
        before = ("responded", "城关所-李工", "抢修人员已出发")
    history = [a["action"] for a in env.get(path).json()["actions"]]

    resp = env.call("POST", path, json=body)

    assert resp.status_code == 422, resp.text
    field = "assignee" if "assignee" in body and body["action"] != "assign" else "reply_text"
    assert f"{body['action']} takes no {field}" in resp.text
    detail = env.get(f"/v1/issues/{issue_id}").json()
    assert (detail["state"], detail["assignee"], detail["reply_text"]) == before
    assert [a["action"] for a in env.get(path).json()["actions"]] == history


def test_the_schema_says_what_plain_words_match(env: Env) -> None:
    # the description of q read "words (all must match)": a post needs one of them (docs/search.md)
    apart = env.get("/v1/posts/search", q="幸福小区 阶梯电价").json()["total"]
    each = [env.get("/v1/posts/search", q=word).json()["total"] for word in ("幸福小区", "阶梯电价")]
    assert apart == sum(each) and min(each) > 0

    described = next(p["description"] for p in env.api.get("/openapi.json").json()["paths"]
                     ["/v1/posts/search"]["get"]["parameters"] if p["name"] == "q")
    assert "at least one" in described and "all must match" not in described


@pytest.mark.parametrize(("path", "first", "then"), [
    ("/v1/posts/search", {"q": "停电"}, {"q": "停电", "sort": "time"}),
    ("/v1/issues", {"since": SINCE}, {"since": SINCE, "order_by": "last_seen"}),
])
def test_a_cursor_used_with_another_sort_is_one_of_another_query(
        env: Env, path: str, first: dict[str, str], then: dict[str, str]) -> None:
    # its sort values have another shape, and it was called a malformed cursor
    cursor = env.get(path, limit=1, **first).json()["next_cursor"]
    assert cursor

    resp = env.get(path, limit=1, cursor=cursor, **then)

    assert resp.status_code == 400 and "another query" in resp.json()["detail"], resp.text


def test_the_latest_issues_are_listed_by_last_post_whatever_their_size(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # only the largest issues of the range were ranked (500; 3 here): by last post, the issues
    # that had just begun, one post each, were never listed among the latest
    monkeypatch.setattr(issues, "RANK_POOL", 3)
    env.index([make_post("青山乡中心小学门口的路灯一直不亮", external_id="lamp-1", region="青山乡",
                         topic=Topic.SERVICE, created_at=BASE_TIME + timedelta(days=2))])
    everything = env.get("/v1/issues", since=SINCE, limit=100).json()["total_issues"]
    assert everything > 3

    latest = env.get("/v1/issues", since=SINCE, order_by="last_seen", limit=2).json()["issues"]

    assert (latest[0]["size"], latest[0]["regions"]) == (1, {"青山乡": 1}), latest[0]
    assert latest[0]["last_seen"] == (BASE_TIME + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert latest[1]["last_seen"] == "2026-11-02T15:00:00Z"  # the next latest of the fixture's


def _handled_and_untouched(env: Env) -> tuple[str, str]:
    listed = env.get("/v1/issues", since=SINCE, limit=100).json()["issues"]
    handled, untouched = listed[0]["issue_id"], listed[1]["issue_id"]
    for body in ({"action": "assign", "assignee": "城关所-李工"},
                 {"action": "respond", "reply_text": "抢修人员已出发"}):
        assert env.call("POST", f"/v1/issues/{handled}/actions", json=body).status_code == 201
    return handled, untouched


def _handling(env: Env, issue_id: str) -> tuple[str, str | None, str | None]:
    detail = env.get(f"/v1/issues/{issue_id}").json()
    return detail["state"], detail["assignee"], detail["reply_text"]


def test_a_merge_into_an_issue_nobody_acted_on_keeps_the_handling(env: Env) -> None:
    # the issue that stayed was open, unassigned and unanswered: the assignment and the reply of
    # the one merged into it vanished from the list, and its posts read as open again
    handled, untouched = _handled_and_untouched(env)

    merged = env.call("POST", f"/v1/issues/{handled}/merge", json={"into": untouched})

    assert merged.status_code == 201, merged.text
    assert _handling(env, untouched) == ("responded", "城关所-李工", "抢修人员已出发")
    hits = env.get("/v1/posts/search", issue_id=untouched, limit=100).json()["hits"]
    assert {h["issue_state"] for h in hits} == {"responded"}
    (merge,) = env.get(f"/v1/issues/{untouched}/actions").json()["actions"]
    assert (merge["from_state"], merge["to_state"]) == ("open", "responded")
    assert "handling carried over" in merge["note"]


def test_an_automatic_merge_keeps_the_handling_too(env: Env) -> None:
    from services.search.grouping import IssueMerge
    from services.search.issue_auto_merges import record_system_merges

    handled, untouched = _handled_and_untouched(env)
    merge = IssueMerge(handled, untouched, 0.5, BASE_TIME)

    assert record_system_merges(env.es, env.prefix, [merge]) == ([merge], [])

    assert _handling(env, untouched) == ("responded", "城关所-李工", "抢修人员已出发")


def test_a_merge_into_an_issue_with_its_own_handling_keeps_that(env: Env) -> None:
    handled, other = _handled_and_untouched(env)
    assert env.call("POST", f"/v1/issues/{other}/actions", json={"action": "acknowledge"}).status_code == 201

    assert env.call("POST", f"/v1/issues/{handled}/merge", json={"into": other}).status_code == 201

    assert _handling(env, other) == ("acknowledged", None, None)


def test_a_resolved_issue_merged_in_leaves_the_other_open(env: Env) -> None:
    # a resolution is of the matter so far: the issue that stays may hold new posts of it
    handled, untouched = _handled_and_untouched(env)
    assert env.call("POST", f"/v1/issues/{handled}/actions", json={"action": "resolve"}).status_code == 201

    assert env.call("POST", f"/v1/issues/{handled}/merge", json={"into": untouched}).status_code == 201

    assert _handling(env, untouched) == ("open", None, None)


def test_an_issue_merged_away_points_at_the_issue_it_went_into(env: Env) -> None:
    # a responder holding a link to an issue another had merged (or the grouping had) got a bare
    # "issue ... not found", on its page and on every action, with no way to find its posts
    a, b = _two_issues_of_one_town(env)
    assert env.call("POST", f"/v1/issues/{a}/merge", json={"into": b}).status_code == 201
    c = next(i["issue_id"] for i in env.get("/v1/issues", since=SINCE).json()["issues"]
             if set(i["regions"]) == {"城关镇"} and i["issue_id"] != b)
    assert env.call("POST", f"/v1/issues/{b}/merge", json={"into": c}).status_code == 201

    page = env.call("GET", f"/v1/issues/{a}", params={"limit": 5}, follow_redirects=False)
    assert page.status_code == 308, page.text
    assert page.headers["location"] == f"/v1/issues/{c}?limit=5"  # merges are followed
    assert page.json()["detail"] == f"issue {a} was merged into {c}"
    assert env.get(f"/v1/issues/{a}").json()["issue_id"] == c  # a client that follows lands there

    acted = env.call("POST", f"/v1/issues/{a}/actions", json={"action": "acknowledge"})
    assert acted.status_code == 404 and acted.json()["detail"] == f"issue {a} was merged into {c}"
    moved = env.call("POST", f"/v1/issues/{a}/posts/{'0' * 32}/move", json={"to": c})
    assert moved.status_code == 404 and f"merged into {c}" in moved.json()["detail"], moved.text
    # a caller who sees none of the target's posts learns nothing of it
    assert env.get(f"/v1/issues/{a}", key="hekou").json()["detail"] == f"issue {a} not found"
    unknown = "outage-0000000000000000"
    assert env.get(f"/v1/issues/{unknown}").json()["detail"] == f"issue {unknown} not found"


def test_an_alert_that_escalates_keeps_the_time_it_first_fired(env: Env) -> None:
    # the escalation's event overwrote fired_at: the list said the surge began when it worsened
    first = BASE_TIME + timedelta(hours=2)
    fired = make_alert("alert-escalates-01", emitted_at=first)
    fired = fired.model_copy(update={"severity": Severity.WARNING})
    worse = fired.model_copy(update={"severity": Severity.CRITICAL,
                                     "emitted_at": first + timedelta(minutes=30)})
    env.index([fired])
    env.index([worse])
    detail = env.get("/v1/alerts/alert-escalates-01").json()
    assert detail["severity"] == "critical"
    assert datetime.fromisoformat(detail["fired_at"]) == first
    assert datetime.fromisoformat(detail["updated_at"]) == first + timedelta(minutes=30)
    env.index([fired])  # the first event again (a redelivery): nothing moves back
    detail = env.get("/v1/alerts/alert-escalates-01").json()
    assert detail["severity"] == "critical" and datetime.fromisoformat(detail["fired_at"]) == first


def test_a_search_of_the_posts_of_an_issue_merged_away_points_at_the_issue_it_went_into(env: Env) -> None:
    # its posts carry the id of the issue it went into: a search by the old id found nothing
    a, b = _two_issues_of_one_town(env)
    members = {p["post_id"] for p in env.get("/v1/posts/search", issue_id=a, limit=100).json()["hits"]}
    assert env.call("POST", f"/v1/issues/{a}/merge", json={"into": b}).status_code == 201

    page = env.call("GET", "/v1/posts/search", params={"issue_id": a, "q": "停电 来电", "limit": 5},
                    follow_redirects=False)

    assert page.status_code == 308, page.text
    location = urlsplit(page.headers["location"])
    assert location.path == "/v1/posts/search"
    assert parse_qsl(location.query) == [("issue_id", b), ("q", "停电 来电"), ("limit", "5")]
    followed = env.get("/v1/posts/search", issue_id=a, limit=100).json()
    assert members <= {p["post_id"] for p in followed["hits"]} and followed["total"] > len(members)
    assert env.get("/v1/posts/search", key="hekou", issue_id=a).json()["total"] == 0  # sees none there
    assert env.get("/v1/posts/search", issue_id="outage-0000000000000000").json()["total"] == 0


def test_an_issue_over_many_townships_lists_every_one(env: Env) -> None:
    # the five with the most posts were listed: a county-wide matter's other townships were left out
    towns = ["河西镇", "柳塘镇", "青山乡", "竹溪乡", "棠梨乡", "杏坪镇", "双河镇"]
    at = BASE_TIME + timedelta(days=3)
    env.index([make_post(f"{town}全镇停电了", external_id=f"county-{i}", region=town,
                         created_at=at + timedelta(minutes=i)) for i, town in enumerate(towns)])
    listed = env.get("/v1/issues", since=SINCE, limit=100).json()["issues"]
    ids = [i["issue_id"] for i in listed if set(i["regions"]) <= set(towns)]
    for other in ids[1:]:
        assert env.call("POST", f"/v1/issues/{other}/merge", json={"into": ids[0]}).status_code == 201

    issue = env.get(f"/v1/issues/{ids[0]}").json()
    assert issue["regions"] == {town: 1 for town in towns} and issue["size"] == len(towns)
    again = next(i for i in env.get("/v1/issues", since=SINCE).json()["issues"] if i["issue_id"] == ids[0])
    assert again["regions"] == issue["regions"]


def test_a_range_that_ends_ahead_counts_the_growth_of_the_last_hour_until_now(env: Env) -> None:
    # a range picked to the end of the day: its last hour lay ahead, and no issue had grown in it
    now = datetime.now(UTC)
    env.index([make_post("柳塘镇东街村刚刚停电了", external_id=f"today-{i}", region="柳塘镇",
                         created_at=now - timedelta(minutes=40 - 10 * i), received_at=now) for i in range(3)])
    until_now = env.get("/v1/issues", since=SINCE, region="柳塘镇").json()["issues"]
    ahead = env.get("/v1/issues", since=SINCE, region="柳塘镇",
                    until=(now + timedelta(hours=6)).isoformat()).json()["issues"]

    assert [i["last_hour"] for i in until_now] == [3]
    assert [{k: i[k] for k in GROWTH} for i in ahead] == [{k: i[k] for k in GROWTH} for i in until_now]


def test_the_history_of_an_issue_merged_away_before_anyone_acted_points_at_the_merge(env: Env) -> None:
    # it was a bare "issue ... not found", while the issue's page answered where it went
    a, b = _two_issues_of_one_town(env)
    assert env.call("POST", f"/v1/issues/{a}/merge", json={"into": b}).status_code == 201

    history = env.call("GET", f"/v1/issues/{a}/actions", params={"limit": 5}, follow_redirects=False)

    assert history.status_code == 308, history.text
    assert history.headers["location"] == f"/v1/issues/{b}/actions?limit=5"
    followed = env.get(f"/v1/issues/{a}/actions").json()["actions"]
    assert [(x["action"], x["issue_id"]) for x in followed] == [("merge", b)]
    assert env.get(f"/v1/issues/{a}/actions", key="hekou").status_code == 404
