"""The consumer runtime around a kafka-python consumer: poll by size and time, process, commit.

Offsets are committed by hand, after the batch's sink succeeded and every
message it produced is acknowledged. A Kafka outage is waited out (the
batch stays uncommitted meanwhile); any other failure exits the process
uncommitted (:func:`yuqing.consumer.stop.stop_uncommitted`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, RebalanceInProgressError
from kafka.producer.future import FutureRecordMetadata

from yuqing.consumer.offsets import OffsetGaps
from yuqing.consumer.records import BatchOutcome, Output, Record
from yuqing.consumer.runtime import Runtime
from yuqing.consumer.stop import stop_uncommitted
from yuqing.kafka import until_kafka_answers

log = logging.getLogger(__name__)
Process = Callable[[list[Record]], BatchOutcome]
GROW_AFTER = 10  # commits in a row before a halved batch limit doubles again


class ForgetOnRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Resets the offset-gap guard for partitions that change owner."""

    def __init__(self, gaps: OffsetGaps) -> None:
        self.gaps = gaps

    def on_partitions_revoked(self, revoked: Sequence[object]) -> None:
        self.gaps.forget((tp.topic, tp.partition) for tp in revoked)  # type: ignore[attr-defined]

    def on_partitions_assigned(self, assigned: Sequence[object]) -> None:
        self.gaps.forget((tp.topic, tp.partition) for tp in assigned)  # type: ignore[attr-defined]


class KafkaDriver:
    def __init__(self, consumer: KafkaConsumer, producer: KafkaProducer, runtime: Runtime, *,
                 batch_size: int, batch_wait_s: float, ack_timeout_s: float) -> None:
        self.consumer, self.producer, self.runtime = consumer, producer, runtime
        self.batch_size, self.batch_wait_s, self.ack_timeout_s = batch_size, batch_wait_s, ack_timeout_s
        # records a batch takes now: halved when a batch's commit is refused (the batch took longer
        # than max.poll.interval.ms and the group moved on), back to batch_size step by step
        self.batch_limit = batch_size
        self._committed_in_a_row = 0
        self._stopping = False

    def stop(self) -> None:
        """Finish the current batch, then return from :meth:`run` (a signal handler calls this)."""
        self._stopping = True

    def stopping(self) -> bool:
        return self._stopping

    def run(self, process: Process, *, on_idle: Callable[[], None] | None = None) -> None:
        """Handle batches until :meth:`stop`; ``on_idle`` runs after a poll that brought nothing
        (a sink's deferred writes: they must not wait for the next message; see :meth:`idle`)."""
        try:
            while not self._stopping:
                records = self.collect()
                if records:
                    self.handle(records, process)
                elif on_idle is not None:
                    self.idle(on_idle)
        finally:
            self.close()

    def idle(self, work: Callable[[], None]) -> None:
        """Work between batches. No batch is open, so a failure (its sink away) is logged and the
        work tried again at the next idle poll or after the next batch, not a restart."""
        try:
            work()
        except Exception as exc:
            log.warning("work between batches failed (%s: %s); tried again later", type(exc).__name__, exc)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.close()

    def handle(self, records: list[Record], process: Process) -> None:
        """One batch: processed, produced, acknowledged, committed -- or the process exits uncommitted."""
        try:
            self.runtime.gaps.check(records)
            outputs = self.runtime.settle(records, process(records))
            self.produce(outputs)
            self.commit(len(records))
        except Exception as exc:
            self.close()
            stop_uncommitted(exc)

    def collect(self) -> list[Record]:
        """Up to ``batch_size`` records, or what came within ``batch_wait_s``."""
        batch: list[Record] = []
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_limit and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            polled = self.consumer.poll(timeout_ms=int(remaining * 1000),
                                        max_records=self.batch_limit - len(batch))
            for messages in polled.values():
                batch.extend(Record(m.topic, m.partition, m.offset, m.key, m.value) for m in messages)
        return batch

    def produce(self, outputs: Sequence[Output]) -> None:
        """Send every output, then wait for each; through a Kafka outage, keep trying."""
        deliveries = [_Delivery(self.producer, output) for output in outputs]
        for delivery in deliveries:
            until_kafka_answers("producing", delivery.send, give_up=self.stopping)
        for delivery in deliveries:
            until_kafka_answers("producing", partial(delivery.wait, self.ack_timeout_s),
                                give_up=self.stopping)

    def commit(self, handled: int = 0) -> None:
        """Commit what was handled; a commit refused by a rebalance is dropped.

        The new owner of those partitions handles the same records again;
        every sink here is idempotent (documents and messages keyed by id).

        A refused commit also halves the batches to come (``batch_limit``, at
        least one record): a batch slower than ``max.poll.interval.ms`` is
        refused because the group moved on without this consumer, and read
        again whole it was as slow again, for ever. After
        ``GROW_AFTER`` commits in a row the limit doubles, up to ``batch_size``.
        """
        try:
            until_kafka_answers("committing offsets", self.consumer.commit, give_up=self.stopping)
        except (CommitFailedError, RebalanceInProgressError) as exc:
            self.batch_limit = max(1, min(self.batch_limit, handled or self.batch_limit) // 2)
            self._committed_in_a_row = 0
            log.warning("offsets not committed (%s); the batch will be handled again, in batches of at "
                        "most %d records", exc, self.batch_limit)
            return
        self._committed_in_a_row += 1
        if self.batch_limit < self.batch_size and self._committed_in_a_row >= GROW_AFTER:
            self.batch_limit = min(self.batch_size, self.batch_limit * 2)
            self._committed_in_a_row = 0


class _Delivery:
    """One output on its way: sent again only if the last send failed."""

    def __init__(self, producer: KafkaProducer, output: Output) -> None:
        self.producer, self.output = producer, output
        self.future: FutureRecordMetadata | None = None

    def send(self) -> None:
        if self.future is None or (self.future.is_done and self.future.failed()):
            self.future = self.producer.send(self.output.topic, key=self.output.key,
                                             value=self.output.value)

    def wait(self, timeout_s: float) -> None:
        self.send()
        assert self.future is not None
        self.future.get(timeout=timeout_s)
