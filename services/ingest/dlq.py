"""``yuqing dlq tail``: the latest dead letters on ``posts.dlq``, one line each.

Each line says when and where a message failed (service, topic, partition,
offset), whose it was (the ``source`` and ``post_id`` of the original post, when
it can still be read) and why (error class and message).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from yuqing.contracts import DeadLetter
from yuqing.contracts.codec import ContractError, decode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic


@dataclass(frozen=True)
class DeadLetterLine:
    """What an operator needs from one dead letter."""

    failed_at: str
    service: str
    where: str
    source: str | None
    post_id: str | None
    reason: str

    def __str__(self) -> str:
        owner = f"source={self.source or '?'} post_id={self.post_id or '?'}"
        return f"{self.failed_at}  {self.service:<8} {self.where}  {owner}  {self.reason}"


def describe(letter: DeadLetter) -> DeadLetterLine:
    source, post_id = original_identity(letter.original_b64)
    return DeadLetterLine(
        failed_at=letter.failed_at.isoformat(timespec="seconds"), service=letter.service,
        where=f"{letter.topic}[{letter.partition}]@{letter.offset}", source=source,
        post_id=post_id, reason=f"{letter.error_class}: {letter.error_message}")


def original_identity(original_b64: str) -> tuple[str | None, str | None]:
    # The original may be exactly what could not be decoded; take what can be read.
    try:
        original = orjson.loads(base64.b64decode(original_b64, validate=True))
    except (binascii.Error, ValueError):
        return None, None
    if not isinstance(original, dict):
        return None, None
    source, post_id = original.get("source"), original.get("post_id")
    return (source if isinstance(source, str) else None,
            post_id if isinstance(post_id, str) else None)


def describe_record(record: ConsumerRecord) -> DeadLetterLine | str:
    """The line for a dead letter, or a note when the record is not a dead letter at all."""
    try:
        return describe(decode(DeadLetter, record.value))
    except ContractError as exc:
        return f"unreadable record {record.topic}[{record.partition}]@{record.offset}: {exc}"


def open_dead_letters(settings: KafkaSettings, *, client_id: str
                      ) -> tuple[KafkaConsumer, list[TopicPartition]]:
    """A consumer assigned to every partition of ``posts.dlq`` (no group, nothing committed), and
    the partitions; the caller closes it."""
    topic = settings.topic(LogicalTopic.POSTS_DLQ)
    consumer = KafkaConsumer(bootstrap_servers=settings.servers(), client_id=client_id,
                             enable_auto_commit=False, **settings.client_options())
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        consumer.close()
        raise LookupError(f"topic {topic} does not exist (run `yuqing topics`)")
    consumer.assign(partitions)
    return consumer, partitions


def tail(settings: KafkaSettings, *, lines: int = 20, follow: bool = False, source: str | None = None,
         emit: Callable[[str], None] = print, poll_timeout_ms: int = 1_000) -> int:
    """Emit the last ``lines`` dead letters of each partition (only ``source``'s when given), oldest
    first per partition; with ``follow``, keep emitting new ones until interrupted. Returns the
    number emitted."""
    consumer, partitions = open_dead_letters(settings, client_id="yuqing-dlq-tail")
    try:
        ends = consumer.end_offsets(partitions)
        # from the first letter the topic still holds: an offset its retention deleted was reset
        # to the end (the consumer's default), and a partition whose older letters had aged out
        # showed none of the ones it has
        starts = consumer.beginning_offsets(partitions)
        for partition in partitions:
            consumer.seek(partition, max(starts[partition], ends[partition] - lines))
        emitted = 0
        while True:
            records = records_of(consumer.poll(timeout_ms=poll_timeout_ms).values())
            for record in records:
                line = describe_record(record)
                if source is None or (isinstance(line, DeadLetterLine) and line.source == source):
                    emit(str(line))
                    emitted += 1
            if not follow and caught_up(consumer, ends):
                return emitted
    finally:
        consumer.close()


def records_of(batches: Iterable[list[ConsumerRecord]]) -> list[ConsumerRecord]:
    return [record for batch in batches for record in batch]


def caught_up(consumer: KafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return all(consumer.position(partition) >= end for partition, end in ends.items())
