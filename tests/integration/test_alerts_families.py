"""Every family of key through the live alerts worker on the real Kafka.

Overall-, source- and cluster-level surges over three days of a steady stream
(15-minute windows closing one at a time, as the worker closes them), each
built so that only its own family has reason to fire: the surge posts carry a
topic the steady stream never had (its key is new, and a new key stays quiet in
its first hour) and name no township. Topic- and township-level surges are in
``test_alerts.py``. Last, the demo's stories live: detectors warmed from the
demo history into the worker's changelog, then the demo stream with the
timestamps of now, as the connectors deliver it (only the APP carries a
region), closed by the wall clock: one township outage alert within two
buckets.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.detector import DetectorConfig
from services.alerts.warm import (
    PastPost,
    changelog_records,
    changelog_topic,
    ensure_changelog,
    warm_detectors,
)
from services.demo.history import history
from tests.alerts.streams import demo_posts, make_post, steady_posts
from tests.integration.conftest import Pipeline, wait_until
from tests.integration.test_alerts import (
    AFTER,
    BUCKET_SECONDS,
    HISTORY,
    SURGE_AT,
    _alert_reader,
    _closed_bucket,
    _produce,
    _start_alerts,
)
from yuqing.contracts import Alert, AlertState, EnrichedPost, Sentiment, Topic
from yuqing.kafka import make_producer
from yuqing.paths import project_paths
from yuqing.places import load_gazetteer
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration

NEW_TOPIC = Topic.OTHER  # never in the steady stream


def _surge(count: int, *, source: str | None = None, band: int | None = None, seed: int = 5
           ) -> list[EnrichedPost]:
    """``count`` posts within ten minutes of SURGE_AT: from ``source`` (else each from a source of
    its own), with fingerprints in SimHash band ``band`` (else random ones)."""
    rng = random.Random(seed)
    posts = []
    for i in range(count):
        fingerprint = rng.getrandbits(64)
        if band is not None:
            fingerprint = (band << 56) | (fingerprint >> 8)
        created = SURGE_AT + timedelta(seconds=rng.uniform(0, 600))
        post = make_post(index=f"surge-{seed}-{i}", created_at=created, topic=NEW_TOPIC,
                         region="城关镇", source="app-main", text="请问这个怎么弄",
                         keywords=["请问"], fingerprint=fingerprint, sentiment=Sentiment.NEUTRAL)
        posts.append(post.model_copy(update={"region": None, "source": source or f"partner-{seed}-{i}"}))
    return posts


def _firing_after_the_last_window(pipeline: Pipeline, kafka_settings: KafkaSettings,
                                  surge: list[EnrichedPost], seed: int) -> list[Alert]:
    _start_alerts(pipeline)
    end = SURGE_AT + AFTER
    _produce(kafka_settings, sorted(steady_posts(SURGE_AT - HISTORY, end, seed=seed) + surge,
                                    key=lambda p: p.created_at))
    last_closable = (end - timedelta(seconds=2 * BUCKET_SECONDS + 60)).timestamp()
    wait_until(lambda: _closed_bucket(pipeline) >= last_closable, 150, "the last windows to close")
    read = _alert_reader(kafka_settings)
    for _ in range(6):  # a few polls: the first ones may only join the topic
        alerts = read()
    return [a for a in alerts if a.state is AlertState.FIRING]


def test_an_overall_surge_fires_one_overall_alert(pipeline: Pipeline, kafka_settings: KafkaSettings):
    # Sixty posts from sixty new sources on a new topic: only the total surges.
    surge = _surge(60, seed=31)
    firing = _firing_after_the_last_window(pipeline, kafka_settings, surge, seed=41)
    assert [a.key.label() for a in firing] == ["overall"]
    assert firing[0].window_start == SURGE_AT and firing[0].observed >= len(surge)


def test_a_source_surge_fires_one_source_alert(pipeline: Pipeline, kafka_settings: KafkaSettings):
    surge = _surge(40, source="forum-intranet", seed=32)
    firing = _firing_after_the_last_window(pipeline, kafka_settings, surge, seed=42)
    assert [a.key.label() for a in firing] == ["source|source=forum-intranet"]
    alert = firing[0]
    assert alert.window_start == SURGE_AT and alert.observed >= len(surge)


def test_a_cluster_surge_fires_one_cluster_alert(pipeline: Pipeline, kafka_settings: KafkaSettings):
    # Forty copies of one text (fingerprints in one SimHash band) from forty new sources.
    surge = _surge(40, band=0x5A, seed=33)
    firing = _firing_after_the_last_window(pipeline, kafka_settings, surge, seed=43)
    assert [a.key.label() for a in firing] == ["cluster|cluster=5a"]
    alert = firing[0]
    assert alert.window_start == SURGE_AT and alert.observed >= len(surge)
    assert set(alert.sample_post_ids) <= {p.post_id for p in surge}


# -- the demo's story, live --------------------------------------------------------------


def _bucket(moment: datetime) -> datetime:
    return datetime.fromtimestamp(moment.timestamp() // 300 * 300, UTC)


def _warm_changelog(kafka_settings: KafkaSettings, app_id: str, until: datetime) -> None:
    """What ``yuqing alerts warm`` writes, from three days of the demo history (enough history)."""
    places = load_gazetteer(project_paths().config / "places.toml")
    entries = warm_detectors((PastPost.of(p) for p in history(until, days=3)), DetectorConfig(),
                             until=until, places=places)
    topic = changelog_topic(app_id)
    ensure_changelog(kafka_settings, topic)
    producer = make_producer(kafka_settings, client_id="test-warm")
    for key, value in changelog_records(entries):
        producer.send(topic, key=key, value=value, partition=0)
    producer.flush()
    producer.close()


@pytest.mark.timeout(900)  # windows close by the wall clock: minutes
def test_the_demo_outage_over_a_warmed_baseline_fires_one_township_alert_live(
    pipeline: Pipeline, kafka_settings: KafkaSettings,
):
    now = datetime.now(UTC)
    start = now - timedelta(seconds=601)  # as the demo replay dates its posts
    _warm_changelog(kafka_settings, pipeline.env["YUQING_ALERTS_APP_ID"], until=start)
    pipeline.env.update({"YUQING_ALERTS_BUCKET_SECONDS": "300", "YUQING_ALERTS_GRACE_SECONDS": "120"})
    pipeline.start("alerts")  # the default idle close: a silent live stream closes by wall clock
    _produce(kafka_settings, demo_posts(start))
    read = _alert_reader(kafka_settings)
    # The burst's last window ends at most five minutes after the replay; it closes two minutes
    # (the grace) later by wall clock, after a minute of silence.
    wait_until(lambda: any(a.state is AlertState.FIRING for a in read()), 420, "the outage to fire")
    rumour_bucket = _bucket(start + timedelta(seconds=421))
    wait_until(lambda: _closed_bucket(pipeline) >= rumour_bucket.timestamp(), 420,
               "the rumour's first window to close")
    # The rumour's topic alert waits two more buckets for a township (ten minutes more of wall
    # clock): test_demo_story checks it fires, test_alerts.py a topic alert through this worker.
    firing = [a for a in read() if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic_region|topic=outage|region=河口镇"]
    outage = firing[0]
    assert outage.window_end <= _bucket(start + timedelta(seconds=171)) + timedelta(minutes=10)
    assert "停电" in outage.explanation.top_keywords
