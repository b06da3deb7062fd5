"""Alerts point at the issues driving them: the search API against the real Elasticsearch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from services.search.api import create_app
from services.search.auth import hash_key, new_key
from services.search.bulk import build_actions, issue_table, write_bulk
from services.search.es import ensure_templates, make_client
from services.search.issue_alerts import driving_issues
from services.search.mappings import templates
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME, as_messages, make_post
from yuqing.contracts import Alert, AlertKey, AlertState, EnrichedPost, Severity, Topic
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration

XINJIE = ["河口镇新街村停电了，什么时候来电？", "新街村这边突然黑了，整个村都没电",
          "我家也是，新街村三组，一点电都没有", "河口新街停电+1",
          "停了快一个小时了，新街村到底啥时候恢复供电啊", "新街村还没来电，冰箱里的菜要坏了"]
LIFT = ["滨河小区3栋电梯停了，老人被困在里面", "滨河小区电梯困人了，快来人"]


def _at(minutes: float) -> Any:
    return BASE_TIME + timedelta(minutes=minutes)


def _hekou(text: str, external_id: str, minutes: float, topic: Topic = Topic.OUTAGE) -> EnrichedPost:
    return make_post(text, external_id=external_id, created_at=_at(minutes), topic=topic, region="河口镇",
                     unit="河口供电所")


def _posts() -> dict[str, list[EnrichedPost]]:
    return {
        "xinjie": [_hekou(t, f"xj-{i}", 3 * i) for i, t in enumerate(XINJIE)],
        "lift": [_hekou(t, f"lift-{i}", 4 + i) for i, t in enumerate(LIFT)],
        "bill": [_hekou("河口镇这个月电费怎么翻倍了", "bill-0", 5, topic=Topic.BILLING)],
        "chengguan": [make_post(f"城关镇东关村停电了{'！' * i}", external_id=f"cg-{i}", created_at=_at(6 + i))
                      for i in range(3)],
    }


def _alert(alert_id: str, key: AlertKey, *, start: float = -5, end: float = 30) -> Alert:
    return Alert(alert_id=alert_id, key=key, state=AlertState.FIRING, severity=Severity.CRITICAL, score=0.9,
                 window_start=_at(start), window_end=_at(end), observed=10, expected=1, emitted_at=_at(end))


@dataclass
class Env:
    api: TestClient
    es: Elasticsearch
    prefix: str
    key: str
    posts: dict[str, list[EnrichedPost]]

    def get(self, path: str, **params: Any) -> Any:
        resp = self.api.get(path, headers={"X-Api-Key": self.key}, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def env(es_settings: ElasticsearchSettings, tmp_path: Path) -> Iterator[Env]:
    key = new_key("desk")
    lines = ["[[keys]]", 'id = "desk"', 'role = "responder"', f'sha256 = "{hash_key(key)}"']
    (tmp_path / "keys.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = SearchSettings(es=es_settings, api_keys_path=tmp_path / "keys.toml", rate_limit_per_minute=0)
    es, prefix = make_client(es_settings), es_settings.index_prefix
    ensure_templates(es, es_settings)
    posts = _posts()
    lift_cluster = posts["lift"][0].fingerprint[:2]
    hekou_outage = AlertKey(family="topic_region", topic=Topic.OUTAGE, region="河口镇")
    alerts: list[EnrichedPost | Alert] = [
        _alert("hekou-outage", hekou_outage),
        _alert("lift-cluster", AlertKey(family="cluster", cluster=lift_cluster)),
        _alert("before-anything", AlertKey(family="overall"), start=-120, end=-60)]
    everything: list[EnrichedPost | Alert] = [p for group in posts.values() for p in group]
    messages = as_messages(everything) + as_messages(alerts, topic="alerts")
    actions, kept, rejected = build_actions(messages, prefix, issues=issue_table(settings),
                                            alerts_topic="alerts")
    assert rejected == [] and write_bulk(es, actions, kept, max_retries=2).rejected == []
    es.indices.refresh(index=f"{prefix}-*")
    try:
        with TestClient(create_app(settings, client=es), raise_server_exceptions=False) as api:
            yield Env(api, es, prefix, key, posts)
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore=404)
        for name in templates(prefix):
            es.indices.delete_index_template(name=name, ignore=404)


def _issue_of(env: Env, post: EnrichedPost) -> str:
    issue: str = env.get(f"/v1/posts/{post.post_id}")["issue_id"]
    return issue


def test_an_alert_lists_the_issues_of_its_key_and_window_largest_first(env: Env) -> None:
    outage, lift = _issue_of(env, env.posts["xinjie"][0]), _issue_of(env, env.posts["lift"][0])
    assert outage != lift
    listed = {a["alert_id"]: a for a in env.get("/v1/alerts")["alerts"]}
    driving = listed["hekou-outage"]["driving_issues"]
    # the township's outage posts only: not its billing post, not another township's outage
    assert [(d["issue_id"], d["posts"], d["share"]) for d in driving] == [(outage, 6, 0.75), (lift, 2, 0.25)]
    record = env.get(f"/v1/issues/{outage}")
    assert driving[0]["title"] == record["title"] != "" and driving[0]["size"] == record["size"] == 6
    assert driving[0]["state"] == "open"
    assert env.get("/v1/alerts/hekou-outage")["driving_issues"] == driving
    assert listed["before-anything"]["driving_issues"] == []  # no post in its window


def test_a_cluster_alert_points_at_the_issues_of_its_fingerprint_band(env: Env) -> None:
    lift = _issue_of(env, env.posts["lift"][0])
    cluster = env.posts["lift"][0].fingerprint[:2]
    in_band = [p for group in env.posts.values() for p in group if p.fingerprint.startswith(cluster)]
    driving = env.get("/v1/alerts/lift-cluster")["driving_issues"]
    assert driving[0]["issue_id"] == lift
    assert sum(d["posts"] for d in driving) <= len(in_band)
    assert driving[0]["posts"] == sum(1 for p in env.posts["lift"] if p.fingerprint.startswith(cluster))


def test_a_cluster_alert_keyed_by_an_issue_id_points_at_that_issue(env: Env) -> None:
    lift = _issue_of(env, env.posts["lift"][0])
    found = driving_issues(env.es, prefix=env.prefix, since=_at(-5), until=_at(30), cluster=lift)
    assert [(d.issue_id, d.share) for d in found] == [(lift, 1.0)]
    assert found[0].posts == sum(1 for p in env.posts["lift"] if _issue_of(env, p) == lift)


def test_the_alerting_side_reads_the_same_issues_without_a_caller(env: Env) -> None:
    found = driving_issues(env.es, prefix=env.prefix, since=_at(-5), until=_at(30), topic="outage",
                           region="河口镇")
    listed = env.get("/v1/alerts/hekou-outage")["driving_issues"]
    assert [d.model_dump(mode="json") for d in found] == listed
