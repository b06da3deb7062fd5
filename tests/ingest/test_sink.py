"""PostSink: each post published once, also under concurrent redeliveries; failures keep nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.ingest.dedup import DedupWindow
from services.ingest.publisher import PublishError
from services.ingest.sink import PostSink
from tests.ingest.fakes import FakePublisher
from yuqing.contracts import Channel, RawPost, make_post_id

NOW = datetime(2026, 11, 28, 20, 15, tzinfo=UTC)


def raw(external_id: str) -> RawPost:
    return RawPost(post_id=make_post_id("wechat-service", external_id), source="wechat-service",
                   channel=Channel.WECHAT, external_id=external_id, text="停电了", created_at=NOW,
                   received_at=NOW)


def sink_with(publisher: FakePublisher) -> PostSink:
    return PostSink(publisher, DedupWindow(ttl_s=60))


def test_concurrent_redelivery_waits_for_the_first_and_is_a_duplicate() -> None:
    publisher = FakePublisher()
    publisher.delay_s = 0.05
    sink = sink_with(publisher)

    async def scenario() -> list[tuple[int, int]]:
        outcomes = await asyncio.gather(*(sink.publish([raw("m1")], channel=Channel.WECHAT,
                                                       timeout_s=5) for _ in range(3)))
        return [(o.accepted, o.duplicates) for o in outcomes]

    assert asyncio.run(scenario()) == [(1, 0), (0, 1), (0, 1)]
    assert publisher.calls == 1


def test_concurrent_redelivery_fails_when_the_first_fails() -> None:
    publisher = FakePublisher()
    publisher.delay_s = 0.05
    publisher.broker_down()
    sink = sink_with(publisher)

    async def scenario() -> list[object]:
        return await asyncio.gather(*(sink.publish([raw("m1")], channel=Channel.WECHAT, timeout_s=5)
                                      for _ in range(2)), return_exceptions=True)

    assert all(isinstance(result, PublishError) for result in asyncio.run(scenario()))
    publisher.broker_up()
    outcome = asyncio.run(sink.publish([raw("m1")], channel=Channel.WECHAT, timeout_s=5))
    assert outcome.accepted == 1


def test_timeout_is_a_publish_error_and_keeps_nothing() -> None:
    publisher = FakePublisher()
    publisher.delay_s = 1
    sink = sink_with(publisher)

    with pytest.raises(PublishError):
        asyncio.run(sink.publish([raw("m1")], channel=Channel.WECHAT, timeout_s=0.05))
    publisher.delay_s = 0
    assert asyncio.run(sink.publish([raw("m1")], channel=Channel.WECHAT, timeout_s=1)).accepted == 1


def test_outcome_lists_every_post_id_in_request_order() -> None:
    sink = sink_with(FakePublisher())
    asyncio.run(sink.publish([raw("a")], channel=Channel.WECHAT, timeout_s=1))

    outcome = asyncio.run(sink.publish([raw("b"), raw("a"), raw("b")], channel=Channel.WECHAT,
                                       timeout_s=1))
    assert (outcome.accepted, outcome.duplicates) == (1, 2)
    assert outcome.post_ids == [raw(i).post_id for i in ("b", "a", "b")]
