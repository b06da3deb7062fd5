"""The alerts worker: windowed volumes per key from posts.enriched."""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from yuqing.alerts import metrics
from yuqing.alerts.keys import keys_for
from yuqing.alerts.settings import AlertsSettings
from yuqing.contracts import EnrichedPost
from yuqing.contracts.codec import ContractError, decode, encode
from yuqing.deadletter import make_dead_letter
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic, topic_spec

log = logging.getLogger(__name__)
SERVICE = "alerts"
_event_time: contextvars.ContextVar[float] = contextvars.ContextVar("event_time", default=0.0)


def faust_broker(kafka: KafkaSettings) -> str:
    return ";".join(f"kafka://{server}" for server in kafka.servers())


def create_app(settings: AlertsSettings) -> faust.App:
    app = faust.App(
        settings.app_id, broker=faust_broker(settings.kafka), web_enabled=False,
        datadir=str(settings.state_dir),
        consumer_auto_offset_reset="earliest", producer_acks=-1,
        topic_replication_factor=settings.kafka.replication_factor,
        table_cleanup_interval=10.0,
        # changelog partitions must match the source topic's for co-partitioning
        topic_partitions=settings.kafka.partitions_override
        or topic_spec(LogicalTopic.POSTS_ENRICHED).partitions,
    )
    kafka = settings.kafka
    enriched = app.topic(kafka.topic(LogicalTopic.POSTS_ENRICHED), key_serializer="raw",
                         value_serializer="raw")
    dlq = app.topic(kafka.topic(LogicalTopic.POSTS_DLQ), key_serializer="raw",
                    value_serializer="raw")

    async def on_window_close(key: Any, value: int) -> None:
        label, (start, _end) = key
        log.info("window closed: %s @ %s = %s", label,
                 datetime.fromtimestamp(start, UTC).isoformat(), value)

    # Windows close `grace_seconds` after they end; closed windows go to detection.
    volumes = app.Table(
        "volumes", default=int, on_window_close=on_window_close,
    ).tumbling(
        timedelta(seconds=settings.bucket_seconds),
        expires=timedelta(seconds=settings.bucket_seconds + settings.grace_seconds),
    ).relative_to(lambda _event: _event_time.get())

    @app.agent(enriched)
    async def count_posts(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            try:
                post = decode(EnrichedPost, message.value)
            except ContractError as exc:
                metrics.DEAD_LETTERS.labels(reason="contract").inc()
                letter = make_dead_letter(value=message.value, key=message.key,
                                          topic=message.topic, partition=message.partition,
                                          offset=message.offset, error=exc, service=SERVICE)
                await (await dlq.send(value=encode(letter)))
                continue
            _event_time.set(post.created_at.timestamp())
            for key in keys_for(post):
                volumes[key.label()] += 1
            metrics.POSTS_COUNTED.labels(topic=post.topic.value,
                                         sentiment=post.sentiment.value).inc()
            metrics.LAG_SECONDS.set((post.received_at - post.created_at).total_seconds())

    return app
