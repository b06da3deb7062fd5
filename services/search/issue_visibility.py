"""Which issues a caller sees now: read-time scoping of what hangs off an issue (its cluster
alert, its history) by the issue's current posts, not by regions recorded when it was written.

An issue grows: posts of a new township join it, and an issue merged away lives on in the one
it was merged into. Its surge alert carries no region (its key is the issue id) and its actions
carry the regions its posts had when they were taken; a responder of the new township, who sees
the issue, saw neither. Here an issue is visible to a caller who sees any of its posts, or of
the issue it was merged into since.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from elasticsearch import Elasticsearch

from services.search.auth import Principal
from services.search.mappings import posts_alias, small_index
from services.search.posts import search
from services.search.query import scope_filters

CORRECTIONS = "issue-corrections"
MERGE_HOPS = 10  # merges followed from an issue (a chain a > b > c is two)
VISIBLE_ISSUES_LIMIT = 10_000  # issues checked per request (Elasticsearch's terms limit is 65,536)


def merged_into(client: Elasticsearch, prefix: str, issue_ids: Iterable[str]) -> dict[str, str]:
    """The issue each of these issues was merged into, following later merges, for those merged (by
    a responder or by the grouping): a cluster alert keeps the id its issue had when it fired."""
    found: dict[str, str] = {}
    wanted = set(issue_ids)
    for _ in range(MERGE_HOPS):
        if not wanted:
            break
        query = {"bool": {"filter": [{"term": {"kind": "merge"}}, {"terms": {"issue_id": sorted(wanted)}}]}}
        hits = search(client, small_index(prefix, CORRECTIONS), {
            "size": VISIBLE_ISSUES_LIMIT, "query": query, "sort": [{"at": "asc"}],
            "_source": ["issue_id", "target_issue_id"]})["hits"]["hits"]
        step = {h["_source"]["issue_id"]: h["_source"]["target_issue_id"] for h in hits}
        if not step:
            break
        found = {issue: step.get(now, now) for issue, now in found.items()} | step
        wanted = set(step.values()) - set(step)
    return {issue: now for issue, now in found.items() if issue != now}


def visible_issues(client: Elasticsearch, prefix: str, principal: Principal,
                   issue_ids: Iterable[str]) -> set[str]:
    """Of these issues, those of which the caller sees a post now (an issue merged away: a post of
    the issue it was merged into). Every one for an unrestricted caller."""
    wanted = set(issue_ids)
    scope = scope_filters(principal)
    if not wanted or not scope:
        return wanted
    merged = merged_into(client, prefix, wanted)
    now = {issue: merged.get(issue, issue) for issue in wanted}
    current = sorted(set(now.values()))
    body = {"size": 0, "query": {"bool": {"filter": [{"terms": {"issue_id": current}}, *scope]}},
            "aggs": {"issue": {"terms": {"field": "issue_id", "size": len(current)}}}}
    buckets = ((search(client, posts_alias(prefix), body).get("aggregations") or {})
               .get("issue") or {}).get("buckets", [])
    seen = {b["key"] for b in buckets}
    return {issue for issue, there in now.items() if there in seen}


def distinct(client: Elasticsearch, index: str, field: str, filters: list[dict[str, Any]]) -> list[str]:
    """The values of ``field`` in the documents the filters keep, at most ``VISIBLE_ISSUES_LIMIT``."""
    body = {"size": 0, "query": {"bool": {"filter": filters}},
            "aggs": {"values": {"terms": {"field": field, "size": VISIBLE_ISSUES_LIMIT}}}}
    aggs = search(client, index, body).get("aggregations") or {}
    return [b["key"] for b in (aggs.get("values") or {}).get("buckets", [])]
