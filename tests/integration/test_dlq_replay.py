"""``yuqing dlq replay`` against the real Kafka: the originals go back to their topic, whole."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.ingest.dlq_replay import ReplayFilter, replay
from tests.test_cli import _yuqing
from yuqing.consumer.dlq import make_dead_letter
from yuqing.contracts.codec import encode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


Message = tuple[int, bytes, bytes]


def _read(settings: KafkaSettings, topic: str, at_least: int, timeout_s: float = 30) -> list[Message]:
    """(offset, key, value) of partition 0 of ``topic``, once ``at_least`` are there."""
    consumer = KafkaConsumer(bootstrap_servers=settings.servers(), enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    found: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < at_least and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found += [(r.offset, r.key, r.value) for r in records]
        return found
    finally:
        consumer.close()


def test_dead_letters_are_replayed_whole_to_their_topic_once(kafka_settings: KafkaSettings) -> None:
    raw = kafka_settings.topic(LogicalTopic.POSTS_RAW)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    small = b'{"post_id": "' + b"a" * 32 + b'"}'
    large = b'{"post_id": "' + b"b" * 32 + b'", "text": "' + b"x" * 5000 + b'"}'
    sent = [producer.send(raw, key=key, value=value, partition=0).get(timeout=10).offset
            for key, value in ((b"a" * 32, small), (b"b" * 32, large))]
    letters = [make_dead_letter(value=small, key=b"a" * 32, topic=raw, partition=0, offset=sent[0],
                                error=ValueError("model down"), service="nlp"),
               make_dead_letter(value=small, key=b"a" * 32, topic=raw, partition=0, offset=sent[0],
                                error=ValueError("model down"), service="nlp"),
               make_dead_letter(value=large, key=b"b" * 32, topic=raw, partition=0, offset=sent[1],
                                error=ValueError("too long"), service="nlp", max_bytes=1_200),
               make_dead_letter(value=b"{}", key=None, topic=raw, partition=0, offset=99,
                                error=ValueError("other"), service="alerts"),
               make_dead_letter(value=large, key=None, topic=raw, partition=0, offset=10_000,
                                error=ValueError("gone"), service="search-indexer", max_bytes=1_200)]
    for letter in letters:
        producer.send(kafka_settings.topic(LogicalTopic.POSTS_DLQ), encode(letter), partition=0)
    producer.send(kafka_settings.topic(LogicalTopic.POSTS_DLQ), b"not a dead letter", partition=0)
    producer.flush()
    producer.close()
    assert "[original cut to" in letters[2].error_message

    lines: list[str] = []
    report = replay(kafka_settings, ReplayFilter(service="nlp"), emit=lines.append)

    assert report.replayed == [f"{raw}[0]@{sent[0]}", f"{raw}[0]@{sent[1]}"] and report.missing == []
    assert len(lines) == 2
    on_topic = _read(kafka_settings, raw, at_least=4)
    assert [(key, value) for _, key, value in on_topic[2:]] == [(b"a" * 32, small), (b"b" * 32, large)]


def test_a_cut_original_its_topic_no_longer_holds_is_reported(kafka_settings: KafkaSettings) -> None:
    raw = kafka_settings.topic(LogicalTopic.POSTS_RAW)
    letter = make_dead_letter(value=b'{"text": "' + b"x" * 5000 + b'"}', key=None, topic=raw, partition=0,
                              offset=10_000, error=ValueError("gone"), service="search-indexer",
                              max_bytes=1_200)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    producer.send(kafka_settings.topic(LogicalTopic.POSTS_DLQ), encode(letter), partition=0).get(timeout=10)
    producer.close()

    report = replay(kafka_settings, ReplayFilter(), emit=lambda _: None)

    assert report.replayed == [] and report.missing == [f"{raw}[0]@10000"]
    assert _read(kafka_settings, raw, at_least=1, timeout_s=2) == []


def test_a_message_that_failed_again_after_a_replay_is_replayed_once(kafka_settings: KafkaSettings) -> None:
    # Its letters are the original's and the replayed copy's, at another offset: every replay that
    # failed again published it once per letter, doubling it each time.
    raw = kafka_settings.topic(LogicalTopic.POSTS_RAW)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    poison, other = b'{"post_id": "x0"}', b'{"post_id": "x1"}'
    offsets = [producer.send(raw, key=b"bad", value=value, partition=0).get(timeout=10).offset
               for value in (poison, poison, other)]
    for offset, value in zip(offsets, (poison, poison, other), strict=True):
        letter = make_dead_letter(value=value, key=b"bad", topic=raw, partition=0, offset=offset,
                                  error=ValueError("contract"), service="nlp")
        producer.send(kafka_settings.topic(LogicalTopic.POSTS_DLQ), encode(letter), partition=0)
    producer.flush()
    producer.close()

    lines: list[str] = []
    report = replay(kafka_settings, ReplayFilter(service="nlp"), emit=lines.append)

    assert report.replayed == [f"{raw}[0]@{offsets[0]}", f"{raw}[0]@{offsets[2]}"]
    assert report.repeats == [f"{raw}[0]@{offsets[1]}"]
    assert f"not replayed {raw}[0]@{offsets[1]}: the same message as {raw}[0]@{offsets[0]}" in lines
    published = _read(kafka_settings, raw, at_least=5)
    assert [value for _, _, value in published[3:]] == [poison, other]
    assert _read(kafka_settings, raw, at_least=6, timeout_s=3)[5:] == []


def test_a_letter_whose_topic_is_gone_is_reported_and_the_others_replayed(
        kafka_settings: KafkaSettings) -> None:
    # the send waited for the missing topic's metadata: the whole replay ended in "KafkaTimeoutError:
    # Failed to update metadata after 5.0 secs.", naming no topic, and the letters after it were left
    raw, gone = kafka_settings.topic(LogicalTopic.POSTS_RAW), kafka_settings.topic_prefix + "gone"
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    for offset, topic in enumerate((gone, raw)):
        # the key of the first test's replay to partition 0 (the partition _read reads)
        letter = make_dead_letter(value=b'{"post_id": "g"}', key=b"a" * 32, topic=topic, partition=0,
                                  offset=offset, error=ValueError("contract"), service="nlp")
        producer.send(kafka_settings.topic(LogicalTopic.POSTS_DLQ), encode(letter), partition=0)
    producer.flush()
    producer.close()

    lines: list[str] = []
    report = replay(kafka_settings, ReplayFilter(), emit=lines.append)

    assert report.missing == [f"{gone}[0]@0"] and report.replayed == [f"{raw}[0]@1"]
    assert lines[0] == f"not replayed {gone}[0]@0: topic {gone} does not exist"
    assert [value for _, _, value in _read(kafka_settings, raw, at_least=1)] == [b'{"post_id": "g"}']


def test_tombstones_are_never_replayed_and_are_counted(kafka_settings: KafkaSettings) -> None:
    # a record without a value that the NLP worker dead-lettered ("empty message (tombstone)") was
    # replayed to posts.raw as an empty message, which every consumer refused again
    raw, dlq = kafka_settings.topic(LogicalTopic.POSTS_RAW), kafka_settings.topic(LogicalTopic.POSTS_DLQ)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers())
    nothing = producer.send(raw, key=b"t" * 32, value=None, partition=0).get(timeout=10).offset
    post = b'{"post_id": "' + b"a" * 32 + b'"}'  # its key's partition is 0, the one _read reads
    for letter in (make_dead_letter(value=None, key=b"t" * 32, topic=raw, partition=0, offset=nothing,
                                    error=ValueError("empty message (tombstone)"), service="nlp"),
                   make_dead_letter(value=post, key=b"a" * 32, topic=raw, partition=0, offset=50,
                                    error=ValueError("model down"), service="nlp")):
        producer.send(dlq, encode(letter), partition=0)
    on_dlq = producer.send(dlq, key=b"x", value=None, partition=0).get(timeout=10).offset
    producer.close()
    env = {"YUQING_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix}

    done = _yuqing("dlq", "replay", env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"skipped {dlq}[0]@{on_dlq}: a record without a value (a tombstone), not a dead letter",
        f"not replayed {raw}[0]@{nothing}: its original has no value (a tombstone); "
        "an empty message is no post",
        f"replayed {raw}[0]@50",
        "1 replayed, 0 no longer on their topic, 2 tombstones skipped (no value)"]
    published = _read(kafka_settings, raw, at_least=2)
    assert [(key, value) for _, key, value in published] == [(b"t" * 32, None), (b"a" * 32, post)]
    assert _read(kafka_settings, raw, at_least=3, timeout_s=3)[2:] == []

    tail = _yuqing("dlq", "tail", env=env)
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 3 and "model down" in lines[1]
    assert f"nlp      {raw}[0]@{nothing}" in lines[0] and "empty message (tombstone)" in lines[0]
    assert lines[2] == f"unreadable record {dlq}[0]@{on_dlq}: empty message (tombstone)"
