"""posts.enriched and alerts -> Elasticsearch, in bulk, on the consumer runtime (kafka-python).

The processing function (:meth:`Indexer.index`) writes a batch with
``bulk`` (:mod:`services.search.bulk`) and returns the documents
Elasticsearch refused as invalid messages; :mod:`yuqing.consumer`
dead-letters them under the cap and commits only after the write and the
dead letters are acknowledged. Posts are keyed by post id and alerts by
alert id, so replays after a crash overwrite instead of duplicating
(at-least-once delivery made exact by an idempotent sink). Issues are
assigned here, before the write (grouping.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from elasticsearch.exceptions import ConnectionError as EsConnectionError
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from services.search import metrics
from services.search.bulk import PipelinedWriter, issue_table, transient
from services.search.es import ensure_templates, make_client
from services.search.issue_live import LiveIssues
from services.search.settings import SearchSettings
from services.search.topic_watch import TopicWatch
from yuqing.consumer import BatchOutcome, InvalidMessage, Record, Runtime
from yuqing.consumer.kafka_driver import ForgetOnRebalance, KafkaDriver
from yuqing.kafka import connect, make_consumer, make_producer, require_room
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)
SERVICE = "search-indexer"
T = TypeVar("T")
INPUT_TOPICS = [LogicalTopic.POSTS_ENRICHED, LogicalTopic.ALERTS]
TOPICS = [*INPUT_TOPICS, LogicalTopic.POSTS_DLQ]  # its dead letters go to posts.dlq
TOPIC_CHECK_S = 60.0  # how often a missing topic is looked for (and said) again
# The stop's last recording of automatic merges waits no longer: `yuqing run` kills a service 20 s
# after SIGTERM, Kubernetes the indexer 60 s after.
STOP_RECORD_S = 10.0


class Indexer:
    """The indexer's wiring: Elasticsearch, the issue table, and the consumer runtime around them."""

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        metrics.INDEXER_READY.set(0)
        self.client = make_client(settings.es)
        self.issues = until_elasticsearch_answers("preparing the indices and warming issue grouping",
                                                  self._prepare_indices)
        self.alerts_topic = settings.kafka.topic(LogicalTopic.ALERTS)
        self.writer = PipelinedWriter(
            self.client, settings.es.index_prefix, issues=self.issues, alerts_topic=self.alerts_topic,
            keep_months=settings.retention_months, max_retries=settings.bulk_max_retries,
            slice_docs=settings.bulk_slice_docs)
        runtime = Runtime.create(SERVICE, settings.kafka, settings.consumer, on_invalid=_count_rejection)
        # its dead letters are cut to YUQING_KAFKA_MAX_MESSAGE_BYTES: posts.dlq must take that
        connect("reading posts.dlq's message size", lambda: require_room(
            settings.kafka, [LogicalTopic.POSTS_DLQ]), settings.kafka)
        consumer = connect("connecting the consumer", lambda: make_consumer(
            settings.kafka, group_id=settings.indexer_group_id,
            topics=INPUT_TOPICS, client_id=SERVICE,
            max_poll_records=settings.bulk_max_docs, listener=ForgetOnRebalance(runtime.gaps)),
            settings.kafka)
        producer = connect("connecting the producer", lambda: make_producer(
            settings.kafka, client_id=SERVICE), settings.kafka)
        self.driver = KafkaDriver(consumer, producer, runtime, batch_size=settings.bulk_max_docs,
                                  batch_wait_s=settings.bulk_max_wait_s,
                                  ack_timeout_s=settings.consumer.ack_timeout_s)
        self.topics = TopicWatch(settings.kafka, [settings.kafka.topic(t) for t in TOPICS],
                                 on_change=lambda present: metrics.INDEXER_READY.set(1 if present else 0),
                                 interval_s=TOPIC_CHECK_S)
        self.topics.start()

    def _prepare_indices(self) -> LiveIssues:
        """Templates and small indices in place, and a fresh issue table warmed from the posts
        indexed lately (fresh at each try: a warm-up cut short must not count its posts twice)."""
        ensure_templates(self.client, self.settings.es, self.settings.refresh_interval)
        issues = issue_table(self.settings)
        warmed = issues.warm(self.client, self.settings.es.index_prefix)
        log.info("issue grouping warmed with %d recent posts", warmed)
        return issues

    def stop(self) -> None:
        """Finish the batch under way, then return from :meth:`run` (a signal handler calls this)."""
        self.topics.stop(wait=False)
        self.driver.stop()

    def run(self) -> None:
        try:
            self.driver.run(self.index, on_idle=self.record_merges)
        finally:
            self.topics.stop()
            metrics.INDEXER_READY.set(0)
            self.writer.close()
        self._record_merges_at_stop()

    def _record_merges_at_stop(self) -> None:
        """The automatic merges of the last batches (recorded at most every few seconds), tried
        once within ``STOP_RECORD_S``. Elasticsearch away raised out of :meth:`run`: a requested
        stop ended in exit 1, and the merges it had not recorded went unsaid."""
        pending = [(m.source_id, m.target_id) for m in self.issues.pending_merges]
        if not pending:
            return
        failed: list[BaseException] = []

        def record() -> None:
            try:
                self.issues.record_merges(self.client, self.settings.es.index_prefix, force=True)
            except Exception as exc:  # said below: the stop goes on
                failed.append(exc)

        recording = threading.Thread(target=record, name="record-merges-at-stop", daemon=True)
        recording.start()
        recording.join(STOP_RECORD_S)
        if failed or recording.is_alive():
            cause = (f"Elasticsearch: {type(failed[0]).__name__}: {failed[0]}" if failed
                     else f"Elasticsearch: no answer within {STOP_RECORD_S:.0f} s")
            _say_unrecorded(pending, cause)
        elif self.issues.pending_merges:  # deferred: a responder holds one of their issues
            _say_unrecorded([(m.source_id, m.target_id) for m in self.issues.pending_merges],
                            "a responder was correcting one of their issues")

    def record_merges(self) -> None:
        """The automatic merges still waiting to be recorded (every ``refresh_s`` at most): the
        last batches before a quiet spell made some, and posts indexed under the merged ids keep
        them until recorded."""
        self.issues.record_merges(self.client, self.settings.es.index_prefix)

    def index(self, records: list[Record]) -> BatchOutcome:
        """Write one batch; what Elasticsearch or the contract refused comes back as invalid."""
        prefix = self.settings.es.index_prefix
        _beside_the_batch("reading other replicas' posts and corrections",
                          lambda: self.issues.refresh(self.client, prefix))
        outcome = self.writer.write(records)
        _beside_the_batch("recording automatic merges",
                          lambda: self.issues.record_merges(self.client, prefix))
        metrics.DOCS_INDEXED.inc(outcome.indexed)
        metrics.ISSUE_TABLE_ENTRIES.set(len(self.issues))
        return BatchOutcome(invalid=[_invalid(r, reason) for r, reason in outcome.rejected])


def until_elasticsearch_answers(what: str, call: Callable[[], T], *, max_wait_s: float = 30.0) -> T:
    """``call()``, tried again with backoff for as long as Elasticsearch is away or answers 429/5xx.

    An index that cannot be searched yet (red: a shard unassigned or still recovering, a node
    restarting) answered the start-up's warm-up 503, and the indexer exited 1: Kubernetes
    restarted it, but ``yuqing run`` restarts only exit 75, so the local pipeline lost its
    indexer. Waiting, the indexer logs one line per try and reports ``yuqing_search_indexer_ready``
    0. A refusal that waiting does not change (401 credentials, 403 privileges, 400 a setting
    Elasticsearch refuses) raises at once: one line and exit 1 (``yuqing.clikit``).
    """
    def log_wait(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        hint = ("does it answer at YUQING_ES_URL?" if isinstance(exc, EsConnectionError)
                else "a red index? see _cluster/health?level=indices")
        log.warning("Elasticsearch is not ready for the indexer: %s failed (%s: %s; %s); trying again in "
                    "%.1fs (try %d)", what, type(exc).__name__, exc, hint, state.upcoming_sleep,
                    state.attempt_number + 1)

    retrying = Retrying(retry=retry_if_exception(transient), reraise=True,
                        wait=wait_exponential_jitter(initial=0.5, max=max_wait_s), before_sleep=log_wait)
    return retrying(call)


def _say_unrecorded(merges: list[tuple[str, str]], cause: str) -> None:
    log.warning("%d automatic issue merge%s not recorded at stop (%s): %s. Their posts keep their "
                "issues in the index; the next start rebuilds the issue table from the index without "
                "these merges, and the grouping makes one again only when a new post joins one of its "
                "issues", len(merges), " was" if len(merges) == 1 else "s were", cause,
                ", ".join(f"{source} into {target}" for source, target in merges))


def _beside_the_batch(what: str, work: Callable[[], object]) -> None:
    """Work on the side of a batch's write. Elasticsearch busy or away (429, 5xx, no answer) is
    logged and the work done at a later batch, as between batches (``KafkaDriver.idle``); it failed
    the batch, and the indexer stopped to be restarted, where the write waits such a spell out."""
    try:
        work()
    except Exception as exc:
        if not transient(exc):
            raise
        log.warning("%s failed (%s); tried again later", what, exc)


def _invalid(record: Record, reason: str) -> InvalidMessage:
    kinds = {"contract": "ContractError", "retention": "OutsideRetention"}
    kind = kinds.get(reason.split(":", 1)[0], "ElasticsearchRejected")
    return InvalidMessage(record.topic, record.partition, record.offset, reason, kind)


def _count_rejection(message: InvalidMessage) -> None:
    metrics.DEAD_LETTERS.labels(reason=message.reason.split(":", 1)[0]).inc()
    metrics.DOCS_REJECTED.inc()
