"""The NLP worker through real Kafka: a post too large once enriched loses nothing (issue 12, item 1)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from tests.integration.conftest import Pipeline, pipeline, wait_until
from yuqing.contracts import Channel, DeadLetter, EnrichedPost, RawPost, make_post_id
from yuqing.contracts.codec import decode, encode

pytestmark = pytest.mark.integration
__all__ = ["pipeline"]  # the fixture, re-exported for this module's tests


def _raw(ext: str, text: str, attributes: dict[str, str] | None = None) -> RawPost:
    now = datetime.now(UTC)
    return RawPost(post_id=make_post_id("app-main", ext), source="app-main", channel=Channel.APP,
                   external_id=ext, text=text, created_at=now, received_at=now,
                   attributes=attributes or {})


def _read(pipe: Pipeline, logical: str) -> list[bytes]:
    topic = pipe.env["YUQING_KAFKA_TOPIC_PREFIX"] + logical
    consumer = KafkaConsumer(bootstrap_servers=pipe.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"],
                             enable_auto_commit=False, consumer_timeout_ms=3000,
                             fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return [record.value for record in consumer]
    finally:
        consumer.close()


def _produce(pipe: Pipeline, values: list[bytes]) -> None:
    """To one partition, so that the messages share a batch."""
    producer = KafkaProducer(bootstrap_servers=pipe.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"],
                             max_request_size=2_000_000)
    for value in values:
        producer.send(pipe.env["YUQING_KAFKA_TOPIC_PREFIX"] + "posts.raw", value=value, partition=0)
    producer.flush()
    producer.close()


def _committed(pipe: Pipeline) -> int:
    topic = pipe.env["YUQING_KAFKA_TOPIC_PREFIX"] + "posts.raw"
    consumer = KafkaConsumer(bootstrap_servers=pipe.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"],
                             group_id=pipe.env["YUQING_NLP_APP_ID"], enable_auto_commit=False)
    try:
        return sum(consumer.committed(TopicPartition(topic, p)) or 0
                   for p in consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def _issue_reproduction(ext: str) -> RawPost:
    """The probe's post: 50 attributes of 13,000 characters. The contract now refuses it (at most
    2,000 characters an attribute), so it is built without validation, as a producer that skips
    the edge would write it."""
    now = datetime.now(UTC)
    return RawPost.model_construct(
        post_id=make_post_id("app-main", ext), source="app-main", channel=Channel.APP,
        external_id=ext, text="停" * 100_000, created_at=now, received_at=now,
        attributes={f"k{i}": "a" * 13_000 for i in range(50)})


def test_an_oversized_enriched_post_is_cut_to_fit_and_its_batch_mates_are_delivered(pipeline: Pipeline):
    normal = [_raw(f"n{i}", f"城关镇第{i}组今晚又停电了") for i in range(10)]
    # Valid by the contract (100,000 characters of text, 50 attributes of 2,000): 0.6 MB raw,
    # 0.9 MB once the redacted text is added, over the 0.8 MB limit this worker is given.
    big = _raw("big-1", "停" * 100_000, {f"k{i}": "电" * 2_000 for i in range(50)})
    refused = _issue_reproduction("repro-1")
    poison = b"{" + b"x" * 950_000  # not JSON; its dead letter would be 1.27 MB uncut
    values = ([encode(p) for p in normal[:5]] + [encode(big), encode(refused), poison]
              + [encode(p) for p in normal[5:]])
    assert all(len(v) < 1_000_000 for v in values)
    _produce(pipeline, values)
    pipeline.env["YUQING_NLP_CLASSIFIER"] = "placeholder"
    pipeline.env["YUQING_KAFKA_MAX_MESSAGE_BYTES"] = "800000"
    pipeline.start("nlp")

    wait_until(lambda: _committed(pipeline) == 13, 120, "all thirteen raw offsets to be committed")
    posts = [decode(EnrichedPost, v) for v in _read(pipeline, "posts.enriched")]
    enriched = {p.external_id: p for p in posts}
    assert sorted(enriched) == sorted([p.external_id for p in normal] + ["big-1"])
    cut = enriched["big-1"]
    assert cut.text == big.text and len(cut.attributes) == 50
    assert all(len(str(v)) == 1_000 for v in cut.attributes.values())
    letters = sorted((decode(DeadLetter, v) for v in _read(pipeline, "posts.dlq")), key=lambda d: d.offset)
    assert [letter.offset for letter in letters] == [6, 7]
    assert "attributes" in letters[0].error_message
    assert poison.startswith(base64.b64decode(letters[1].original_b64))
    assert f"of {len(poison)} bytes" in letters[1].error_message and letters[1].service == "nlp"
    assert pipeline.procs["nlp"].poll() is None, "the worker must keep running"


def test_a_produce_failure_stops_the_worker_without_a_commit(pipeline: Pipeline):
    normal = [_raw(f"m{i}", f"河口镇第{i}组停电三天了") for i in range(4)]
    # Valid by the contract, in 4-byte characters: 0.8 MB raw, 1.2 MB enriched, cut to the worker's 1 MB.
    big = _raw("big-2", "𠀀" * 100_000, {f"k{i}": "𠀀" * 2_000 for i in range(50)})
    _produce(pipeline, [encode(p) for p in normal[:2]])
    pipeline.env["YUQING_NLP_CLASSIFIER"] = "placeholder"
    pipeline.start("nlp")
    wait_until(lambda: _committed(pipeline) == 2, 120, "the first two to be committed")
    # The topic's limit lowered under the running worker (a worker started so is refused): the
    # broker refuses the big post.
    _enriched_takes(pipeline, 300_000)
    _produce(pipeline, [encode(p) for p in [big, *normal[2:]]])
    proc = pipeline.procs["nlp"]
    wait_until(lambda: proc.poll() is not None, 120, "the worker to stop on the refused send")
    pipeline.procs.pop("nlp")
    log = (pipeline.logs / "nlp.log").read_text(errors="replace")
    assert proc.returncode == 75, log[-3000:]
    assert "stopping without a commit" in log and _committed(pipeline) == 2

    _enriched_takes(pipeline, 1_048_588)
    pipeline.start("nlp")
    wait_until(lambda: _committed(pipeline) == 5, 120, "the restart to handle and commit all five")
    enriched = {decode(EnrichedPost, v).external_id for v in _read(pipeline, "posts.enriched")}
    assert enriched == {"m0", "m1", "m2", "m3", "big-2"}


def _enriched_takes(pipe: Pipeline, max_bytes: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=pipe.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"])
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, pipe.env["YUQING_KAFKA_TOPIC_PREFIX"]
                                            + "posts.enriched", {"max.message.bytes": str(max_bytes)})])
    finally:
        admin.close()


def test_posts_enriched_deleted_under_the_worker_stops_it_without_a_commit(pipeline: Pipeline):
    # A send waits for its topic's metadata; for a topic deleted while a backlog was being
    # sent that wait was the producer's request timeout (Faust's: 20 minutes), outside the ack
    # timeout: the worker hung with its batch, and SIGTERM waited for that batch too.
    from yuqing.kafka import ensure_topics
    from yuqing.settings import KafkaSettings
    from yuqing.topics import LogicalTopic

    backlog = 6_000
    _produce(pipeline, [encode(_raw(f"d{i}", f"河口镇第{i}组停电三天了，什么时候来电？"))
                        for i in range(backlog)])
    pipeline.env["YUQING_CONSUMER_ACK_TIMEOUT_S"] = "5"
    pipeline.start("nlp")
    wait_until(lambda: _committed(pipeline) >= 200, 120, "the worker to be half way through")
    enriched = pipeline.env["YUQING_KAFKA_TOPIC_PREFIX"] + "posts.enriched"
    admin = KafkaAdminClient(bootstrap_servers=pipeline.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"])
    try:
        admin.delete_topics([enriched])
    finally:
        admin.close()
    proc = pipeline.procs["nlp"]
    wait_until(lambda: proc.poll() is not None, 90, "the worker to stop on the unsent batch")
    pipeline.procs.pop("nlp")
    log = (pipeline.logs / "nlp.log").read_text(errors="replace")
    assert proc.returncode == 75, log[-3000:]
    assert "stopping without a commit" in log
    stopped_at = _committed(pipeline)
    assert stopped_at < backlog

    ensure_topics(KafkaSettings(bootstrap_servers=pipeline.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"],
                                topic_prefix=pipeline.env["YUQING_KAFKA_TOPIC_PREFIX"],
                                partitions_override=int(pipeline.env["YUQING_KAFKA_PARTITIONS_OVERRIDE"])),
                  [LogicalTopic.POSTS_ENRICHED])
    pipeline.start("nlp")
    wait_until(lambda: _committed(pipeline) == backlog, 240, "the restart to handle the rest")
    # what was committed before is not sent again; everything after it is
    assert len(set(_read(pipeline, "posts.enriched"))) >= backlog - stopped_at
