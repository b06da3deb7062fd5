"""Which issues drive a surge: the issues listed with an alert in the search API.

An alert says *that* a key (overall, a topic, topic x region, a source, a
near-duplicate cluster) surged in a window; a responder needs *which matters*
to answer. The driving issues of an alert are the issues holding most of the
posts of its key and window that the caller may see, largest first, each with
its posts in the window, its share of them, and the issue's title and size as
``GET /v1/issues/{id}`` gives them.

The ``cluster`` alert family is keyed by issue id: the alerts worker groups
posts as the indexers do (``services/alerts/issues.py``), so a cluster alert's
posts are those of its issue. Alerts raised before that were keyed by the
first two hex digits of the posts' SimHash fingerprint; those still resolve
through the posts whose fingerprint starts with their cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from services.search.auth import Principal, Role
from services.search.issue_visibility import merged_into
from services.search.issues import issue_summaries
from services.search.mappings import posts_alias
from services.search.models import AlertRead, DrivingIssue
from services.search.posts import search
from services.search.query import range_filter, scope_filters, term_filters
from yuqing.fingerprint import is_alert_band

DRIVING_LIMIT = 3  # issues listed per alert
DRIVING_MIN_SHARE = 0.1  # of the window's posts: smaller issues do not drive the surge
EVERYONE = Principal(subject="alerts", role=Role.VIEWER)  # the alerting side counts every region's posts


def rank_issues(issue_ids: Iterable[str], *, limit: int = DRIVING_LIMIT,
                min_share: float = DRIVING_MIN_SHARE) -> list[tuple[str, int, float]]:
    """(issue id, posts, share) of the issues holding at least ``min_share`` of the posts, largest first.

    The pure part, for a caller that already has the window's posts' issue ids.
    """
    counts = Counter(issue_ids)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(issue, n, round(n / total, 3)) for issue, n in ranked[:limit] if n / total >= min_share]


def key_filters(*, since: datetime, until: datetime, topic: str | None = None, region: str | None = None,
                source: str | None = None, cluster: str | None = None) -> list[dict[str, Any]]:
    """The posts an alert counted: its window (``since`` inclusive, ``until`` exclusive) and key."""
    filters = range_filter("created_at", since, until)
    filters += term_filters(topic=topic, region=region, source=source)
    if cluster and is_alert_band(cluster):  # an alert from before issue keys
        filters.append({"prefix": {"fingerprint": cluster}})
    elif cluster:
        filters.append({"term": {"issue_id": cluster}})
    return filters


def alert_filters(alert: AlertRead, principal: Principal,
                  merged: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
    """The filters of an alert's posts as the caller sees them; None without a window. ``merged``:
    the issue each merged issue now is (``merged_into``), for a cluster alert's issue."""
    if alert.window_start is None or alert.window_end is None:
        return None
    cluster = alert.cluster if alert.family == "cluster" else None
    cluster = (merged or {}).get(cluster, cluster) if cluster else None
    return key_filters(since=alert.window_start, until=alert.window_end, topic=alert.topic,
                       region=alert.region, source=alert.source, cluster=cluster) + scope_filters(principal)


def _window_body(filters: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    # ordered as rank_issues orders them (count, then id), so that ties at the cut fall alike
    terms = {"field": "issue_id", "size": limit, "order": [{"_count": "desc"}, {"_key": "asc"}]}
    return {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": filters}},
            "aggs": {"issues": {"terms": terms}}}


def _ranked(resp: dict[str, Any], min_share: float) -> list[tuple[str, int, float]]:
    if "error" in resp:  # one alert's failed query (a multi-search answers per query) lists none
        return []
    total = resp["hits"]["total"]["value"]
    buckets = ((resp.get("aggregations") or {}).get("issues") or {}).get("buckets", [])
    return [(b["key"], b["doc_count"], round(b["doc_count"] / total, 3)) for b in buckets
            if total and b["doc_count"] / total >= min_share]


def _described(client: Elasticsearch, prefix: str, principal: Principal,
               ranked: list[tuple[str, int, float]]) -> list[DrivingIssue]:
    if not ranked:
        return []
    found = issue_summaries(client, prefix=prefix, principal=principal, issue_ids=[i for i, _, _ in ranked])
    summaries = {s.issue_id: s for s in found}
    return [DrivingIssue(issue_id=issue, posts=n, share=share, title=summaries[issue].title,
                         size=summaries[issue].size, state=summaries[issue].state,
                         after_resolution=summaries[issue].after_resolution)
            for issue, n, share in ranked if issue in summaries]


def alerts_driving_issues(client: Elasticsearch, *, prefix: str, principal: Principal,
                          alerts: Sequence[AlertRead], limit: int = DRIVING_LIMIT,
                          min_share: float = DRIVING_MIN_SHARE) -> dict[str, list[DrivingIssue]]:
    """Per alert id: the issues driving it, as the caller sees them (one multi-search for the
    windows, one query for the issues' titles and sizes)."""
    clusters = [a.cluster for a in alerts
                if a.family == "cluster" and a.cluster and not is_alert_band(a.cluster)]
    merged = merged_into(client, prefix, clusters) if clusters else {}
    wanted = [(a, f) for a in alerts if (f := alert_filters(a, principal, merged)) is not None]
    if not wanted:
        return {alert.alert_id: [] for alert in alerts}
    lines: list[dict[str, Any]] = []
    for _, filters in wanted:
        lines += [{"index": posts_alias(prefix), "ignore_unavailable": True, "allow_no_indices": True},
                  _window_body(filters, limit)]
    responses = client.msearch(body=lines)["responses"]
    ranked = {a.alert_id: _ranked(resp, min_share) for (a, _), resp in zip(wanted, responses, strict=True)}
    every = [entry for found in ranked.values() for entry in found]
    described = {d.issue_id: d for d in _described(client, prefix, principal, every)}
    return {alert.alert_id: [described[i].model_copy(update={"posts": n, "share": share})
                             for i, n, share in ranked.get(alert.alert_id, []) if i in described]
            for alert in alerts}


def driving_issues(client: Elasticsearch, *, prefix: str, since: datetime, until: datetime,
                   topic: str | None = None, region: str | None = None, source: str | None = None,
                   cluster: str | None = None, limit: int = DRIVING_LIMIT,
                   min_share: float = DRIVING_MIN_SHARE) -> list[DrivingIssue]:
    """The issues holding most of the posts of a key's window, every region's posts counted."""
    filters = key_filters(since=since, until=until, topic=topic, region=region, source=source,
                          cluster=cluster)
    ranked = _ranked(search(client, posts_alias(prefix), _window_body(filters, limit)), min_share)
    return _described(client, prefix, EVERYONE, ranked)
