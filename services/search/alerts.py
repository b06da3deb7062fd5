"""Reading the surge alerts the indexer keeps (one document per alert id), each with the issues
driving it (issue_alerts.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from services.search.auth import Principal
from services.search.issue_alerts import alerts_driving_issues
from services.search.issue_visibility import distinct, visible_issues
from services.search.mappings import small_alias
from services.search.models import AlertDetail, AlertPage, AlertRead
from services.search.posts import fetch_posts, search
from services.search.query import (
    Cursor,
    check_in_scope,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
    range_filter,
    term_filters,
)
from yuqing.fingerprint import is_alert_band

# When the surge began (part of the alert's id, never changed by a later event), then the id: an
# alert that escalates or resolves while a responder pages keeps its place. Ordered by the last
# update, it jumped to the front, behind the reader, and was never listed.
ALERT_SORT = [{"window_start": {"order": "desc", "missing": "_last"}}, {"alert_id": "asc"}]


def alert_scope(client: Elasticsearch, prefix: str, principal: Principal,
                filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of the alerts the filters keep, those the caller sees, as one more filter.

    An alert carries a region only when its key has one, and never a unit: a key restricted to
    regions sees the alerts of those regions; a key restricted by unit, with or without regions,
    sees none of them (a region's alert counts the posts of every unit there). A ``cluster`` alert,
    keyed by issue id, is seen by a restricted key that sees any post of its issue now (or of the
    issue it was merged into, ``issue_visibility``): filtered here, in the query, so that pages
    and their cursors hold the caller's alerts only.
    """
    if principal.regions is None and principal.units is None:
        return []
    seen: list[dict[str, Any]] = ([] if principal.units is not None
                                  else [{"terms": {"region": sorted(principal.regions or ())}}])
    cluster = [{"term": {"family": "cluster"}}]
    keyed = distinct(client, small_alias(prefix, "alerts"), "cluster", [*filters, *cluster])
    issues = visible_issues(client, prefix, principal, [c for c in keyed if not is_alert_band(c)])
    if issues:
        seen.append({"bool": {"filter": [*cluster, {"terms": {"cluster": sorted(issues)}}]}})
    return [{"bool": {"should": seen, "minimum_should_match": 1}}] if seen else [{"match_none": {}}]


def list_alerts(client: Elasticsearch, *, prefix: str, principal: Principal, state: str | None = None,
                severity: str | None = None, topic: str | None = None, region: str | None = None,
                family: str | None = None, since: datetime | None = None, until: datetime | None = None,
                limit: int = 20, cursor: str | None = None) -> AlertPage:
    check_in_scope(principal, region=region, unit=None)
    filters = term_filters(state=state, severity=severity, topic=topic, region=region, family=family)
    filters += range_filter("updated_at", since, until)
    filters += alert_scope(client, prefix, principal, filters)
    fingerprint = query_fingerprint({"state": state, "severity": severity, "topic": topic,
                                     "region": region, "family": family, "since": since, "until": until})
    body: dict[str, Any] = {"size": limit, "sort": ALERT_SORT, "query": {"bool": {"filter": filters}}}
    if cursor:
        body["search_after"] = decode_cursor(cursor, fingerprint=fingerprint, width=len(ALERT_SORT)).after
    resp = search(client, small_alias(prefix, "alerts"), body)
    hits = resp["hits"]["hits"]
    next_cursor = (encode_cursor(Cursor(hits[-1]["sort"], datetime.now(UTC).isoformat()),
                                 fingerprint=fingerprint) if len(hits) == limit else None)
    found = [AlertRead.model_validate(h["_source"]) for h in hits]
    return AlertPage(alerts=_with_driving_issues(client, prefix, principal, found), next_cursor=next_cursor)


def _with_driving_issues(client: Elasticsearch, prefix: str, principal: Principal,
                         found: list[AlertRead]) -> list[AlertRead]:
    driving = alerts_driving_issues(client, prefix=prefix, principal=principal, alerts=found)
    return [alert.model_copy(update={"driving_issues": driving.get(alert.alert_id, [])}) for alert in found]


def get_alert(client: Elasticsearch, *, prefix: str, principal: Principal,
              alert_id: str) -> AlertDetail | None:
    """The alert with its sample posts resolved, or None if absent or outside the caller's scope."""
    wanted: list[dict[str, Any]] = [{"ids": {"values": [alert_id]}}]
    query = {"bool": {"filter": [*wanted, *alert_scope(client, prefix, principal, wanted)]}}
    resp = search(client, small_alias(prefix, "alerts"), {"query": query, "size": 1})
    if not resp["hits"]["hits"]:
        return None
    alert = _with_driving_issues(client, prefix, principal,
                                 [AlertRead.model_validate(resp["hits"]["hits"][0]["_source"])])[0]
    samples = fetch_posts(client, prefix=prefix, post_ids=alert.sample_post_ids, principal=principal)
    return AlertDetail(**alert.model_dump(), sample_posts=samples)
