"""Kafka clients (kafka-python) configured the way every service needs them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic, topic_spec

log = logging.getLogger(__name__)


def make_producer(settings: KafkaSettings, *, client_id: str, linger_ms: int = 5) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas."""
    return KafkaProducer(
        bootstrap_servers=settings.servers(),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        retries=5,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=10_000,
        max_block_ms=5_000,
        **settings.client_options(),
    )


def make_consumer(
    settings: KafkaSettings, *, group_id: str, topics: Iterable[LogicalTopic], client_id: str,
    auto_offset_reset: str = "earliest", max_poll_records: int = 500,
) -> KafkaConsumer:
    """A consumer that never commits on its own: callers commit after their sink succeeded."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.servers(),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        max_poll_records=max_poll_records,
        **settings.client_options(),
    )
    consumer.subscribe([settings.topic(t) for t in topics])
    return consumer


def ensure_topics(settings: KafkaSettings, topics: Iterable[LogicalTopic] = tuple(LogicalTopic)) -> list[str]:
    """Create the project's topics from their registry files; returns the ones created."""
    admin = KafkaAdminClient(bootstrap_servers=settings.servers(), client_id="yuqing-admin",
                             **settings.client_options())
    try:
        existing = set(admin.list_topics())
        wanted = []
        for logical in topics:
            name = settings.topic(logical)
            if name in existing:
                continue
            spec = topic_spec(logical)
            wanted.append(NewTopic(
                name=name,
                num_partitions=settings.partitions_override or spec.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"retention.ms": str(spec.retention_ms),
                               "cleanup.policy": spec.cleanup_policy},
            ))
        created = []
        for new_topic in wanted:
            try:
                admin.create_topics([new_topic])
                created.append(new_topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics %s", created)
        return created
    finally:
        admin.close()
