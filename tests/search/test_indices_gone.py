"""The indexer when an index or its alias went away under it (real Elasticsearch)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from services.search.bulk import PipelinedWriter
from services.search.es import ensure_templates
from services.search.issue_live import LiveIssues
from services.search.mappings import posts_alias, posts_index, small_alias, small_index
from tests.search.factory import make_alert, make_post
from yuqing.consumer import Record
from yuqing.contracts.codec import encode
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def es(es_settings: ElasticsearchSettings) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_settings.url)
    ensure_templates(client, es_settings)
    yield client
    client.close()


def test_an_alert_written_after_its_index_was_deleted_recreates_the_index_the_template_names(
        es: Elasticsearch, es_settings: ElasticsearchSettings) -> None:
    # written to the alias, the alert created an index named as the alias with a guessed mapping,
    # and the indexer's next start could not put the real index back (its alias name was taken)
    prefix = es_settings.index_prefix
    es.indices.delete(index=small_index(prefix, "alerts"))
    writer = PipelinedWriter(es, prefix, issues=LiveIssues(), alerts_topic="alerts")
    try:
        alert = make_alert("alert-after-delete-1")
        outcome = writer.write([Record("alerts", 0, 0, alert.alert_id.encode(), encode(alert))])
    finally:
        writer.close()

    assert (outcome.indexed, outcome.rejected) == (1, [])
    ensure_templates(es, es_settings)  # the indexer's next start
    alias = small_alias(prefix, "alerts")
    assert list(es.indices.get_alias(name=alias)) == [small_index(prefix, "alerts")]
    mapping = es.indices.get_mapping(index=alias)[small_index(prefix, "alerts")]["mappings"]
    assert mapping["properties"]["alert_id"] == {"type": "keyword"}
    es.indices.refresh(index=alias)
    assert es.get(index=alias, id=alert.alert_id)["_source"]["alert_id"] == alert.alert_id


def test_the_next_start_gives_an_index_that_lost_its_alias_the_alias_back(
        es: Elasticsearch, es_settings: ElasticsearchSettings) -> None:
    # the template gives the alias only to an index it creates: a posts or alerts index whose alias
    # was removed went on being written while search, the warm-up and the issue reads saw nothing
    prefix = es_settings.index_prefix
    post = make_post("城关镇又停电了", external_id="alias-1")
    writer = PipelinedWriter(es, prefix, issues=LiveIssues())
    try:
        assert writer.write([Record("posts.enriched", 0, 0, None, encode(post))]).indexed == 1
    finally:
        writer.close()
    monthly = posts_index(prefix, post.created_at)
    es.indices.delete_alias(index=monthly, name=posts_alias(prefix))
    es.indices.delete_alias(index=small_index(prefix, "alerts"), name=small_alias(prefix, "alerts"))

    ensure_templates(es, es_settings)  # the indexer's next start

    assert list(es.indices.get_alias(name=posts_alias(prefix))) == [monthly]
    assert list(es.indices.get_alias(name=small_alias(prefix, "alerts"))) == [small_index(prefix, "alerts")]
    es.indices.refresh(index=monthly)
    assert es.get(index=posts_alias(prefix), id=post.post_id)["_id"] == post.post_id
