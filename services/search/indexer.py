"""posts.enriched and alerts -> Elasticsearch, in bulk, on the consumer runtime (kafka-python).

The processing function (:meth:`Indexer.index`) writes a batch with
``bulk`` and returns the documents Elasticsearch refused as invalid
messages; :mod:`yuqing.consumer` dead-letters them under the cap and
commits only after the write and the dead letters are acknowledged.
Posts are keyed by post id and alerts by alert id, so replays after a crash
overwrite instead of duplicating (at-least-once delivery made exact by an
idempotent sink). Issues are assigned here, before the write (grouping.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import ConnectionError as EsConnectionError
from elasticsearch.exceptions import TransportError
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
from services.search.mappings import posts_index, small_alias
from services.search.settings import SearchSettings
from yuqing.consumer import BatchOutcome, InvalidMessage, Record, Runtime
from yuqing.consumer.kafka_driver import ForgetOnRebalance, KafkaDriver
from yuqing.contracts import Alert, EnrichedPost
from yuqing.contracts.codec import ContractError, decode
from yuqing.kafka import connect, make_consumer, make_producer
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)
SERVICE = "search-indexer"
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
CHUNK_DOCS, CHUNK_BYTES = 1000, 8 * 1024 * 1024


class RetryableBulkError(RuntimeError):
    pass


Rejection = tuple[Record, str]


@dataclass
class BulkOutcome:
    indexed: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def issue_table(settings: SearchSettings) -> IssueTable:
    return IssueTable(max_distance=settings.issue_max_distance,
                      window=timedelta(hours=settings.issue_window_hours),
                      max_entries=settings.issue_table_max_entries)


def build_actions(
    messages: Sequence[Record], prefix: str, *, issues: IssueTable | None = None,
    alerts_topic: str | None = None,
) -> tuple[list[dict[str, Any]], list[Record], list[Rejection]]:
    """Decode messages into bulk actions; undecodable ones are returned as rejections.

    Records from ``alerts_topic`` become alert updates, all others posts.
    """
    issues = issues if issues is not None else IssueTable()
    alerts_index = small_alias(prefix, "alerts")
    actions, kept, rejected = [], [], []
    for message in messages:
        try:
            if message.topic == alerts_topic:
                action = alert_action(decode(Alert, message.value), alerts_index)
            else:
                action = _post_action(decode(EnrichedPost, message.value), prefix, issues)
        except ContractError as exc:
            rejected.append((message, f"contract: {exc}"))
            continue
        actions.append(action)
        kept.append(message)
    return actions, kept, rejected


def _post_action(post: EnrichedPost, prefix: str, issues: IssueTable) -> dict[str, Any]:
    issue = issues.assign(topic=post.topic.value, fingerprint=post.fingerprint,
                          created_at=post.created_at)
    return {"_op_type": "index", "_index": posts_index(prefix, post.created_at),
            "_id": post.post_id, "_source": to_document(post, issue=issue)}


def write_bulk(client: Elasticsearch, actions: list[dict[str, Any]], kept: list[Record],
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


def _chunks(pending: list[tuple[dict[str, Any], Record]]) -> list[tuple[bytes, list[Any]]]:
    chunks: list[tuple[bytes, list[Any]]] = []
    body, size = bytearray(), 0
    members: list[tuple[dict[str, Any], Record]] = []
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


def _bulk_once(client: Elasticsearch, pending: list[tuple[dict[str, Any], Record]],
               outcome: BulkOutcome) -> list[tuple[dict[str, Any], Record]]:
    retry: list[tuple[dict[str, Any], Record]] = []
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
    """The indexer's wiring: Elasticsearch, the issue table, and the consumer runtime around them."""

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.client = make_client(settings.es)
        ensure_templates(self.client, settings.es, settings.refresh_interval)
        self.issues = issue_table(settings)
        warmed = self.issues.load(recent_fingerprints(
            self.client, settings.es.index_prefix, window=self.issues.window,
            limit=settings.issue_table_max_entries))
        log.info("issue table warmed with %d recent fingerprints", warmed)
        self.alerts_topic = settings.kafka.topic(LogicalTopic.ALERTS)
        runtime = Runtime.create(SERVICE, settings.kafka, settings.consumer, on_invalid=_count_rejection)
        consumer = connect("connecting the consumer", lambda: make_consumer(
            settings.kafka, group_id=settings.indexer_group_id,
            topics=[LogicalTopic.POSTS_ENRICHED, LogicalTopic.ALERTS], client_id=SERVICE,
            max_poll_records=settings.bulk_max_docs, listener=ForgetOnRebalance(runtime.gaps)),
            settings.kafka)
        producer = connect("connecting the producer", lambda: make_producer(
            settings.kafka, client_id=SERVICE), settings.kafka)
        self.driver = KafkaDriver(consumer, producer, runtime, batch_size=settings.bulk_max_docs,
                                  batch_wait_s=settings.bulk_max_wait_s,
                                  ack_timeout_s=settings.consumer.ack_timeout_s)

    def stop(self) -> None:
        self.driver.stop()

    def run(self) -> None:
        self.driver.run(self.index)

    def index(self, records: list[Record]) -> BatchOutcome:
        """Write one batch; what Elasticsearch or the contract refused comes back as invalid."""
        started = time.perf_counter()
        actions, kept, rejected = build_actions(records, self.settings.es.index_prefix,
                                                issues=self.issues, alerts_topic=self.alerts_topic)
        outcome = write_bulk(self.client, actions, kept, self.settings.bulk_max_retries)
        metrics.DOCS_INDEXED.inc(outcome.indexed)
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        metrics.ISSUE_TABLE_ENTRIES.set(len(self.issues))
        return BatchOutcome(invalid=[InvalidMessage(r.topic, r.partition, r.offset, reason)
                                     for r, reason in [*rejected, *outcome.rejected]])


def _count_rejection(message: InvalidMessage) -> None:
    metrics.DEAD_LETTERS.labels(reason=message.reason.split(":", 1)[0]).inc()
    metrics.DOCS_REJECTED.inc()
