"""Posts placed by the NLP worker's inferred region, in the real Elasticsearch: region filters and
the issues driving a township's alert find them; new fields reach indices made before them."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.search.api import create_app
from services.search.bulk import build_actions, issue_table, write_bulk
from services.search.es import ensure_templates, make_client
from services.search.issue_alerts import driving_issues
from services.search.mappings import (
    ACTION_PROPERTIES,
    POST_PROPERTIES,
    posts_index,
    posts_template,
    small_index,
    small_template,
)
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME, as_messages, make_post
from yuqing.contracts import EnrichedPost
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration

FROM_APP = ["河口镇停电了，什么时候来电？", "河口镇新街整条街都没电了", "河口镇停电了，啥时候来电啊"]
FROM_TEXT = ["河口停电+1", "河口这边突然停电了，啥情况？", "我家也停了，滨河小区，这都第二次了"]


def _posts() -> list[EnrichedPost]:
    app = [make_post(t, external_id=f"app-{i}", region="河口镇", created_at=BASE_TIME + timedelta(minutes=i))
           for i, t in enumerate(FROM_APP)]
    text = [make_post(t, external_id=f"wx-{i}", region=None, unit=None, source="wechat-county",
                      created_at=BASE_TIME + timedelta(minutes=3 + i)).model_copy(
                          update={"inferred_region": "河口镇"}) for i, t in enumerate(FROM_TEXT)]
    return app + text


def test_a_region_inferred_from_the_text_is_filtered_on_and_drives_the_townships_issues(
        es_settings: ElasticsearchSettings, tmp_path: Path) -> None:
    (tmp_path / "keys.toml").write_text("", encoding="utf-8")
    settings = SearchSettings(es=es_settings, api_keys_path=tmp_path / "keys.toml", rate_limit_per_minute=0,
                              anonymous_role="viewer")
    es, prefix = make_client(es_settings), es_settings.index_prefix
    ensure_templates(es, es_settings)
    posts = _posts()
    actions, kept, rejected = build_actions(as_messages(list(posts)), prefix, issues=issue_table(settings))
    assert rejected == [] and write_bulk(es, actions, kept, max_retries=2).rejected == []
    es.indices.refresh(index=f"{prefix}-*")

    with TestClient(create_app(settings, client=es)) as api:
        page = api.get("/v1/posts/search", params={"region": "河口镇", "limit": 50}).json()
    assert page["total"] == 6
    sources = {hit["text"]: hit["region_source"] for hit in page["hits"]}
    assert {sources[t] for t in FROM_TEXT} == {"text"} and {sources[t] for t in FROM_APP} == {"sender"}
    found = driving_issues(es, prefix=prefix, since=BASE_TIME - timedelta(minutes=5),
                           until=BASE_TIME + timedelta(minutes=30), topic="outage", region="河口镇")
    assert sum(issue.posts for issue in found) == 6  # the sender's and the inferred posts alike


def test_templates_put_a_new_field_onto_a_monthly_index_made_before_it(
        es_settings: ElasticsearchSettings) -> None:
    es, prefix = make_client(es_settings), es_settings.index_prefix
    older = posts_template(prefix)
    older_properties = copy.deepcopy(POST_PROPERTIES)
    del older_properties["region_source"]
    older["template"]["mappings"]["properties"] = older_properties
    es.indices.put_index_template(name=f"{prefix}-posts", body=older)
    index = posts_index(prefix, BASE_TIME)
    es.indices.create(index=index)
    assert "region_source" not in es.indices.get_mapping(index=index)[index]["mappings"]["properties"]

    ensure_templates(es, es_settings)
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["region_source"] == {"type": "keyword"}


def test_templates_put_a_new_field_onto_a_small_index_made_before_it(
        es_settings: ElasticsearchSettings) -> None:
    es, prefix = make_client(es_settings), es_settings.index_prefix
    older = small_template(prefix, "actions")
    older_properties = copy.deepcopy(ACTION_PROPERTIES)
    del older_properties["correction_id"]
    older["template"]["mappings"]["properties"] = older_properties
    es.indices.put_index_template(name=f"{prefix}-actions", body=older)
    index = small_index(prefix, "actions")
    es.indices.create(index=index)
    assert "correction_id" not in es.indices.get_mapping(index=index)[index]["mappings"]["properties"]

    ensure_templates(es, es_settings)

    mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["correction_id"] == {"type": "keyword"}
