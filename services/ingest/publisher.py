"""Publish posts to posts.raw and wait for the broker's acknowledgement."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from kafka.errors import KafkaError

from yuqing.contracts import RawPost
from yuqing.contracts.codec import encode
from yuqing.ingest import metrics
from yuqing.kafka import make_producer
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic


class PublishError(RuntimeError):
    """Kafka did not acknowledge every post: the caller must not report success."""


class Publisher(Protocol):
    def publish(self, posts: Sequence[RawPost]) -> None: ...

    def close(self) -> None: ...


class KafkaPublisher:
    def __init__(self, settings: KafkaSettings, *, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._topic = settings.topic(LogicalTopic.POSTS_RAW)
        self._timeout_s = timeout_s
        self._producer = None

    def _ensure(self):  # type: ignore[no-untyped-def]
        if self._producer is None:
            try:
                self._producer = make_producer(self._settings, client_id="yuqing-ingest")
            except KafkaError as exc:
                raise PublishError(f"kafka unavailable: {exc}") from exc
        return self._producer

    def publish(self, posts: Sequence[RawPost]) -> None:
        """Send every post and block until all are acknowledged (acks=all)."""
        producer = self._ensure()
        started = time.perf_counter()
        try:
            futures = [producer.send(self._topic, key=p.post_id.encode(), value=encode(p))
                       for p in posts]
            deadline = time.monotonic() + self._timeout_s
            for future in futures:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaError as exc:
            raise PublishError(f"kafka did not acknowledge the posts: {exc}") from exc
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
