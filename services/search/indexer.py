"""posts.enriched and alerts -> Elasticsearch, in bulk, committing offsets only after the write.

Posts are keyed by post id and alerts by alert id, so replays after a crash
overwrite instead of duplicating (at-least-once delivery made exact by an
idempotent sink). Issues are assigned here, before the write (grouping.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import ConnectionError as EsConnectionError
from elasticsearch.exceptions import TransportError
from kafka.errors import CommitFailedError, RebalanceInProgressError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential_jitter,
)

from services.search import metrics
from services.search.documents import alert_action, to_document
from services.search.es import ensure_templates, make_client, recent_fingerprints
from services.search.grouping import IssueTable
from services.search.mappings import (
    DEFAULT_RETENTION_MONTHS,
    OutsideRetentionError,
    retained_posts_index,
    small_alias,
)
from services.search.settings import SearchSettings
from yuqing.contracts import Alert, EnrichedPost
from yuqing.contracts.codec import ContractError, decode, encode
from yuqing.deadletter import DeadLetterBudget, make_dead_letter
from yuqing.kafka import connect, make_consumer, make_producer, until_kafka_answers
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)
SERVICE = "search-indexer"
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
CHUNK_DOCS, CHUNK_BYTES = 1000, 8 * 1024 * 1024


class RetryableBulkError(RuntimeError):
    pass


@dataclass
class Message:
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int


Rejection = tuple[Message, str]


@dataclass
class BulkOutcome:
    indexed: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def issue_table(settings: SearchSettings) -> IssueTable:
    return IssueTable(max_distance=settings.issue_max_distance,
                      window=timedelta(hours=settings.issue_window_hours),
                      max_entries=settings.issue_table_max_entries)


def build_actions(
    messages: Sequence[Message], prefix: str, *, issues: IssueTable | None = None,
    alerts_topic: str | None = None, keep_months: int = DEFAULT_RETENTION_MONTHS,
) -> tuple[list[dict[str, Any]], list[Message], list[Rejection]]:
    """Decode messages into bulk actions; undecodable ones are returned as rejections.

    Messages from ``alerts_topic`` become alert updates, all others posts.
    """
    issues = issues if issues is not None else IssueTable()
    alerts_index = small_alias(prefix, "alerts")
    actions, kept, rejected = [], [], []
    for message in messages:
        try:
            if message.topic == alerts_topic:
                action = alert_action(decode(Alert, message.value), alerts_index)
            else:
                action = _post_action(decode(EnrichedPost, message.value), prefix, issues,
                                      keep_months)
        except ContractError as exc:
            rejected.append((message, f"contract: {exc}"))
            continue
        except OutsideRetentionError as exc:
            rejected.append((message, f"retention: {exc}"))
            continue
        actions.append(action)
        kept.append(message)
    return actions, kept, rejected


def _post_action(post: EnrichedPost, prefix: str, issues: IssueTable,
                 keep_months: int) -> dict[str, Any]:
    index = retained_posts_index(prefix, post.created_at, keep_months=keep_months)
    issue = issues.assign(topic=post.topic.value, fingerprint=post.fingerprint,
                          created_at=post.created_at)
    return {"_op_type": "index", "_index": index,
            "_id": post.post_id, "_source": to_document(post, issue=issue)}


def write_bulk(client: Elasticsearch, actions: list[dict[str, Any]], kept: list[Message],
               max_retries: int) -> BulkOutcome:
    """Write with retries on 429/5xx; per-document 4xx rejections are returned, not retried."""
    outcome = BulkOutcome()
    pending = list(zip(actions, kept, strict=True))
    retrying = Retrying(
        retry=retry_if_exception_type((RetryableBulkError, EsConnectionError)),
        wait=wait_exponential_jitter(initial=0.2, max=10),
        stop=stop_after_attempt(max_retries + 1) if max_retries else stop_never,
        reraise=True, before_sleep=lambda _: metrics.BULK_RETRIES.inc(),
    )
    for attempt in retrying:
        with attempt:
            pending = _bulk_once(client, pending, outcome)
    return outcome


def _chunks(pending: list[tuple[dict[str, Any], Message]]) -> list[tuple[bytes, list[Any]]]:
    chunks: list[tuple[bytes, list[Any]]] = []
    body, size = bytearray(), 0
    members: list[tuple[dict[str, Any], Message]] = []
    for item in pending:
        meta, data = helpers.expand_action(item[0])
        line = orjson.dumps(meta) + b"\n" + orjson.dumps(data) + b"\n"
        if members and (len(members) >= CHUNK_DOCS or size + len(line) > CHUNK_BYTES):
            chunks.append((bytes(body), members))
            body, members, size = bytearray(), [], 0
        body += line
        members.append(item)
        size += len(line)
    if members:
        chunks.append((bytes(body), members))
    return chunks


def _bulk_once(client: Elasticsearch, pending: list[tuple[dict[str, Any], Message]],
               outcome: BulkOutcome) -> list[tuple[dict[str, Any], Message]]:
    retry: list[tuple[dict[str, Any], Message]] = []
    for body, members in _chunks(pending):
        try:
            response = client.bulk(body=body)
        except TransportError as exc:
            if exc.status_code not in RETRYABLE_STATUS and exc.status_code != "N/A":
                raise
            retry.extend(members)
            continue
        for item, (action, message) in zip(response["items"], members, strict=True):
            info = next(iter(item.values()))
            status = int(info.get("status", 500))
            if status < 300:
                outcome.indexed += 1
            elif status in RETRYABLE_STATUS:
                retry.append((action, message))
            else:
                outcome.rejected.append((message, f"elasticsearch {status}: {info.get('error')}"))
    if retry:
        pending[:] = retry
        raise RetryableBulkError(f"{len(retry)} documents got a retryable status")
    return []


class Indexer:
    """The consumer loop: poll -> batch by size/time -> bulk -> dead-letter -> commit."""

    def __init__(self, settings: SearchSettings, *, on_batch: Callable[[int], None] | None = None):
        self.settings = settings
        self.client = make_client(settings.es)
        ensure_templates(self.client, settings.es, settings.refresh_interval)
        self.issues = issue_table(settings)
        warmed = self.issues.load(recent_fingerprints(
            self.client, settings.es.index_prefix, window=self.issues.window,
            limit=settings.issue_table_max_entries))
        log.info("issue table warmed with %d recent fingerprints", warmed)
        self._stopping = False
        self.consumer = connect("connecting the consumer", lambda: make_consumer(
            settings.kafka, group_id=settings.indexer_group_id,
            topics=[LogicalTopic.POSTS_ENRICHED, LogicalTopic.ALERTS],
            client_id=SERVICE, max_poll_records=settings.bulk_max_docs), settings.kafka)
        self.producer = connect("connecting the producer", lambda: make_producer(
            settings.kafka, client_id=SERVICE), settings.kafka)
        self.dlq_topic = settings.kafka.topic(LogicalTopic.POSTS_DLQ)
        self.alerts_topic = settings.kafka.topic(LogicalTopic.ALERTS)
        self.budget = DeadLetterBudget()
        self.on_batch = on_batch

    def stop(self) -> None:
        self._stopping = True

    def _stopped(self) -> bool:
        return self._stopping

    def run(self) -> None:
        try:
            while not self._stopping:
                batch = self._collect()
                if batch:
                    self._flush(batch)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close()

    def _collect(self) -> list[Message]:
        batch: list[Message] = []
        deadline = time.monotonic() + self.settings.bulk_max_wait_s
        while len(batch) < self.settings.bulk_max_docs and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            polled = self.consumer.poll(timeout_ms=int(remaining * 1000),
                                        max_records=self.settings.bulk_max_docs - len(batch))
            for records in polled.values():
                batch.extend(Message(r.key, r.value, r.topic, r.partition, r.offset) for r in records)
        return batch

    def _flush(self, batch: list[Message]) -> None:
        started = time.perf_counter()
        actions, kept, rejected = build_actions(batch, self.settings.es.index_prefix,
                                                issues=self.issues, alerts_topic=self.alerts_topic,
                                                keep_months=self.settings.retention_months)
        outcome = write_bulk(self.client, actions, kept, self.settings.bulk_max_retries)
        rejected += outcome.rejected
        for message, reason in rejected:
            self._dead_letter(message, reason)  # returns once the broker has it
        self._commit()
        metrics.DOCS_INDEXED.inc(outcome.indexed)
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        metrics.ISSUE_TABLE_ENTRIES.set(len(self.issues))
        failed = {(m.topic, m.partition, m.offset) for m, _ in rejected}
        for message in batch:
            self.budget.record(failed=(message.topic, message.partition, message.offset) in failed)
        if self.on_batch:
            self.on_batch(len(batch))

    def _commit(self) -> None:
        """Commit what was written; through a Kafka outage, wait for the brokers to come back.

        A commit refused because the group rebalanced meanwhile is dropped: the
        new owner of those partitions writes the same documents again, under
        the same ids.
        """
        try:
            until_kafka_answers("committing offsets", self.consumer.commit, give_up=self._stopped)
        except (CommitFailedError, RebalanceInProgressError) as exc:
            log.warning("offsets not committed (%s); the batch will be written again", exc)

    def _dead_letter(self, message: Message, reason: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s", message.topic, message.partition,
                    message.offset, reason)
        metrics.DEAD_LETTERS.labels(reason=reason.split(":", 1)[0]).inc()
        metrics.DOCS_REJECTED.inc()
        letter = make_dead_letter(value=message.value, key=message.key, topic=message.topic,
                                  partition=message.partition, offset=message.offset,
                                  error=ValueError(reason), service=SERVICE)
        value, sent = encode(letter), []

        def deliver() -> None:
            # Wait on the same send while it is pending; send again only if it failed.
            if not sent or (sent[-1].is_done and sent[-1].failed()):
                sent.append(self.producer.send(self.dlq_topic, key=message.key, value=value))
            sent[-1].get(timeout=30)

        until_kafka_answers("dead-lettering", deliver, give_up=self._stopped)
