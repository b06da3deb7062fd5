"""Every family of key through the live alerts worker on the real Kafka.

Overall-, source- and cluster-level surges over three days of a steady stream
(15-minute windows closing one at a time, as the worker closes them), each
built so that only its own family has reason to fire: the surge posts carry a
topic the steady stream never had (its key is new, and a new key stays quiet in
its first hour) and name no township; the overall and source surges are of
unrelated posts (each its own issue), the cluster surge of paraphrases of one
matter (one issue, whose key is new and judged by the absolute-rate rule from
its first bucket). Topic- and township-level surges are in ``test_alerts.py``.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.search.grouping import founder_issue_id
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
# one matter in other words each time (a failing face check in the app), no township named
MATTER = (
    "掌上电力新版本人脸识别一直失败，实名认证过不去",
    "更新掌上电力以后人脸认证老是失败，怎么办",
    "掌上电力的人脸识别认证失败好几次了，是不是新版本的问题",
    "新版掌上电力实名认证卡在人脸识别这一步",
    "人脸识别总提示失败，掌上电力刚更新的版本",
    "掌上电力认证要刷脸，刷了十几次都失败",
    "今天更新了掌上电力，人脸识别认证一直不通过",
    "掌上电力人脸认证失败，提示光线不足，换了地方也不行",
)
OPENINGS = ("", "请问", "求助：", "有人知道吗？", "急！")


def _unrelated(rng: random.Random) -> str:
    """A text that shares no words with any other (twelve random characters)."""
    return "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(12))


def _surge(count: int, *, source: str | None = None, one_matter: bool = False, seed: int = 5
           ) -> list[EnrichedPost]:
    """``count`` posts within ten minutes of SURGE_AT: from ``source`` (else each from a source of
    its own), paraphrasing one matter if ``one_matter`` (else unrelated to each other)."""
    rng = random.Random(seed)
    posts = []
    for i in range(count):
        text = rng.choice(OPENINGS) + MATTER[i % len(MATTER)] if one_matter else _unrelated(rng)
        created = SURGE_AT + timedelta(seconds=rng.uniform(0, 600))
        post = make_post(index=f"surge-{seed}-{i}", created_at=created, topic=NEW_TOPIC,
                         region="城关镇", source="app-main", text=text,
                         keywords=["请问"], fingerprint=rng.getrandbits(64), sentiment=Sentiment.NEUTRAL)
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
    # Forty posts of one matter in eight wordings, from forty new sources: one new issue surges.
    surge = _surge(40, one_matter=True, seed=33)
    firing = _firing_after_the_last_window(pipeline, kafka_settings, surge, seed=43)
    assert [a.key.family for a in firing] == ["cluster"], [a.key.label() for a in firing]
    alert = firing[0]
    # the key is the issue's id, named after its founding post, one of the surge's (which one
    # depends on the order the partitions deliver them in)
    assert alert.key.cluster in {founder_issue_id(p.post_id, NEW_TOPIC.value) for p in surge}
    assert alert.window_start == SURGE_AT and alert.observed >= len(surge)
    assert set(alert.sample_post_ids) <= {p.post_id for p in surge}
