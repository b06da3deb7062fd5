"""Kafka clients (kafka-python) configured the way every service needs them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import Cancelled, KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from yuqing.settings import KafkaSettings, reachable
from yuqing.topics import LogicalTopic, topic_spec

log = logging.getLogger(__name__)
T = TypeVar("T")


class CancelledOnClose(logging.Filter):
    """A request or a read that kafka-python's own closing client cuts short is not an error.

    Closing a client closes its connections, and every request still in flight
    on them fails with ``Cancelled`` (a connection lost to the broker fails them
    with another error). kafka-python logs some of these as errors: a metadata
    refresh under way when the indexer stops made a normal stop log
    ``Metadata refresh: failed Cancelled`` at ERROR, about one stop in twenty
    shortly after a start. Likewise its IO thread, reading a socket the close
    has just dropped, logs ``Error receiving network data`` with an
    ``AttributeError`` (the socket is ``None``) for a transport that says
    ``(closed)``. Such records are logged at DEBUG instead: dropped unless their logger logs
    DEBUG (a logger checks its level before its filters, so a record only relabelled reached
    the handlers, and a normal stop printed it as a ``debug`` line under level INFO).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno > logging.DEBUG and (any(isinstance(arg, Cancelled) for arg in args)
                                               or _read_after_close(record, args)):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _read_after_close(record: logging.LogRecord, args: tuple[object, ...]) -> bool:
    """kafka-python's IO thread reading a transport its own close has dropped the socket of."""
    error = record.exc_info[1] if record.exc_info else None
    return (isinstance(error, AttributeError) and record.name.startswith("kafka.net")
            and bool(args) and "(closed)" in str(args[0]))


def _quiet_cancellations() -> None:
    """Install :class:`CancelledOnClose` on kafka-python's loggers (a logger's filter sees only
    the records logged on it, so each one gets it)."""
    cancelled = CancelledOnClose()
    for name in list(logging.root.manager.loggerDict):
        if name == "kafka" or name.startswith("kafka."):
            logging.getLogger(name).addFilter(cancelled)


_quiet_cancellations()


def is_transient(exc: BaseException) -> bool:
    """A Kafka error that goes away when the brokers come back (connection, timeout, leader moves)."""
    return isinstance(exc, KafkaError) and bool(exc.retriable)


def brokers_reachable(settings: KafkaSettings, timeout_s: float = 2.0) -> bool:
    """Whether some bootstrap server accepts a TCP connection."""
    return any(reachable(server, timeout_s) for server in settings.servers())


def connect(what: str, make: Callable[[], T], settings: KafkaSettings, *,
            give_up: Callable[[], bool] = lambda: False) -> T:
    """Build a client once a broker accepts connections, waiting out Kafka being away.

    A kafka-python client starts an IO thread before it handshakes, and a
    failed handshake leaves that thread behind; so the wait polls the
    servers' ports and only builds the client when one answers.
    """
    def attempt() -> T:
        if not brokers_reachable(settings):
            raise KafkaConnectionError(f"no bootstrap server of {settings.bootstrap_servers} answers")
        return make()

    return until_kafka_answers(what, attempt, give_up=give_up)


def until_kafka_answers(what: str, call: Callable[[], T], *, give_up: Callable[[], bool] = lambda: False,
                        max_wait_s: float = 10.0) -> T:
    """``call()``, retried with backoff for as long as it fails with a transient Kafka error.

    Kafka being away (a broker restart, a network cut, a rolling upgrade) is
    waited out rather than turned into a crash; ``give_up()`` ends the wait
    (a worker asked to stop) by raising the last error.
    """
    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (%s: %s); retry %d in %.1fs", what, type(exc).__name__, exc,
                    state.attempt_number, state.upcoming_sleep)

    retrying = Retrying(retry=retry_if_exception(is_transient), reraise=True,
                        wait=wait_exponential_jitter(initial=0.5, max=max_wait_s),
                        stop=lambda _: give_up(), before_sleep=log_retry)
    return retrying(call)


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
    auto_offset_reset: str = "earliest", max_poll_records: int = 500, listener: Any = None,
) -> KafkaConsumer:
    """A consumer that never commits on its own: callers commit after their sink succeeded."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.servers(),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        max_poll_records=max_poll_records,
        # A subscribed topic missing from the metadata when partitions were assigned (created
        # a moment before, or its partitions added) is seen within 30 s, not the default 5 min.
        metadata_max_age_ms=30_000,
        **settings.client_options(),
    )
    names = [settings.topic(t) for t in topics]
    for name in names:
        # asks for the topic's metadata now, so that the group's first assignment includes a
        # topic created a moment ago instead of waiting for the next refresh
        consumer.partitions_for_topic(name)
    consumer.subscribe(names, listener=listener)
    return consumer


@contextmanager
def admin_client(settings: KafkaSettings) -> Iterator[KafkaAdminClient]:
    """An admin client of the project's cluster, closed when done."""
    admin = KafkaAdminClient(bootstrap_servers=settings.servers(), client_id="yuqing-admin",
                             **settings.client_options())
    try:
        yield admin
    finally:
        admin.close()


def ensure_topics(settings: KafkaSettings, topics: Iterable[LogicalTopic] = tuple(LogicalTopic)) -> list[str]:
    """Create the project's topics from their registry files; returns the ones created."""
    with admin_client(settings) as admin:
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
            _await_leaders(admin, {t.name: t.num_partitions for t in wanted if t.name in created})
        return created


def topic_drift(settings: KafkaSettings, topics: Iterable[LogicalTopic] = tuple(LogicalTopic)) -> list[str]:
    """How the project's existing topics differ from their registry files, one line each: a
    retention shorter than the contract's (posts a stopped worker has not read yet expire), another
    cleanup policy, fewer partitions (fewer replicas of a worker can share the work). A topic
    made by hand or by the broker's auto-creation was accepted as it was, and nobody was told."""
    with admin_client(settings) as admin:
        existing = set(admin.list_topics())
        names = {settings.topic(logical): logical for logical in topics
                 if settings.topic(logical) in existing}
        if not names:
            return []
        partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(names))}
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    configs = _topic_configs(described)
    found = []
    for name, logical in names.items():
        spec, config = topic_spec(logical), configs.get(name, {})
        retention = config.get("retention.ms")
        if retention is not None and 0 <= int(retention) < spec.retention_ms:
            found.append(f"{name}: retention.ms {retention} is shorter than the contract's "
                         f"{spec.retention_ms}: posts a stopped worker has not read yet expire")
        policy = config.get("cleanup.policy")
        if policy is not None and policy != spec.cleanup_policy:
            found.append(f"{name}: cleanup.policy {policy}, the contract's is {spec.cleanup_policy}")
        wanted = settings.partitions_override or spec.partitions
        if partitions.get(name, wanted) < wanted:
            found.append(f"{name}: {partitions[name]} partition(s), the contract's {wanted}: "
                         f"at most {partitions[name]} replica(s) of its consumers share the work")
    return found


def _topic_configs(described: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The topic configs of a describe_configs answer by topic name: those set on the topic or
    the broker (the client leaves out the built-in defaults)."""
    return {name: {key: str(entry["value"]) for key, entry in entries.items()
                   if entry.get("value") is not None}
            for name, entries in (described.get("topic") or {}).items()}


class MissingTopic(ValueError):
    """A worker's input topic the cluster does not have; the message is one line for the user."""


def require_topics(settings: KafkaSettings, topics: Iterable[LogicalTopic]) -> None:
    """Raise :class:`MissingTopic` naming the first of ``topics`` the cluster lacks.

    A Faust worker started before its input topic existed dropped it from its
    subscription and read nothing, even once the topic was created, while it
    looked healthy; refused at start, it is restarted until the topic is there.
    """
    missing = missing_topics(settings, [settings.topic(logical) for logical in topics])
    if missing:
        raise MissingTopic(f"topic {missing[0]} does not exist: create the topics "
                           "(yuqing topics) or check YUQING_KAFKA_TOPIC_PREFIX")


def missing_topics(settings: KafkaSettings, names: Iterable[str]) -> list[str]:
    """The topics of ``names`` (full names, prefixed) the cluster does not have, in their order."""
    with admin_client(settings) as admin:
        existing = set(admin.list_topics())
    return [name for name in names if name not in existing]


def require_replicas(settings: KafkaSettings) -> None:
    """Raise a ``ValueError`` when the cluster has fewer brokers than
    ``YUQING_KAFKA_REPLICATION_FACTOR``: a Faust worker creates its own topics (its tables'
    changelogs, its assignor's) with that many replicas, and ended in Faust's
    InvalidReplicationFactorError traceback."""
    with admin_client(settings) as admin:
        brokers = len(admin.describe_cluster()["brokers"])
    if settings.replication_factor > brokers:
        raise ValueError(f"YUQING_KAFKA_REPLICATION_FACTOR={settings.replication_factor} is more than the "
                         f"{brokers} broker(s) of the cluster: a worker's own topics could not be created")


RECORD_ROOM_BYTES = 1_024
"""Room the broker counts around a message's value: its key, headers and record batch."""


class TopicTooSmall(ValueError):
    """A topic whose ``max.message.bytes`` is below what the worker produces to it; one line."""


def require_room(settings: KafkaSettings, topics: Iterable[LogicalTopic]) -> None:
    """Raise :class:`TopicTooSmall` naming the first of ``topics`` whose ``max.message.bytes``
    cannot take a value of ``YUQING_KAFKA_MAX_MESSAGE_BYTES``.

    The workers cut what they produce to that setting (an enriched post, a dead letter); a topic
    that takes less (its own max.message.bytes, a broker default lower than the setting's)
    refused the first message over it, and the worker stopped uncommitted on it after every
    restart, the posts behind it held back and no dead letter written.
    """
    with admin_client(settings) as admin:
        resources = [ConfigResource(ConfigResourceType.TOPIC, settings.topic(logical),
                                    {"max.message.bytes": None}) for logical in topics]
        described = admin.describe_configs(resources, config_filter="all")["topic"]
    for resource in resources:
        entry = described.get(resource.name, {}).get("max.message.bytes")
        if entry is None:  # no such topic: said by require_topics, or by the first send to it
            continue
        limit = int(entry["value"])
        if settings.max_message_bytes + RECORD_ROOM_BYTES > limit:
            raise TopicTooSmall(
                f"YUQING_KAFKA_MAX_MESSAGE_BYTES={settings.max_message_bytes} does not fit topic "
                f"{resource.name}, whose max.message.bytes is {limit}: set it to at most "
                f"{limit - RECORD_ROOM_BYTES} or raise the topic's")


def _await_leaders(admin: KafkaAdminClient, partitions: dict[str, int], timeout_s: float = 30.0) -> None:
    """Wait until every new topic has all its partitions with a leader in the metadata.

    A topic is created before the broker's metadata shows it. A consumer group
    that is assigned partitions in that moment gets none of the topic's, and
    kafka-python only looks again when its metadata ages out (five minutes):
    its consumers would sit idle. So creation returns once the topics are usable.
    """
    deadline = time.monotonic() + timeout_s
    missing = sorted(partitions)
    while missing:
        described = {t["name"]: t for t in admin.describe_topics(missing)}
        missing = [name for name in missing if not _led(described.get(name), partitions[name])]
        if missing and time.monotonic() >= deadline:
            raise KafkaError(f"topics {missing} have no leader for every partition "
                             f"{timeout_s:.0f} s after they were created")
        if missing:
            time.sleep(0.1)


def _led(topic: dict[str, Any] | None, partitions: int) -> bool:
    if topic is None or topic.get("error_code"):
        return False
    parts = topic.get("partitions") or []
    return len(parts) == partitions and all(p.get("leader_id", -1) >= 0 for p in parts)
