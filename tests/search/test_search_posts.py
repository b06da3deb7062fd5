"""Searching posts against the real Elasticsearch: pages of one search, scripts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from services.search.auth import Principal, Role
from services.search.bulk import build_actions, issue_table, write_bulk
from services.search.es import ensure_templates, make_client, stale_similarity, update_similarity
from services.search.mappings import posts_index
from services.search.models import PostPage, SortOrder
from services.search.posts import SearchParams, search_posts
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME, as_messages, make_post
from yuqing.contracts import EnrichedPost
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration
DESK = Principal(subject="desk", role=Role.VIEWER)


@pytest.fixture
def es(es_settings: ElasticsearchSettings) -> Iterator[Elasticsearch]:
    client = make_client(es_settings)
    ensure_templates(client, es_settings)
    yield client


def _index(es: Elasticsearch, settings: ElasticsearchSettings, posts: list[EnrichedPost]) -> None:
    table = issue_table(SearchSettings(es=settings))
    actions, kept, rejected = build_actions(as_messages([*posts]), settings.index_prefix, issues=table)
    assert rejected == [] and write_bulk(es, actions, kept, max_retries=2).rejected == []
    es.indices.refresh(index=f"{settings.index_prefix}-*")


def _batch(tag: str, n: int, *, received_at: datetime) -> list[EnrichedPost]:
    return [make_post(f"柳塘镇{tag}{i}号台区抢修后又停电，第{i}次了", external_id=f"{tag}-{i}",
                      region="柳塘镇", created_at=BASE_TIME + timedelta(minutes=i), received_at=received_at)
            for i in range(n)]


def _page(es: Elasticsearch, prefix: str, params: SearchParams, cursor: str | None = None) -> PostPage:
    return search_posts(es, prefix=prefix, params=params, principal=DESK, size=4, cursor=cursor)


@pytest.mark.parametrize("params", [SearchParams(region="柳塘镇", sort=SortOrder.TIME),
                                    SearchParams(q="抢修 停电", region="柳塘镇")])
def test_a_post_received_before_the_first_page_but_indexed_after_it_leaves_the_total_alone(
        es: Elasticsearch, es_settings: ElasticsearchSettings, params: SearchParams) -> None:
    # a post already received when the first page was served, but indexed only after it (the
    # indexer was behind): filtered on the time it was received, it joined the later pages, the
    # total grew from 10 to 11 and a responder's page count shifted under them
    prefix = es_settings.index_prefix
    received = datetime.now(UTC) - timedelta(minutes=5)
    _index(es, es_settings, _batch("old", 10, received_at=received))
    first = _page(es, prefix, params)
    assert first.total == 10 and first.as_of is not None
    _index(es, es_settings, _batch("late", 3, received_at=received))

    pages, cursor = [first], first.next_cursor
    while cursor:
        pages.append(_page(es, prefix, params, cursor))
        cursor = pages[-1].next_cursor
    assert [p.total for p in pages] == [10, 10, 10]
    assert {p.as_of for p in pages} == {first.as_of}
    seen = [h.post_id for p in pages for h in p.hits]
    assert len(seen) == len(set(seen)) == 10 and not any("late" in h.text for p in pages for h in p.hits)

    again = _page(es, prefix, params)  # asked again: the late posts are counted, and a later bound said
    assert again.total == 13 and again.as_of is not None and again.as_of > first.as_of


def test_a_search_that_finds_nothing_has_no_bound(es: Elasticsearch,
                                                  es_settings: ElasticsearchSettings) -> None:
    page = _page(es, es_settings.index_prefix, SearchParams(q="变压器"))
    assert page.total == 0 and page.as_of is None and page.next_cursor is None


def test_a_post_is_stamped_indexed_when_its_bulk_request_leaves_not_when_it_was_built(
        es: Elasticsearch, es_settings: ElasticsearchSettings) -> None:
    # a post built, then written minutes later (a 429 retried, a slow request before it) kept the
    # build time: older than posts searchable before it, it joined a search's later pages
    table = issue_table(SearchSettings(es=es_settings))
    actions, kept, _ = build_actions(as_messages([*_batch("slow", 2, received_at=BASE_TIME)]),
                                     es_settings.index_prefix, issues=table)
    built = datetime.now(UTC) - timedelta(minutes=10)
    for action in actions:
        action["_source"]["indexed_at"] = built.isoformat()
    sent = datetime.now(UTC)
    assert write_bulk(es, actions, kept, max_retries=2).rejected == []
    es.indices.refresh(index=f"{es_settings.index_prefix}-*")
    hits = es.search(index=f"{es_settings.index_prefix}-posts", body={"size": 10})["hits"]["hits"]
    stamps = [datetime.fromisoformat(h["_source"]["indexed_at"]) for h in hits]
    assert len(stamps) == 2 and all(sent <= s <= datetime.now(UTC) for s in stamps)


@pytest.mark.parametrize("q", ["电", "電", "桥", "橋"])
def test_a_one_character_query_finds_the_character_in_either_script(
        es: Elasticsearch, es_settings: ElasticsearchSettings, q: str) -> None:
    # a word of one character is found by the characters field only (a post's bigrams hold no single
    # character), whose analyzer does not fold the scripts: 电 missed the post that says 停電
    _index(es, es_settings, [make_post("大橋村停電了", external_id="traditional", region="柳塘镇"),
                             make_post("新街桥停电了", external_id="simplified", region="柳塘镇"),
                             make_post("营业厅排队太久", external_id="neither", region="柳塘镇")])
    found = _page(es, es_settings.index_prefix, SearchParams(q=q))
    assert sorted(h.text for h in found.hits) == ["大橋村停電了", "新街桥停电了"]
    assert all("<em>" in (h.highlight or "") for h in found.hits)


# A post that tells the whole matter, both words of ``停电 冰箱`` in it, and one-liners naming one.
LONG = ("城关镇幸福小区昨天晚上七点多开始停电，一直到今天早上才来电，整整停了十几个小时，"
        "家里冰箱里的肉和菜全坏了，老人孩子热得一夜没睡，打客服电话也一直占线，"
        "希望供电所说明一下原因，以后检修能不能提前通知，这个月已经是第三次了，"
        "上次停电说是线路老化，说好了要改造，到现在也没见动静，物业也说管不了，"
        "让我们找供电所，供电所又说是物业的线，互相推，到底谁管")
SHORT = ["冰箱不制冷了", "冰箱坏了", "小区停电", "又停电了"]
# The similarity posts indices were made with before: BM25's b = 0.75.
OLD_SIMILARITY = {"yq_stable": {"type": "scripted", "script": {"source": (
    "double tf = doc.freq; double norm = 0.25 + 0.75 * doc.length / 40.0;"
    " return query.boost * tf * 2.2 / (tf + 1.2 * norm);")}}}


def _first_for_both_words(es: Elasticsearch, settings: ElasticsearchSettings) -> str:
    _index(es, settings, [make_post(LONG, external_id="long")]
           + [make_post(text, external_id=f"short-{i}") for i, text in enumerate(SHORT)]
           + [make_post(f"营业厅第{i}号窗口排队太久", external_id=f"other-{i}") for i in range(10)])
    return _page(es, settings.index_prefix, SearchParams(q="停电 冰箱")).hits[0].text


def test_a_long_post_with_both_words_ranks_above_short_posts_with_one(
        es: Elasticsearch, es_settings: ElasticsearchSettings) -> None:
    # length normalisation at BM25's b = 0.75 against posts of a line or two ranked the long post
    # below every one-liner naming one of the words
    assert _first_for_both_words(es, es_settings) == LONG


def test_an_index_made_with_the_old_similarity_is_listed_and_updated_in_place(
        es: Elasticsearch, es_settings: ElasticsearchSettings) -> None:
    prefix = es_settings.index_prefix
    es.indices.create(index=posts_index(prefix, BASE_TIME),
                      body={"settings": {"index": {"similarity": OLD_SIMILARITY}}})
    assert _first_for_both_words(es, es_settings) != LONG
    assert stale_similarity(es, prefix) == [posts_index(prefix, BASE_TIME)]

    assert update_similarity(es, prefix) == [posts_index(prefix, BASE_TIME)]
    assert stale_similarity(es, prefix) == [] and update_similarity(es, prefix) == []
    assert _page(es, prefix, SearchParams(q="停电 冰箱")).hits[0].text == LONG


@pytest.mark.parametrize(("q", "found"), [
    ('"电"', {"又停电了", "电表走得快", "计划停電通知"}),
    ("电 | 水", {"又停电了", "停水三天了", "电表走得快", "计划停電通知"}),
    ("(电 | 水) -计划", {"又停电了", "停水三天了", "电表走得快"}),
    ('"停电" | 水', {"又停电了", "停水三天了", "计划停電通知"}),
    ("停电 -又", {"计划停電通知"}),
])
def test_a_one_character_word_counts_in_a_literal_query(
        es: Elasticsearch, es_settings: ElasticsearchSettings, q: str, found: set[str]) -> None:
    # a query with operators or phrases is read over the bigram and word fields, which hold no
    # single character: 电 | 水 found nothing, "停电" | 水 not the post about the water, and 停电 -又
    # left in the post it excluded
    texts = ["又停电了", "停水三天了", "电表走得快", "计划停電通知", "营业厅排队"]
    _index(es, es_settings, [make_post(text, external_id=f"p{i}") for i, text in enumerate(texts)])
    page = search_posts(es, prefix=es_settings.index_prefix, params=SearchParams(q=q), principal=DESK,
                        size=10)
    assert {h.text for h in page.hits} == found and page.total == len(found)


def test_the_facets_count_every_township_and_unit_of_a_county(
        es: Elasticsearch, es_settings: ElasticsearchSettings) -> None:
    # a county of 26 townships: the facets listed 20 of them, their counts summed short of the total
    # and the quietest townships, which a county desk looks for, were missing
    towns = [f"第{i}镇" for i in range(26)]
    _index(es, es_settings, [make_post(f"{town}停电了", external_id=f"town-{i}", region=town,
                                       unit=f"{town}供电所", created_at=BASE_TIME + timedelta(minutes=i))
                             for i, town in enumerate(towns)])

    page = _page(es, es_settings.index_prefix, SearchParams(q="停电"))

    assert page.total == 26
    assert page.facets["region"] == dict.fromkeys(towns, 1)
    assert page.facets["unit"] == {f"{town}供电所": 1 for town in towns}
