"""Bulk writes of posts and alerts to Elasticsearch: the indexer's sink, shared with the re-index.

Decoding a batch into bulk actions (with issue assignment) and writing them
with retries on 429/5xx; a document Elasticsearch refuses (4xx) is returned
as a rejection with its reason, never retried.
"""

from __future__ import annotations

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
from services.search.grouping import IssueTable
from services.search.mappings import posts_index, small_alias
from services.search.settings import SearchSettings
from yuqing.consumer import Record
from yuqing.contracts import Alert, EnrichedPost
from yuqing.contracts.codec import ContractError, decode

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
