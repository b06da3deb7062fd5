"""Which issues drive a surge: for the alerts' explanations (called by the alerts side).

An alert says *that* a key (topic x region, a source, a cluster …) surged in a
window; a responder needs *which matters* to answer. ``driving_issues`` reads
the posts of the window from the index and returns the issues holding most of
them, largest first, each with its share of the window's posts and a title.

The ``cluster`` alert family: its key was a SimHash band (near-identical
strings). With issues grouped by meaning, place and time, the cluster of a
post is its issue id (``<topic>-<16 hex>``, see grouping.py). The alerts worker
does not see the indexer's assignment on ``posts.enriched``; it can run the same
pure ``IssueGrouper`` over the posts it reads (ids derived from the founding
post, so both name an issue alike when they see the posts in the same order),
or key cluster alerts by issue only when resolving them through this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from services.search.mappings import posts_alias
from services.search.posts import search
from services.search.query import range_filter, term_filters


@dataclass(frozen=True)
class DrivingIssue:
    issue_id: str
    posts: int  # in the window (and key)
    share: float  # of the window's posts
    title: str  # the most recent member's text, shortened

    def to_dict(self) -> dict[str, Any]:
        return {"issue_id": self.issue_id, "posts": self.posts, "share": self.share, "title": self.title}


def rank_issues(issue_ids: Iterable[str], *, limit: int = 3,
                min_share: float = 0.1) -> list[tuple[str, int, float]]:
    """(issue id, posts, share) of the issues holding at least ``min_share`` of the posts, largest first.

    The pure part, for a caller that already has the window's posts' issue ids.
    """
    counts = Counter(issue_ids)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(issue, n, round(n / total, 3)) for issue, n in ranked[:limit] if n / total >= min_share]


def driving_issues(client: Elasticsearch, *, prefix: str, since: datetime, until: datetime,
                   topic: str | None = None, region: str | None = None, source: str | None = None,
                   limit: int = 3, min_share: float = 0.1) -> list[DrivingIssue]:
    """The issues holding most of the posts of an alert's window and key (topic, region, source)."""
    filters = range_filter("created_at", since, until)
    filters += term_filters(topic=topic, region=region, source=source)
    aggs = {"issues": {"terms": {"field": "issue_id", "size": limit}, "aggs": {
        "latest": {"top_hits": {"size": 1, "sort": [{"created_at": "desc"}], "_source": ["text"]}}}}}
    resp = search(client, posts_alias(prefix), {"size": 0, "track_total_hits": True,
                                                "query": {"bool": {"filter": filters}}, "aggs": aggs})
    total = resp["hits"]["total"]["value"]
    found = []
    for bucket in ((resp.get("aggregations") or {}).get("issues") or {}).get("buckets", []):
        share = round(bucket["doc_count"] / total, 3) if total else 0.0
        if share < min_share:
            continue
        hits = bucket["latest"]["hits"]["hits"]
        text = hits[0]["_source"]["text"] if hits else ""
        found.append(DrivingIssue(bucket["key"], bucket["doc_count"], share, text[:40]))
    return found
