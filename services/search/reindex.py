"""Rebuild the search indices from Kafka, from an offset or a point in time, up to now.

The back-fill reads ``posts.enriched`` (and ``alerts``) with its own consumer
(no consumer group, nothing committed), so it can run beside the live indexer.
Records are released in timestamp order across partitions (ties by partition
and offset), so two rebuilds of the same stream assign the same issue ids.
Kafka keeps ``posts.enriched`` for 14 days; older posts cannot be rebuilt.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, TopicPartition

from services.search.bulk import PipelinedWriter, issue_table
from services.search.es import ensure_templates, make_client
from services.search.settings import SearchSettings
from yuqing.consumer import Record
from yuqing.kafka import require_topics
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)


KEPT_REJECTIONS = 1_000
"""Refused messages remembered with their reason; the others are counted. A re-index that Elasticsearch
refused throughout (a mapping from another version) kept a reason for each of millions of messages."""


@dataclass
class ReindexReport:
    read: int = 0
    indexed: int = 0
    rejected: list[tuple[str, int, int, str]] = field(default_factory=list)  # the first KEPT_REJECTIONS
    rejected_count: int = 0

    def reject(self, topic: str, partition: int, offset: int, why: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < KEPT_REJECTIONS:
            self.rejected.append((topic, partition, offset, why))


def start_offsets(consumer: KafkaConsumer, partitions: list[TopicPartition], *, from_offset: int | None,
                  from_time: datetime | None) -> dict[TopicPartition, int]:
    """Where to start in each partition (clamped to what Kafka still holds)."""
    first = consumer.beginning_offsets(partitions)
    last = consumer.end_offsets(partitions)
    if from_time is not None:
        # a time before 1970 is before every record (Kafka refuses a negative timestamp)
        since_ms = max(0, int(from_time.timestamp() * 1000))
        found = consumer.offsets_for_times({tp: since_ms for tp in partitions})
        return {tp: (found[tp].offset if found.get(tp) else last[tp]) for tp in partitions}
    if from_offset is not None:
        return {tp: min(max(from_offset, first[tp]), last[tp]) for tp in partitions}
    return dict(first)


def merged_records(consumer: KafkaConsumer, ends: dict[TopicPartition, int],
                   buffer_max: int = 5000) -> Iterator[Record]:
    """Records up to ``ends``, merged across partitions by (timestamp, partition, offset).

    A k-way merge of the partitions' own orders: a record is released only when
    every partition not yet read to its end has a record buffered, so the
    result does not depend on how polls happen to batch the records.
    """
    buffers: dict[TopicPartition, deque[tuple[int, int, int, Record]]] = {tp: deque() for tp in ends}
    unread = {tp for tp in ends if consumer.position(tp) < ends[tp]}
    while True:
        if any(not buffers[tp] for tp in unread):
            _poll_into(consumer, buffers, ends, unread, buffer_max)
            continue
        heads = [(buf[0], tp) for tp, buf in buffers.items() if buf]
        if not heads:
            return
        _, tp = min(heads, key=lambda head: (head[0][0], head[1].topic, *head[0][1:3]))
        yield buffers[tp].popleft()[3]
        if tp in unread and len(buffers[tp]) < buffer_max // 2:
            consumer.resume(tp)


def _poll_into(consumer: KafkaConsumer, buffers: dict[TopicPartition, deque[tuple[int, int, int, Record]]],
               ends: dict[TopicPartition, int], unread: set[TopicPartition], buffer_max: int) -> None:
    for tp, records in consumer.poll(timeout_ms=1000, max_records=2000).items():
        buffers[tp].extend((r.timestamp, r.partition, r.offset,
                            Record(r.topic, r.partition, r.offset, r.key, r.value))
                           for r in records if r.offset < ends[tp])
        if len(buffers[tp]) >= buffer_max:
            consumer.pause(tp)  # far ahead of the others: wait until they catch up
    for tp in list(unread):
        if consumer.position(tp) >= ends[tp]:
            unread.discard(tp)


def reindex(settings: SearchSettings, *, from_offset: int | None = None, from_time: datetime | None = None,
            include_alerts: bool = True, on_progress: Callable[[int, int], None] | None = None,
            batch_size: int = 1000) -> ReindexReport:
    """Index every record from the start point up to the end offsets seen when it began.

    Raises :class:`~yuqing.kafka.MissingTopic` before anything is written when a topic to read
    is not there (a mistyped YUQING_KAFKA_TOPIC_PREFIX read nothing and answered "read 0,
    indexed 0", as a rebuild with nothing to do).
    """
    topics = [LogicalTopic.POSTS_ENRICHED] + ([LogicalTopic.ALERTS] if include_alerts else [])
    require_topics(settings.kafka, topics)
    client = make_client(settings.es)
    ensure_templates(client, settings.es, settings.refresh_interval)
    issues = issue_table(settings)
    issues.warm(client, settings.es.index_prefix)
    issues.replay_corrections(client, settings.es.index_prefix)  # posts older than the warm-up too
    writer = PipelinedWriter(client, settings.es.index_prefix, issues=issues,
                             alerts_topic=settings.kafka.topic(LogicalTopic.ALERTS),
                             max_retries=settings.bulk_max_retries, slice_docs=settings.bulk_slice_docs)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers(), group_id=None,
                             enable_auto_commit=False, client_id="search-reindex",
                             **settings.kafka.client_options())
    try:
        partitions = [TopicPartition(settings.kafka.topic(t), p) for t in topics
                      for p in sorted(consumer.partitions_for_topic(settings.kafka.topic(t)) or ())]
        consumer.assign(partitions)
        starts = start_offsets(consumer, partitions, from_offset=from_offset, from_time=from_time)
        ends = consumer.end_offsets(partitions)
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        report = ReindexReport()
        batch: list[Record] = []
        for message in merged_records(consumer, ends):
            batch.append(message)
            if len(batch) >= batch_size:
                _write(settings, client, writer, batch, report)
                batch = []
                if on_progress:
                    on_progress(report.read, total)
        if batch:
            _write(settings, client, writer, batch, report)
        issues.record_merges(client, settings.es.index_prefix, force=True)
        if on_progress:
            on_progress(report.read, total)
        return report
    finally:
        writer.close()
        consumer.close()


def _write(settings: SearchSettings, client: Elasticsearch, writer: PipelinedWriter, batch: list[Record],
           report: ReindexReport) -> None:
    outcome = writer.write(batch)
    writer.issues.record_merges(client, settings.es.index_prefix)
    report.read += len(batch)
    report.indexed += outcome.indexed
    for message, why in outcome.rejected:
        report.reject(message.topic, message.partition, message.offset, why)
