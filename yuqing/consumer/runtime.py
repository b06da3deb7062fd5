"""The part of the consumer loop that does not depend on the Kafka client.

Every worker runs one loop: read a batch, check its offsets follow on,
call the worker's processing function, turn invalid records into dead
letters under the cap, produce and wait for the broker's acknowledgements,
then commit -- or stop without committing (:func:`stop_uncommitted`). The
client-specific halves are :mod:`yuqing.consumer.faust_driver` (Faust
agents) and :mod:`yuqing.consumer.kafka_driver` (kafka-python).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from yuqing.consumer.dlq import DeadLetterRateExceeded, DlqPolicy, make_dead_letter
from yuqing.consumer.offsets import OffsetGaps
from yuqing.consumer.records import BatchOutcome, InvalidMessage, Output, Record
from yuqing.consumer.settings import ConsumerSettings
from yuqing.contracts.codec import encode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """One worker's error boundary: offset guard, dead letters and their cap (pure)."""

    service: str
    dlq_topic: str
    policy: DlqPolicy
    max_message_bytes: int
    gaps: OffsetGaps = field(default_factory=OffsetGaps)
    on_invalid: Callable[[InvalidMessage], None] = lambda _: None

    @classmethod
    def create(cls, service: str, kafka: KafkaSettings, settings: ConsumerSettings, *,
               on_invalid: Callable[[InvalidMessage], None] | None = None) -> Runtime:
        runtime = cls(service=service, dlq_topic=kafka.topic(LogicalTopic.POSTS_DLQ),
                      policy=DlqPolicy(settings.dlq_limit()),
                      max_message_bytes=kafka.max_message_bytes)
        if on_invalid is not None:
            runtime.on_invalid = on_invalid
        return runtime

    def settle(self, records: Sequence[Record], outcome: BatchOutcome) -> list[Output]:
        """Everything to produce for a batch: its outputs, then its dead letters.

        Counts every record against the dead-letter cap first, so a batch
        that crosses it is not dead-lettered (DeadLetterRateExceeded).
        """
        invalid = {(m.topic, m.partition, m.offset): m for m in outcome.invalid}
        try:
            for record in records:
                self.policy.record(invalid=(record.topic, record.partition, record.offset) in invalid)
        except DeadLetterRateExceeded as exc:
            raise DeadLetterRateExceeded(f"{exc}; {_first_invalid(outcome.invalid)}") from exc
        by_position = {(r.topic, r.partition, r.offset): r for r in records}
        letters = [self.dead_letter(by_position[where], message) for where, message in invalid.items()]
        return [*outcome.outputs, *letters]

    def dead_letter(self, record: Record, message: InvalidMessage) -> Output:
        log.warning("dead-lettering %s[%d]@%d: %s", record.topic, record.partition, record.offset,
                    message.reason)
        self.on_invalid(message)
        letter = make_dead_letter(
            value=record.value, key=record.key, topic=record.topic, partition=record.partition,
            offset=record.offset, error=ValueError(message.reason), error_class=message.error_class,
            service=self.service, max_bytes=self.max_message_bytes)
        return Output(self.dlq_topic, record.key, encode(letter))



def _first_invalid(invalid: Sequence[InvalidMessage]) -> str:
    """Why a batch stopped at the cap: none of it reaches posts.dlq, so its stop line says it."""
    if not invalid:  # the window filled up with this batch's valid records, the earlier ones invalid
        return "none invalid in this batch (see the dead letters before it)"
    first = min(invalid, key=lambda m: (m.topic, m.partition, m.offset))
    return (f"{len(invalid)} invalid in this batch, the first {first.topic}[{first.partition}]@"
            f"{first.offset}: {first.error_class}: {first.reason}")
