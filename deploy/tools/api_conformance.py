"""Run schemathesis (``--checks all``) over both APIs, served on the real Kafka and Elasticsearch.

    python deploy/tools/api_conformance.py [--max-examples N] [--report-dir DIR]

Starts the ingest API (demo sources of ``config/sources.toml``, a fresh topic prefix)
and the search API (a fresh index prefix, an admin key, a few posts), runs the
schemathesis CLI against each with valid credentials, prints each run's summary and
exits non-zero if any check failed. Everything it created is deleted afterwards.
Too slow for the test suite (minutes); the suite has a quicker fuzz of each API.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from bench.common import free_port  # noqa: E402
from yuqing.settings import ElasticsearchSettings, KafkaSettings  # noqa: E402

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def run_schemathesis(name: str, url: str, headers: list[str], args: argparse.Namespace) -> int:
    command = [str(SCHEMATHESIS), "--config-file", str(HERE / "conformance.toml"), "run",
               f"{url}/openapi.json", "--checks", "all",
               "--max-examples", str(args.max_examples), "--seed", "20261206", "--no-color",
               "--workers", "1", "--generation-database", "none", "--report", "junit",
               "--report-junit-path", str(Path(args.report_dir) / f"{name}.xml")]
    for header in headers:
        command += ["-H", header]
    print(f"== {name}: {' '.join(command[3:])}", flush=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "conformance_hooks",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    # Run in the (ignored) report folder: schemathesis keeps a cache in its working directory.
    return subprocess.run(command, check=False, env=env, cwd=args.report_dir).returncode


def ingest_app(kafka: KafkaSettings) -> tuple[FastAPI, str]:
    from services.ingest.api import create_app
    from services.ingest.registry import load_registry
    from services.ingest.settings import IngestSettings
    from yuqing.demo import demo_environment

    environ = demo_environment(os.environ)
    registry = load_registry(REPO / "config" / "sources.toml", environ)
    settings = IngestSettings(kafka=kafka, poll_forums=False, rate_limit_per_s=0)
    return create_app(settings, registry=registry), environ["YUQING_DEMO_API_KEY"]


def search_app(es_settings: ElasticsearchSettings, keys_path: Path) -> tuple[FastAPI, str]:
    from services.search.api import create_app
    from services.search.auth import hash_key, new_key
    from services.search.es import ensure_templates, make_client
    from services.search.indexer import build_actions, write_bulk
    from services.search.settings import SearchSettings
    from tests.search.factory import as_messages, make_alert, make_post

    key = new_key("conformance")
    keys_path.write_text(f'[[keys]]\nid = "conformance"\nrole = "admin"\nsha256 = "{hash_key(key)}"\n',
                         encoding="utf-8")
    client = make_client(es_settings)
    ensure_templates(client, es_settings)
    at = datetime.now(UTC) - timedelta(hours=2)
    posts = [make_post(text, external_id=f"c-{i}", created_at=at + timedelta(minutes=i))
             for i, text in enumerate(["城关镇幸福小区又停电了", "电费怎么这么高", "河口镇跳闸了"])]
    alert = make_alert("conformance-alert-1", sample_post_ids=[posts[0].post_id], emitted_at=at)
    messages = as_messages(list(posts)) + as_messages([alert], topic="alerts")
    actions, kept, _ = build_actions(messages, es_settings.index_prefix, alerts_topic="alerts")
    write_bulk(client, actions, kept, max_retries=2)
    client.indices.refresh(index=f"{es_settings.index_prefix}-*")
    settings = SearchSettings(es=es_settings, api_keys_path=keys_path, rate_limit_per_minute=0)
    return create_app(settings, client=client), key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--report-dir", default=str(REPO / "bench" / "results" / "conformance"))
    args = parser.parse_args()
    args.report_dir = str(Path(args.report_dir).resolve())
    Path(args.report_dir).mkdir(parents=True, exist_ok=True)
    from tests.conftest import drop_topics
    from yuqing.kafka import ensure_topics

    suffix = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic_prefix=f"conformance{suffix}.", partitions_override=1)
    es_settings = ElasticsearchSettings(index_prefix=f"conformance{suffix}")
    ensure_topics(kafka)
    codes = {}
    try:
        app, api_key = ingest_app(kafka)
        with serve(app) as url:
            codes["ingest"] = run_schemathesis("ingest", url, [f"X-Api-Key: {api_key}"], args)
        with tempfile.TemporaryDirectory() as tmp:
            app, key = search_app(es_settings, Path(tmp) / "keys.toml")
            with serve(app) as url:
                codes["search"] = run_schemathesis("search", url, [f"X-Api-Key: {key}"], args)
    finally:
        drop_topics(kafka, [kafka.topic_prefix])
        from elasticsearch import Elasticsearch

        from services.search.mappings import templates

        es = Elasticsearch(es_settings.url)
        es.indices.delete(index=f"{es_settings.index_prefix}-*", ignore_unavailable=True)
        for name in templates(es_settings.index_prefix):
            es.indices.delete_index_template(name=name, ignore=404)
    print(f"== exit codes: {codes}")
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
