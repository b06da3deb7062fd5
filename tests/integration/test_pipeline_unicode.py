"""Posts at the edges of Unicode and of the contract's bounds, ingest to Elasticsearch.

Every post the edge accepts (202) is indexed once, and the text a responder reads
is the text that was sent: 4-byte characters, combining marks, joiners and
direction marks, a single 100,000-character word, fields at their maximum
lengths, and a created_at with the largest offset RFC 3339 allows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.integration.conftest import Pipeline, indexed_hits, wait_until
from yuqing.contracts import make_post_id

pytestmark = pytest.mark.integration
SOURCE = "demo-integration"  # the integration source of config/sources.toml


def edge_posts(now: datetime) -> list[dict[str, Any]]:
    far_offset = now.astimezone(timezone(timedelta(hours=23, minutes=59))).isoformat()
    texts = {
        "emoji": "停电了😡" + "👨‍👩‍👧‍👦" * 10_000,
        "combining": "停电" + "e\u0301" * 49_000,
        "marks": "\u202e城关镇\u202c停电\u200d了\u200b\ufeff\u2066幸福小区\u2069",
        "one-word": "x" * 100_000,
        "astral": "𠀀𪚥𰻞" * 20_000,
    }
    posts = [{"external_id": f"uni-{name}", "text": text, "created_at": now.isoformat()}
             for name, text in texts.items()]
    posts.append({"external_id": "😡" * 256, "text": "城关镇停电了", "created_at": far_offset,
                  "title": "停" * 1_000, "author": "a" * 128, "thread_id": "𠀀" * 256,
                  "url": "https://example.com/" + "a" * 2_028, "region": "河口镇", "unit": "单" * 64})
    return posts


def test_every_accepted_edge_post_is_indexed_with_its_text(pipeline: Pipeline) -> None:
    for name in ("ingest", "nlp", "indexer"):
        pipeline.start(name)
    posts = edge_posts(datetime.now(UTC) - timedelta(minutes=1))
    for post in posts:  # one by one: together they are over the request's size limit
        resp = httpx.post(pipeline.url("ingest") + "/v1/posts", json=post, timeout=60,
                          headers={"X-Api-Key": pipeline.env["YUQING_DEMO_API_KEY"]})
        assert resp.status_code == 202, resp.text
    es = Elasticsearch(pipeline.env["YUQING_ES_URL"])
    alias = f"{pipeline.env['YUQING_ES_INDEX_PREFIX']}-posts"

    def indexed() -> dict[str, dict[str, Any]]:
        return {hit["_id"]: hit["_source"] for hit in indexed_hits(es, alias, size=100)}

    wait_until(lambda: len(indexed()) >= len(posts), 240, f"{len(posts)} posts indexed")
    docs = indexed()
    assert len(docs) == len(posts)
    for post in posts:
        doc = docs[make_post_id(SOURCE, post["external_id"])]
        assert doc["text"] == post["text"], post["external_id"][:20]
        assert doc["external_id"] == post["external_id"]
    last = docs[make_post_id(SOURCE, posts[-1]["external_id"])]
    assert datetime.fromisoformat(last["created_at"]) == datetime.fromisoformat(posts[-1]["created_at"])
    assert (last["title"], last["thread_id"], last["url"]) == (
        posts[-1]["title"], posts[-1]["thread_id"], posts[-1]["url"])
