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
