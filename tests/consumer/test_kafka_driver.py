"""The kafka-python half of the consumer runtime against the real Kafka: commit only what was handled."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import unique
from yuqing.consumer import (
    BatchOutcome,
    ConsumerSettings,
    InvalidMessage,
    Output,
    Record,
    Runtime,
    SkippedOffsets,
)
from yuqing.consumer import kafka_driver as driver_module
from yuqing.consumer.kafka_driver import ForgetOnRebalance, KafkaDriver
from yuqing.contracts import DeadLetter
from yuqing.contracts.codec import decode
from yuqing.kafka import make_consumer, make_producer
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


class Stopped(BaseException):
    """Stands in for the process exit, so that the test can look at what was committed."""


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    reasons: list[BaseException] = []

    def stop(reason: BaseException) -> None:
        reasons.append(reason)
        raise Stopped

    monkeypatch.setattr(driver_module, "stop_uncommitted", stop)
    return reasons


def _send_records(settings: KafkaSettings, count: int) -> None:
    """``count`` records k0/v0 ... to partition 0 of posts.raw."""
    producer = make_producer(settings, client_id="test")
    for i in range(count):
        producer.send(settings.topic(LogicalTopic.POSTS_RAW), key=f"k{i}".encode(),
                      value=f"v{i}".encode(), partition=0)
    producer.flush()
    producer.close()


@pytest.fixture
def driver(kafka_settings: KafkaSettings) -> Iterator[KafkaDriver]:
    _send_records(kafka_settings, 10)
    runtime = Runtime.create("test-worker", kafka_settings, ConsumerSettings())
    consumer = make_consumer(kafka_settings, group_id=unique("g-"), topics=[LogicalTopic.POSTS_RAW],
                             client_id="test", listener=ForgetOnRebalance(runtime.gaps))
    kafka_driver = KafkaDriver(consumer, make_producer(kafka_settings, client_id="test"), runtime,
                               batch_size=4, batch_wait_s=0.5, ack_timeout_s=10)
    yield kafka_driver
    kafka_driver.close()


def _batch(driver: KafkaDriver, timeout: float = 30) -> list[Record]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = driver.collect()
        if records:
            return records
    raise AssertionError("no records")


def _committed(settings: KafkaSettings, driver: KafkaDriver) -> int:
    group = driver.consumer.config["group_id"]
    probe = KafkaConsumer(bootstrap_servers=settings.servers(), group_id=group, enable_auto_commit=False)
    try:
        return probe.committed(TopicPartition(settings.topic(LogicalTopic.POSTS_RAW), 0)) or 0
    finally:
        probe.close()


def _values(settings: KafkaSettings, logical: LogicalTopic) -> list[bytes]:
    reader = KafkaConsumer(bootstrap_servers=settings.servers(), auto_offset_reset="earliest",
                           consumer_timeout_ms=3000)
    reader.subscribe([settings.topic(logical)])
    values = [record.value for record in reader]
    reader.close()
    return values


def test_a_batch_is_produced_acknowledged_and_then_committed(kafka_settings: KafkaSettings,
                                                             driver: KafkaDriver):
    out = kafka_settings.topic(LogicalTopic.POSTS_ENRICHED)

    def process(records: list[Record]) -> BatchOutcome:
        outcome = BatchOutcome()
        for r in records:
            if r.value == b"v1":
                outcome.invalid.append(InvalidMessage(r.topic, r.partition, r.offset, "contract: v1"))
            else:
                outcome.outputs.append(Output(out, r.key, (r.value or b"") + b"!"))
        return outcome

    records = _batch(driver)
    driver.handle(records, process)
    assert _committed(kafka_settings, driver) == records[-1].offset + 1
    produced = sorted(_values(kafka_settings, LogicalTopic.POSTS_ENRICHED))
    assert produced == sorted((r.value or b"") + b"!" for r in records if r.value != b"v1")
    [letter] = [decode(DeadLetter, v) for v in _values(kafka_settings, LogicalTopic.POSTS_DLQ)]
    assert (letter.offset, letter.error_message, letter.service) == (1, "contract: v1", "test-worker")


def test_a_failing_batch_stops_the_worker_without_a_commit(kafka_settings: KafkaSettings,
                                                           driver: KafkaDriver, stops: list[BaseException]):
    driver.handle(_batch(driver), lambda records: BatchOutcome())
    committed = _committed(kafka_settings, driver)
    assert committed > 0

    def broken(records: list[Record]) -> BatchOutcome:
        raise RuntimeError("the sink is gone")

    with pytest.raises(Stopped):
        driver.handle(_batch(driver), broken)
    assert str(stops[0]) == "the sink is gone"
    assert _committed(kafka_settings, driver) == committed


def test_skipped_offsets_stop_the_worker_without_a_commit(kafka_settings: KafkaSettings,
                                                          driver: KafkaDriver, stops: list[BaseException]):
    first = _batch(driver)
    driver.handle(first, lambda records: BatchOutcome())
    committed = _committed(kafka_settings, driver)
    partition = TopicPartition(kafka_settings.topic(LogicalTopic.POSTS_RAW), 0)
    driver.consumer.seek(partition, committed + 3)  # a client that skips three messages
    with pytest.raises(Stopped):
        driver.handle(_batch(driver), lambda records: BatchOutcome())
    assert isinstance(stops[0], SkippedOffsets)
    assert _committed(kafka_settings, driver) == committed


def test_idle_work_runs_between_batches_and_a_failure_of_it_is_tried_again(
        kafka_settings: KafkaSettings, driver: KafkaDriver, stops: list[BaseException]):
    handled: list[int] = []
    idle_calls: list[int] = []

    def process(records: list[Record]) -> BatchOutcome:
        handled.extend(r.offset for r in records)
        return BatchOutcome()

    def work() -> None:  # the sink's deferred writes; the first try finds it away
        idle_calls.append(len(handled))
        if len(idle_calls) == 1:
            raise ConnectionError("sink away")
        if len(handled) == 10:
            driver.stop()

    driver.run(process, on_idle=work)
    assert handled == list(range(10)) and stops == []  # the failure stopped nothing
    assert len(idle_calls) >= 2 and idle_calls[-1] == 10


def test_a_batch_slower_than_the_poll_interval_is_handled_again_in_smaller_batches(
        kafka_settings: KafkaSettings, stops: list[BaseException]):
    # A batch that took longer than max.poll.interval.ms had its commit refused and was read again
    # whole, as slow again, for ever (a long unsegmented text made such batches in the indexer).
    _send_records(kafka_settings, 6)
    runtime = Runtime.create("test-worker", kafka_settings, ConsumerSettings())
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.servers(), group_id=unique("g-"),
                             client_id="test", enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_interval_ms=2_000, heartbeat_interval_ms=300)
    consumer.subscribe([kafka_settings.topic(LogicalTopic.POSTS_RAW)],
                       listener=ForgetOnRebalance(runtime.gaps))
    slow = KafkaDriver(consumer, make_producer(kafka_settings, client_id="test"), runtime,
                       batch_size=6, batch_wait_s=0.5, ack_timeout_s=10)
    sizes: list[int] = []

    def process(records: list[Record]) -> BatchOutcome:
        sizes.append(len(records))
        time.sleep(1.0 * len(records))  # a second a record: 6 s and 3 s are too slow, 1 s is not
        return BatchOutcome()

    committed = 0
    try:
        deadline = time.monotonic() + 120
        while committed < 6 and time.monotonic() < deadline:
            records = slow.collect()
            if records:
                slow.handle(records, process)
                committed = _committed(kafka_settings, slow)
    finally:
        slow.close()
    assert stops == [] and committed == 6, sizes
    assert sizes == [6, 3, 1, 1, 1, 1, 1, 1] and slow.batch_limit == 1
