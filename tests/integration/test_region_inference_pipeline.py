"""Through the real pipeline: a post without a region is filed under the township its words name."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.integration.conftest import Pipeline, wait_until

pytestmark = pytest.mark.integration


def _search(pipe: Pipeline, **params: str) -> dict:
    resp = httpx.get(pipe.url("search") + "/v1/posts/search", params=params, timeout=10)
    resp.raise_for_status()
    body: dict = resp.json()
    return body


def test_a_post_naming_hekou_is_searchable_under_its_township_and_marked_inferred(pipeline: Pipeline):
    for name in ("ingest", "nlp", "indexer", "search"):
        pipeline.start(name)
    now = datetime.now(UTC).isoformat()
    posts = [{"external_id": "rg-text", "created_at": now, "text": "河口这边突然停电了，啥情况？"},
             {"external_id": "rg-sender", "created_at": now, "region": "河口镇",
              "text": "河口镇新街村停电了，什么时候来电？"},
             {"external_id": "rg-none", "created_at": now,
              "text": "停电了！！冰箱里刚买的肉啊，什么时候来电"}]
    resp = httpx.post(pipeline.url("ingest") + "/v1/posts", json={"posts": posts},
                      headers={"X-Api-Key": pipeline.env["YUQING_DEMO_API_KEY"]}, timeout=30)
    assert resp.status_code == 202, resp.text
    text_id, sender_id, none_id = resp.json()["post_ids"]

    wait_until(lambda: _search(pipeline, q="停电")["total"] == 3, 120, "the three posts to be searchable")
    hits = {hit["post_id"]: hit for hit in _search(pipeline, region="河口镇", limit="50")["hits"]}
    assert set(hits) == {text_id, sender_id}
    assert (hits[text_id]["region"], hits[text_id]["region_source"]) == ("河口镇", "text")
    assert hits[sender_id]["region_source"] == "sender"
    unplaced = httpx.get(pipeline.url("search") + f"/v1/posts/{none_id}", timeout=5).json()
    assert unplaced["region"] is None and unplaced["region_source"] is None
