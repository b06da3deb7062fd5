"""Helpers for the ingest tests that run against the real Kafka: a live server, topic reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import free_port
from yuqing.contracts import RawPost
from yuqing.contracts.codec import decode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic


@contextmanager
def serve(app: FastAPI, *, timeout_s: float = 30) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port in a thread (lifespan included); yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the ingest app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)


def read_posts(settings: KafkaSettings, *, at_least: int, timeout_s: float = 30,
               settle_s: float = 1.0) -> list[RawPost]:
    """Every post on posts.raw, once ``at_least`` are there and nothing more came for ``settle_s``."""
    topic = settings.topic(LogicalTopic.POSTS_RAW)
    consumer = KafkaConsumer(bootstrap_servers=settings.servers(), enable_auto_commit=False,
                             **settings.client_options())
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        posts: list[RawPost] = []
        deadline, quiet_since = time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            records = [record for records in batch.values() for record in records]
            posts += [decode(RawPost, record.value) for record in records]
            if records:
                quiet_since = time.monotonic()
            elif len(posts) >= at_least and time.monotonic() - quiet_since >= settle_s:
                break
        return posts
    finally:
        consumer.close()
