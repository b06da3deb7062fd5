"""``yuqing alerts warm`` writes the detectors' changelog on the real Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from services.alerts.state import DetectorEntry
from services.alerts.warm import run_warm
from tests.alerts.streams import steady_posts
from tests.conftest import drop_topics, unique
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def test_warm_from_posts_writes_one_changelog_record_per_key(
    infra: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_id = unique("warm")
    monkeypatch.setenv("YUQING_ALERTS_APP_ID", app_id)
    posts = steady_posts(NOW - timedelta(days=15), NOW, mean=1.0, seed=2)
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(p.model_dump_json() + "\n" for p in posts), encoding="utf-8")
    try:
        written, topic = run_warm(since="14d", posts=path, now=NOW)
        assert topic == f"{app_id}-detectors-changelog"
        consumer = KafkaConsumer(bootstrap_servers=KafkaSettings().servers(), enable_auto_commit=False,
                                 consumer_timeout_ms=5000)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        records = {json.loads(m.key): DetectorEntry.from_dict(json.loads(m.value)) for m in consumer}
        consumer.close()
    finally:
        drop_topics(KafkaSettings(), [app_id])
    assert len(records) == written and "topic_region|topic=outage|region=河口镇" in records
    assert {entry.last_bucket for entry in records.values()} == {int(NOW.timestamp()) - 300}


def test_the_changelog_warm_creates_has_the_configured_replication(infra: None) -> None:
    # created with one replica whatever YUQING_KAFKA_REPLICATION_FACTOR said: warm runs before the
    # worker ever did (a cold start), so the worker's detector state lived on one broker
    from kafka import KafkaAdminClient
    from kafka.errors import InvalidReplicationFactorError

    from services.alerts.warm import changelog_topic, ensure_changelog

    app_id = unique("warm")
    topic = changelog_topic(app_id)
    brokers = KafkaSettings().servers()
    admin = KafkaAdminClient(bootstrap_servers=brokers)
    try:
        more = len(admin.describe_cluster()["brokers"]) + 1
        with pytest.raises(InvalidReplicationFactorError):  # more replicas than brokers: refused
            ensure_changelog(KafkaSettings(replication_factor=more), topic)
        assert topic not in admin.list_topics()

        ensure_changelog(KafkaSettings(replication_factor=1), topic)
        (described,) = admin.describe_topics([topic])
        assert [len(p["replica_nodes"]) for p in described["partitions"]] == [1]
    finally:
        admin.close()
        drop_topics(KafkaSettings(), [app_id])


def test_warm_from_an_index_prefix_with_no_posts_index_says_so(
    infra: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # it ended in Elasticsearch's words (index_not_found_exception), naming no setting
    monkeypatch.setenv("YUQING_ES_INDEX_PREFIX", unique("nowarm"))
    monkeypatch.setenv("YUQING_ALERTS_APP_ID", unique("warm"))
    with pytest.raises(ValueError, match=r"no posts index nowarm\w*-posts at .*: nothing to warm from"):
        run_warm(since="14d", posts=None, now=NOW)
