"""Test session setup: real Kafka and Elasticsearch, started once per session.

Integration tests ask for the ``infra`` fixture (directly or through
``kafka_settings``/``es_settings``). If the servers are not reachable they are
started with ``deploy/local/infra.py`` and stopped at the end of the session.
Every test gets its own topic prefix, consumer groups and index prefix, deleted
after the test (``YUQING_TEST_KEEP_DATA=1`` keeps them, to look at a failure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from bench.common import free_port
from yuqing.settings import ElasticsearchSettings, KafkaSettings, reachable

REPO_ROOT = Path(__file__).resolve().parent.parent
__all__ = ["INFRA", "REPO_ROOT", "drop_topics", "free_port", "unique"]
INFRA = [sys.executable, str(REPO_ROOT / "deploy" / "local" / "infra.py")]


@pytest.fixture(scope="session")
def infra() -> Iterator[None]:
    kafka, es = KafkaSettings(), ElasticsearchSettings()
    es_host_port = es.url.split("://", 1)[-1].rstrip("/")
    started = False
    if not (reachable(kafka.servers()[0]) and reachable(es_host_port)):
        if os.environ.get("YUQING_TEST_NO_START") == "1":
            pytest.fail("Kafka/Elasticsearch not reachable and YUQING_TEST_NO_START=1")
        subprocess.run([*INFRA, "up"], check=True)
        started = True
    yield
    if started and os.environ.get("YUQING_KEEP_INFRA") != "1":
        subprocess.run([*INFRA, "down"], check=False)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def drop_topics(settings: KafkaSettings, prefixes: Iterable[str]) -> None:
    """Delete the topics a test created, so a long-lived local Kafka does not pile up partitions."""
    from kafka import KafkaAdminClient

    if os.environ.get("YUQING_TEST_KEEP_DATA") == "1":  # to look at a failed test's topics
        return
    admin = KafkaAdminClient(bootstrap_servers=settings.servers(), client_id="yuqing-tests")
    try:
        doomed = [t for t in admin.list_topics() if t.startswith(tuple(prefixes))]
        if doomed:
            admin.delete_topics(doomed)
    except Exception as exc:  # cleanup must not fail the test it follows (Kafka may be down on purpose)
        print(f"[tests] could not delete topics {list(prefixes)}: {exc}")
    finally:
        admin.close()


@pytest.fixture
def kafka_settings(infra: None) -> Iterator[KafkaSettings]:
    from yuqing.kafka import ensure_topics

    settings = KafkaSettings(topic_prefix=unique("t") + ".", partitions_override=2)
    ensure_topics(settings)
    yield settings
    drop_topics(settings, [settings.topic_prefix])


@pytest.fixture
def es_settings(infra: None) -> Iterator[ElasticsearchSettings]:
    from elasticsearch import Elasticsearch

    from services.search.mappings import templates

    settings = ElasticsearchSettings(index_prefix=unique("t"))
    yield settings
    if os.environ.get("YUQING_TEST_KEEP_DATA") == "1":
        return
    client = Elasticsearch(settings.url)
    try:
        client.indices.delete(index=f"{settings.index_prefix}-*", ignore_unavailable=True)
        for name in templates(settings.index_prefix):
            client.indices.delete_index_template(name=name, ignore=404)
    except Exception as exc:
        print(f"[tests] could not delete indices {settings.index_prefix}-*: {exc}")
    finally:
        client.close()
