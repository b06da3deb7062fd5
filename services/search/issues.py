"""Issues (posts grouped by near-duplicate fingerprint and topic) and the responses to them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ConflictError

from services.search.auth import Principal
from services.search.mappings import posts_alias, small_alias, small_index
from services.search.models import (
    ActionCreate,
    ActionKind,
    ActionPage,
    ActionRead,
    IssuePage,
    IssueRead,
    IssueState,
    IssueSummary,
)
from services.search.posts import fetch_posts, issue_states, search, to_post
from services.search.query import (
    Cursor,
    check_in_scope,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
    range_filter,
    scope_filters,
    term_filters,
)

REPRESENTATIVE_SAMPLE = 50
ACTION_SORT = [{"at": "desc"}, {"action_id": "asc"}]
# Which states an action may start from, and the state it leads to.
TRANSITIONS: dict[ActionKind, tuple[frozenset[IssueState], IssueState]] = {
    ActionKind.ACKNOWLEDGE: (frozenset({IssueState.OPEN}), IssueState.ACKNOWLEDGED),
    ActionKind.ASSIGN: (frozenset(set(IssueState) - {IssueState.RESOLVED}), IssueState.ASSIGNED),
    ActionKind.RESPOND: (frozenset(set(IssueState) - {IssueState.RESOLVED}), IssueState.RESPONDED),
    ActionKind.RESOLVE: (frozenset(set(IssueState) - {IssueState.RESOLVED}), IssueState.RESOLVED),
    ActionKind.REOPEN: (frozenset({IssueState.RESOLVED}), IssueState.OPEN),
}


class IssueNotFound(LookupError):
    pass


class InvalidTransition(Exception):
    """The action does not apply to the issue's current state (HTTP 409)."""


def medoid(fingerprints: dict[str, str]) -> str | None:
    """The post whose fingerprint is nearest to all others (sum of Hamming distances)."""
    values = {post_id: int(fp, 16) for post_id, fp in fingerprints.items()}
    best = min(values, default=None,
               key=lambda p: (sum((values[p] ^ v).bit_count() for v in values.values()), p))
    return best


def _ranking_aggs(order_by: str, size: int, min_size: int) -> dict[str, Any]:
    """The chosen issues only: sub-aggregations over every issue in range would cost 10x more."""
    order = {"_count": "desc"} if order_by == "size" else {"last": "desc"}
    ranking: dict[str, Any] = {"terms": {"field": "issue_id", "size": size, "min_doc_count": min_size,
                                         "order": [order, {"_key": "asc"}]}}
    if order_by != "size":
        ranking["aggs"] = {"last": {"max": {"field": "created_at"}}}
    return {"issues": ranking, "total_issues": {"cardinality": {"field": "issue_id"}}}


def _details(client: Elasticsearch, prefix: str, filters: list[dict[str, Any]],
             issue_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per issue: first/last seen, sentiment, topic, regions and a sample of member fingerprints."""
    if not issue_ids:
        return {}
    aggs = {"issues": {"terms": {"field": "issue_id", "size": len(issue_ids)}, "aggs": {
        "first": {"min": {"field": "created_at"}}, "last": {"max": {"field": "created_at"}},
        "sentiment": {"terms": {"field": "sentiment", "size": 3}},
        "topic": {"terms": {"field": "topic", "size": 1}},
        "regions": {"terms": {"field": "region", "size": 5}},
        # doc values only: loading the stored fields (even just _id) of up to 1,000
        # scattered documents made this request ten times slower
        "sample": {"top_hits": {"size": REPRESENTATIVE_SAMPLE, "sort": [{"created_at": "asc"}],
                                "_source": False, "stored_fields": "_none_",
                                "docvalue_fields": ["post_id", "fingerprint"]}}}}}
    query = {"bool": {"filter": [*filters, {"terms": {"issue_id": issue_ids}}]}}
    resp = search(client, posts_alias(prefix), {"size": 0, "query": query, "aggs": aggs})
    buckets = ((resp.get("aggregations") or {}).get("issues") or {}).get("buckets", [])
    return {b["key"]: b for b in buckets}


def _summary(bucket: dict[str, Any]) -> tuple[IssueSummary, str | None]:
    hits = bucket["sample"]["hits"]["hits"]
    sample = {h["fields"]["post_id"][0]: h["fields"]["fingerprint"][0] for h in hits}
    summary = IssueSummary(
        issue_id=bucket["key"], topic=bucket["topic"]["buckets"][0]["key"], size=bucket["doc_count"],
        first_seen=bucket["first"]["value_as_string"], last_seen=bucket["last"]["value_as_string"],
        sentiment_mix={b["key"]: b["doc_count"] for b in bucket["sentiment"]["buckets"]},
        regions={b["key"]: b["doc_count"] for b in bucket["regions"]["buckets"]},
    )
    return summary, medoid(sample)


def _summaries(client: Elasticsearch, prefix: str, principal: Principal, filters: list[dict[str, Any]],
               issue_ids: list[str]) -> list[IssueSummary]:
    details = _details(client, prefix, filters, issue_ids)
    pairs = [_summary(details[i]) for i in issue_ids if i in details]
    return _decorate(client, prefix, principal, pairs)


def _decorate(client: Elasticsearch, prefix: str, principal: Principal,
              pairs: list[tuple[IssueSummary, str | None]]) -> list[IssueSummary]:
    states = issue_states(client, prefix, [s.issue_id for s, _ in pairs])
    wanted = [rep for _, rep in pairs if rep]
    reps = {p.post_id: p for p in fetch_posts(client, prefix=prefix, post_ids=wanted, principal=principal,
                                                 states=False)}
    for summary, rep in pairs:
        state = states.get(summary.issue_id, {})
        summary.state = IssueState(state.get("state", "open"))
        summary.assignee = state.get("assignee")
        summary.reply_text = state.get("reply_text")
        summary.representative = reps.get(rep) if rep else None
        if summary.representative:
            summary.representative.issue_state = summary.state
    return [s for s, _ in pairs]


def list_issues(client: Elasticsearch, *, prefix: str, principal: Principal, since: datetime | None,
                until: datetime | None, topic: str | None = None, region: str | None = None,
                unit: str | None = None, min_size: int = 1, limit: int = 20,
                order_by: str = "size") -> IssuePage:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=7)
    check_in_scope(principal, region=region, unit=unit)
    filters = range_filter("created_at", since, until) + scope_filters(principal)
    filters += term_filters(topic=topic, region=region, unit=unit)
    body = {"size": 0, "query": {"bool": {"filter": filters}},
            "aggs": _ranking_aggs(order_by, limit, min_size)}
    resp = search(client, posts_alias(prefix), body)
    aggs = resp.get("aggregations")
    buckets = aggs["issues"]["buckets"] if aggs else []
    issues = _summaries(client, prefix, principal, filters, [b["key"] for b in buckets])
    total = int(aggs["total_issues"]["value"]) if aggs else 0
    return IssuePage(since=since, until=until, issues=issues, total_issues=total)


def get_issue(client: Elasticsearch, *, prefix: str, principal: Principal, issue_id: str,
              limit: int = 50) -> IssueRead:
    filters = [{"term": {"issue_id": issue_id}}, *scope_filters(principal)]
    body = {"size": limit, "query": {"bool": {"filter": filters}},
            "sort": [{"created_at": "desc"}, {"post_id": "asc"}]}
    resp = search(client, posts_alias(prefix), body)
    summaries = _summaries(client, prefix, principal, filters, [issue_id])
    if not summaries:
        raise IssueNotFound(issue_id)
    summary = summaries[0]
    members = [to_post(h) for h in resp["hits"]["hits"]]
    for member in members:
        member.issue_state = summary.state
    actions = list_actions(client, prefix=prefix, principal=principal, issue_id=issue_id, limit=50)
    return IssueRead(**summary.model_dump(), members=members, actions=actions.actions)


def _issue_scope(client: Elasticsearch, prefix: str, principal: Principal,
                 issue_id: str) -> tuple[list[str], list[str]]:
    """Regions and units of the issue's posts the caller sees; IssueNotFound if none."""
    filters = [{"term": {"issue_id": issue_id}}, *scope_filters(principal)]
    aggs = {f: {"terms": {"field": f, "size": 100}} for f in ("region", "unit")}
    resp = search(client, posts_alias(prefix), {"size": 0, "track_total_hits": True,
                         "query": {"bool": {"filter": filters}}, "aggs": aggs})
    if resp["hits"]["total"]["value"] == 0:
        raise IssueNotFound(issue_id)
    found = resp["aggregations"]
    return ([b["key"] for b in found["region"]["buckets"]], [b["key"] for b in found["unit"]["buckets"]])


def record_action(client: Elasticsearch, *, prefix: str, principal: Principal, issue_id: str,
                  action: ActionCreate, now: datetime | None = None) -> ActionRead:
    """Apply a responder's action to the issue's state and keep it in the history.

    The state document is written with optimistic concurrency, so two responders
    acting at once cannot both move the issue from the same state.
    """
    regions, units = _issue_scope(client, prefix, principal, issue_id)
    index = small_index(prefix, "issue-states")
    current = client.get(index=index, id=issue_id, ignore=404)
    state = IssueState(current["_source"]["state"]) if current.get("found") else IssueState.OPEN
    allowed_from, to_state = TRANSITIONS[action.action]
    if state not in allowed_from:
        raise InvalidTransition(f"cannot {action.action.value} an issue that is {state.value}")
    now = now or datetime.now(UTC)
    doc = {"issue_id": issue_id, "state": to_state.value, "responder": principal.subject,
           "updated_at": now.isoformat(),
           "assignee": action.assignee or (current.get("_source") or {}).get("assignee"),
           "reply_text": action.reply_text or (current.get("_source") or {}).get("reply_text")}
    guard = ({"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
             if current.get("found") else {"op_type": "create"})
    try:
        client.index(index=index, id=issue_id, document=doc, refresh="wait_for", **guard)
    except ConflictError as exc:
        raise InvalidTransition("the issue changed meanwhile; reload it and try again") from exc
    read = ActionRead(action_id=uuid.uuid4().hex, issue_id=issue_id, action=action.action,
                      responder=principal.subject, at=now, assignee=action.assignee,
                      reply_text=action.reply_text, note=action.note, from_state=state, to_state=to_state)
    client.index(index=small_index(prefix, "actions"), id=read.action_id, refresh="wait_for",
                 document={**read.model_dump(mode="json"), "regions": regions, "units": units})
    return read


def list_actions(client: Elasticsearch, *, prefix: str, principal: Principal, issue_id: str | None = None,
                 responder: str | None = None, action: ActionKind | None = None,
                 since: datetime | None = None, until: datetime | None = None, limit: int = 50,
                 cursor: str | None = None) -> ActionPage:
    filters = term_filters(issue_id=issue_id, responder=responder, action=action)
    filters += range_filter("at", since, until)
    if principal.regions is not None:
        filters.append({"terms": {"regions": sorted(principal.regions)}})
    if principal.units is not None:
        filters.append({"terms": {"units": sorted(principal.units)}})
    fingerprint = query_fingerprint({"issue_id": issue_id, "responder": responder, "action": action,
                                     "since": since, "until": until})
    body: dict[str, Any] = {"size": limit, "sort": ACTION_SORT, "query": {"bool": {"filter": filters}}}
    if cursor:
        body["search_after"] = decode_cursor(cursor, fingerprint=fingerprint, width=len(ACTION_SORT)).after
    resp = search(client, small_alias(prefix, "actions"), body)
    hits = resp["hits"]["hits"]
    actions = [ActionRead.model_validate(h["_source"]) for h in hits]
    next_cursor = (encode_cursor(Cursor(hits[-1]["sort"], datetime.now(UTC).isoformat()),
                                 fingerprint=fingerprint) if len(hits) == limit else None)
    return ActionPage(actions=actions, next_cursor=next_cursor)
