"""The indexer's start against the real Kafka and Elasticsearch: what it waits for, and what stops it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from services.search import metrics
from services.search.es import ensure_templates, make_client
from services.search.indexer import Indexer
from services.search.mappings import posts_index
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME
from tests.search.test_indexer_kafka import _documents, _posts, _publish, _wait
from tests.test_cli import _yuqing
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
