"""The indexer and the back-fill against the real Kafka and Elasticsearch."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, TopicPartition

from services.search.es import make_client
from services.search.indexer import Indexer
from services.search.issue_corrections import CORRECTION_MAPPING, corrections_index
from services.search.mappings import posts_alias, posts_index, small_alias, templates
from services.search.reindex import reindex
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME, make_alert, make_post
from yuqing.consumer import Record
from yuqing.contracts import DeadLetter, EnrichedPost
from yuqing.contracts.codec import decode, encode
from yuqing.kafka import MissingTopic, make_producer
from yuqing.settings import ElasticsearchSettings, KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings) -> Iterator[SearchSettings]:
    yield SearchSettings(kafka=kafka_settings, es=es_settings, bulk_max_wait_s=0.2, bulk_max_docs=50,
                         indexer_group_id=f"{es_settings.index_prefix}-ix", bulk_max_retries=1)
    es = make_client(es_settings)
    es.indices.delete(index=f"{es_settings.index_prefix}-*", ignore=404)
    for name in templates(es_settings.index_prefix):
        es.indices.delete_index_template(name=name, ignore=404)


def _posts(n: int, tag: str, start_minutes: int = 0) -> list[EnrichedPost]:
    texts = ["{i}号楼又停电了，什么时候来电", "电费{i}元，比上个月多了一倍", "营业厅{i}号窗口排队太久"]
    return [make_post(texts[i % 3].format(i=i), external_id=f"{tag}-{i}",
                      created_at=BASE_TIME + timedelta(minutes=start_minutes + i)) for i in range(n)]


def _publish(settings: SearchSettings, topic: LogicalTopic, items: list[Any]) -> None:
    producer = make_producer(settings.kafka, client_id="test")
    for item in items:
        key = getattr(item, "post_id", None) or item.alert_id
        producer.send(settings.kafka.topic(topic), key=key.encode(), value=encode(item))
    producer.flush(timeout=30)
    producer.close()


def _documents(es: Elasticsearch, settings: SearchSettings) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=f"{settings.es.index_prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    hits = es.search(index=posts_alias(settings.es.index_prefix), body={"size": 1000},
                     ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
    return {h["_id"]: {k: v for k, v in h["_source"].items() if k != "indexed_at"} for h in hits}


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _dead_letters(settings: SearchSettings) -> list[DeadLetter]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers(), group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    consumer.subscribe([settings.kafka.topic(LogicalTopic.POSTS_DLQ)])
    letters = [decode(DeadLetter, r.value) for r in consumer]
    consumer.close()
    return letters


def _committed(settings: SearchSettings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers(), group_id=settings.indexer_group_id)
    topic = settings.kafka.topic(LogicalTopic.POSTS_ENRICHED)
    total = sum(consumer.committed(TopicPartition(topic, p)) or 0
                for p in consumer.partitions_for_topic(topic) or ())
    consumer.close()
    return total


def test_indexer_writes_posts_and_alerts_dead_letters_rejections_and_commits(settings: SearchSettings):
    posts = _posts(30, "live")
    poison = make_post("这条帖子的关键词太长了", external_id="poison", extra_keywords=["长" * 12_000])
    _publish(settings, LogicalTopic.POSTS_ENRICHED, [*posts, poison])
    _publish(settings, LogicalTopic.ALERTS, [make_alert("alert-live-01", sample_post_ids=[posts[0].post_id])])
    indexer = Indexer(settings)
    worker = threading.Thread(target=indexer.run, daemon=True)
    worker.start()
    es = make_client(settings.es)
    try:
        _wait(lambda: len(_documents(es, settings)) == 30 and _committed(settings) == 31, 60,
              "30 posts indexed and 31 offsets committed")
        letters = _dead_letters(settings)
        assert len(letters) == 1 and "elasticsearch 400" in letters[0].error_message
        assert letters[0].service == "search-indexer"
        alert = es.get(index=small_alias(settings.es.index_prefix, "alerts"), id="alert-live-01")["_source"]
        assert alert["state"] == "firing" and alert["sample_post_ids"] == [posts[0].post_id]
    finally:
        indexer.stop()
        worker.join(timeout=30)


def test_a_normal_stop_logs_no_error(settings: SearchSettings, caplog: pytest.LogCaptureFixture):
    # Stopped within a second of its start, the indexer's consumer often still refreshes its
    # metadata or joins its group when it closes: kafka-python cancels those requests, and
    # logged one of them at ERROR about one stop in twenty.
    _publish(settings, LogicalTopic.POSTS_ENRICHED, _posts(20, "stop"))
    caplog.set_level(logging.WARNING)
    for run, delay_s in enumerate([0.3, 0.45, 0.6, 0.75, 0.9] * 5):
        group = f"{settings.indexer_group_id}-{run}"
        indexer = Indexer(settings.model_copy(update={"indexer_group_id": group}))
        worker = threading.Thread(target=indexer.run, daemon=True)
        worker.start()
        time.sleep(delay_s)
        indexer.stop()
        worker.join(timeout=30)
        assert not worker.is_alive()
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_reindex_from_kafka_rebuilds_the_same_documents(settings: SearchSettings):
    _publish(settings, LogicalTopic.POSTS_ENRICHED, _posts(40, "early"))
    time.sleep(0.5)
    between = datetime.now(UTC)
    time.sleep(0.5)
    _publish(settings, LogicalTopic.POSTS_ENRICHED, _posts(20, "late", 24 * 60))
    progress: list[tuple[int, int]] = []
    first = reindex(settings, from_offset=0, on_progress=lambda done, total: progress.append((done, total)))
    assert first.read == first.indexed == 60 and first.rejected == [] and first.rejected_count == 0
    assert progress[-1] == (60, 60)
    es = make_client(settings.es)
    built = _documents(es, settings)
    assert len(built) == 60
    again = reindex(settings, from_offset=0)
    assert again.indexed == 60 and _documents(es, settings) == built
    es.indices.delete(index=f"{settings.es.index_prefix}-posts-*")
    rebuilt = reindex(settings, from_offset=0)
    assert rebuilt.indexed == 60 and _documents(es, settings) == built  # same issue ids from scratch
    assert reindex(settings, from_time=between).read == 20
    assert reindex(settings, from_time=datetime.now(UTC) + timedelta(hours=1)).read == 0
    assert reindex(settings, from_time=datetime(1969, 12, 31, tzinfo=UTC)).read == 60  # all of it


def test_reindex_without_its_topics_says_so_and_writes_nothing(settings: SearchSettings) -> None:
    # a mistyped topic prefix read nothing and answered "read 0, indexed 0", as if nothing was lost
    missing = settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"topic_prefix": settings.kafka.topic_prefix + "typo."})})
    topic = missing.kafka.topic(LogicalTopic.POSTS_ENRICHED)
    with pytest.raises(MissingTopic, match=f"topic {topic} does not exist"):
        reindex(missing)
    es = make_client(settings.es)
    assert not es.indices.get(index=f"{settings.es.index_prefix}-*", allow_no_indices=True)


def test_an_unanswering_corrections_index_does_not_fail_the_batch(settings: SearchSettings) -> None:
    # the issue table's read of corrections before the write met 503 (an index whose shard is not
    # started): the batch failed and the indexer stopped to be restarted, where the write waits
    indexer = Indexer(settings)
    es = make_client(settings.es)
    try:
        corrections = corrections_index(settings.es.index_prefix)
        es.indices.delete(index=corrections, ignore=404)
        es.indices.create(index=corrections, wait_for_active_shards=0, body={
            "settings": {"index.routing.allocation.require._name": "no-such-node"},
            "mappings": CORRECTION_MAPPING})
        time.sleep(indexer.issues.refresh_s)  # the table's next read is due
        post = _posts(1, "unanswered")[0]
        outcome = indexer.index([Record(settings.kafka.topic(LogicalTopic.POSTS_ENRICHED), 0, 0,
                                        post.post_id.encode(), encode(post))])
        assert outcome.invalid == []
        written = es.get(index=posts_index(settings.es.index_prefix, post.created_at), id=post.post_id)
        assert written["_source"]["external_id"] == post.external_id
    finally:
        indexer.writer.close()
        indexer.driver.close()
