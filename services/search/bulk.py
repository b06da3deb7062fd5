"""Bulk writes of posts and alerts to Elasticsearch: the indexer's sink, shared with the re-index.

Decoding a batch into bulk actions (with issue assignment) and writing them
with retries on 429/5xx; a document Elasticsearch refuses (4xx) is returned
as a rejection with its reason, never retried.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import ConnectionError as EsConnectionError
from elasticsearch.exceptions import TransportError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_exponential_jitter,
)

from services.search import metrics
from services.search.documents import alert_action, to_document
from services.search.issue_live import LiveIssues
from services.search.mappings import (
    DEFAULT_RETENTION_MONTHS,
    OutsideRetentionError,
    posts_alias,
    retained_posts_index,
    small_index,
)
from services.search.settings import SearchSettings
from yuqing.consumer import Record
from yuqing.contracts import Alert, EnrichedPost
from yuqing.contracts.codec import ContractError, decode

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
# a write block on the index or the cluster (an operator's index.blocks.write during maintenance, a
# cluster set read-only): Elasticsearch answers 403, and the same write succeeds once it is lifted
WRITE_BLOCK = "cluster_block_exception"
# a closed index (closed to change its analysis settings, opened again after): answered 400 per
# document, and the same write succeeds once it is open
INDEX_CLOSED = "index_closed_exception"
CHUNK_DOCS, CHUNK_BYTES = 1000, 8 * 1024 * 1024
RECENT_POSTS = 100_000  # posts whose index the writer remembers (search sees a write only after a refresh)


class RetryableBulkError(RuntimeError):
    pass


Rejection = tuple[Record, str]


@dataclass
class BulkOutcome:
    indexed: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def issue_table(settings: SearchSettings) -> LiveIssues:
    return LiveIssues()


def build_actions(
    messages: Sequence[Record], prefix: str, *, issues: LiveIssues | None = None,
    alerts_topic: str | None = None, keep_months: int = DEFAULT_RETENTION_MONTHS,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[Record], list[Rejection]]:
    """Decode messages into bulk actions; undecodable ones are returned as rejections.

    Records from ``alerts_topic`` become alert updates, all others posts; a post of a month
    the index does not keep at ``now`` (default: the current time) is a rejection too.
    """
    issues = issues if issues is not None else LiveIssues()
    # the index, not its alias (as every other writer of the small indices): an alerts index deleted
    # under the indexer was then created as the alias's name with a guessed mapping (alert_id as
    # text, which the alert list cannot sort by), and no restart put the real one back
    alerts_index = small_index(prefix, "alerts")
    actions: list[dict[str, Any]] = []
    kept: list[Record] = []
    rejected: list[Rejection] = []
    posts: list[tuple[int, EnrichedPost, str]] = []
    for message in messages:
        try:
            if message.topic == alerts_topic:
                action = alert_action(decode(Alert, message.value), alerts_index)
            else:
                post = decode(EnrichedPost, message.value)
                index = retained_posts_index(prefix, post.created_at, keep_months=keep_months, now=now)
                posts.append((len(actions), post, index))
                action = {}  # filled in once the batch's issues are assigned
        except ContractError as exc:
            rejected.append((message, f"contract: {exc}"))
            continue
        except OutsideRetentionError as exc:
            rejected.append((message, f"retention: {exc}"))
            continue
        actions.append(action)
        kept.append(message)
    # a batch interleaves partitions: its posts are grouped in created_at order
    assignments = issues.assign_batch([post for _, post, _ in posts])
    for (i, post, index), issue in zip(posts, assignments, strict=True):
        actions[i] = {"_op_type": "index", "_index": index,
                      "_id": post.post_id, "_source": to_document(post, issue=issue)}
    return actions, kept, rejected


class PipelinedWriter:
    """Builds the next slice of a batch while Elasticsearch indexes the one before.

    Building (decoding, issue grouping, jieba words) is Python work on one core;
    a bulk request is mostly waiting for Elasticsearch. Done one after the other,
    the indexer's time per document is their sum; overlapped, it is the larger of
    the two. Slices are built in order on the caller's thread (issue assignment
    is order-dependent), and written one at a time on a single writer thread, so
    at most one slice is in flight. A write that fails raises from ``write``
    after the slices before it were written: the batch fails as a whole, as with
    one request, and is read again uncommitted.

    A post has one document: one sent again dated in another month (an edited feed
    entry dated by its update, a resend with its offset corrected) goes to that
    month's index, and its copy in the other is deleted in the same request.
    """

    def __init__(self, client: Elasticsearch, prefix: str, *, issues: LiveIssues,
                 alerts_topic: str | None = None, keep_months: int = DEFAULT_RETENTION_MONTHS,
                 max_retries: int = 0, slice_docs: int = 250,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client, self.prefix, self.issues, self.clock = client, prefix, issues, clock
        self.alerts_topic, self.keep_months = alerts_topic, keep_months
        self.max_retries, self.slice_docs = max_retries, slice_docs
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-writer")
        self._recent: OrderedDict[str, str] = OrderedDict()  # post id -> index, writer thread only

    def write(self, records: Sequence[Record]) -> BulkOutcome:
        """Index ``records``; contract, retention and Elasticsearch refusals come back as rejections."""
        outcome = BulkOutcome()
        in_flight: Future[BulkOutcome] | None = None
        for start in range(0, len(records), self.slice_docs):
            actions, kept, rejected = build_actions(
                records[start:start + self.slice_docs], self.prefix, issues=self.issues,
                alerts_topic=self.alerts_topic, keep_months=self.keep_months, now=self.clock())
            outcome.rejected += rejected
            if in_flight is not None:
                _add(outcome, in_flight.result())
            in_flight = self._writer.submit(self._write_slice, actions, kept)
        if in_flight is not None:
            _add(outcome, in_flight.result())
        return outcome

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    def _write_slice(self, actions: list[dict[str, Any]], kept: list[Record]) -> BulkOutcome:
        moved = self._copies_elsewhere(actions, kept)
        outcome = write_bulk(self.client, [*actions, *(a for a, _ in moved)],
                             [*kept, *(r for _, r in moved)], self.max_retries)
        for action in actions:
            if action["_op_type"] == "index":
                self._recent[action["_id"]] = action["_index"]
                self._recent.move_to_end(action["_id"])
        while len(self._recent) > RECENT_POSTS:
            self._recent.popitem(last=False)
        return outcome

    def _copies_elsewhere(self, actions: list[dict[str, Any]], kept: list[Record],
                          ) -> list[tuple[dict[str, Any], Record]]:
        """Deletes of the slice's posts' documents in another monthly index than the one they are
        written to now: those indexed (searchable), those this writer wrote (maybe not yet), and
        an earlier version in the slice itself."""
        target = {a["_id"]: (a["_index"], r) for a, r in zip(actions, kept, strict=True)
                  if a["_op_type"] == "index"}
        if not target:
            return []
        found = {(a["_index"], a["_id"]) for a in actions if a["_op_type"] == "index"}
        found |= {(self._recent[i], i) for i in target if i in self._recent}
        for attempt in _retrying(self.max_retries):
            with attempt:
                hits = self.client.search(
                    index=posts_alias(self.prefix), ignore_unavailable=True, allow_no_indices=True,
                    body={"size": 2 * len(target), "query": {"ids": {"values": list(target)}},
                          "_source": False})["hits"]["hits"]
        found |= {(hit["_index"], hit["_id"]) for hit in hits}
        return [({"_op_type": "delete", "_index": index, "_id": post_id}, target[post_id][1])
                for index, post_id in sorted(found) if index != target[post_id][0]]


def _add(total: BulkOutcome, part: BulkOutcome) -> None:
    total.indexed += part.indexed
    total.rejected += part.rejected


def write_bulk(client: Elasticsearch, actions: list[dict[str, Any]], kept: list[Record],
               max_retries: int) -> BulkOutcome:
    """Write with retries on 429/5xx and write blocks; other per-document 4xx rejections are returned,
    not retried."""
    started = time.perf_counter()
    outcome = BulkOutcome()
    pending = list(zip(actions, kept, strict=True))
    for attempt in _retrying(max_retries):
        with attempt:
            pending = _bulk_once(client, pending, outcome)
    metrics.BULK_SECONDS.observe(time.perf_counter() - started)
    return outcome


def transient(error: BaseException) -> bool:
    """Worth trying again: a bulk's retryable documents, Elasticsearch away, or a request it answered
    429 or 5xx (the search for a batch's copies in other months met a posts index whose shard was not
    started, 503, and the batch failed, where its bulk request waits it out)."""
    return isinstance(error, (RetryableBulkError, EsConnectionError)) or (
        isinstance(error, TransportError) and error.status_code in RETRYABLE_STATUS)


def _retrying(max_retries: int) -> Retrying:
    return Retrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential_jitter(initial=0.2, max=10),
        stop=stop_after_attempt(max_retries + 1) if max_retries else stop_never,
        reraise=True, before_sleep=_count_retry,
    )


def _count_retry(state: RetryCallState) -> None:
    """Every retry is counted and logged with its cause: a full disk's read-only block or a queue
    full is retried for as long as it lasts, and the indexer said nothing while it waited."""
    metrics.BULK_RETRIES.inc()
    error = state.outcome.exception() if state.outcome else None
    log.warning("bulk write retried (attempt %d): %s", state.attempt_number, error)


def _chunks(pending: list[tuple[dict[str, Any], Record]]) -> Iterator[tuple[bytes, list[Any]]]:
    """Bulk request bodies, each made as it is about to be sent: a post's ``indexed_at`` is the
    time its request left, a retried one's that of its retry. Stamped when the batch was built, a
    post retried after a 429, or sent after a slow request, was older than posts searchable before
    it, and a search's later pages, which count the posts indexed up to the newest the first one
    saw (``posts.search_posts``), took it in."""
    body = bytearray()
    members: list[tuple[dict[str, Any], Record]] = []
    sent_at = datetime.now(UTC).isoformat()
    for item in pending:
        line = _line(item[0], sent_at)
        if members and (len(members) >= CHUNK_DOCS or len(body) + len(line) > CHUNK_BYTES):
            yield bytes(body), members  # resumed once it was sent
            body, members, sent_at = bytearray(), [], datetime.now(UTC).isoformat()
            line = _line(item[0], sent_at)
        body += line
        members.append(item)
    if members:
        yield bytes(body), members


def _line(action: dict[str, Any], sent_at: str) -> bytes:
    meta, data = helpers.expand_action(action)
    if isinstance(data, dict) and "indexed_at" in data:
        data = {**data, "indexed_at": sent_at}
    return orjson.dumps(meta) + b"\n" + (b"" if data is None else orjson.dumps(data) + b"\n")


def _blocked(error: Any) -> bool:
    """A document refused by a write block or a closed index: waited out like a 429, not
    dead-lettered (every post of such an index went to the dead letters and the indexer stopped at
    their cap)."""
    return isinstance(error, dict) and error.get("type") in (WRITE_BLOCK, INDEX_CLOSED)


def _cause(status: int, error: Any) -> str:
    """``429 cluster_block_exception: index [...] blocked by: [...]``, cut to a log line."""
    if isinstance(error, dict):
        return f"{status} {error.get('type')}: {str(error.get('reason'))[:300]}"
    return f"{status}: {str(error)[:300]}"


def _bulk_once(client: Elasticsearch, pending: list[tuple[dict[str, Any], Record]],
               outcome: BulkOutcome) -> list[tuple[dict[str, Any], Record]]:
    retry: list[tuple[dict[str, Any], Record]] = []
    first_retry = ""
    for body, members in _chunks(pending):
        try:
            response = client.bulk(body=body)
        except TransportError as exc:
            if exc.status_code not in RETRYABLE_STATUS and exc.status_code != "N/A" \
                    and exc.error != WRITE_BLOCK:
                raise
            retry.extend(members)
            first_retry = first_retry or f"(the request) {exc.status_code} {exc.error}: {str(exc.info)[:300]}"
            continue
        for item, (action, message) in zip(response["items"], members, strict=True):
            info = next(iter(item.values()))
            status = int(info.get("status", 500))
            if action["_op_type"] == "delete" and status in (200, 404):
                continue  # a post's copy in another month's index, gone now (or already)
            if status < 300:
                outcome.indexed += 1
            elif status in RETRYABLE_STATUS or _blocked(info.get("error")):
                retry.append((action, message))
                first_retry = first_retry or _cause(status, info.get("error"))
            else:
                outcome.rejected.append((message, f"elasticsearch {status}: {info.get('error')}"))
    if retry:
        pending[:] = retry
        raise RetryableBulkError(f"{len(retry)} documents got a retryable status, the first {first_retry}")
    return []
