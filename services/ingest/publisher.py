"""Publish posts to posts.raw and wait for the broker's acknowledgement (acks=all, idempotent).

Two clients, one contract: ``publish`` returns only once Kafka acknowledged every
post, and raises :class:`PublishError` otherwise, so a caller never reports a
post as kept that Kafka did not take.

* :class:`AioKafkaPublisher` (aiokafka) runs on the API's event loop: no thread
  hop per request, and in ``make bench-ingest`` it carries several times the
  posts per second of kafka-python at a lower tail latency. The API uses it by
  default.
* :class:`KafkaPublisher` (kafka-python) is synchronous; ``yuqing publish`` uses
  it, and the API can too (``YUQING_INGEST_PRODUCER=kafka-python``, through
  :class:`ThreadedPublisher`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaError as AioKafkaError,
)
from aiokafka.errors import MessageSizeTooLargeError as AioMessageSizeTooLargeError
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from services.ingest import metrics
from yuqing.contracts import RawPost
from yuqing.contracts.codec import encode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)

CLIENT_ID = "yuqing-ingest"
RESET_AFTER_FAILURES = 3


class PublishError(RuntimeError):
    """Kafka did not acknowledge every post: the caller must not report success.

    ``acknowledged`` is how many posts of the call Kafka did take: 0 when none was
    (the caller may then say "nothing was accepted"), None when unknown (posts
    still in flight may yet be written).
    """

    def __init__(self, message: str, *, acknowledged: int | None = 0) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged


class PostTooLargeError(PublishError):
    """The broker or the client refused a post for its size: a fault of the post, not of Kafka,
    so it does not count towards reconnecting the producer. The edge bounds posts so that
    this does not happen (:mod:`services.ingest.admission`)."""


class Publisher(Protocol):
    """Blocking publisher (back-fill)."""

    def publish(self, posts: Sequence[RawPost]) -> None: ...

    def close(self) -> None: ...


class AsyncPublisher(Protocol):
    """Publisher for the event loop; ``start`` connects eagerly, ``publish`` reconnects lazily."""

    async def start(self) -> None: ...

    async def publish(self, posts: Sequence[RawPost]) -> None: ...

    async def close(self) -> None: ...


def _producer_options(settings: KafkaSettings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.servers(), "client_id": CLIENT_ID, "acks": "all",
            "enable_idempotence": True, **settings.client_options()}


class KafkaPublisher:
    """kafka-python producer; ``publish`` blocks until every post is acknowledged."""

    def __init__(self, settings: KafkaSettings, *, timeout_s: float = 10.0, linger_ms: int = 5,
                 batch_bytes: int = 262_144) -> None:
        self._settings = settings
        self._topic = settings.topic(LogicalTopic.POSTS_RAW)
        self._timeout_s = timeout_s
        self._options = {"linger_ms": linger_ms, "batch_size": batch_bytes, "retries": 5,
                         "request_timeout_ms": 10_000, "max_block_ms": 5_000}
        self._producer: KafkaProducer | None = None

    def _ensure(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(**_producer_options(self._settings), **self._options)
            except KafkaError as exc:
                raise PublishError(f"kafka unavailable: {exc}") from exc
        return self._producer

    def publish(self, posts: Sequence[RawPost]) -> None:
        producer = self._ensure()
        started = time.perf_counter()
        futures = []
        try:
            futures = [producer.send(self._topic, key=p.post_id.encode(), value=encode(p))
                       for p in posts]
            deadline = time.monotonic() + self._timeout_s
            for future in futures:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
        except MessageSizeTooLargeError as exc:
            raise PostTooLargeError(f"a post is too large for Kafka: {exc}",
                                    acknowledged=None if futures else 0) from exc
        except KafkaError as exc:
            raise PublishError(f"kafka did not acknowledge the posts: {exc}",
                               acknowledged=None if futures else 0) from exc
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


class ThreadedPublisher:
    """A blocking :class:`Publisher` used from the event loop through a worker thread."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def start(self) -> None:
        return None

    async def publish(self, posts: Sequence[RawPost]) -> None:
        await asyncio.to_thread(self._publisher.publish, posts)

    async def close(self) -> None:
        await asyncio.to_thread(self._publisher.close)


class AioKafkaPublisher:
    """aiokafka producer on the running event loop; reconnects on the next publish after a failure."""

    def __init__(self, settings: KafkaSettings, *, timeout_s: float = 10.0, linger_ms: int = 5,
                 batch_bytes: int = 262_144) -> None:
        self._settings = settings
        self._topic = settings.topic(LogicalTopic.POSTS_RAW)
        self._timeout_s = timeout_s
        self._options = {"linger_ms": linger_ms, "max_batch_size": batch_bytes,
                         "request_timeout_ms": int(timeout_s * 1000)}
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._failures = 0
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect now; raises :class:`PublishError` when Kafka cannot be reached in time."""
        await self._ensure()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(**_producer_options(self._settings), **self._options)
            try:
                async with asyncio.timeout(self._timeout_s):
                    await producer.start()
            except (AioKafkaError, OSError, TimeoutError) as exc:
                await _stop_quietly(producer)
                raise PublishError(f"kafka unavailable: {exc or type(exc).__name__}") from exc
            self._producer = producer
            return producer

    async def publish(self, posts: Sequence[RawPost]) -> None:
        producer = await self._ensure()
        started = time.perf_counter()
        try:
            await self._send_all(producer, posts)
        except PostTooLargeError:
            raise
        except PublishError:
            self._failures += 1
            if self._failures >= RESET_AFTER_FAILURES:
                self._reset(producer)
            raise
        self._failures = 0
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def _send_all(self, producer: AIOKafkaProducer, posts: Sequence[RawPost]) -> None:
        futures: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                for post in posts:
                    futures.append(await producer.send(self._topic, encode(post),
                                                       key=post.post_id.encode()))
                await asyncio.wait(futures)
        except AioMessageSizeTooLargeError as exc:
            raise PostTooLargeError(f"a post is too large for Kafka: {exc}",
                                    acknowledged=_acknowledged(futures)) from exc
        except (AioKafkaError, TimeoutError) as exc:
            raise PublishError(f"kafka did not acknowledge the posts in time: "
                               f"{exc or type(exc).__name__}",
                               acknowledged=_acknowledged(futures)) from exc
        finally:
            _forget(futures)
        failed = [f for f in futures if f.cancelled() or f.exception() is not None]
        if failed:
            reason = "cancelled" if failed[0].cancelled() else failed[0].exception()
            raise PublishError(f"kafka refused {len(failed)} of {len(futures)} posts: {reason}",
                               acknowledged=len(futures) - len(failed))

    def _reset(self, producer: AIOKafkaProducer) -> None:
        # A producer that keeps failing may be stuck (fenced producer id, dead sender task):
        # the next publish starts a new one; the old one is closed in the background.
        if self._producer is not producer:
            return
        log.warning("kafka producer failed %d times in a row; reconnecting", self._failures)
        self._producer, self._failures = None, 0
        task = asyncio.create_task(_stop_quietly(producer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer, timeout_s=5)
        await asyncio.gather(*self._closing, return_exceptions=True)


def _acknowledged(futures: list[asyncio.Future[Any]]) -> int | None:
    """How many sends Kafka acknowledged; None while some are still in flight."""
    if not all(f.done() for f in futures):
        return None
    return sum(1 for f in futures if not f.cancelled() and f.exception() is None)


def _forget(futures: list[asyncio.Future[Any]]) -> None:
    # Posts still in flight after a failure may yet be written; nobody waits for them any more.
    for future in futures:
        if future.done():
            future.cancelled() or future.exception()
        else:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _stop_quietly(producer: AIOKafkaProducer, timeout_s: float = 5) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await producer.stop()
    except (AioKafkaError, OSError, TimeoutError) as exc:
        log.warning("kafka producer did not close cleanly: %s", exc or type(exc).__name__)


def make_async_publisher(settings: KafkaSettings, *, client: str, timeout_s: float,
                         linger_ms: int, batch_bytes: int) -> AsyncPublisher:
    """The API's publisher: ``client`` is ``aiokafka`` or ``kafka-python``."""
    if client == "kafka-python":
        return ThreadedPublisher(KafkaPublisher(settings, timeout_s=timeout_s, linger_ms=linger_ms,
                                                batch_bytes=batch_bytes))
    return AioKafkaPublisher(settings, timeout_s=timeout_s, linger_ms=linger_ms,
                             batch_bytes=batch_bytes)
