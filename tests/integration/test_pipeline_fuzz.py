"""Fuzz the whole pipeline: hostile posts mixed with normal ones, ingest to Elasticsearch.

Requests to ``POST /v1/posts`` mix normal posts (some with control characters, odd
Unicode, attributes near their bounds) with refused ones (over the message budget,
dated far from their arrival). Posts written straight to ``posts.raw``, past the
edge, as integrators may, carry far dates too. Then:

* every normal post is indexed exactly once (a client resends the normal posts of a
  refused request, as the 4xx tells it to);
* every refused post got a 4xx naming it, or a dead letter with its reason;
* no refused post is searchable, and no control character was indexed.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.integration.conftest import Pipeline, indexed_hits, wait_until
from yuqing.contracts import Channel, DeadLetter, RawPost, make_post_id
from yuqing.contracts.codec import decode, encode
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration

SEED, NORMAL, REFUSED_REQUESTS, DIRECT = 20261206, 60, 12, 3
SOURCE = "demo-integration"  # the integration source of config/sources.toml
WORDS = ["停电", "电费", "跳闸", "抢修", "城关镇", "河口镇", "幸福小区", "电压不稳", "什么时候来电",
         "谢谢师傅"]
ODD = ["\u0001", "\u0002", "\u0000", "\u001b", "\u007f", "\u0085", "\u200b", "😡", "\ufeff", "ｅ", "\t"]


def normal_post(rng: random.Random, index: int, now: datetime) -> dict[str, Any]:
    text = "".join(rng.choice(WORDS) + (rng.choice(ODD) if rng.random() < 0.3 else "")
                   for _ in range(rng.randint(1, 12)))
    post: dict[str, Any] = {
        "external_id": f"fz-{index}", "text": f"第{index}条{text}",
        "created_at": (now - timedelta(seconds=rng.randint(0, 20 * 86_400))).isoformat()}
    if rng.random() < 0.3:
        post["title"] = rng.choice(WORDS) + rng.choice(ODD)
    if rng.random() < 0.3:
        post["attributes"] = {f"k{i}": rng.choice(WORDS) * rng.randint(1, 300) for i in range(5)}
    return post


def refused_post(rng: random.Random, index: int, now: datetime) -> dict[str, Any]:
    kind = index % 3
    created = now.isoformat()
    if kind == 1:
        created = rng.choice(["5138-11-16T09:46:39+00:00", "9999-12-31T23:59:59-23:59",
                              "0001-01-01T00:00:00+00:00", (now + timedelta(hours=2)).isoformat(),
                              (now - timedelta(days=45)).isoformat()])
    post: dict[str, Any] = {"external_id": f"bad-{index}", "text": "停电了", "created_at": created}
    if kind in (0, 2):  # every field within bounds, the whole message over the budget
        post["text"] = "停" * 100_000
        post["attributes"] = {f"k{i}": "电" * 2_000 for i in range(50)}
    if kind == 2:
        post["created_at"] = (now + timedelta(days=400)).isoformat()
    return post


def send(pipe: Pipeline, posts: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(pipe.url("ingest") + "/v1/posts", json={"posts": posts}, timeout=60,
                      headers={"X-Api-Key": pipe.env["YUQING_DEMO_API_KEY"]})


def publish_directly(kafka: KafkaSettings, now: datetime) -> list[str]:
    """Far-dated posts written straight to posts.raw, past the edge."""
    producer = KafkaProducer(bootstrap_servers=kafka.servers(), acks="all")
    ids = []
    for i, created in enumerate([datetime(5138, 11, 16, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
                                 now + timedelta(days=90)][:DIRECT]):
        post = RawPost(post_id=make_post_id(SOURCE, f"direct-{i}"), source=SOURCE,
                       channel=Channel.INTEGRATION, external_id=f"direct-{i}", text="停电了",
                       created_at=created, received_at=now)
        producer.send(kafka.topic(LogicalTopic.POSTS_RAW), encode(post), key=post.post_id.encode())
        ids.append(post.post_id)
    producer.flush()
    producer.close()
    return ids


def dead_letters(kafka: KafkaSettings) -> dict[str, str]:
    """post id -> reason, from posts.dlq."""
    topic = kafka.topic(LogicalTopic.POSTS_DLQ)
    consumer = KafkaConsumer(bootstrap_servers=kafka.servers(), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: dict[str, str] = {}
        for records in consumer.poll(timeout_ms=3_000, max_records=1_000).values():
            for record in records:
                letter = decode(DeadLetter, record.value)
                original = orjson.loads(base64.b64decode(letter.original_b64))
                found[original["post_id"]] = letter.error_message
        return found
    finally:
        consumer.close()


def test_hostile_posts_never_cost_a_normal_post(pipeline: Pipeline,
                                                kafka_settings: KafkaSettings) -> None:
    for name in ("ingest", "nlp", "indexer"):
        pipeline.start(name)
    rng, now = random.Random(SEED), datetime.now(UTC)
    normal = [normal_post(rng, i, now) for i in range(NORMAL)]
    pending, refused_ids = list(normal), []
    for r in range(REFUSED_REQUESTS):
        mates = [pending.pop() for _ in range(min(len(pending), rng.randint(0, 4)))]
        bad = refused_post(rng, r, now)
        position = rng.randint(0, len(mates))
        resp = send(pipeline, [*mates[:position], bad, *mates[position:]])
        assert resp.status_code in (413, 422), resp.text
        assert f"posts[{position}]" in resp.text or f'"posts",{position}' in resp.text, resp.text
        refused_ids.append(make_post_id(SOURCE, bad["external_id"]))
        pending += mates  # the client resends what the refused request carried
        if r % 3 == 0 and pending:  # accepted batches in between
            batch, pending = pending[:10], pending[10:]
            assert send(pipeline, batch).status_code == 202
    while pending:
        batch, pending = pending[:10], pending[10:]
        assert send(pipeline, batch).status_code == 202
    direct_ids = publish_directly(kafka_settings, now)

    es = Elasticsearch(pipeline.env["YUQING_ES_URL"])
    alias = f"{pipeline.env['YUQING_ES_INDEX_PREFIX']}-posts"

    def indexed() -> list[dict[str, Any]]:
        return [hit["_source"] for hit in indexed_hits(es, alias)]

    wait_until(lambda: len(indexed()) >= NORMAL and len(dead_letters(kafka_settings)) >= DIRECT,
               240, f"{NORMAL} posts indexed and {DIRECT} dead letters")
    docs = indexed()
    expected = {make_post_id(SOURCE, p["external_id"]) for p in normal}
    assert sorted(d["post_id"] for d in docs) == sorted(expected)  # each exactly once
    assert not {d["post_id"] for d in docs} & {*refused_ids, *direct_ids}
    letters = dead_letters(kafka_settings)
    assert {i: letters.get(i, "")[:10] for i in direct_ids} == {i: "retention:" for i in direct_ids}
    controls = [c for c in ODD if (ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0]
    assert not any(c in (d["text"] + (d.get("title") or "")) for d in docs for c in controls)
