"""``yuqing dlq tail`` against the real posts.dlq topic."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from typer.testing import CliRunner

from services.ingest.dlq import tail
from tests.conftest import unique
from yuqing.cli import app
from yuqing.contracts import DeadLetter
from yuqing.contracts.codec import encode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


def dead_letter(source: str, offset: int) -> bytes:
    original = json.dumps({"post_id": f"{offset:032x}", "source": source}).encode()
    return encode(DeadLetter(original_b64=base64.b64encode(original).decode(), topic="posts.raw",
                             partition=0, offset=offset, error_class="ContractError",
                             error_message=f"bad post {offset}", service="nlp",
                             failed_at=datetime.now(UTC)))


def test_tail_shows_the_latest_dead_letters_and_filters_by_source(kafka_settings: KafkaSettings) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    topic = kafka_settings.topic(LogicalTopic.POSTS_DLQ)
    for offset in range(6):
        producer.send(topic, dead_letter("crm-95598" if offset % 2 else "app-main", offset),
                      partition=0)
    producer.send(topic, b"not a dead letter", partition=0)
    producer.flush()
    producer.close()

    latest: list[str] = []
    assert tail(kafka_settings, lines=3, emit=latest.append) == 3
    assert ["bad post 4" in latest[0], "bad post 5" in latest[1]] == [True, True]
    assert latest[2].startswith("unreadable record")

    crm: list[str] = []
    tail(kafka_settings, lines=100, source="crm-95598", emit=crm.append)
    assert [line.rsplit(" ", 1)[-1] for line in crm] == ["1", "3", "5"]


@pytest.mark.parametrize("command", [["dlq", "tail"], ["dlq", "replay", "--dry-run"]])
def test_no_dead_letter_topic_is_one_line_and_1(infra: None, monkeypatch: pytest.MonkeyPatch,
                                                command: list[str]) -> None:
    # it was printed without "error:" and ended with 2, the status of a mistyped option
    prefix = unique("t") + "."
    monkeypatch.setenv("YUQING_KAFKA_TOPIC_PREFIX", prefix)

    result = CliRunner().invoke(app, command)

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: topic {prefix}posts.dlq does not exist (run `yuqing topics`)"]


def test_tail_shows_the_letters_left_after_older_ones_aged_out(kafka_settings: KafkaSettings) -> None:
    # the offsets before the partition's first were reset to its end: nothing was shown
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    topic = kafka_settings.topic(LogicalTopic.POSTS_DLQ)
    for offset in range(10):
        producer.send(topic, dead_letter("app-main", offset), partition=0)
    producer.flush()
    producer.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.servers())
    try:
        admin.delete_records({TopicPartition(topic, 0): 8})  # as retention deletes old segments
    finally:
        admin.close()

    latest: list[str] = []
    assert tail(kafka_settings, lines=5, emit=latest.append) == 2
    assert ["bad post 8" in latest[0], "bad post 9" in latest[1]] == [True, True]
