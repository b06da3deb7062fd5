"""The alerts worker: posts.enriched -> windowed volumes per key -> surge alerts.

Two Faust agents, one app:

``route_posts`` (reads ``posts.enriched``, any number of partitions)
    The error boundary, on the shared consumer runtime
    (:class:`yuqing.consumer.faust_driver.FaustDriver`): decodes and validates
    each post; a poison message goes to ``posts.dlq`` with its reason, under
    the shared dead-letter cap (``YUQING_CONSUMER_DLQ_*``). A valid post
    becomes a compact :class:`Observation` (event time, keys, keywords,
    source, fingerprint) on the internal topic ``<app_id>-observations``.

``watch_surges`` (reads ``<app_id>-observations``, one partition)
    Counts observations into event-time windows per key and, as windows
    close, runs detection and the alert lifecycle (:class:`SurgeWatch`). All
    of its state is in changelog-backed tables (``windows``, ``detectors``,
    ``desk``, ``posts``), so a restart restores them from their changelogs
    instead of recounting; source offsets already counted are skipped, and so
    are post ids already counted in an open window (the NLP worker writes a
    post again when it is restarted before committing). See
    :mod:`services.alerts.watch` for why that holds whatever a kill leaves behind.
    Tables are written through a write-back cache flushed once per batch, so
    a replay writes one changelog message per changed key and batch. Alerts
    go to ``alerts`` (keyed by ``alert_id``) and to the optional webhook
    (background task, bounded queue and retries). It runs its own loop: a
    batch is acknowledged only once its table writes are on the broker
    (:class:`ChangelogReceipts`), which the runtime's outputs do not cover;
    it stops the shared way (:func:`yuqing.consumer.stop_uncommitted`).

Detection runs on one partition on purpose: the alert lifecycle compares
overall, topic and topic-region keys of the same window to report one surge
once, which needs them in one place. The expensive part, decoding and
validating posts, scales with the partitions of ``posts.enriched``; the
observations are small and the counting stage handles a few thousand a second.

Faust's own windowed tables are not used for the windows: they expire windows
by wall-clock time, so replayed or back-filled posts (old event times) would
close at once and out of order. Here windows close on the event-time watermark
(see :mod:`services.alerts.windows` for grace and late posts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust

from services.alerts import metrics
from services.alerts.detector import DetectorConfig
from services.alerts.evidence import EvidenceLimits, Observation
from services.alerts.issues import IssueKeys, ReadOnlyIssues
from services.alerts.keys import BoundedLabel, SourceLags, volume_labels
from services.alerts.lifecycle import TrackerConfig
from services.alerts.notify import FIRING_TTL, OUTCOMES, Notifier
from services.alerts.outbox import MAX_OUTBOX_BYTES, transition_id
from services.alerts.settings import AlertsSettings
from services.alerts.watch import STORE_ORDER, Advance, Counted, SurgeWatch, WatchConfig
from services.alerts.windows import IdleClock, PartitionActivity, Watermarks, WindowPolicy
from services.alerts.writeback import WriteBack
from services.search.grouping import GroupingParams
from yuqing.consumer import BatchOutcome, InvalidMessage, Output, Record, Runtime, stop_uncommitted
from yuqing.consumer.acks import await_acks
from yuqing.consumer.faust_driver import BatchInterrupted, FaustDriver
from yuqing.contracts import Alert, EnrichedPost
from yuqing.contracts.codec import ContractError, decode, encode
from yuqing.contracts.models import AlertsObservation, ObservedPost, PartitionStatus
from yuqing.faust_run import state_dir
from yuqing.topics import LogicalTopic, topic_spec

log = logging.getLogger(__name__)
SERVICE = "alerts"
FAMILIES = ("overall", "topic", "topic_region", "source", "cluster")
STATUS_INTERVAL_S = 1.0
# issue merges sent to the counting stage on a batch's last post, at most (the rest on the next
# batch's), and kept until sent, at most
MERGED_PER_MESSAGE = 1_000
MAX_MERGED_KEPT = 10_000
TABLES = {
    "windows": "open windows per key, with their evidence",
    "detectors": "surge detector state per key",
    "desk": "watermark, alert lifecycle, open alerts",
    "posts": "post ids counted in open windows (a post written twice counts once)",
}
# The reason label of yuqing_alerts_dead_letters_total: a message that is no enriched post of the
# contract, and a valid post the worker could not turn into an observation.
DEAD_LETTER_REASONS = ("contract", "processing")
# A firing alert is posted to Alertmanager again this long after its last post, well before the
# endsAt that post gave it (FIRING_TTL): a surge may outlast it.
REFRESH_FIRING_AFTER = FIRING_TTL / 2
# Roll changelog segments hourly so compaction keeps recovery short.
CHANGELOG_CONFIG = {"segment.ms": str(3_600_000)}


def watch_config(settings: AlertsSettings) -> WatchConfig:
    bucket = settings.bucket_seconds
    return WatchConfig(
        window=WindowPolicy(bucket, settings.grace_seconds),
        detector=DetectorConfig(bucket_seconds=bucket, utc_offset_hours=settings.utc_offset_hours,
                                min_count=settings.min_count),
        tracker=TrackerConfig(bucket_seconds=bucket,
                              resolve_after_buckets=settings.buckets(settings.resolve_after_seconds),
                              realert_after_buckets=settings.buckets(settings.realert_after_seconds)),
        evidence=EvidenceLimits(max_samples=settings.evidence_samples,
                                max_keywords=settings.evidence_terms),
        retention_seconds=settings.retention_hours * 3600,
        # an issue takes posts up to its grouping gap after its last one (then only rarely)
        issue_retention_seconds=int(GroupingParams().gap.total_seconds()) + 3600,
    )


def route(record: Record, settings: AlertsSettings, issue_id: str | None = None
          ) -> Observation | InvalidMessage:
    """One message of posts.enriched as an observation, or why not (the runtime dead-letters it)."""
    post = decode_post(record)
    return post if isinstance(post, InvalidMessage) else observe(record, post, settings, issue_id)


def decode_post(record: Record) -> EnrichedPost | InvalidMessage:
    try:
        return decode(EnrichedPost, record.value)
    except (ContractError, ValueError) as exc:
        return _invalid(record, exc, "contract")


def observe(record: Record, post: EnrichedPost, settings: AlertsSettings, issue_id: str | None
            ) -> Observation | InvalidMessage:
    """A decoded post, grouped into ``issue_id``, as an observation."""
    try:
        observation = Observation.of(post, max_future_seconds=settings.max_future_seconds,
                                     places=settings.gazetteer(), issue_id=issue_id, now=time.time())
    except ValueError as exc:
        return _invalid(record, exc, "processing")
    return observation


def _invalid(record: Record, exc: Exception, reason: str) -> InvalidMessage:
    """``reason`` (one of DEAD_LETTER_REASONS) leads the dead letter's message and labels the metric."""
    return InvalidMessage(record.topic, record.partition, record.offset, f"{reason}: {exc}",
                          type(exc).__name__)


def make_issue_keys(settings: AlertsSettings) -> IssueKeys:
    """Issue grouping for stage 1: from the posts index if configured, with a short request timeout
    (a slow index must not hold the posts up for long)."""
    from services.search.es import make_client

    # The index client logs every failed request; while the index is down that would repeat at
    # each retry. IssueKeys says it once, and this is the worker's only client of the index.
    logging.getLogger("elasticsearch").setLevel(logging.ERROR)
    issues = ReadOnlyIssues(refresh_s=settings.issues_refresh_s)
    client = (make_client(settings.es.model_copy(update={"request_timeout_s": settings.issues_timeout_s}))
              if settings.issues_from_index else None)
    return IssueKeys(issues, client, settings.es.index_prefix, retry_s=settings.issues_retry_s)


def make_notifier(settings: AlertsSettings, on_done: Callable[[Alert], None] | None = None
                  ) -> Notifier | None:
    if not settings.webhook_url:
        return None
    # Each outcome's series from 0: one born at its first failure (1) shows no increase, and one
    # surge notified while the webhook was down raised no YuqingAlertsNotificationsFailing.
    for outcome in OUTCOMES:
        metrics.NOTIFICATIONS.labels(outcome=outcome)
    return Notifier(
        url=settings.webhook_url, fmt=settings.webhook_format,
        secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        search_url=settings.search_url,
        timeout_s=settings.webhook_timeout_s, max_attempts=settings.webhook_max_attempts,
        queue_size=settings.webhook_queue_size, utc_offset_hours=settings.utc_offset_hours,
        on_outcome=lambda outcome: metrics.NOTIFICATIONS.labels(outcome=outcome).inc(),
        on_done=on_done)


def record_advance(advance: Advance, watch: SurgeWatch) -> None:
    """Gauges after windows closed."""
    if advance.closed_through is not None:
        metrics.CLOSED_BUCKET.set(advance.closed_through)
    if not advance.closed:
        return
    record_surge_scores(advance.closed[-1].family_max)
    record_firing(advance.firing)
    metrics.WINDOW_KEYS.set(watch.open_windows())


def record_stored_state(watch: SurgeWatch | None) -> None:
    """The gauges of the stored state (alerts firing, surge scores, the last closed window, open
    windows) when a worker gets its tables back, without waiting for the next window to close.

    Until then they read nothing firing, a last window closed in 1970 (the dashboard's "since the
    last closed window" said 56 years; the jump back counted as a change to
    YuqingAlertsDetectionStalled), no open window, and no surge score: YuqingSurgeScoreSustained,
    30 minutes of a score at the firing level, began its 30 minutes again after every restart.
    ``None``: this worker does not keep the counting stage's partition, and reports no alert
    firing and no score (its in-memory tables may still hold a desk it no longer keeps)."""
    record_firing(watch.firing() if watch is not None else {})
    scores = watch.surge_scores() if watch is not None else {}
    if scores is not None:
        record_surge_scores(scores)
    if watch is None:
        return
    closed = watch.closed_through()
    if closed is not None:
        metrics.CLOSED_BUCKET.set(closed)
    metrics.WINDOW_KEYS.set(watch.open_windows())


def record_surge_scores(family_max: dict[str, float]) -> None:
    for family in FAMILIES:
        metrics.SURGE_SCORE.labels(family=family).set(family_max.get(family, 0.0))


def record_published(before: dict[str, int], after: dict[str, int]) -> None:
    """Count the alert events a stored batch added to the desk's tally (``SurgeWatch.published``).

    Counted as they were published, a batch read again after a kill (published, not yet stored)
    counted its alerts again in the restarted worker, and Prometheus' ``increase()`` added both."""
    for kind, count in after.items():
        if count > before.get(kind, 0):
            state, severity = kind.split(":", 1)
            metrics.ALERTS.labels(state=state, severity=severity).inc(count - before.get(kind, 0))


def record_firing(firing: dict[str, int]) -> None:
    for severity in ("info", "warning", "critical"):
        metrics.FIRING.labels(severity=severity).set(firing.get(severity, 0))


def record_lag(post: EnrichedPost, lags: SourceLags, sources: BoundedLabel, now: float) -> None:
    """The post's event lag into its (capped) source's series, as :class:`SourceLags` reports it."""
    source = sources(post.source)
    lag = (post.received_at - post.created_at).total_seconds()
    metrics.LAG_SECONDS.labels(source=source).set(lags.observe(source, lag, now))


def expire_lags(lags: SourceLags, now: float) -> None:
    """Removes the lag series of the sources silent too long (the series count stays bounded)."""
    for source in lags.expired(now):
        metrics.LAG_SECONDS.remove(source)


def changelog_partition(partition: int | None) -> int:
    """The changelog partition of a table write: the tables have one partition each.

    Left to Faust (``None``), the partition is computed from the producer's
    cached metadata without waiting for it, and the first write after a start
    that created the changelog a moment before found no metadata for it yet: a
    ``TypeError`` that stopped the worker. Named, the send waits for the metadata
    as every other send does.
    """
    return 0 if partition is None else partition


class ChangelogReceipts:
    """The changelog writes of a Faust table, to wait for before a batch is acknowledged.

    Faust sends table changes through a buffer, and flushing it before a commit
    gives up after 0.1 s without a message sent: a worker killed just after the
    commit would lose state changes of batches whose offsets are committed.
    Waiting for every write's delivery before acknowledging the batch closes
    that gap.
    """

    def __init__(self, table: Any, timeout_s: float) -> None:
        self.name, self.timeout_s = table.name, timeout_s
        self.pending: list[asyncio.Future[Any]] = []
        send = table.send_changelog

        def send_and_keep(partition: int | None, *args: Any, **kwargs: Any) -> Any:
            future = send(changelog_partition(partition), *args, **kwargs)
            self.pending.append(future)
            return future

        table.send_changelog = send_and_keep

    async def written(self) -> None:
        """Wait for the writes so far; raise (and so stop the worker) if one failed or hung."""
        pending, self.pending = self.pending, []
        await await_acks(pending, self.timeout_s, what=f"{self.name} changelog writes")


class AlertsService:
    """The worker's parts and the bodies of its agents; :func:`create_app` wires them to Faust."""

    def __init__(self, settings: AlertsSettings, app: faust.App) -> None:
        self.settings, self.app = settings, app
        kafka = settings.kafka
        self.enriched_name = kafka.topic(LogicalTopic.POSTS_ENRICHED)
        self.enriched = app.topic(self.enriched_name, key_serializer="raw", value_serializer="raw")
        self.alerts = app.topic(kafka.topic(LogicalTopic.ALERTS), key_serializer="raw",
                                value_serializer="raw")
        self.observations_name = f"{settings.app_id}-observations"
        self.observations = app.topic(self.observations_name, partitions=1, internal=True,
                                      key_serializer="raw", value_serializer="json")
        faust_tables = {name: app.Table(name, partitions=1, use_partitioner=True, help=text,
                                        extra_topic_configs=CHANGELOG_CONFIG)
                        for name, text in TABLES.items()}
        self.receipts = {name: ChangelogReceipts(table, settings.changelog_timeout_s)
                         for name, table in faust_tables.items()}
        self.tables = {name: WriteBack(table) for name, table in faust_tables.items()}
        self.watch = SurgeWatch(watch_config(settings), **self.tables)
        self.notifier = make_notifier(settings, on_done=self._notified)
        # Notifications go to the webhook once the batch that published them is stored, with them
        # in the desk's outbox; a restart sends those its predecessor did not deliver (they waited
        # in memory only, and a worker killed while the webhook was down or slow never sent them).
        self._to_notify: list[Alert] = []  # published in this batch
        self._queued: set[str] = set()  # handed to the notifier, not done yet
        self._done: list[str] = []  # done, to forget from the outbox with the next batch
        self.idle = IdleClock(settings.idle_close_seconds,
                              live_lag_seconds=settings.bucket_seconds + settings.grace_seconds)
        self.activity = PartitionActivity(settings.idle_partition_seconds)
        self.marks = Watermarks()
        self.issue_keys = make_issue_keys(settings)
        self.merged: list[tuple[str, str]] = []  # issue merges not yet sent to the counting stage
        self.driver = FaustDriver(
            app, Runtime.create(SERVICE, kafka, settings.consumer, on_invalid=_count_dead_letter),
            ack_timeout_s=settings.consumer.ack_timeout_s)
        self.regions = BoundedLabel(settings.metrics_max_regions)
        self.sources = BoundedLabel(settings.metrics_max_sources)
        self.lags = SourceLags()
        self._configured_partitions = (kafka.partitions_override
                                       or topic_spec(LogicalTopic.POSTS_ENRICHED).partitions)
        faust_tables["desk"].on_recover(self._restored)

    async def _restored(self) -> None:
        """The tables are recovered (a start or a rebalance): the gauges of the stored state
        (:func:`record_stored_state`). The worker that keeps the desk sends the notifications its
        outbox holds; the one that gave it up forgets its queue."""
        counting = any(tp.topic == self.observations_name for tp in self.app.consumer.assignment())
        if counting:
            self._submit(self.watch.notifications())
        elif self.notifier is not None and self._queued:
            # the worker that keeps the desk now sends them from its outbox
            self.notifier.forget_queued()
            self._queued.clear()
        record_stored_state(self.watch if counting else None)

    def source_partitions(self) -> int:
        return self.app.consumer.topic_partitions(self.enriched_name) or self._configured_partitions

    # -- stage 1: posts.enriched -> observations --------------------------

    async def route_records(self, records: list[Record]) -> BatchOutcome:
        """The processing function of stage 1: observations to forward, poison to dead-letter.

        The driver checks offsets follow on first (a gap would leave the skipped
        posts uncounted for good) and applies the dead-letter cap. The batch's posts are grouped
        into issues together, off the event loop (it may read the index).
        """
        outcome = BatchOutcome()
        decoded = [(record, decode_post(record)) for record in records]
        posts = [post for _, post in decoded if isinstance(post, EnrichedPost)]
        issue_ids = iter(await asyncio.to_thread(self.issue_keys.assign, posts))
        routed = [(record, post if isinstance(post, InvalidMessage) else observe(
            record, post, self.settings, next(issue_ids))) for record, post in decoded]
        # the batch's merges travel on its last post, after every post counted under a merged id
        # (a batch without one keeps them for the next)
        self.merged = (self.merged + self.issue_keys.take_merged())[-MAX_MERGED_KEPT:]
        last = max((k for k, (_, found) in enumerate(routed) if isinstance(found, Observation)), default=-1)
        sent = self.merged[:MERGED_PER_MESSAGE] if last >= 0 else []
        now = time.time()
        for k, ((record, found), (_, post)) in enumerate(zip(routed, decoded, strict=True)):
            if isinstance(found, InvalidMessage):
                outcome.invalid.append(found)
            else:
                assert isinstance(post, EnrichedPost)
                record_lag(post, self.lags, self.sources, now)
                outcome.outputs.append(self._observed(found, record, sent if k == last else None))
        self.merged = self.merged[len(sent):]
        expire_lags(self.lags, now)
        return outcome

    def _observed(self, observation: Observation, record: Record,
                  merged: list[tuple[str, str]] | None = None) -> Output:
        wall = time.time()
        self.idle.observe(observation.event_time, wall)
        self.activity.saw(record.partition, wall)
        body = ObservedPost.model_validate({
            **observation.to_dict(), "source_partition": record.partition,
            "source_offset": record.offset, "source_partitions": self.source_partitions(),
            **({"merged_issues": merged} if merged else {})})
        # The same JSON the topic's json serializer writes, so watch_surges reads it alike.
        value = AlertsObservation(body=body).model_dump_json(exclude_none=True).encode()
        return Output(self.observations_name, observation.post_id.encode(), value)

    async def report_status(self) -> None:
        """Tell the counting stage which partitions are idle, and move a silent live stream on."""
        wall = time.time()
        expire_lags(self.lags, wall)
        assigned = [tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.enriched_name]
        silent = self.activity.idle(assigned, wall)
        tick = self.idle.tick(wall)
        if silent or tick is not None:
            status = PartitionStatus(idle_partitions=silent, source_partitions=self.source_partitions(),
                                     tick=tick)
            value = AlertsObservation(body=status).model_dump(mode="json", exclude_none=True)
            await self.observations.send(key=b"status", value=value)

    # -- stage 2: observations -> windows -> alerts -----------------------

    async def watch_batch(self, events: Sequence[faust.EventT[Any]]) -> None:
        """Count one batch; returns once it may be acknowledged, or exits uncommitted."""
        try:
            await self._watch_batch(events)
        except Exception as exc:
            stop_uncommitted(exc)
        except asyncio.CancelledError:
            # Stopped half way: Faust would still acknowledge the batch on the way out and
            # commit it, with its table writes not all flushed.
            stop_uncommitted(BatchInterrupted(f"stopped during a batch of {len(events)} observations"))

    async def _watch_batch(self, events: Sequence[faust.EventT[Any]]) -> None:
        self._to_notify = []
        published = self.watch.published()  # as stored: the last batch's writes are flushed
        for event in events:
            await self._watch_one(AlertsObservation.model_validate(event.value).body)
        if self.notifier is not None:
            done, self._done = self._done, []
            self.watch.notified(done)
            if self.notifier.fmt == "alertmanager":  # a chat robot would say it all again
                self._to_notify += self.watch.due_refreshes(datetime.now(UTC), REFRESH_FIRING_AFTER)
            left_out = self.watch.hold_notifications(self._to_notify)
            if left_out:
                # still queued here, but a restart no longer sends them: say which
                log.warning("notification outbox full (%d bytes): %d not kept for a restart, "
                            "oldest first: %s", MAX_OUTBOX_BYTES, len(left_out), ", ".join(left_out[:20]))
        self.watch.persist()
        # The batch is acknowledged when this returns: its state must be on the broker by
        # then, and stored in STORE_ORDER so that a kill half way leaves a state the replay
        # of the batch repairs (see services.alerts.watch).
        for name in STORE_ORDER:
            self.tables[name].flush()
            await self.receipts[name].written()
        # Stored: a batch read again after a kill before this point publishes its alerts again,
        # and they are counted and notified then, once.
        record_published(published, self.watch.published())
        self._submit(self._to_notify)

    def _submit(self, alerts: list[Alert]) -> None:
        if self.notifier is None:
            return
        for alert in alerts:
            tid = transition_id(alert)
            # a rebalance gives back a desk whose outbox is queued here, or done and not yet forgotten
            if tid not in self._queued and tid not in self._done:
                self._queued.add(tid)
                self.notifier.submit(alert)

    def _notified(self, alert: Alert) -> None:
        tid = transition_id(alert)
        self._queued.discard(tid)
        self._done.append(tid)

    async def _watch_one(self, body: ObservedPost | PartitionStatus) -> None:
        tick = None
        if isinstance(body, PartitionStatus):
            self.marks.mark_idle(body.idle_partitions, body.source_partitions)
            tick = body.tick
        else:
            self._count(body)
        reached = [t for t in (self.marks.watermark(), tick) if t is not None]
        if not reached:
            return
        advance = self.watch.advance(max(reached), now=datetime.now(UTC))
        for closed in advance.closed:
            for alert in closed.alerts:
                await self._publish(alert)
        record_advance(advance, self.watch)

    def _count(self, post: ObservedPost) -> None:
        observation = Observation.of_message(post)
        self.marks.observe(post.source_partition, post.source_partitions, observation.event_time)
        counted = self.watch.add(observation, partition=post.source_partition, offset=post.source_offset)
        if post.merged_issues:
            self.watch.merged(post.merged_issues)
        if counted is Counted.COUNTED:
            metrics.POSTS_COUNTED.labels(topic=observation.topic, sentiment=observation.sentiment).inc()
            for key in observation.keys:
                metrics.VOLUME.labels(**volume_labels(key, self.regions, self.sources)).inc()
        elif counted is Counted.LATE:
            metrics.POSTS_LATE.inc()
        elif counted is Counted.DUPLICATE:
            metrics.POSTS_DUPLICATE.inc()
        else:
            metrics.POSTS_REPLAYED.inc()

    async def _publish(self, alert: Alert) -> None:
        await (await self.alerts.send(key=alert.alert_id.encode(), value=encode(alert)))
        log.info("alert %s %s: %s", alert.state.value, alert.key.label(), alert.explanation.summary)
        self._to_notify.append(alert)


def create_app(settings: AlertsSettings) -> faust.App:
    # read now: a places file it cannot use failed every post, dead-lettered up to the cap
    settings.gazetteer()
    app = faust.App(
        settings.app_id, broker=settings.kafka.faust_broker(), web_enabled=False,
        datadir=state_dir(settings.state_dir, "YUQING_ALERTS_STATE_DIR"),
        consumer_auto_offset_reset="earliest", producer_acks=-1,
        # Room for a dead letter of the largest post plus its key and record overhead.
        producer_max_request_size=settings.kafka.max_message_bytes + 64 * 1024,
        topic_replication_factor=settings.kafka.replication_factor,
        broker_commit_every=100, broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
    )
    service = AlertsService(settings, app)
    size, within = settings.batch_size, settings.batch_max_wait_s

    @app.agent(service.enriched)
    async def route_posts(stream: faust.StreamT[Any]) -> None:
        async for events in cast(faust.Stream[Any], stream).take_events(size, within=within):
            await service.driver.handle(events, service.route_records)

    @app.agent(service.observations)
    async def watch_surges(stream: faust.StreamT[Any]) -> None:
        async for events in cast(faust.Stream[Any], stream).take_events(size, within=within):
            await service.watch_batch(events)

    @app.timer(interval=STATUS_INTERVAL_S)  # type: ignore[untyped-decorator]  # faust is untyped
    async def report_status() -> None:
        await service.report_status()

    if service.notifier is not None:
        notifier = service.notifier

        @app.task  # type: ignore[untyped-decorator]  # faust is untyped
        async def deliver_notifications() -> None:
            await notifier.run()

    return app


def dead_letter_reason(message: InvalidMessage) -> str:
    """The ``reason`` label of a dead letter: one of DEAD_LETTER_REASONS (docs/alerts.md)."""
    reason = message.reason.split(":", 1)[0]
    return reason if reason in DEAD_LETTER_REASONS else "processing"


def _count_dead_letter(message: InvalidMessage) -> None:
    metrics.DEAD_LETTERS.labels(reason=dead_letter_reason(message)).inc()
