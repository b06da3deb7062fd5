"""Topic creation against the real Kafka: usable when ``ensure_topics`` returns."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient

from tests.conftest import drop_topics, unique
from yuqing.kafka import ensure_topics
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


def test_created_topics_have_a_leader_for_every_partition_when_ensure_topics_returns(infra: None) -> None:
    settings = KafkaSettings(topic_prefix=unique("lead") + ".", partitions_override=3)
    try:
        created = ensure_topics(settings)
        admin = KafkaAdminClient(bootstrap_servers=settings.servers(), **settings.client_options())
        try:
            described = admin.describe_topics(created)
        finally:
            admin.close()
        assert sorted(created) == sorted(settings.topic(t) for t in LogicalTopic)
        assert sorted(t["name"] for t in described) == sorted(created)
        for topic in described:
            assert topic["error_code"] == 0, topic["name"]
            assert sorted(p["partition_index"] for p in topic["partitions"]) == [0, 1, 2]
            assert all(p["leader_id"] >= 0 for p in topic["partitions"]), topic["name"]
        assert ensure_topics(settings) == []  # a second call creates nothing and returns at once
    finally:
        drop_topics(settings, [settings.topic_prefix])


def test_topics_that_differ_from_their_contract_are_named(infra: None) -> None:
    # `yuqing topics` accepted a posts.raw made by hand with a one-hour retention and one
    # partition as it was: posts a stopped NLP worker had not read yet expired within the hour
    from kafka.admin import NewTopic

    from yuqing.kafka import topic_drift

    settings = KafkaSettings(topic_prefix=unique("drift") + ".")
    raw = settings.topic(LogicalTopic.POSTS_RAW)
    admin = KafkaAdminClient(bootstrap_servers=settings.servers(), **settings.client_options())
    try:
        admin.create_topics([NewTopic(name=raw, num_partitions=1, replication_factor=1, topic_configs={
            "retention.ms": "3600000", "cleanup.policy": "compact"})])
    finally:
        admin.close()
    try:
        ensure_topics(settings)
        drift = topic_drift(settings)
        assert [line.split(":")[0] for line in drift] == [raw] * 3, drift
        assert "retention.ms 3600000 is shorter than the contract's 604800000" in drift[0]
        assert "cleanup.policy compact, the contract's is delete" in drift[1]
        assert "1 partition(s), the contract's 6" in drift[2]
    finally:
        drop_topics(settings, [settings.topic_prefix])
