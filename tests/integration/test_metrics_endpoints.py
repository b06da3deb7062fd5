"""Each service's /metrics carries its own families (and the process's), scraped from the real
services: a module of another service imported for its logic adds none."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.conftest import AdminSearch, Pipeline

pytestmark = pytest.mark.integration
SERVICES = ("yuqing_ingest_", "yuqing_nlp_", "yuqing_alerts_", "yuqing_search_")
PROCESS = {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_gc_objects_collected_total"}
# the indexer and the search API: two processes of one service, under one prefix
INDEXER_ONLY = {"yuqing_search_docs_indexed_total", "yuqing_search_bulk_seconds"}
API_ONLY = {"yuqing_search_requests_total", "yuqing_search_query_seconds"}


def _families(exposition: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", exposition, re.M))


def _check(exposition: str, own: str, never: set[str]) -> None:
    families = _families(exposition)
    assert {f for f in families if f.startswith(SERVICES) and not f.startswith(own)} == set()
    assert families & never == set()
    assert any(f.startswith(own) for f in families) and families >= PROCESS, sorted(families)


@pytest.mark.parametrize(("name", "own", "never"), [("alerts", "yuqing_alerts_", set()),
                                                    ("indexer", "yuqing_search_", API_ONLY)])
def test_a_worker_exports_its_own_metrics_only(pipeline: Pipeline, name: str, own: str,
                                               never: set[str]) -> None:
    # the alerts worker groups posts with the search's issue grouping: it exported every
    # yuqing_search_* family at 0, and the indexer the search API's (and the API the indexer's)
    pipeline.start(name)

    _check(httpx.get(pipeline.url(name) + "/metrics", timeout=5).text, own, never)


def test_the_apis_export_their_own_metrics_only(ingest: httpx.Client, admin_search: AdminSearch) -> None:
    for own, never, resp in (("yuqing_ingest_", set(), ingest.get("/metrics")),
                             ("yuqing_search_", INDEXER_ONLY, admin_search.http.get("/metrics"))):
        assert resp.status_code == 200, resp.text
        _check(resp.text, own, never)
