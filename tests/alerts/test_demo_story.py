"""The demo's stories at the counting stage: 14 days of history warmed, then the live demo stream.

The stream tells two stories over an ordinary evening: an outage in 河口镇
(one township's outage key surges) and a rumour of power rationing over five
townships (the topic surges, no township does). It arrives as the live
connectors deliver it: APP feedback with its region, WeChat pushes and forum
posts without one (their township is only in the words), each through its
demo source.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.detector import DetectorConfig
from services.alerts.evidence import Observation
from services.alerts.issues import IssueKeys, ReadOnlyIssues
from services.alerts.lifecycle import TrackerConfig
from services.alerts.warm import PastPost, warm_detectors
from services.alerts.watch import SurgeWatch, WatchConfig
from services.alerts.windows import WindowPolicy
from services.demo.history import demo_places, history, stream_rate
from services.demo.stream import DEMO_STREAM
from tests.alerts.streams import demo_posts
from yuqing.contracts import Alert, AlertState, EnrichedPost
from yuqing.paths import project_paths
from yuqing.places import load_gazetteer

LIVE = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # 20:30 local, a Thursday evening
PLACES = load_gazetteer(project_paths().config / "places.toml")
BUCKET = timedelta(minutes=5)


def _run(tables: dict, posts: list[EnrichedPost], live: datetime) -> list[Alert]:
    config = WatchConfig(window=WindowPolicy(300, 60), detector=DetectorConfig(),
                         tracker=TrackerConfig())
    watch = SurgeWatch(config, **{name: tables.setdefault(name, {}) for name in
                                  ("windows", "detectors", "desk", "posts")})
    alerts: list[Alert] = []
    issues = IssueKeys(ReadOnlyIssues(), None, "demo")  # the worker's grouping, with no index to read
    for offset, post in enumerate(posts):
        [issue_id] = issues.assign([post])
        observation = Observation.of(post, max_future_seconds=300, places=PLACES, issue_id=issue_id)
        watch.add(observation, partition=0, offset=offset)
        alerts += [a for c in watch.advance(observation.event_time, now=live).closed for a in c.alerts]
    # The stream goes quiet: close the next half hour, one bucket at a time.
    for minute in range(0, 35, 5):
        moment = (live + timedelta(minutes=15 + minute)).timestamp()
        alerts += [a for c in watch.advance(moment, now=live).closed for a in c.alerts]
    return alerts


def _bucket_start(moment: datetime) -> datetime:
    return datetime.fromtimestamp(moment.timestamp() // 300 * 300, UTC)


def test_history_covers_every_demo_township_with_a_day_rhythm_as_busy_as_the_stream_at_its_end():
    past = list(history(LIVE, days=2))
    assert {p.region for p in past} == set(demo_places())
    noon = sum(1 for p in past if (p.created_at + timedelta(hours=8)).hour == 12)
    night = sum(1 for p in past if (p.created_at + timedelta(hours=8)).hour == 3)
    assert noon > 3 * night
    last_buckets = sum(1 for p in past if p.created_at >= LIVE - 2 * BUCKET)
    assert 0.7 < last_buckets / 2 / stream_rate() < 1.35  # per bucket


def test_most_hekou_posts_count_under_their_township_though_only_the_app_carries_a_region():
    records = [json.loads(line) for line in DEMO_STREAM.read_text(encoding="utf-8").splitlines()]
    burst = [post for post, record in zip(demo_posts(LIVE), records, strict=True)
             if record["region"] == "河口镇" and record["offset_s"] <= 360]
    keyed = [post for post in burst if any(k.region == "河口镇" for k in
                                           Observation.of(post, max_future_seconds=300, places=PLACES).keys)]
    # 14 posts in six minutes; one ("停电了！！冰箱里刚买的肉啊") names no place
    assert (len(burst), sum(1 for post in burst if post.region), len(keyed)) == (14, 6, 13)


@pytest.fixture(scope="module")
def warmed() -> dict[str, dict]:
    """The detectors warmed on the 14 days of history before LIVE (once: it takes a minute or two)."""
    past = (PastPost.of(p) for p in history(LIVE, days=14))
    entries = warm_detectors(past, DetectorConfig(), until=LIVE, places=PLACES)
    return {label: entry.to_dict() for label, entry in entries.items()}


@pytest.mark.parametrize("shift_s", [0, 100, 200])  # where the bucket edges cut the stories
def test_the_outage_fires_on_its_township_and_the_rumour_on_its_topic_each_within_two_buckets(
        warmed: dict[str, dict], shift_s: int):
    live = LIVE + timedelta(seconds=shift_s)
    alerts = _run({"detectors": dict(warmed)}, demo_posts(live), live)
    firing = {a.key.label(): a for a in alerts if a.state is AlertState.FIRING}
    assert sorted(firing) == ["topic_region|topic=outage|region=河口镇", "topic|topic=rumor"]
    outage, rumour = firing["topic_region|topic=outage|region=河口镇"], firing["topic|topic=rumor"]
    assert outage.window_end <= _bucket_start(live + timedelta(seconds=171)) + 2 * BUCKET
    # a topic alert waits two buckets for a more specific key; its window starts with the surge
    assert rumour.window_start <= _bucket_start(live + timedelta(seconds=421)) + BUCKET
    assert "停电" in outage.explanation.top_keywords and outage.sample_post_ids
    # the outage's issue surged too (a new key, by the absolute-rate rule): folded into the
    # township's alert, which names it, with no alert of its own
    related = {parent for a in alerts if a.alert_id == outage.alert_id for parent in a.explanation.parents}
    assert any(parent.startswith("cluster|cluster=outage-") for parent in related)
    assert "限电" in rumour.explanation.top_keywords and rumour.observed >= 8
