"""The demo's story at the counting stage: 14 days of history warmed, then the live demo stream."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from services.alerts.detector import DetectorConfig
from services.alerts.evidence import Observation
from services.alerts.lifecycle import TrackerConfig
from services.alerts.warm import PastPost, warm_detectors
from services.alerts.watch import SurgeWatch, WatchConfig
from services.alerts.windows import WindowPolicy
from services.demo.history import demo_places, history
from services.demo.stream import DEMO_STREAM
from tests.alerts.streams import make_post
from yuqing.contracts import Alert, AlertState, EnrichedPost, Sentiment, Topic

LIVE = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # 20:30 local, a Thursday evening
OUTAGE_WORDS = ("停电", "没电", "停了", "来电")


def _demo_posts() -> list[EnrichedPost]:
    """The demo stream as the NLP stage would label it: outage where the text says so."""
    posts = []
    for n, line in enumerate(DEMO_STREAM.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        outage = any(word in record["text"] for word in OUTAGE_WORDS)
        posts.append(make_post(
            index=f"demo-{n}", created_at=LIVE + timedelta(seconds=record["offset_s"]),
            topic=Topic.OUTAGE if outage else Topic.OTHER, region=record["region"], source="app-main",
            text=record["text"], keywords=["停电"] if outage else [],
            fingerprint=random.Random(n).getrandbits(64),
            sentiment=Sentiment.NEGATIVE if outage else Sentiment.NEUTRAL))
    return posts


def _run(tables: dict, posts: list[EnrichedPost]) -> list[Alert]:
    config = WatchConfig(window=WindowPolicy(300, 60), detector=DetectorConfig(),
                         tracker=TrackerConfig())
    watch = SurgeWatch(config, **{name: tables.setdefault(name, {}) for name in
                                  ("windows", "detectors", "desk", "posts")})
    alerts: list[Alert] = []
    for offset, post in enumerate(posts):
        observation = Observation.of(post, max_future_seconds=300)
        watch.add(observation, partition=0, offset=offset)
        alerts += [a for c in watch.advance(observation.event_time, now=LIVE).closed for a in c.alerts]
    # The stream goes quiet: close the next half hour, one bucket at a time.
    for minute in range(0, 35, 5):
        moment = (LIVE + timedelta(minutes=15 + minute)).timestamp()
        alerts += [a for c in watch.advance(moment, now=LIVE).closed for a in c.alerts]
    return alerts


def test_history_covers_every_demo_township_with_a_day_rhythm():
    past = list(history(LIVE, days=14))
    assert {p.region for p in past} == set(demo_places())
    noon = sum(1 for p in past if (p.created_at + timedelta(hours=8)).hour == 12)
    night = sum(1 for p in past if (p.created_at + timedelta(hours=8)).hour == 3)
    assert noon > 3 * night


def test_the_hekou_outage_burst_fires_one_alert_on_its_township_within_two_buckets():
    past = (PastPost.of(p) for p in history(LIVE, days=14))
    entries = warm_detectors(past, DetectorConfig(), until=LIVE)
    alerts = _run({"detectors": {label: e.to_dict() for label, e in entries.items()}}, _demo_posts())
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic_region|topic=outage|region=河口镇"]
    first_hekou = LIVE + timedelta(seconds=171)
    assert firing[0].window_end <= first_hekou + timedelta(minutes=15)  # its bucket and the next
    assert "停电" in firing[0].explanation.top_keywords and firing[0].sample_post_ids
