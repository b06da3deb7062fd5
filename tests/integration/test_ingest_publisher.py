"""The aiokafka publisher against the real Kafka: acknowledged posts, refusals, recovery."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest

from services.ingest.publisher import AioKafkaPublisher, PublishError
from tests.ingest.live import read_posts
from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.kafka import ensure_topics
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def raw(external_id: str) -> RawPost:
    return RawPost(post_id=make_post_id("partner", external_id), source="partner",
                   channel=Channel.INTEGRATION, external_id=external_id, text="停电了",
                   created_at=NOW, received_at=NOW)


def test_published_posts_are_on_the_topic_keyed_by_post_id(kafka_settings: KafkaSettings) -> None:
    async def scenario() -> None:
        publisher = AioKafkaPublisher(kafka_settings, timeout_s=10)
        await publisher.start()
        await publisher.publish([raw(str(i)) for i in range(20)])
        await publisher.close()

    asyncio.run(scenario())
    posts = read_posts(kafka_settings, at_least=20)
    assert sorted(p.external_id for p in posts) == sorted(str(i) for i in range(20))


def test_a_missing_topic_is_a_publish_error_and_recovers_once_it_exists(
        infra: None, caplog: pytest.LogCaptureFixture) -> None:
    settings = KafkaSettings(topic_prefix=f"missing{uuid.uuid4().hex[:8]}.", partitions_override=1)

    async def scenario() -> None:
        publisher = AioKafkaPublisher(settings, timeout_s=2)
        await publisher.start()
        for _ in range(3):
            with pytest.raises(PublishError):
                await publisher.publish([raw("a")])
        ensure_topics(settings)
        await publisher.publish([raw("a")])
        await publisher.close()

    with caplog.at_level(logging.WARNING, logger="services.ingest.publisher"):
        asyncio.run(scenario())
    assert "reconnecting" in caplog.text
    assert [p.external_id for p in read_posts(settings, at_least=1)] == ["a"]
