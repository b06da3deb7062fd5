"""Pages of the issue list against the real Elasticsearch while posts keep arriving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.search.auth import Principal, Role
from services.search.bulk import build_actions, issue_table, write_bulk
from services.search.es import ensure_templates, make_client
from services.search.issues import list_issues
from services.search.models import IssuePage
from services.search.settings import SearchSettings
from tests.search.factory import as_messages, make_post
from yuqing.contracts import EnrichedPost, Topic
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration
DESK = Principal(subject="desk", role=Role.VIEWER)
MATTERS = {  # issue: (region, topic, text)
    "outage": ("河口镇", Topic.OUTAGE, "河口镇新街村从下午三点停电到现在，啥时候能来电"),
    "billing": ("石门镇", Topic.BILLING, "石门镇上河村这个月电费翻倍了，表是不是走快了"),
    "rumor": ("城关镇", Topic.RUMOR, "听说城关镇明天要停电三天，是真的吗"),
}


def _posts(matter: str, n: int, start: int, created: datetime) -> list[EnrichedPost]:
    region, topic, text = MATTERS[matter]
    return [make_post(text + "！" * i, external_id=f"{matter}-{i}", region=region, topic=topic,
                      created_at=created + timedelta(minutes=i), received_at=created + timedelta(minutes=i))
            for i in range(start, start + n)]


def test_an_issue_that_grows_while_a_responder_pages_the_list_is_listed_once(
        es_settings: ElasticsearchSettings) -> None:
    # pages after the first ranked the issues again over every post indexed by then: the rumour
    # issue, last by size on the first page, grew to the first place meanwhile, fell before the
    # cursor and was on no page
    es, prefix = make_client(es_settings), es_settings.index_prefix
    ensure_templates(es, es_settings)
    table = issue_table(SearchSettings(es=es_settings))

    def write(posts: list[EnrichedPost]) -> None:
        actions, kept, rejected = build_actions(as_messages([*posts]), prefix, issues=table)
        assert rejected == [] and write_bulk(es, actions, kept, max_retries=2).rejected == []
        es.indices.refresh(index=f"{prefix}-*")

    created = datetime.now(UTC) - timedelta(hours=2)
    write(_posts("outage", 3, 0, created) + _posts("billing", 2, 0, created) + _posts("rumor", 1, 0, created))

    def page(cursor: str | None = None) -> IssuePage:
        return list_issues(es, prefix=prefix, principal=DESK, since=created - timedelta(hours=1), until=None,
                           order_by="size", limit=1, cursor=cursor)

    pages = [page()]
    assert pages[0].total_issues == 3 and pages[0].as_of is not None
    write(_posts("rumor", 4, 1, created))  # created before the first page, indexed after it
    while pages[-1].next_cursor:
        pages.append(page(pages[-1].next_cursor))

    listed = [(i.topic, i.size) for p in pages for i in p.issues]
    assert listed == [("outage", 3), ("billing", 2), ("rumor", 1)]
    assert {(p.total_issues, p.as_of) for p in pages} == {(3, pages[0].as_of)}
    assert [(i.topic, i.size) for i in page().issues] == [("rumor", 5)]  # asked again
