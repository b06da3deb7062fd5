"""Posts that made the redaction's patterns backtrack, ingest to Elasticsearch.

A label of personal data (QQ, 微信, 户号) followed by a long run of spaces and no number was
tried in every split of the run: "QQ" and 400 spaces took 26 s, a few thousand took days. The
NLP worker redacts the text and the indexer the title, so such a post held the one or the other,
and every post after it waited. Both posts and their batch mate must be indexed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.integration.conftest import Pipeline, indexed_hits, wait_until
from yuqing.contracts import make_post_id

pytestmark = pytest.mark.integration
SOURCE = "demo-integration"  # the integration source of config/sources.toml


def test_a_label_followed_by_many_spaces_holds_up_no_post(pipeline: Pipeline) -> None:
    for name in ("ingest", "nlp", "indexer"):
        pipeline.start(name)
    now = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    posts = [
        {"external_id": "qq-spaces", "text": "QQ" + " " * 20_000 + "加一下", "created_at": now},
        {"external_id": "wechat-title", "title": "微信" + " " * 990 + "加我", "text": "城关镇停电了",
         "created_at": now},
        {"external_id": "mate", "text": "城关镇幸福小区又停电了", "created_at": now},
    ]
    resp = httpx.post(pipeline.url("ingest") + "/v1/posts", json={"posts": posts}, timeout=60,
                      headers={"X-Api-Key": pipeline.env["YUQING_DEMO_API_KEY"]})
    assert resp.status_code == 202, resp.text
    es = Elasticsearch(pipeline.env["YUQING_ES_URL"])
    alias = f"{pipeline.env['YUQING_ES_INDEX_PREFIX']}-posts"

    wait_until(lambda: len(indexed_hits(es, alias)) >= len(posts), 120, f"{len(posts)} posts indexed")
    docs = {hit["_id"]: hit["_source"] for hit in indexed_hits(es, alias)}
    assert set(docs) == {make_post_id(SOURCE, post["external_id"]) for post in posts}
    assert docs[make_post_id(SOURCE, "qq-spaces")]["text"] == posts[0]["text"]
