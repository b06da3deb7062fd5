"""``yuqing kafka offsets`` against the real Kafka: a stopped group's offsets move, a running one's do not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from tests.conftest import unique
from yuqing.cli import app
from yuqing.group_offsets import GroupActive, Target, move_offsets
from yuqing.kafka import make_producer
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

OLD_MS = int(time.time() * 1000) - 3_600_000
NEW_MS = OLD_MS + 1_800_000


@pytest.fixture
def raw(kafka_settings: KafkaSettings) -> Iterator[tuple[str, str, KafkaAdminClient]]:
    """posts.raw with 5 messages in each of its 2 partitions (3 old, 2 newer) and a group at 1."""
    topic, group = kafka_settings.topic(LogicalTopic.POSTS_RAW), unique("offsets-")
    producer = make_producer(kafka_settings, client_id="offsets-test")
    for partition in (0, 1):
        for k in range(5):
            producer.send(topic, b"{}", partition=partition, timestamp_ms=OLD_MS if k < 3 else NEW_MS)
    producer.flush()
    producer.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.servers(), client_id="offsets-test")
    admin.alter_group_offsets(group, {TopicPartition(topic, p): OffsetAndMetadata(1, "", -1) for p in (0, 1)})
    yield topic, group, admin
    admin.close()


def _committed(admin: KafkaAdminClient, group: str, topic: str) -> list[int]:
    found = admin.list_group_offsets({group: None})[group]
    return [found[TopicPartition(topic, p)].offset for p in (0, 1)]


def test_offsets_move_to_latest_by_a_shift_and_to_a_time(kafka_settings, raw):
    topic, group, admin = raw
    moved = move_offsets(kafka_settings, group=group, topic=topic, target=Target(to_latest=True),
                         dry_run=True)
    assert [(m.partition, m.current, m.new) for m in moved] == [(0, 1, 5), (1, 1, 5)]
    assert _committed(admin, group, topic) == [1, 1]  # a dry run changes nothing

    move_offsets(kafka_settings, group=group, topic=topic, target=Target(to_latest=True))
    assert _committed(admin, group, topic) == [5, 5]
    move_offsets(kafka_settings, group=group, topic=topic, target=Target(shift=-4))
    assert _committed(admin, group, topic) == [1, 1]
    move_offsets(kafka_settings, group=group, topic=topic, target=Target(shift=-10))
    assert _committed(admin, group, topic) == [0, 0]  # kept within the partition
    at = datetime.fromtimestamp(NEW_MS / 1000, UTC)
    move_offsets(kafka_settings, group=group, topic=topic, target=Target(to_datetime=at))
    assert _committed(admin, group, topic) == [3, 3]


def test_the_command_moves_the_offsets_it_prints(kafka_settings, raw):
    topic, group, admin = raw
    env = {"YUQING_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers}
    result = CliRunner().invoke(app, ["kafka", "offsets", "--group", group, "--topic", topic,
                                      "--to-datetime", "2000-01-01T00:00:00+08:00"], env=env)
    assert result.exit_code == 0, result.output
    assert f"{topic}[0]: 1 -> 0" in result.output and f"{topic}[1]: 1 -> 0" in result.output
    assert _committed(admin, group, topic) == [0, 0]
    refused = CliRunner().invoke(app, ["kafka", "offsets", "--group", group, "--topic", topic,
                                       "--to-latest", "--shift", "1"], env=env)
    assert refused.exit_code == 1 and "exactly one of" in refused.output


def test_a_group_with_active_members_is_refused(kafka_settings, raw):
    topic, group, admin = raw
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_settings.servers(), group_id=group,
                             enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
        assert consumer.assignment()
        with pytest.raises(GroupActive, match="active member"):
            move_offsets(kafka_settings, group=group, topic=topic, target=Target(to_latest=True))
        assert _committed(admin, group, topic) == [1, 1]
    finally:
        consumer.close()
