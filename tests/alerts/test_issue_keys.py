"""The cluster key family is the issue a post was grouped into (services.alerts.issues)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from elasticsearch import Elasticsearch

from services.alerts.evidence import Observation
from services.alerts.issues import IssueKeys, ReadOnlyIssues
from services.search.issue_live import LiveIssues
from tests.alerts.streams import make_post, steady_posts, surge_posts
from tests.alerts.test_watch import NOW, SURGE_AT, _watch
from yuqing.contracts import Alert, AlertState, EnrichedPost, Sentiment, Topic

WORDINGS = ("掌上电力人脸识别一直失败，认证不了", "更新掌上电力后人脸认证老是失败",
            "掌上电力刷脸认证失败好几次了", "人脸识别总提示失败，掌上电力新版本的问题吧")


def _matter(count: int, minutes: int = 10) -> list[EnrichedPost]:
    """Posts of one matter in several wordings, naming no township, within ``minutes``."""
    posts = [make_post(index=f"m-{i}", created_at=SURGE_AT + timedelta(seconds=i * minutes * 60 / count),
                       topic=Topic.ONLINE_SERVICE, region="城关镇", source="app-main",
                       text=WORDINGS[i % len(WORDINGS)], keywords=["人脸识别"], fingerprint=i,
                       sentiment=Sentiment.NEGATIVE) for i in range(count)]
    return [post.model_copy(update={"region": None}) for post in posts]


def _unreachable() -> Elasticsearch:
    # a port nothing listens on: the connection is refused at once
    return Elasticsearch("http://127.0.0.1:9", timeout=1, max_retries=0)


def _alone() -> IssueKeys:
    return IssueKeys(ReadOnlyIssues(), None, "test")


def _feed(posts: list[EnrichedPost], issues: IssueKeys, *, until: float, bucket: int = 300
          ) -> tuple[list[Alert], dict]:
    tables: dict = {}
    watch = _watch(tables, bucket=bucket)
    alerts: list[Alert] = []
    for offset, (post, issue_id) in enumerate(zip(posts, issues.assign(posts), strict=True)):
        observation = Observation.of(post, max_future_seconds=300, issue_id=issue_id)
        watch.add(observation, partition=0, offset=offset)
        alerts += [a for c in watch.advance(observation.event_time, now=NOW).closed for a in c.alerts]
    watch.persist()
    moment = observation.event_time
    while moment < until:  # then quiet, a batch an hour (idle keys are swept between batches)
        moment = min(moment + 3600, until)
        alerts += [a for c in watch.advance(moment, now=NOW).closed for a in c.alerts]
        watch.persist()
    return alerts, tables


def test_the_alerts_worker_names_issues_as_an_indexer_does():
    posts = sorted(steady_posts(SURGE_AT - timedelta(hours=6), SURGE_AT) + _matter(12),
                   key=lambda p: p.created_at)
    indexer = [found.issue_id for found in LiveIssues().assign_batch(posts)]
    assert _alone().assign(posts) == indexer
    assert len(set(_alone().assign(_matter(12)))) == 1  # paraphrases of one matter: one issue


def test_the_replica_never_records_merges():
    issues = ReadOnlyIssues()
    issues.assign_batch(_matter(12))
    assert issues.pending_merges == []
    assert issues.record_merges(_unreachable(), "test", force=True) == 0


def test_an_unreachable_index_is_logged_once_and_posts_are_grouped_alone(caplog: pytest.LogCaptureFixture):
    now = [0.0]
    keys = IssueKeys(ReadOnlyIssues(), _unreachable(), "test", retry_s=30.0, clock=lambda: now[0])
    posts = _matter(12)
    with caplog.at_level(logging.WARNING, logger="services.alerts.issues"):
        first = keys.assign(posts[:6])
        now[0] = 10.0  # before the retry: the index is not asked
        second = keys.assign(posts[6:9])
        now[0] = 45.0  # asked again, still down: not logged again
        third = keys.assign(posts[9:])
    assert len(set(first + second + third)) == 1 and not keys.reachable and not keys.warmed
    ours = [r.message.split(" (")[0] for r in caplog.records if r.name == "services.alerts.issues"]
    assert ours == ["search index unreachable"]


def test_a_new_issue_fires_from_its_first_bucket_and_its_key_is_forgotten_when_idle():
    surge = _matter(12, minutes=4)
    alerts, tables = _feed(surge, _alone(), until=(SURGE_AT + timedelta(hours=7)).timestamp())
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    # every other key is new too and quiet in its first hour; an issue has no past to wait for
    assert [a.key.family for a in firing] == ["cluster"] and firing[0].window_start == SURGE_AT
    assert firing[0].key.cluster == _alone().assign(surge)[0] and firing[0].observed == 12
    assert [a.state for a in alerts] == [AlertState.FIRING, AlertState.RESOLVED]
    # 7 hours later the issue's key is forgotten (4 hours idle), the overall key is not
    assert "overall" in tables["detectors"]
    assert not [label for label in tables["detectors"] if label.startswith("cluster|")]


def test_a_township_surge_raises_one_alert_that_names_its_issue():
    surge = surge_posts(SURGE_AT, count=40)
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=3)) + surge,
                   key=lambda p: p.created_at)
    issues = _alone()
    # 5-minute buckets, the default: in 30-minute ones the cold start's first bucket holds 8 posts of
    # the steady stream's own outage issue (its identical wordings make one), which the new-key rule fires on
    alerts, _ = _feed(posts, issues, until=(SURGE_AT + timedelta(hours=4)).timestamp())
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic_region|topic=outage|region=青山乡"]
    named = {parent for a in alerts for parent in a.explanation.parents if parent.startswith("cluster|")}
    surge_issues = {f"cluster|cluster={issue}" for issue in issues.assign(surge)}
    assert named and named <= surge_issues


def _counted_under_two_issues(merged: bool) -> list[Alert]:
    """Twelve posts of one matter, eight counted under one issue and four under a second the
    grouping later merged into the first (they had met before the two issues did)."""
    surge = _matter(12, minutes=4)
    watch = _watch({}, bucket=300)
    for offset, post in enumerate(surge):
        issue_id = "online_service-aaaaaaaaaaaaaaaa" if offset % 3 else "online_service-bbbbbbbbbbbbbbbb"
        watch.add(Observation.of(post, max_future_seconds=300, issue_id=issue_id), partition=0, offset=offset)
    if merged:
        watch.merged([("online_service-bbbbbbbbbbbbbbbb", "online_service-aaaaaaaaaaaaaaaa")])
    closed = watch.advance((SURGE_AT + timedelta(hours=1)).timestamp(), now=NOW).closed
    return [a for c in closed for a in c.alerts if a.state is AlertState.FIRING]


def test_the_posts_of_an_issue_merged_away_count_towards_the_issue_it_went_into():
    # forty posts of one matter were counted 35 and 5 under two issue keys when the grouping had
    # merged the two: the alert said 35
    (alert,) = _counted_under_two_issues(merged=True)
    assert alert.key.cluster == "online_service-aaaaaaaaaaaaaaaa" and alert.observed == 12
    before = _counted_under_two_issues(merged=False)
    assert [(a.key.cluster, a.observed) for a in before if a.key.cluster.endswith("a")] == [
        ("online_service-aaaaaaaaaaaaaaaa", 8)]


def test_merges_are_forgotten_once_no_open_bucket_or_alert_needs_them():
    watch = _watch({}, bucket=300)
    early = _matter(1)[0].model_copy(update={"created_at": SURGE_AT - timedelta(hours=2),
                                             "post_id": "e" * 32})
    watch.add(Observation.of(early, max_future_seconds=300, issue_id="online_service-dddddddddddddddd"),
              partition=0, offset=0)
    for offset, post in enumerate(_matter(3), start=1):
        watch.add(Observation.of(post, max_future_seconds=300, issue_id="online_service-aaaaaaaaaaaaaaaa"),
                  partition=0, offset=offset)
    watch.merged([("online_service-aaaaaaaaaaaaaaaa", "online_service-bbbbbbbbbbbbbbbb"),
                  ("online_service-bbbbbbbbbbbbbbbb", "online_service-cccccccccccccccc"),
                  ("online_service-dddddddddddddddd", "online_service-eeeeeeeeeeeeeeee")])
    # the sweep an hour on: a's posts are still in an open bucket, d's was closed
    watch.advance((SURGE_AT - timedelta(minutes=10)).timestamp(), now=NOW)
    assert watch._desk().aliases == {"online_service-aaaaaaaaaaaaaaaa": "online_service-bbbbbbbbbbbbbbbb",
                                     "online_service-bbbbbbbbbbbbbbbb": "online_service-cccccccccccccccc"}
    watch.advance((SURGE_AT + timedelta(hours=3)).timestamp(), now=NOW)  # a's bucket closed
    assert watch._desk().aliases == {}


def test_the_replica_hands_over_the_merges_the_grouping_made_once():
    # tests/search/test_grouping_merge.py's evening: a post of no township and a village's posts
    # found two issues of one outage, which a later post bridges
    from tests.search.test_grouping_merge import FIRST, JOINING, T0
    rows = [*FIRST, JOINING]
    posts = [make_post(index=f"e-{n}", created_at=T0 + timedelta(minutes=minutes), topic=Topic.OUTAGE,
                       region="河口镇", source="app-main", text=text, keywords=[], fingerprint=n,
                       sentiment=Sentiment.NEGATIVE).model_copy(update={"region": region})
             for n, (minutes, text, region) in enumerate(rows)]
    keys = _alone()
    ids = [keys.assign([post])[0] for post in posts[:4]]
    assert ids[0] != ids[1] == ids[2] == ids[3] and keys.take_merged() == []
    assert keys.assign(posts[4:]) == [ids[0]]
    assert keys.take_merged() == [(ids[1], ids[0])]
    assert keys.take_merged() == []  # handed over once
