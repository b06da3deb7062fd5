"""The indexer's start against the real Kafka and Elasticsearch: what it waits for, and what stops it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from services.search import indexer as indexer_module
from services.search import metrics
from services.search.es import ensure_templates, make_client
from services.search.indexer import Indexer, until_elasticsearch_answers
from services.search.mappings import posts_alias, posts_index
from services.search.settings import SearchSettings
from tests.conftest import REPO_ROOT, drop_topics, free_port, unique
from tests.search.factory import BASE_TIME
from tests.search.test_indexer_kafka import _documents, _posts, _publish, _wait
from tests.test_cli import _yuqing
from yuqing.kafka import ensure_topics
from yuqing.settings import ElasticsearchSettings, KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


@pytest.fixture
def start_settings(kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings
                   ) -> Iterator[SearchSettings]:
    yield SearchSettings(kafka=kafka_settings, es=es_settings, bulk_max_wait_s=0.2, bulk_max_docs=50,
                         indexer_group_id=f"{es_settings.index_prefix}-ix", bulk_max_retries=1)


def _ready() -> float | None:
    return metrics.INDEXER_REGISTRY.get_sample_value("yuqing_search_indexer_ready")


def test_a_red_posts_index_at_start_is_waited_out(start_settings: SearchSettings,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # the warm-up's search of the posts met a red index (503) and the indexer exited 1, which
    # `yuqing run` does not restart: the local pipeline went on without its indexer
    es = make_client(start_settings.es)
    ensure_templates(es, start_settings.es)
    red = posts_index(start_settings.es.index_prefix, BASE_TIME)
    es.indices.create(index=red, wait_for_active_shards=0,
                      body={"settings": {"index.routing.allocation.require._name": "no-such-node"}})
    caplog.set_level(logging.WARNING, logger="services.search.indexer")
    started: list[Indexer] = []
    starting = threading.Thread(target=lambda: started.append(Indexer(start_settings)), daemon=True)
    starting.start()

    def waits() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "Elasticsearch is not ready" in r.getMessage()]

    _wait(lambda: len(waits()) >= 2, 30, "two lines of the indexer waiting for Elasticsearch")
    assert starting.is_alive() and started == [] and _ready() == 0
    assert "search_phase_execution_exception" in waits()[0].getMessage()

    es.indices.put_settings(index=red, body={"index.routing.allocation.require._name": None})
    starting.join(timeout=60)
    assert not starting.is_alive() and _ready() == 1
    indexer = started[0]
    _publish(start_settings, LogicalTopic.POSTS_ENRICHED, _posts(3, "red"))
    worker = threading.Thread(target=indexer.run, daemon=True)
    worker.start()
    try:
        _wait(lambda: len(_documents(es, start_settings)) == 3, 60, "the three posts indexed")
    finally:
        indexer.stop()
        worker.join(timeout=30)


def test_a_setting_elasticsearch_refuses_stops_the_start_in_one_line(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings) -> None:
    # waiting out Elasticsearch must not wait out a refusal no wait changes (400, 401, 403)
    env = {"YUQING_ES_URL": es_settings.url, "YUQING_ES_INDEX_PREFIX": es_settings.index_prefix,
           "YUQING_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
           "YUQING_SEARCH_INDEXER_METRICS_PORT": "0", "YUQING_SEARCH_REFRESH_INTERVAL": "soon"}
    done = _yuqing("search", "indexer", env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: Elasticsearch: ") and "refresh_interval" in lines[-1]
    assert not any("not ready" in line for line in lines)


def _missing(topic: str) -> float | None:
    return metrics.INDEXER_REGISTRY.get_sample_value("yuqing_search_indexer_topic_missing", {"topic": topic})


def test_topics_created_after_the_start_are_said_missing_then_read(
        start_settings: SearchSettings, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the deployment guide creates the topics from inside the running indexer; under a mistyped
    # prefix the indexer sat idle for ever, its only lines kafka-python's own ERRORs, many a second
    late = start_settings.kafka.model_copy(update={"topic_prefix": unique("late") + "."})
    settings = start_settings.model_copy(update={"kafka": late})
    monkeypatch.setattr(indexer_module, "TOPIC_CHECK_S", 1.0)
    caplog.set_level(logging.INFO)
    indexer = Indexer(settings)
    worker = threading.Thread(target=indexer.run, daemon=True)
    worker.start()
    enriched = late.topic(LogicalTopic.POSTS_ENRICHED)
    try:
        def said() -> list[str]:
            return [r.getMessage() for r in caplog.records if "do not exist" in r.getMessage()]

        _wait(lambda: len(said()) >= 2, 30, "the missing topics said twice")
        assert enriched in said()[0] and late.topic(LogicalTopic.POSTS_DLQ) in said()[0]
        assert repr(late.topic_prefix) in said()[0]
        assert _missing(enriched) == 1 and _ready() == 0
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

        ensure_topics(late)
        _publish(settings, LogicalTopic.POSTS_ENRICHED, _posts(2, "late"))
        es = make_client(settings.es)
        _wait(lambda: len(_documents(es, settings)) == 2, 90, "the posts of the topic created late indexed")
        _wait(lambda: _ready() == 1, 10, "the indexer ready")
        assert _missing(enriched) == 0
    finally:
        indexer.stop()
        worker.join(timeout=30)
        drop_topics(late, [late.topic_prefix])


def test_readyz_answers_503_while_the_indexer_waits_and_200_once_it_reads(
        start_settings: SearchSettings, tmp_path: Path) -> None:
    # the readiness probe read /metrics, which answered 200 while the indexer waited: a rolling
    # update stopped the running indexer for one that read nothing
    es = make_client(start_settings.es)
    ensure_templates(es, start_settings.es)
    red = posts_index(start_settings.es.index_prefix, BASE_TIME)
    es.indices.create(index=red, wait_for_active_shards=0,
                      body={"settings": {"index.routing.allocation.require._name": "no-such-node"}})
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "YUQING_HOME": str(tmp_path),
           "YUQING_ES_URL": start_settings.es.url, "YUQING_ES_INDEX_PREFIX": start_settings.es.index_prefix,
           "YUQING_KAFKA_BOOTSTRAP_SERVERS": start_settings.kafka.bootstrap_servers,
           "YUQING_KAFKA_TOPIC_PREFIX": start_settings.kafka.topic_prefix,
           "YUQING_SEARCH_INDEXER_GROUP_ID": start_settings.indexer_group_id,
           "YUQING_SEARCH_INDEXER_METRICS_PORT": str(port)}
    log = (tmp_path / "indexer.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "search", "indexer"], env=env,
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def status(path: str) -> int | None:
        try:
            return httpx.get(base + path, timeout=2).status_code
        except httpx.HTTPError:
            return None

    try:
        _wait(lambda: "Elasticsearch is not ready" in (tmp_path / "indexer.log").read_text(), 60,
              "the indexer's line about Elasticsearch")
        assert (status("/readyz"), status("/metrics")) == (503, 200)
        es.indices.put_settings(index=red, body={"index.routing.allocation.require._name": None})
        _wait(lambda: status("/readyz") == 200, 60, "/readyz to answer 200")
        assert 'yuqing_search_indexer_ready 1.0' in httpx.get(base + "/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "indexer.log").read_text()[-2000:]


def test_a_read_only_monthly_index_does_not_stop_the_start(start_settings: SearchSettings,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # an old month made read-only (archived) refused the start-up's mapping and alias with 403
    # cluster_block_exception: the indexer (and the search API) exited 1 at every start
    es, prefix = make_client(start_settings.es), start_settings.es.index_prefix
    ensure_templates(es, start_settings.es)
    archived, current = posts_index(prefix, BASE_TIME), posts_index(prefix, BASE_TIME + timedelta(days=40))
    es.indices.create(index=archived)
    es.indices.create(index=current)
    es.indices.delete_alias(index=current, name=posts_alias(prefix))
    es.indices.put_settings(index=archived, body={"index.blocks.read_only": True})
    caplog.set_level(logging.WARNING, logger="services.search.es")
    try:
        indexer = Indexer(start_settings)
        indexer.writer.close()
        indexer.driver.close()
        indexer.topics.stop()
    finally:
        es.indices.put_settings(index=archived, body={"index.blocks.read_only": None})
    assert [r.getMessage() for r in caplog.records if "refuse changes" in r.getMessage()] == [
        f"posts indices ['{archived}'] refuse changes (an index block, index.blocks.read_only): they keep "
        "the mapping and aliases they have"]
    assert sorted(es.indices.get_alias(name=posts_alias(prefix))) == sorted([archived, current])


def test_the_wait_says_which_elasticsearch_does_not_answer(es_settings: ElasticsearchSettings,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # "a red index?" was the hint when nothing answered at the configured address at all
    away = make_client(es_settings.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"}))
    there = make_client(es_settings)
    tries: list[int] = []

    def info() -> object:
        tries.append(1)
        return (away if len(tries) < 3 else there).info()

    caplog.set_level(logging.WARNING, logger="services.search.indexer")
    assert "version" in until_elasticsearch_answers("reading its version", info, max_wait_s=0.5)
    lines = [r.getMessage() for r in caplog.records if r.name == "services.search.indexer"]
    assert len(lines) == 2 and all("does it answer at YUQING_ES_URL?" in line for line in lines)
    assert lines[0].startswith("Elasticsearch is not ready for the indexer: reading its version failed "
                               "(ConnectionError: ") and lines[1].endswith("(try 3)")
