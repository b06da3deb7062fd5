import json

import pytest

from services.search.auth import Principal, Role
from services.search.posts import SearchParams, build_search_query
from services.search.query import (
    Cursor,
    CursorError,
    QueryError,
    decode_cursor,
    encode_cursor,
    escape_highlight,
    plain_words,
    range_filter,
    text_query,
    word_weight,
)

EVERYONE = Principal("desk", Role.RESPONDER)
HEKOU = Principal("hekou", Role.RESPONDER, regions=frozenset({"河口镇"}))


def test_plain_words_match_by_bigrams_jieba_words_or_characters():
    query = text_query("小区停电 -演习")
    word = query["bool"]["should"][0]["bool"]["should"]
    assert word[0]["multi_match"] == {"query": "小区停电", "fields": ["text", "title^2"], "operator": "and"}
    assert word[1]["match"]["text_words"]["query"] == "小区 停电"
    assert word[2]["multi_match"]["fields"] == ["text.chars", "title.chars^2"]
    assert query["bool"]["must_not"][0]["simple_query_string"]["query"] == '"演习"'
    assert "query_string" not in json.dumps(query).replace("simple_query_string", "")


def test_word_weights_boost_plain_words():
    query = text_query("停电 冰箱", [0.5, 3.0])
    assert [c["bool"]["boost"] for c in query["bool"]["should"]] == [0.5, 3.0]
    assert word_weight(1, 1000) > word_weight(500, 1000) > 0
    assert plain_words("停电 -演习 冰箱") == ["停电", "冰箱"] and plain_words('"停电"') is None


def test_operators_make_a_literal_simple_query_string_over_bigrams_words_and_characters():
    query = text_query('小区停电 AND "幸福小区" -演习 | 电')
    bigram, words, chars = (c["simple_query_string"] for c in query["bool"]["should"])
    assert bigram["query"] == '小区停电 + "幸福小区" -演习 | 电' and bigram["default_operator"] == "and"
    assert words["query"] == '(小区 + 停电) + "幸福 小区" -演习 | 电' and words["fields"] == ["text_words"]
    assert chars["query"] == '"小区停电" + "幸福小区" -"演习" | (电 | 電)'
    assert chars["fields"] == ["text.chars", "title.chars^2"]
    assert query["bool"]["must_not"][0]["simple_query_string"]["query"] == '"演习"'


def test_too_many_plain_words_is_a_bad_request():
    with pytest.raises(QueryError):
        text_query(" ".join(f"词{i}" for i in range(40)))


def test_empty_or_operator_only_queries_match_everything():
    assert text_query("") is None and text_query("  | + ") is None


def test_filters_and_scope_are_applied():
    query = build_search_query(SearchParams(q="停电", source="app-main"), HEKOU)
    assert {"term": {"source": "app-main"}} in query["bool"]["filter"]
    assert {"terms": {"region": ["河口镇"]}} in query["bool"]["filter"]
    assert build_search_query(SearchParams(), EVERYONE)["bool"] == {"must": [], "filter": []}


def test_filter_outside_the_scope_is_a_permission_error():
    with pytest.raises(PermissionError):
        build_search_query(SearchParams(region="城关镇"), HEKOU)


def test_cursor_round_trip_and_tampering():
    made = Cursor([1.5, 1700000000000, "abc"], "2026-11-28T00:00:00+00:00", [0.7, 2.1])
    cursor = encode_cursor(made, fingerprint="f1")
    assert decode_cursor(cursor, fingerprint="f1", width=3) == made
    with pytest.raises(CursorError, match="another query"):
        decode_cursor(cursor, fingerprint="f2", width=3)
    for bad in ("!!!", "e30", cursor[:-3], "W10"):
        with pytest.raises(CursorError):
            decode_cursor(bad, fingerprint="f1", width=3)


def test_a_cursor_carries_the_first_pages_bound_and_refuses_one_that_is_no_time():
    bounded = Cursor(["i1"], "2026-11-28T00:00:00+00:00", as_of="2026-11-28T00:00:00.123Z")
    assert decode_cursor(encode_cursor(bounded, fingerprint="f1"), fingerprint="f1", width=1) == bounded
    for as_of in ("yesterday", 5, "2026-11-28T00:00:00"):  # not a time, not one with a zone
        forged = encode_cursor(Cursor(["i1"], bounded.snapshot, as_of=as_of), fingerprint="f1")  # type: ignore[arg-type]
        with pytest.raises(CursorError, match="malformed"):
            decode_cursor(forged, fingerprint="f1", width=1)


def test_an_inverted_time_range_is_an_empty_range_not_an_error():
    from datetime import UTC, datetime

    [inverted] = range_filter("created_at", datetime(2026, 2, 1, tzinfo=UTC),
                              datetime(2026, 1, 1, tzinfo=UTC))
    assert inverted == {"range": {"created_at": {"gte": "2026-02-01T00:00:00+00:00",
                                                 "lt": "2026-01-01T00:00:00+00:00"}}}


def test_a_match_at_either_end_of_a_fragment_keeps_both_markers():
    # Elasticsearch trims a fragment's ends of every character up to U+0020, the markers included
    assert escape_highlight("河口\u0002镇停电了") == "<em>河口</em>镇停电了"
    assert escape_highlight("什么时候\u0001来电") == "什么时候<em>来电</em>"
    assert escape_highlight("app\u0002 闪退 \u0001app") == "<em>app</em> 闪退 <em>app</em>"
    assert escape_highlight("又\u0001停电\u0002了") == "又<em>停电</em>了"
    assert escape_highlight("没有命中") == "没有命中"


def test_a_traditional_word_is_looked_for_in_simplified_characters_too():
    chars = [c["multi_match"]["query"] for c in text_query("來電")["bool"]["should"][0]["bool"]["should"]
             if c.get("multi_match", {}).get("fields") == ["text.chars", "title.chars^2"]]
    assert chars == ["來電", "来电"]
    assert len(text_query("来电")["bool"]["should"][0]["bool"]["should"]) == 3


def test_the_syntax_typed_in_full_width_forms_is_the_syntax():
    # a Chinese input method types “”, （）, ｜ and －: they were read as parts of plain words
    assert text_query("“幸福小区” －冰箱") == text_query('"幸福小区" -冰箱')
    assert text_query("（停电 ｜ 跳闸） －计划") == text_query("(停电 | 跳闸) -计划")
    assert plain_words("停电 －演习") == ["停电"]


def test_commas_and_semicolons_separate_words_outside_a_phrase():
    for q in ("冰箱，电费", "冰箱、电费", "冰箱；电费", "冰箱,电费"):
        assert plain_words(q) == ["冰箱", "电费"], q
    assert text_query("冰箱，电费") == text_query("冰箱 电费")
    assert text_query('"冰箱，电费" 停电')["bool"]["should"][0]["simple_query_string"]["query"] == (
        '"冰箱，电费" 停电')


@pytest.mark.parametrize(("q", "says"), [
    ("title:停电", "type 停电 alone"), ("停电 -region：河口镇", "the region parameter (region=河口镇)"),
    ("Topic:outage", "the topic parameter"), ("text.chars:停", "type 停 alone"),
])
def test_a_field_prefix_is_a_bad_request_naming_what_to_type(q: str, says: str):
    with pytest.raises(QueryError, match="field names are not part of the query syntax") as refused:
        text_query(q)

    assert says in str(refused.value)


def test_colons_that_name_no_field_and_lower_case_operators_are_words():
    assert plain_words("12:30 停电 not 演习 or") == ["12:30", "停电", "not", "演习", "or"]
    assert text_query('"title:停电"') is not None
