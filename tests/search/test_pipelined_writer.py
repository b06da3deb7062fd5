"""The indexer's pipelined bulk writer on the real Elasticsearch: every post of a batch written in
slices lands once, a refused message comes back as a rejection with its record, and the issues are
the ones the batch gets when built in one piece (building stays in order while slices are written)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from services.search.bulk import (
    BulkOutcome,
    PipelinedWriter,
    RetryableBulkError,
    build_actions,
    issue_table,
    write_bulk,
)
from services.search.es import ensure_templates, make_client
from services.search.mappings import posts_index, posts_index_pattern
from services.search.metrics import INDEXER_REGISTRY as REGISTRY
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME, as_messages, make_post
from yuqing.consumer import Record
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration

TOWNS = ["河口镇", "青山乡", "城关镇"]
TEXTS = ["{town}停电了，什么时候来电？", "{town}这边又停电了，冰箱里的东西都要坏了",
         "{town}电费怎么比上个月多了一百多", "{town}营业厅排队太久了"]


def _records() -> list[Record]:
    posts = [make_post(TEXTS[i % 4].format(town=TOWNS[i % 3]), external_id=f"p-{i}", region=TOWNS[i % 3],
                       created_at=BASE_TIME + timedelta(seconds=20 * i)) for i in range(230)]
    records = as_messages(list(posts))
    broken = Record("posts.enriched", 0, 10_000, None, b'{"not": "a post"}')
    return [*records[:117], broken, *records[117:]]


def test_a_batch_written_in_slices_lands_whole_with_the_issues_of_a_one_piece_build(
        es_settings: ElasticsearchSettings) -> None:
    es, prefix = make_client(es_settings), es_settings.index_prefix
    settings = SearchSettings(es=es_settings)
    ensure_templates(es, es_settings)
    records = _records()
    writer = PipelinedWriter(es, prefix, issues=issue_table(settings), max_retries=2, slice_docs=40)
    try:
        outcome = writer.write(records)
    finally:
        writer.close()

    assert outcome.indexed == 230
    assert [(record.offset, why.split(":")[0]) for record, why in outcome.rejected] == [(10_000, "contract")]
    es.indices.refresh(index=posts_index_pattern(prefix))
    stored = {hit["_id"]: hit["_source"]["issue_id"] for hit in es.search(
        index=posts_index_pattern(prefix), body={"size": 1000, "query": {"match_all": {}}})["hits"]["hits"]}
    actions, _, _ = build_actions(records, prefix, issues=issue_table(settings))
    assert stored == {action["_id"]: action["_source"]["issue_id"] for action in actions}
    assert 3 <= len(set(stored.values())) < 230  # grouped, per township and matter


def _copies(es: Elasticsearch, prefix: str, post_id: str) -> dict[str, str]:
    """index -> text of every document of the post."""
    es.indices.refresh(index=posts_index_pattern(prefix))
    hits = es.search(index=posts_index_pattern(prefix),
                     body={"query": {"ids": {"values": [post_id]}}})["hits"]["hits"]
    return {hit["_index"]: hit["_source"]["text"] for hit in hits}


@pytest.mark.parametrize("how", ["next batch", "same batch", "after a restart"])
def test_a_post_sent_again_dated_in_another_month_keeps_one_document(
        es_settings: ElasticsearchSettings, how: str) -> None:
    # An Atom entry dated by <updated> is published again when edited, a partner resends a post with
    # its offset corrected: the same post id, a created_at in another month, so another index.
    es, prefix = make_client(es_settings), es_settings.index_prefix
    settings = SearchSettings(es=es_settings)
    ensure_templates(es, es_settings)
    now = datetime.now(UTC)
    last_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = make_post("城关镇停电了", external_id="edited", created_at=last_month, received_at=now)
    second = make_post("城关镇停电了，已经恢复", external_id="edited", created_at=now, received_at=now)
    records = as_messages([first, second])
    writer = PipelinedWriter(es, prefix, issues=issue_table(settings), max_retries=2, slice_docs=40)
    try:
        if how == "same batch":
            assert writer.write(records).rejected == []
        else:
            assert writer.write(records[:1]).rejected == []
            if how == "after a restart":
                es.indices.refresh(index=posts_index_pattern(prefix))
                writer.close()
                writer = PipelinedWriter(es, prefix, issues=issue_table(settings), max_retries=2)
            assert writer.write(records[1:]).rejected == []
    finally:
        writer.close()

    assert _copies(es, prefix, first.post_id) == {posts_index(prefix, now): "城关镇停电了，已经恢复"}


def _bulk_requests() -> float:
    return REGISTRY.get_sample_value("yuqing_search_bulk_seconds_count") or 0.0


def test_the_bulk_duration_is_observed_once_per_bulk_request(es_settings: ElasticsearchSettings) -> None:
    # "wall time of one bulk request": it timed the indexer's whole batch (reading other replicas'
    # posts, grouping, every slice's request, recording merges), once per batch
    es, prefix = make_client(es_settings), es_settings.index_prefix
    ensure_templates(es, es_settings)
    writer = PipelinedWriter(es, prefix, issues=issue_table(SearchSettings(es=es_settings)), slice_docs=40)
    before = _bulk_requests()
    try:
        assert writer.write(_records()[:100]).indexed == 100
    finally:
        writer.close()

    assert _bulk_requests() == before + 3


def _first_of_three_indexed(es_settings: ElasticsearchSettings, tag: str
                            ) -> tuple[Elasticsearch, str, list[dict[str, Any]], list[Record]]:
    """Three posts' actions, the first written: the client, their index, the actions and messages."""
    es, prefix = make_client(es_settings), es_settings.index_prefix
    settings = SearchSettings(es=es_settings)
    ensure_templates(es, es_settings)
    posts = [make_post(f"河口镇停电了{i}", external_id=f"{tag}-{i}", created_at=BASE_TIME) for i in range(3)]
    actions, kept, rejected = build_actions(as_messages(list(posts)), prefix, issues=issue_table(settings))
    assert rejected == [] and write_bulk(es, actions[:1], kept[:1], max_retries=1).indexed == 1
    return es, actions[0]["_index"], actions, kept


def test_a_write_block_on_the_index_is_waited_out_not_dead_lettered(
        es_settings: ElasticsearchSettings) -> None:
    # an operator's index.blocks.write (or a cluster set read-only) answers each document 403
    # cluster_block_exception: they were dead-lettered, and the indexer stopped at the cap
    es, index, actions, kept = _first_of_three_indexed(es_settings, "block")
    es.indices.put_settings(index=index, body={"index.blocks.write": True})
    try:
        with pytest.raises(RetryableBulkError):
            write_bulk(es, actions[1:], kept[1:], max_retries=1)
    finally:
        es.indices.put_settings(index=index, body={"index.blocks.write": False})
    outcome = write_bulk(es, actions[1:], kept[1:], max_retries=1)
    assert outcome.rejected == [] and outcome.indexed == 2


def test_a_full_disk_s_read_only_block_is_waited_out_and_said_in_the_log(
        es_settings: ElasticsearchSettings, caplog: pytest.LogCaptureFixture) -> None:
    # past the flood-stage watermark Elasticsearch blocks the indices (read_only_allow_delete) and
    # answers each document 429: the indexer retried in silence, its log showed only "_bulk 200"
    es, index, actions, kept = _first_of_three_indexed(es_settings, "flood")
    es.indices.put_settings(index=index, body={"index.blocks.read_only_allow_delete": True})
    try:
        with caplog.at_level("WARNING", logger="services.search.bulk"), \
                pytest.raises(RetryableBulkError, match="429 cluster_block_exception"):
            write_bulk(es, actions[1:], kept[1:], max_retries=1)
    finally:
        es.indices.put_settings(index=index, body={"index.blocks.read_only_allow_delete": None})
    retried = [r.getMessage() for r in caplog.records if r.name == "services.search.bulk"]
    assert len(retried) == 1 and "read-only-allow-delete" in retried[0] and index in retried[0], retried
    outcome = write_bulk(es, actions[1:], kept[1:], max_retries=1)
    assert outcome.rejected == [] and outcome.indexed == 2


def test_a_closed_index_is_waited_out_not_dead_lettered(es_settings: ElasticsearchSettings) -> None:
    # a posts index closed for maintenance (to change its analysis settings) answers each document
    # 400 index_closed_exception: they were dead-lettered, and the indexer stopped at the cap
    es, index, actions, kept = _first_of_three_indexed(es_settings, "closed")
    es.indices.close(index=index)
    try:
        with pytest.raises(RetryableBulkError):
            write_bulk(es, actions[1:], kept[1:], max_retries=1)
    finally:
        es.indices.open(index=index, wait_for_active_shards=1)
    outcome = write_bulk(es, actions[1:], kept[1:], max_retries=1)
    assert outcome.rejected == [] and outcome.indexed == 2


def test_a_posts_index_whose_shard_is_not_started_is_waited_out(es_settings: ElasticsearchSettings) -> None:
    # the search for the batch's copies in other months was answered 503 (a monthly index just created,
    # a node restarting): the batch failed and the indexer stopped to be restarted, where the bulk
    # request itself waits such an index out
    es, prefix = make_client(es_settings), es_settings.index_prefix
    ensure_templates(es, es_settings)
    post = make_post("河口镇停电了", external_id="unstarted-1", created_at=BASE_TIME)
    unstarted = posts_index(prefix, BASE_TIME)
    es.indices.create(index=unstarted, wait_for_active_shards=0,
                      body={"settings": {"index.routing.allocation.require._name": "no-such-node"}})
    writer = PipelinedWriter(es, prefix, issues=issue_table(SearchSettings(es=es_settings)), max_retries=20)
    outcome: list[BulkOutcome] = []
    try:
        thread = threading.Thread(target=lambda: outcome.append(writer.write(as_messages([post]))))
        thread.start()
        time.sleep(2)
        assert thread.is_alive() and outcome == []  # waiting, not failed
        es.indices.put_settings(index=unstarted, body={"index.routing.allocation.require._name": None})
        thread.join(timeout=60)
    finally:
        writer.close()
    assert [(o.indexed, o.rejected) for o in outcome] == [(1, [])]
