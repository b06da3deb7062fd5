"""The alerts worker's issue ids agree with the indexer's, through the real Elasticsearch.

The alerts worker groups posts into issues itself (its ``cluster`` keys), as a
read-only replica of the indexers' grouping: it warms from the posts index and
reads back what the indexers wrote since. Here an indexer's code path writes
posts to the real index, and the alerts side, which never saw those posts,
names the next posts' issues as the indexer does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from elasticsearch import Elasticsearch

from services.alerts.issues import IssueKeys, ReadOnlyIssues
from services.search.bulk import build_actions, write_bulk
from services.search.es import ensure_templates, make_client
from services.search.issue_live import LiveIssues
from services.search.mappings import posts_alias, templates
from tests.search.factory import BASE_TIME, make_post
from yuqing.consumer import Record
from yuqing.contracts import EnrichedPost, Topic
from yuqing.contracts.codec import encode
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration

OUTAGE = ["河口镇新街村停电了，什么时候来电？", "新街村这边突然黑了，整个村都没电",
          "我家也是，新街村三组，一点电都没有", "河口新街停电+1",
          "停了快一个小时了，新街村到底啥时候恢复供电啊", "新街村还是没电，抢修的人到了没有"]
BILLING = ["城关镇滨河小区这个月电费翻倍了，换了新电表以后", "滨河小区换表以后电费高了好多",
           "我们滨河小区也是，换了智能电表电费涨了一倍", "滨河小区电费不对劲，是不是新表有问题"]


def _posts(texts: list[str], tag: str, region: str, start_minutes: float, topic: Topic = Topic.OUTAGE
           ) -> list[EnrichedPost]:
    return [make_post(text, external_id=f"{tag}-{n}", region=region, unit=None, topic=topic,
                      created_at=BASE_TIME + timedelta(minutes=start_minutes + 3 * n))
            for n, text in enumerate(texts)]


@pytest.fixture
def es(es_settings: ElasticsearchSettings) -> Iterator[Elasticsearch]:
    client = make_client(es_settings)
    ensure_templates(client, es_settings)
    yield client
    client.indices.delete(index=f"{es_settings.index_prefix}-*", ignore=404)
    for name in templates(es_settings.index_prefix):
        client.indices.delete_index_template(name=name, ignore=404)


def _index(es: Elasticsearch, prefix: str, indexer: LiveIssues, posts: list[EnrichedPost]) -> None:
    """What an indexer does with a batch: group, write, and make it visible."""
    records = [Record("posts.enriched", 0, n, None, encode(post)) for n, post in enumerate(posts)]
    actions, kept, _ = build_actions(records, prefix, issues=indexer)
    write_bulk(es, actions, kept, max_retries=1)
    es.indices.refresh(index=posts_alias(prefix))


def _indexed_issues(es: Elasticsearch, prefix: str) -> dict[str, str]:
    hits = es.search(index=posts_alias(prefix), body={"size": 100, "_source": ["post_id", "issue_id"]})
    return {hit["_source"]["post_id"]: hit["_source"]["issue_id"] for hit in hits["hits"]["hits"]}


def test_the_alerts_worker_names_issues_as_the_indexer_does(es: Elasticsearch,
                                                            es_settings: ElasticsearchSettings):
    prefix = es_settings.index_prefix
    indexer = LiveIssues()
    outage = _posts(OUTAGE, "outage", "河口镇", 0)
    _index(es, prefix, indexer, outage[:3])  # before the alerts worker started
    alerts = IssueKeys(ReadOnlyIssues(refresh_s=0.0), make_client(es_settings), prefix)
    later = alerts.assign(outage[3:])  # warms from the index first
    _index(es, prefix, indexer, outage[3:])
    founded = _indexed_issues(es, prefix)[outage[0].post_id]
    assert alerts.warmed and alerts.reachable
    assert later == [founded] * 3  # joined the issue the indexer founded, which it never saw
    # alone, the alerts worker would have founded an issue of its own
    assert IssueKeys(ReadOnlyIssues(), None, prefix).assign(outage[3:])[0] != founded
    # a matter that starts after the warm-up: read back from the indexer's new posts
    billing = _posts(BILLING, "billing", "城关镇", 30, Topic.BILLING)
    _index(es, prefix, indexer, billing[:2])
    assert alerts.assign(billing[2:]) == [_indexed_issues(es, prefix)[billing[0].post_id]] * 2
    _index(es, prefix, indexer, billing[2:])
    indexed = _indexed_issues(es, prefix)
    assert [indexed[post.post_id] for post in billing[2:]] == [indexed[billing[0].post_id]] * 2
