"""Every family of key through the live alerts worker on the real Kafka.

Overall-, source- and cluster-level surges over three days of a steady stream
(15-minute windows closing one at a time, as the worker closes them), each
built so that only its own family has reason to fire: the surge posts carry a
topic the steady stream never had (its key is new, and a new key stays quiet in
its first hour) and name no township. Topic- and township-level surges are in
``test_alerts.py``.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.alerts.streams import make_post, steady_posts
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
