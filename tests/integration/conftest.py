"""Run the real services as subprocesses against the session's Kafka and Elasticsearch."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from elasticsearch import Elasticsearch
from elasticsearch.exceptions import TransportError
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.demo.stream import demo_environment
from services.ingest.api import create_app as create_ingest_app
from services.ingest.settings import IngestSettings
from services.search.api import create_app as create_search_app
from services.search.auth import hash_key, new_key
from services.search.es import ensure_templates, make_client
from services.search.settings import SearchSettings
from tests.conftest import REPO_ROOT, drop_topics, free_port, unique
from tests.ingest.live import serve
from tests.ingest.sources import registry
from yuqing.settings import ElasticsearchSettings, KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def ingest(kafka_settings: KafkaSettings) -> Iterator[httpx.Client]:
    """The ingest API served over HTTP in this process, publishing to the test's topics."""
    settings = IngestSettings(kafka=kafka_settings, poll_forums=False, rate_limit_per_s=0)
    with serve(create_ingest_app(settings, registry=registry())) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


@dataclass
class AdminSearch:
    """The search API in-process with one admin key, on the test's indices."""

    http: TestClient
    es: Elasticsearch
    prefix: str
    key: str


@pytest.fixture
def admin_search(es_settings: ElasticsearchSettings, tmp_path: Path) -> Iterator[AdminSearch]:
    key = new_key("admin")
    (tmp_path / "keys.toml").write_text(
        f'[[keys]]\nid = "admin"\nrole = "admin"\nsha256 = "{hash_key(key)}"\n', encoding="utf-8")
    settings = SearchSettings(es=es_settings, api_keys_path=tmp_path / "keys.toml",
                              jwt_secret=SecretStr(secrets.token_hex(32)), rate_limit_per_minute=0)
    es = make_client(es_settings)
    ensure_templates(es, es_settings)
    with TestClient(create_search_app(settings, client=es), raise_server_exceptions=False) as http:
        yield AdminSearch(http, es, es_settings.index_prefix, key)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def indexed_hits(es: Elasticsearch, alias: str, size: int = 1_000) -> list[dict[str, Any]]:
    """The posts searchable under ``alias`` now, for polling: none while the indexer's new monthly
    index has no started shard yet (Elasticsearch answers 503 for a moment after creating it)."""
    try:
        es.indices.refresh(index=alias, ignore_unavailable=True)
        found = es.search(index=alias, body={"size": size, "query": {"match_all": {}}},
                          ignore_unavailable=True)
    except TransportError as exc:
        if exc.status_code != 503:
            raise
        return []
    hits: list[dict[str, Any]] = found["hits"]["hits"]
    return hits


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Pipeline:
    env: dict[str, str]
    logs: Path
    ports: dict[str, int]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    COMMANDS: ClassVar[dict[str, tuple[str, str]]] = {
        "ingest": ("ingest", "serve"), "nlp": ("nlp", "worker"), "alerts": ("alerts", "worker"),
        "indexer": ("search", "indexer"), "search": ("search", "serve"),
    }

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "yuqing.cli", *self.COMMANDS[name]], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        health = "/healthz" if name in ("ingest", "search") else "/metrics"
        wait_until(lambda: self._alive(name) and _http_ok(self.url(name) + health), 240,
                   f"{name} to become healthy (log: {self.logs / name}.log)")

    def _alive(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")
        return True

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


@pytest.fixture
def pipeline(kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings,
             tmp_path: Path) -> Iterator[Pipeline]:
    ports = {name: free_port() for name in Pipeline.COMMANDS}
    api_key = secrets.token_urlsafe(32)
    env = dict(os.environ)
    env.update({
        "YUQING_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "YUQING_KAFKA_PARTITIONS_OVERRIDE": str(kafka_settings.partitions_override),
        "YUQING_ES_URL": es_settings.url,
        "YUQING_ES_INDEX_PREFIX": es_settings.index_prefix,
        "YUQING_INGEST_PORT": str(ports["ingest"]),
        "YUQING_SEARCH_PORT": str(ports["search"]),
        "YUQING_NLP_METRICS_PORT": str(ports["nlp"]),
        "YUQING_ALERTS_METRICS_PORT": str(ports["alerts"]),
        "YUQING_SEARCH_INDEXER_METRICS_PORT": str(ports["indexer"]),
        "YUQING_NLP_APP_ID": unique("nlp-"),
        "YUQING_ALERTS_APP_ID": unique("alerts-"),
        "YUQING_SEARCH_INDEXER_GROUP_ID": unique("indexer-"),
        "YUQING_INGEST_SOURCES_PATH": str(REPO_ROOT / "config" / "sources.toml"),
        "YUQING_DEMO_API_KEY": api_key,
        "YUQING_NLP_BATCH_MAX_WAIT_S": "0.2",
        "YUQING_SEARCH_BULK_MAX_WAIT_S": "0.3",
        "YUQING_ALERTS_BUCKET_SECONDS": "60",
        "YUQING_ALERTS_GRACE_SECONDS": "5",
        "YUQING_SEARCH_ANONYMOUS_ROLE": "viewer",
    })
    env.update(demo_environment(env))  # the demo sources in config/sources.toml need their secrets
    env["YUQING_INGEST_POLL_FORUMS"] = "false"  # no demo forum runs in these tests
    env["YUQING_INGEST_CURSOR_DIR"] = str(tmp_path / "cursors")
    env.setdefault("YUQING_NLP_CLASSIFIER", "model")
    env["YUQING_NLP_STATE_DIR"] = env["YUQING_ALERTS_STATE_DIR"] = str(tmp_path / "state")
    env["PYTHONPATH"] = str(REPO_ROOT)
    pipe = Pipeline(env=env, logs=tmp_path, ports=ports)
    try:
        yield pipe
    finally:
        pipe.stop_all()
        drop_topics(kafka_settings, [env["YUQING_NLP_APP_ID"], env["YUQING_ALERTS_APP_ID"]])
