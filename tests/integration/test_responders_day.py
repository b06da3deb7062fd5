"""A township responder's day against the real Elasticsearch: an issue that comes back after its
resolution, corrections naming a post that does not exist or an issue merged away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.search.correction_locks import correcting
from tests.integration import test_search_api as endpoints
from tests.integration.test_search_api import Env
from tests.search.factory import BASE_TIME, make_post
from yuqing.contracts import Alert, EnrichedPost

pytestmark = pytest.mark.integration
env = endpoints.env  # the endpoint tests' fixture: their keys, corpus and alerts
SINCE = (BASE_TIME - timedelta(days=1)).isoformat()
NO_SUCH_POST = "0" * 32


def _outage_now(env: Env, tag: str, minutes_ago: list[float]) -> str:
    """Posts of one 柳塘镇 outage created ``minutes_ago``; the issue they are in."""
    now = datetime.now(UTC)
    posts = [make_post("柳塘镇东街村又停电了，什么时候来电", external_id=f"{tag}-{i}", region="柳塘镇",
                       created_at=now - timedelta(minutes=m), received_at=now)
             for i, m in enumerate(minutes_ago)]
    env.index(list[EnrichedPost | Alert](posts))
    (issue_id,) = {str(env.get(f"/v1/posts/{p.post_id}").json()["issue_id"]) for p in posts}
    return issue_id


def test_a_resolved_issue_that_grows_again_is_flagged_and_ranked_among_the_unresolved(env: Env) -> None:
    # the outage came back after the repair: the issue stayed resolved and was listed last,
    # behind every one-post issue, and nothing said that complaints had come in since
    quiet = env.get("/v1/issues", since=SINCE).json()["issues"][-1]["issue_id"]
    issue_id = _outage_now(env, "back", [30, 25])
    for resolved in (quiet, issue_id):
        done = env.call("POST", f"/v1/issues/{resolved}/actions", json={"action": "resolve"})
        assert done.status_code == 201, done.text

    assert _outage_now(env, "again", [0.0, 0.0]) == issue_id

    listed = env.get("/v1/issues", since=SINCE).json()["issues"]
    assert [(i["issue_id"], i["state"], i["after_resolution"]) for i in listed[:1]] == [
        (issue_id, "resolved", 2)]
    assert (listed[-1]["issue_id"], listed[-1]["after_resolution"]) == (quiet, 0)  # nothing new: last
    assert env.get(f"/v1/issues/{issue_id}").json()["after_resolution"] == 2
    resolved = env.get("/v1/issues", since=SINCE, state="resolved").json()["issues"]
    assert {i["issue_id"]: i["after_resolution"] for i in resolved} == {issue_id: 2, quiet: 0}


@pytest.mark.parametrize("kind", ["move", "split"])
def test_a_correction_of_a_post_that_does_not_exist_is_a_404(env: Env, kind: str) -> None:
    # a mistyped post id was a 409 "post ... is not in issue ...", as if it sat in another issue
    issues = env.get("/v1/issues", since=SINCE).json()["issues"]
    issue_id, other = (i["issue_id"] for i in issues[:2])
    body = {"to": other} if kind == "move" else None

    resp = env.call("POST", f"/v1/issues/{issue_id}/posts/{NO_SUCH_POST}/{kind}", json=body)

    assert resp.status_code == 404, resp.text
    assert resp.json()["detail"] == f"post {NO_SUCH_POST} not found"
    assert env.get(f"/v1/issues/{issue_id}/actions").json()["actions"] == []


def test_a_correction_of_a_post_outside_the_scope_is_a_404_like_reading_it(env: Env) -> None:
    hekou = next(i for i in env.get("/v1/issues", key="hekou", since=SINCE).json()["issues"] if i["size"] > 1)
    elsewhere = env.get("/v1/posts/search", since=SINCE, region="城关镇").json()["hits"][0]["post_id"]
    assert env.get(f"/v1/posts/{elsewhere}", key="hekou").status_code == 404

    resp = env.call("POST", f"/v1/issues/{hekou['issue_id']}/posts/{elsewhere}/split", key="hekou")

    assert resp.status_code == 404 and resp.json()["detail"] == f"post {elsewhere} not found", resp.text


def test_a_post_of_another_issue_stays_a_409(env: Env) -> None:
    issues = env.get("/v1/issues", since=SINCE).json()["issues"]
    first, second = issues[0], issues[1]
    theirs = second["representative"]["post_id"]

    resp = env.call("POST", f"/v1/issues/{first['issue_id']}/posts/{theirs}/split")

    assert resp.status_code == 409, resp.text
    assert resp.json()["detail"] == f"post {theirs} is not in issue {first['issue_id']}"


@pytest.mark.parametrize("kind", ["merge", "move"])
def test_a_correction_into_an_issue_merged_away_names_where_it_went(env: Env, kind: str) -> None:
    # a colleague merged the target away after the page was read: the answer was a bare
    # "issue ... not found", and the responder could not tell a typo from a merge
    town = [i for i in env.get("/v1/issues", since=SINCE).json()["issues"] if set(i["regions"]) == {"城关镇"}]
    gone, stays, source = (i["issue_id"] for i in town[:3])
    assert env.call("POST", f"/v1/issues/{gone}/merge", json={"into": stays}).status_code == 201
    post_id = next(i for i in town if i["issue_id"] == source)["representative"]["post_id"]
    path, body = ((f"/v1/issues/{source}/merge", {"into": gone}) if kind == "merge" else
                  (f"/v1/issues/{source}/posts/{post_id}/move", {"to": gone}))

    resp = env.call("POST", path, json=body)

    assert resp.status_code == 404, resp.text
    assert resp.json()["detail"] == f"issue {gone} was merged into {stays}"
    unknown = "outage-0000000000000000"
    typo = env.call("POST", f"/v1/issues/{source}/merge", json={"into": unknown})
    assert typo.status_code == 404 and typo.json()["detail"] == f"issue {unknown} not found"


def test_moving_the_only_post_of_an_issue_is_a_409_that_says_to_merge(env: Env) -> None:
    # the move was done: the issue was left without posts, its page a bare 404, and the handling
    # recorded on it (acknowledged here) went nowhere, where a merge carries it over
    issues = env.get("/v1/issues", since=SINCE).json()["issues"]
    lone = next(i for i in issues if i["size"] == 1)
    other = next(i["issue_id"] for i in issues if i["size"] > 1)
    post_id = lone["representative"]["post_id"]
    acked = env.call("POST", f"/v1/issues/{lone['issue_id']}/actions", json={"action": "acknowledge"})
    assert acked.status_code == 201, acked.text

    resp = env.call("POST", f"/v1/issues/{lone['issue_id']}/posts/{post_id}/move", json={"to": other})

    assert resp.status_code == 409, resp.text
    assert resp.json()["detail"] == (f"post {post_id} is the only post of issue {lone['issue_id']}: "
                                     f"merge the issue into {other} instead")
    assert env.get(f"/v1/posts/{post_id}").json()["issue_id"] == lone["issue_id"]
    history = env.get(f"/v1/issues/{lone['issue_id']}/actions").json()["actions"]
    assert [a["action"] for a in history] == ["acknowledge"]


def test_an_action_meeting_another_action_is_told_so(env: Env) -> None:
    # two responders acknowledging at once: the second was told "another correction of issue ...
    # is in progress", though nobody was correcting it
    issue_id = env.get("/v1/issues", since=SINCE).json()["issues"][0]["issue_id"]
    with correcting(env.es, env.prefix, [issue_id], holder="colleague"):  # as an action holds it
        resp = env.call("POST", f"/v1/issues/{issue_id}/actions", json={"action": "acknowledge"})

    assert resp.status_code == 409, resp.text
    assert resp.json()["detail"] == (f"another action or correction of issue {issue_id} is in progress; "
                                     "reload it and try again")
    after = env.call("POST", f"/v1/issues/{issue_id}/actions", json={"action": "acknowledge"})
    assert after.status_code == 201, after.text  # the lock given back, the action goes through


def test_a_responder_of_one_region_of_a_shared_issue_sees_the_actions_of_another(env: Env) -> None:
    # the action was recorded with the regions the actor saw: 河口镇's desk saw the shared issue
    # resolved, its acknowledge refused, and no action in its history saying who resolved it
    created = env.call("POST", "/v1/admin/keys", "admin",
                       json={"key_id": "chengguan-desk", "role": "responder", "regions": ["城关镇"]})
    assert created.status_code == 201, created.text
    chengguan = {"X-Api-Key": created.json()["key"]}
    hekou = next(i["issue_id"] for i in env.get("/v1/issues", key="hekou", since=SINCE).json()["issues"])
    town = next(i["issue_id"] for i in env.get("/v1/issues", since=SINCE).json()["issues"]
                if set(i["regions"]) == {"城关镇"})
    assert env.call("POST", f"/v1/issues/{hekou}/merge", json={"into": town}).status_code == 201
    resolved = env.api.post(f"/v1/issues/{town}/actions", headers=chengguan,
                            json={"action": "resolve", "note": "城关所已处理"})
    assert resolved.status_code == 201, resolved.text

    seen = env.get(f"/v1/issues/{town}", key="hekou").json()

    assert seen["state"] == "resolved" and set(seen["regions"]) == {"河口镇"}
    assert [(a["action"], a["responder"], a["note"]) for a in seen["actions"]][:1] == [
        ("resolve", "chengguan-desk", "城关所已处理")]
    history = env.get(f"/v1/issues/{town}/actions", key="hekou").json()["actions"]
    assert [a["action"] for a in history] == ["resolve", "merge"]
    assert [a["action"] for a in env.get("/v1/actions", key="hekou", action="resolve").json()["actions"]] == [
        "resolve"]


def test_a_township_responder_corrects_its_issue_holding_a_post_of_no_region(env: Env) -> None:
    # a WeChat post naming the village but sent without a region joined 河口镇's issue, and 河口镇's
    # desk was refused every correction of it: "has posts outside this key's scope"
    nowhere = make_post("河口镇新街村还是没电，啥时候能来电？", external_id="hk-noregion", region=None,
                        unit=None, created_at=BASE_TIME + timedelta(minutes=14))
    env.index([nowhere])
    issue = next(i for i in env.get("/v1/issues", key="hekou", since=SINCE).json()["issues"] if i["size"] > 1)
    assert env.get(f"/v1/posts/{nowhere.post_id}").json()["issue_id"] == issue["issue_id"]
    post_id = issue["representative"]["post_id"]

    split = env.call("POST", f"/v1/issues/{issue['issue_id']}/posts/{post_id}/split", key="hekou")

    assert split.status_code == 201, split.text
    # a post of another region still makes the issue one for a responder of all its regions
    town = next(i["issue_id"] for i in env.get("/v1/issues", since=SINCE).json()["issues"]
                if set(i["regions"]) == {"城关镇"})
    assert env.call("POST", f"/v1/issues/{town}/merge", json={"into": issue["issue_id"]}).status_code == 201
    refused = env.call("POST", f"/v1/issues/{issue['issue_id']}/posts/{nowhere.post_id}/split", key="hekou")
    assert refused.status_code == 403 and "outside this key's scope" in refused.json()["detail"], refused.text
