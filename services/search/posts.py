"""Searching and reading posts (plain functions over an Elasticsearch client)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from services.search.auth import Principal
from services.search.mappings import posts_alias, small_alias
from services.search.models import IssueState, PostPage, PostRead, SortOrder
from services.search.query import (
    AS_OF_AGG,
    HIGHLIGHT_POST,
    HIGHLIGHT_PRE,
    Cursor,
    check_in_scope,
    decode_cursor,
    encode_cursor,
    escape_highlight,
    indexed_by,
    plain_words,
    query_fingerprint,
    range_filter,
    scope_filters,
    term_filters,
    text_query,
    word_clause,
    word_weight,
)

FACETS = ("topic", "sentiment", "source", "channel", "region", "unit")
# Values counted per facet: every township and unit of a county. At 20, a county of 26 townships
# saw 20 of them, the counts summed short of the total and the quietest ones were missing.
FACET_VALUES = 200
# The newest ``indexed_at`` among the posts the first page counted: later pages count only posts
# indexed up to it (``query.indexed_by``). Bounded by the time the first page was served
# (``received_at`` up to it), a post received before that page but indexed after it joined the
# later pages and the total grew.
AS_OF = "as_of"
SORTS: dict[SortOrder, list[Any]] = {
    SortOrder.RELEVANCE: [{"_score": "desc"}, {"created_at": "desc"}, {"post_id": "asc"}],
    SortOrder.TIME: [{"created_at": "desc"}, {"post_id": "asc"}],
}


def search(client: Elasticsearch, index: str, body: dict[str, Any]) -> dict[str, Any]:
    """A search that finds nothing, rather than failing, while an index does not exist yet."""
    found: dict[str, Any] = client.search(index=index, body=body, ignore_unavailable=True,
                                          allow_no_indices=True)
    return found


@dataclass(frozen=True)
class SearchParams:
    q: str | None = None
    topic: str | None = None
    sentiment: str | None = None
    source: str | None = None
    channel: str | None = None
    region: str | None = None
    unit: str | None = None
    issue_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: SortOrder | None = None

    def order(self) -> SortOrder:
        return self.sort or (SortOrder.RELEVANCE if self.q and self.q.strip() else SortOrder.TIME)


def build_search_query(params: SearchParams, principal: Principal,
                       weights: list[float] | None = None) -> dict[str, Any]:
    """The bool query of a search: text part, filters, and the caller's scope."""
    check_in_scope(principal, region=params.region, unit=params.unit)
    filters = term_filters(topic=params.topic, sentiment=params.sentiment, source=params.source,
                           channel=params.channel, region=params.region, unit=params.unit,
                           issue_id=params.issue_id)
    filters += range_filter("created_at", params.since, params.until)
    filters += scope_filters(principal)
    text = text_query(params.q or "", weights)
    return {"bool": {"must": [text] if text else [], "filter": filters}}


def word_weights(client: Elasticsearch, *, prefix: str, words: list[str],
                 principal: Principal) -> list[float]:
    """How telling each word of a plain query is (inverse document frequency), in one request.

    Taken on the first page and carried in the cursor, so that later pages rank
    with the same weights while posts keep arriving.
    """
    body = {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": scope_filters(principal)}},
            "aggs": {"words": {"filters": {"filters": [word_clause(w) for w in words]}}}}
    resp = search(client, posts_alias(prefix), body)
    buckets = ((resp.get("aggregations") or {}).get("words") or {}).get("buckets") or []
    total = resp["hits"]["total"]["value"]
    if len(buckets) != len(words):
        return [1.0] * len(words)
    return [round(word_weight(b["doc_count"], total), 4) for b in buckets]


def search_posts(client: Elasticsearch, *, prefix: str, params: SearchParams, principal: Principal,
                 size: int, cursor: str | None = None) -> PostPage:
    order = params.order()
    fingerprint = query_fingerprint({**asdict(params), "sort": order.value,
                                     "scope": sorted(map(str, scope_filters(principal)))})
    page = (decode_cursor(cursor, fingerprint=fingerprint, width=len(SORTS[order])) if cursor
            else _first_page(client, prefix, params, principal, order))
    resp = search(client, posts_alias(prefix), _search_body(params, principal, page, order, size))
    aggs = resp.get("aggregations") or {}
    as_of: str | None = page.snapshot if page.after else (aggs.get(AS_OF) or {}).get("value_as_string")
    raw_hits = resp["hits"]["hits"]
    next_cursor = None
    if len(raw_hits) == size and as_of:
        next_cursor = encode_cursor(Cursor(raw_hits[-1]["sort"], as_of, page.weights),
                                    fingerprint=fingerprint)
    return PostPage(total=resp["hits"]["total"]["value"],
                    as_of=datetime.fromisoformat(as_of) if as_of else None,
                    hits=with_issue_states(client, prefix, [to_post(h) for h in raw_hits]),
                    facets={name: {b["key"]: b["doc_count"] for b in agg["buckets"]}
                            for name, agg in aggs.items() if name in FACETS},
                    next_cursor=next_cursor)


def _search_body(params: SearchParams, principal: Principal, page: Cursor, order: SortOrder,
                 size: int) -> dict[str, Any]:
    """The first page counts every post it sees and takes its bound from them (``AS_OF``, with
    the facets); a later page continues after the cursor's hit, among posts within the bound."""
    query = build_search_query(params, principal, page.weights)
    body: dict[str, Any] = {
        "query": query, "size": size, "sort": SORTS[order], "track_total_hits": True,
        # text.chars: what a one-character query, or a word found by its characters, matched;
        # the bigrams of ``text`` hold no single character, and such a snippet marked nothing
        "highlight": {"fields": {"text": {"number_of_fragments": 2, "fragment_size": 90,
                                          "no_match_size": 120},
                                 "text.chars": {"number_of_fragments": 2, "fragment_size": 90},
                                 # the whole title, marked where the query matched it: a post found
                                 # by its title alone had a snippet of its text that marked nothing
                                 "title": {"number_of_fragments": 0},
                                 "title.chars": {"number_of_fragments": 0}},
                      "pre_tags": [HIGHLIGHT_PRE], "post_tags": [HIGHLIGHT_POST]},
    }
    if page.after:
        query["bool"]["filter"] += indexed_by(page.snapshot)
        body["search_after"] = page.after
    else:
        body["aggs"] = {f: {"terms": {"field": f, "size": FACET_VALUES}} for f in FACETS}
        body["aggs"][AS_OF] = AS_OF_AGG
    return body


def _first_page(client: Elasticsearch, prefix: str, params: SearchParams, principal: Principal,
                order: SortOrder) -> Cursor:
    """The first page's start: no hit before it, no bound yet, the word weights of the search."""
    words = plain_words(params.q or "") if order is SortOrder.RELEVANCE else None
    weights = None
    if words and len(words) > 1:
        weights = word_weights(client, prefix=prefix, words=words, principal=principal)
    return Cursor([], "", weights)


def get_post(client: Elasticsearch, *, prefix: str, post_id: str, principal: Principal) -> PostRead | None:
    """The post, or None when it does not exist or lies outside the caller's scope."""
    posts = fetch_posts(client, prefix=prefix, post_ids=[post_id], principal=principal)
    return posts[0] if posts else None


def fetch_posts(client: Elasticsearch, *, prefix: str, post_ids: list[str], principal: Principal,
                states: bool = True) -> list[PostRead]:
    """Posts by id (in the given order), leaving out those the caller may not see.

    ``states=False`` leaves ``issue_state`` unset, for callers that know it already.
    """
    if not post_ids:
        return []
    query = {"bool": {"filter": [{"ids": {"values": post_ids}}, *scope_filters(principal)]}}
    resp = search(client, posts_alias(prefix), {"query": query, "size": len(post_ids)})
    found = {h["_id"]: to_post(h) for h in resp["hits"]["hits"]}
    posts = [found[i] for i in post_ids if i in found]
    return with_issue_states(client, prefix, posts) if states else posts


def issue_states(client: Elasticsearch, prefix: str, issue_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Current state documents of issues (absent: the issue is open)."""
    wanted = sorted(set(issue_ids))
    if not wanted:
        return {}
    resp = search(client, small_alias(prefix, "issue-states"),
                  {"query": {"ids": {"values": wanted}}, "size": len(wanted)})
    return {h["_id"]: h["_source"] for h in resp["hits"]["hits"]}


def with_issue_states(client: Elasticsearch, prefix: str, posts: list[PostRead]) -> list[PostRead]:
    states = issue_states(client, prefix, [p.issue_id for p in posts if p.issue_id])
    for post in posts:
        if post.issue_id:
            post.issue_state = IssueState(states.get(post.issue_id, {}).get("state", "open"))
    return posts


_WEB_LINK = re.compile(r"https?://[^\s/]", re.IGNORECASE)


def web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) link, else None: any channel carries URLs of the sender's
    choosing, and a ``javascript:`` URL shown as a link in a responder's console would run."""
    return url if url is not None and _WEB_LINK.match(url) else None


def _marked(fragments: list[str] | None) -> list[str] | None:
    """The fragments, if any of them marks a match."""
    marks = (HIGHLIGHT_PRE, HIGHLIGHT_POST)
    return fragments if fragments and any(m in f for f in fragments for m in marks) else None


def to_post(hit: dict[str, Any]) -> PostRead:
    src = hit["_source"]
    found = hit.get("highlight") or {}
    fragments = _marked(found.get("text")) or _marked(found.get("text.chars")) or found.get("text")
    title = _marked(found.get("title")) or _marked(found.get("title.chars"))
    return PostRead(
        post_id=src["post_id"], score=hit.get("_score"), source=src["source"],
        channel=src["channel"], topic=src["topic"], sentiment=src["sentiment"],
        region=src.get("region"), region_source=src.get("region_source"), unit=src.get("unit"),
        title=src.get("title"), text=src["text"],
        url=web_link(src.get("url")), created_at=src["created_at"], keywords=src.get("keywords") or [],
        issue_id=src.get("issue_id"),
        highlight=" … ".join(escape_highlight(f) for f in fragments) if fragments else None,
        title_highlight=escape_highlight(title[0]) if title else None,
    )
