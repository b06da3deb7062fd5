"""posts.enriched -> Elasticsearch, in bulk, committing offsets only after the write.

Documents are keyed by post id, so replays after a crash overwrite instead of
duplicating (at-least-once delivery made exact by an idempotent sink).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import ConnectionError as EsConnectionError
from elasticsearch.exceptions import TransportError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from yuqing.contracts import EnrichedPost
from yuqing.contracts.codec import ContractError, decode, encode
from yuqing.deadletter import DeadLetterBudget, make_dead_letter
from yuqing.kafka import make_consumer, make_producer
from yuqing.search import metrics
from yuqing.search.documents import to_document
from yuqing.search.es import ensure_templates, make_client
from yuqing.search.mappings import posts_index
from yuqing.search.settings import SearchSettings
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)
SERVICE = "search-indexer"
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class RetryableBulkError(RuntimeError):
    pass


@dataclass
class Message:
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass
class BulkOutcome:
    indexed: int = 0
    rejected: list[tuple[Message, str]] = field(default_factory=list)


Rejection = tuple[Message, str]


def build_actions(
    messages: Sequence[Message], prefix: str,
) -> tuple[list[dict[str, Any]], list[Message], list[Rejection]]:
    """Decode messages into bulk actions; undecodable ones are returned as rejections."""
    actions, kept, rejected = [], [], []
    for message in messages:
        try:
            post = decode(EnrichedPost, message.value)
        except ContractError as exc:
            rejected.append((message, f"contract: {exc}"))
            continue
        actions.append({"_op_type": "index", "_index": posts_index(prefix, post.created_at),
                        "_id": post.post_id, "_source": to_document(post)})
        kept.append(message)
    return actions, kept, rejected


def write_bulk(client: Elasticsearch, actions: list[dict[str, Any]], kept: list[Message],
               max_retries: int) -> BulkOutcome:
    """Write with retries on 429/5xx; per-document 4xx rejections are returned, not retried."""
    outcome = BulkOutcome()
    pending = list(zip(actions, kept, strict=True))
    retrying = Retrying(
        retry=retry_if_exception_type((RetryableBulkError, EsConnectionError)),
        wait=wait_exponential_jitter(initial=0.2, max=10), stop=stop_after_attempt(max_retries + 1),
        reraise=True,
        before_sleep=lambda _: metrics.BULK_RETRIES.inc(),
    )
    for attempt in retrying:
        with attempt:
            pending = _bulk_once(client, pending, outcome)
    return outcome


def _bulk_once(client: Elasticsearch, pending: list[tuple[dict[str, Any], Message]],
               outcome: BulkOutcome) -> list[tuple[dict[str, Any], Message]]:
    if not pending:
        return []
    try:
        results = helpers.streaming_bulk(client, [a for a, _ in pending], raise_on_error=False,
                                         raise_on_exception=False, max_retries=0, chunk_size=500)
        retry: list[tuple[dict[str, Any], Message]] = []
        for (action, message), (ok, item) in zip(pending, results, strict=True):
            info = next(iter(item.values()))
            if ok:
                outcome.indexed += 1
            elif info.get("status") in RETRYABLE_STATUS or "status" not in info:
                retry.append((action, message))
            else:
                outcome.rejected.append((message, f"elasticsearch {info.get('status')}: "
                                                  f"{info.get('error')}"))
    except TransportError as exc:
        if exc.status_code in RETRYABLE_STATUS or exc.status_code == "N/A":
            raise RetryableBulkError(str(exc)) from exc
        raise
    if retry:
        pending[:] = retry
        raise RetryableBulkError(f"{len(retry)} documents got a retryable status")
    return []


class Indexer:
    """The consumer loop: poll -> batch by size/time -> bulk -> dead-letter -> commit."""

    def __init__(self, settings: SearchSettings, *, on_batch: Callable[[int], None] | None = None):
        self.settings = settings
        self.client = make_client(settings.es)
        ensure_templates(self.client, settings.es)
        self.consumer = make_consumer(settings.kafka, group_id=settings.indexer_group_id,
                                      topics=[LogicalTopic.POSTS_ENRICHED], client_id=SERVICE,
                                      max_poll_records=settings.bulk_max_docs)
        self.producer = make_producer(settings.kafka, client_id=SERVICE)
        self.dlq_topic = settings.kafka.topic(LogicalTopic.POSTS_DLQ)
        self.budget = DeadLetterBudget()
        self.on_batch = on_batch
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

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
        actions, kept, rejected = build_actions(batch, self.settings.es.index_prefix)
        outcome = write_bulk(self.client, actions, kept, self.settings.bulk_max_retries)
        rejected += outcome.rejected
        for message, reason in rejected:
            self._dead_letter(message, reason)
        self.producer.flush(timeout=30)
        self.consumer.commit()
        metrics.DOCS_INDEXED.inc(outcome.indexed)
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        failed = {(m.partition, m.offset) for m, _ in rejected}
        for message in batch:
            self.budget.record(failed=(message.partition, message.offset) in failed)
        if self.on_batch:
            self.on_batch(len(batch))

    def _dead_letter(self, message: Message, reason: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s", message.topic, message.partition,
                    message.offset, reason)
        kind = reason.split(":", 1)[0]
        metrics.DEAD_LETTERS.labels(reason=kind).inc()
        metrics.DOCS_REJECTED.inc()
        letter = make_dead_letter(value=message.value, key=message.key, topic=message.topic,
                                  partition=message.partition, offset=message.offset,
                                  error=ValueError(reason), service=SERVICE)
        self.producer.send(self.dlq_topic, key=message.key, value=encode(letter)).get(timeout=30)
