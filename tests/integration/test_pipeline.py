"""The whole path with the real servers: ingest -> Kafka -> NLP -> Elasticsearch and alerts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.integration.conftest import Pipeline, wait_until

pytestmark = pytest.mark.integration


def _post(pipe: Pipeline, posts: list[dict]) -> httpx.Response:
    return httpx.post(pipe.url("ingest") + "/v1/posts", json={"posts": posts},
                      headers={"X-Api-Key": pipe.env["YUQING_DEMO_API_KEY"]}, timeout=30)


def _posts(n: int, tag: str) -> list[dict]:
    now = datetime.now(UTC)
    return [{"external_id": f"{tag}-{i}", "created_at": (now - timedelta(seconds=n - i)).isoformat(),
             "text": f"青山乡第{i}组今晚又停电了，冰箱里的肉都要坏了，什么时候来电？", "region": "青山乡"}
            for i in range(n)]


def _search_total(pipe: Pipeline, **params: str) -> int:
    resp = httpx.get(pipe.url("search") + "/v1/posts/search", params=params, timeout=10)
    resp.raise_for_status()
    return int(resp.json()["total"])


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_post_travels_from_ingest_to_search_and_alerts(pipeline: Pipeline):
    for name in ("ingest", "nlp", "alerts", "indexer", "search"):
        pipeline.start(name)
    now = datetime.now(UTC).isoformat()
    resp = _post(pipeline, [{"external_id": "e2e-1", "created_at": now, "region": "城关镇",
                             "text": "城关镇幸福小区今晚又停电了，电话13812345678一直打不通"}])
    assert resp.status_code == 202, resp.text
    post_id = resp.json()["post_ids"][0]

    wait_until(lambda: _search_total(pipeline, q="幸福小区") == 1, 60, "post to be searchable")
    hit = httpx.get(pipeline.url("search") + f"/v1/posts/{post_id}", timeout=5).json()
    assert hit["region"] == "城关镇" and "13812345678" not in hit["text"]
    wait_until(lambda: _metric(pipeline.url("alerts"), "yuqing_alerts_posts_counted_total") >= 1,
               30, "alerts worker to count the post")
    assert _metric(pipeline.url("nlp"), "yuqing_nlp_posts_processed_total") >= 1


def test_sigkill_of_nlp_worker_loses_nothing_and_duplicates_nothing(pipeline: Pipeline):
    for name in ("ingest", "nlp", "indexer", "search"):
        pipeline.start(name)
    total = 400
    batches = [_posts(total, "kill")[i:i + 50] for i in range(0, total, 50)]
    for i, batch in enumerate(batches):
        assert _post(pipeline, batch).status_code == 202
        if i == 3:
            pipeline.kill("nlp")
    pipeline.start("nlp")
    es = Elasticsearch(pipeline.env["YUQING_ES_URL"])
    alias = f"{pipeline.env['YUQING_ES_INDEX_PREFIX']}-posts"

    def indexed() -> int:
        es.indices.refresh(index=alias, ignore_unavailable=True)
        return int(es.count(index=alias, ignore_unavailable=True)["count"])

    wait_until(lambda: indexed() >= total, 180, f"{total} posts indexed")
    ids = {h["_id"] for h in es.search(index=alias, body={"size": 1000, "_source": False})["hits"]["hits"]}
    assert indexed() == total and len(ids) == total
