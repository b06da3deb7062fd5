"""Issues (posts grouped by meaning, place and time; grouping.py) and the responses to them."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ConflictError

from services.search.auth import Principal
from services.search.issue_text import cosine, places, view
from services.search.issue_visibility import distinct, visible_issues
from services.search.mappings import es_time, posts_alias, small_alias, small_index
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
    AS_OF_AGG,
    Cursor,
    check_in_scope,
    decode_cursor,
    encode_cursor,
    indexed_by,
    query_fingerprint,
    range_filter,
    scope_filters,
    term_filters,
)

REPRESENTATIVE_SAMPLE = 20  # latest posts per issue read for the representative, title and places
# regions listed per issue: every township of a county (the five largest were listed, and a county-wide
# matter's other townships, whose responders look for theirs, were left out)
ISSUE_REGIONS = 200
ACTION_SORT = [{"at": "desc"}, {"action_id": "asc"}]
# Which states an action may start from, and the state it leads to.
TRANSITIONS: dict[ActionKind, tuple[frozenset[IssueState], IssueState]] = {
    ActionKind.ACKNOWLEDGE: (frozenset({IssueState.OPEN}), IssueState.ACKNOWLEDGED),
    ActionKind.ASSIGN: (frozenset(set(IssueState) - {IssueState.RESOLVED}), IssueState.ASSIGNED),
    ActionKind.RESPOND: (frozenset(set(IssueState) - {IssueState.RESOLVED}), IssueState.RESPONDED),
    ActionKind.RESOLVE: (frozenset(set(IssueState) - {IssueState.RESOLVED}), IssueState.RESOLVED),
    ActionKind.REOPEN: (frozenset({IssueState.RESOLVED}), IssueState.OPEN),
}


class IssueMerged(LookupError):
    """The issue was merged into ``target`` (a responder's or the grouping's merge): its posts
    and its history are there. GET answers 308 to the target, other requests 404 naming it."""

    def __init__(self, issue_id: str, target: str) -> None:
        super().__init__(issue_id)
        self.issue_id, self.target = issue_id, target

    def __str__(self) -> str:
        return f"issue {self.issue_id} was merged into {self.target}"


class IssueNotFound(LookupError):
    pass


class InvalidTransition(Exception):
    """The action does not apply to the issue's current state (HTTP 409)."""


RANK_POOL = 500  # issues ranked per request: the largest this many in range, then by priority
RECENT = timedelta(hours=1)
TITLE_CHARS = 40


def priority(*, size: int, last_hour: int, negative_share: float) -> float:
    """How urgently an issue needs a responder; documented in docs/search.md (*Issue priority*).

    log2(1 + size) + log2(1 + posts in the last hour) + the share of negative posts:
    a large matter first, one that is growing now next, anger breaking ties.
    Resolved issues come after every unresolved one whatever their priority, but for one with
    posts created after its resolution (``_rank``).
    """
    return round(math.log2(1 + size) + math.log2(1 + last_hour) + negative_share, 4)


def representative(texts: dict[str, str]) -> str | None:
    """The post whose words are closest to all the others' (medoid by bigram cosine)."""
    views = {post_id: view(text).words for post_id, text in texts.items()}
    return min(views, default=None,
               key=lambda p: (-sum(cosine(views[p], other) for other in views.values()), p))


def _growth_aggs(until: datetime) -> dict[str, Any]:
    """What an issue's priority needs besides its size: its posts in the last hour before
    ``until`` and its negative posts (sub-aggregations of an issue's bucket)."""
    recent = {"range": {"created_at": {"gte": es_time(until - RECENT)}}}
    return {"last": {"max": {"field": "created_at"}}, "recent": {"filter": recent},
            "negative": {"filter": {"term": {"sentiment": "negative"}}}}


def _growth(bucket: dict[str, Any]) -> dict[str, Any]:
    size, last_hour = bucket["doc_count"], bucket["recent"]["doc_count"]
    share = round(bucket["negative"]["doc_count"] / size, 4)
    return {"size": size, "last_hour": last_hour, "negative_share": share, "last": bucket["last"]["value"],
            "priority": priority(size=size, last_hour=last_hour, negative_share=share)}


def _ranking_aggs(until: datetime, min_size: int, order_by: str) -> dict[str, Any]:
    """The largest issues in range (the latest, by last post), with what their priority needs
    (sub-aggregations stay cheap)."""
    # by last post, the pool is the latest issues: the largest left out the ones just begun
    first = {"last": "desc"} if order_by == "last_seen" else {"_count": "desc"}
    ranking: dict[str, Any] = {
        "terms": {"field": "issue_id", "size": RANK_POOL, "min_doc_count": min_size,
                  "order": [first, {"_key": "asc"}]},
        "aggs": _growth_aggs(until)}
    return {"issues": ranking, "total_issues": {"cardinality": {"field": "issue_id"}}}


def _details(client: Elasticsearch, prefix: str, filters: list[dict[str, Any]],
             issue_ids: list[str], until: datetime) -> dict[str, dict[str, Any]]:
    """Per issue: first/last seen, growth, sentiment, topic, regions, keywords and its latest
    posts' texts."""
    if not issue_ids:
        return {}
    aggs = {"issues": {"terms": {"field": "issue_id", "size": len(issue_ids)}, "aggs": {
        **_growth_aggs(until), "first": {"min": {"field": "created_at"}},
        "sentiment": {"terms": {"field": "sentiment", "size": 3}},
        "topic": {"terms": {"field": "topic", "size": 1}},
        "regions": {"terms": {"field": "region", "size": ISSUE_REGIONS}},
        "keywords": {"terms": {"field": "keywords", "size": 5}},
        "sample": {"top_hits": {"size": REPRESENTATIVE_SAMPLE, "sort": [{"created_at": "desc"}],
                                "_source": ["post_id", "title", "text", "region"]}}}}}
    query = {"bool": {"filter": [*filters, {"terms": {"issue_id": issue_ids}}]}}
    resp = search(client, posts_alias(prefix), {"size": 0, "query": query, "aggs": aggs})
    buckets = ((resp.get("aggregations") or {}).get("issues") or {}).get("buckets", [])
    return {b["key"]: b for b in buckets}


def _summary(bucket: dict[str, Any]) -> tuple[IssueSummary, str | None]:
    sources = [h["_source"] for h in bucket["sample"]["hits"]["hits"]]
    texts = {s["post_id"]: f"{s.get('title') or ''} {s['text']}".strip() for s in sources}
    named: Counter[str] = Counter()
    for source in sources:
        named.update(places(source["text"], source.get("region")))
    rep = representative(texts)
    keywords = [b["key"] for b in bucket["keywords"]["buckets"]]
    growth = _growth(bucket)
    summary = IssueSummary(
        issue_id=bucket["key"], topic=bucket["topic"]["buckets"][0]["key"], size=bucket["doc_count"],
        title=_title(texts.get(rep or "", ""), keywords), keywords=keywords,
        places=[p for p, _ in named.most_common(5)],
        first_seen=bucket["first"]["value_as_string"], last_seen=bucket["last"]["value_as_string"],
        sentiment_mix={b["key"]: b["doc_count"] for b in bucket["sentiment"]["buckets"]},
        regions={b["key"]: b["doc_count"] for b in bucket["regions"]["buckets"]},
        last_hour=growth["last_hour"], before=growth["size"] - growth["last_hour"],
        negative_share=growth["negative_share"], priority=growth["priority"],
    )
    return summary, rep


def _title(text: str, keywords: list[str]) -> str:
    short = text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "…"
    return f"{'、'.join(keywords[:3])}：{short}" if keywords else short


def _summaries(client: Elasticsearch, prefix: str, principal: Principal, filters: list[dict[str, Any]],
               issue_ids: list[str], until: datetime | None = None) -> list[IssueSummary]:
    """``until``: the end of the range the growth is counted to (the last hour before it); now
    for an issue read on its own."""
    details = _details(client, prefix, filters, issue_ids, until or datetime.now(UTC))
    pairs = [_summary(details[i]) for i in issue_ids if i in details]
    return _decorate(client, prefix, principal, pairs, filters)


def issue_summaries(client: Elasticsearch, *, prefix: str, principal: Principal,
                    issue_ids: list[str]) -> list[IssueSummary]:
    """The records of these issues as ``GET /v1/issues/{id}`` gives them (all their posts in the
    caller's scope), in the order given; issues the caller sees no post of are left out."""
    return _summaries(client, prefix, principal, scope_filters(principal), issue_ids)


def _decorate(client: Elasticsearch, prefix: str, principal: Principal,
              pairs: list[tuple[IssueSummary, str | None]],
              filters: list[dict[str, Any]]) -> list[IssueSummary]:
    states = issue_states(client, prefix, [s.issue_id for s, _ in pairs])
    after = posts_after_resolution(client, prefix, filters, states)
    wanted = [rep for _, rep in pairs if rep]
    reps = {p.post_id: p for p in fetch_posts(client, prefix=prefix, post_ids=wanted, principal=principal,
                                                 states=False)}
    for summary, rep in pairs:
        state = states.get(summary.issue_id, {})
        summary.state = IssueState(state.get("state", "open"))
        summary.assignee = state.get("assignee")
        summary.reply_text = state.get("reply_text")
        summary.after_resolution = after.get(summary.issue_id, 0)
        summary.representative = reps.get(rep) if rep else None
        if summary.representative:
            summary.representative.issue_state = summary.state
    return [s for s, _ in pairs]


Ranked = tuple[str, dict[str, Any]]
# The order of each ``order_by``: a tuple that sorts ascending (resolved last when by priority),
# numbers then the issue id, which is also what a page's cursor carries.
ORDER_KEYS: dict[str, Callable[[Ranked], tuple[Any, ...]]] = {
    "priority": lambda r: (int(r[1]["resolved"]), -r[1]["priority"], r[0]),
    "size": lambda r: (-r[1]["size"], r[0]),
    "last_seen": lambda r: (-r[1]["last"], r[0]),
}
ORDER_WIDTHS = {"priority": 3, "size": 2, "last_seen": 2}


def resolved_at(state: dict[str, Any]) -> datetime | None:
    """When the issue was resolved, if its state is resolved (the state document's last change)."""
    if state.get("state") != IssueState.RESOLVED.value or not state.get("updated_at"):
        return None
    return datetime.fromisoformat(state["updated_at"])


def _rank(buckets: list[dict[str, Any]], states: dict[str, dict[str, Any]], *, order_by: str,
          state: IssueState | None) -> list[Ranked]:
    """Issues in the order asked for, the chosen state only; resolved last when by priority, but
    for one with a post created after its resolution: the matter came back, and listed last, the
    complaints after the repair went unseen."""
    ranked = []
    for b in buckets:
        current = states.get(b["key"], {})
        if state is not None and IssueState(current.get("state", "open")) is not state:
            continue
        growth, resolved = _growth(b), current.get("state") == IssueState.RESOLVED.value
        at = resolved_at(current)  # a state written without its time: resolved, nothing known after
        quiet = resolved and (at is None or growth["last"] <= at.timestamp() * 1000)
        ranked.append((b["key"], {**growth, "resolved": quiet}))
    return sorted(ranked, key=ORDER_KEYS[order_by])


def posts_after_resolution(client: Elasticsearch, prefix: str, filters: list[dict[str, Any]],
                           states: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Per resolved issue with any: its posts (within ``filters``) created after its resolution."""
    resolved = {i: at for i, at in ((i, resolved_at(s)) for i, s in states.items()) if at is not None}
    if not resolved:
        return {}
    after = [{"bool": {"filter": [{"term": {"issue_id": i}}, {"range": {"created_at": {"gt": es_time(at)}}}]}}
             for i, at in sorted(resolved.items())]
    body = {"size": 0, "query": {"bool": {"filter": filters, "should": after, "minimum_should_match": 1}},
            "aggs": {"issues": {"terms": {"field": "issue_id", "size": len(resolved)}}}}
    aggs = search(client, posts_alias(prefix), body).get("aggregations") or {}
    return {b["key"]: b["doc_count"] for b in aggs.get("issues", {}).get("buckets", [])}


def _page(ranked: list[Ranked], *, order_by: str, after: list[Any] | None,
          limit: int) -> tuple[list[Ranked], list[Any] | None]:
    """The issues of one page, those ranked after ``after`` (a page's last key), and the key to
    continue from when more follow."""
    key = ORDER_KEYS[order_by]
    rest = [r for r in ranked if after is None or key(r) > tuple(after)]
    shown = rest[:limit]
    return shown, (list(key(shown[-1])) if len(rest) > limit else None)


def list_issues(client: Elasticsearch, *, prefix: str, principal: Principal, since: datetime | None,
                until: datetime | None, topic: str | None = None, region: str | None = None,
                unit: str | None = None, min_size: int = 1, limit: int = 20,
                order_by: str = "priority", state: IssueState | None = None,
                cursor: str | None = None) -> IssuePage:
    """Issues of the range by ``order_by``; the pages after the first continue from the last issue
    of the page before, over the range of the first page (its ``until``)."""
    fingerprint = query_fingerprint({"since": since, "until": until, "topic": topic, "region": region,
                                     "unit": unit, "min_size": min_size, "order_by": order_by,
                                     "state": state, "scope": sorted(map(str, scope_filters(principal)))})
    page = decode_cursor(cursor, fingerprint=fingerprint, width=ORDER_WIDTHS[order_by]) if cursor else None
    until = until or (datetime.fromisoformat(page.snapshot) if page else datetime.now(UTC))
    since = since or until - timedelta(days=7)
    check_in_scope(principal, region=region, unit=unit)
    filters = range_filter("created_at", since, until) + scope_filters(principal)
    bound = page.as_of if page else None
    filters += term_filters(topic=topic, region=region, unit=unit) + indexed_by(bound)
    # growth is counted to now when the range reaches past it (a day picked to its end): the last
    # hour of such a range lies ahead, and every issue, however fast it grew, had none in it
    grown_to = min(until, datetime.now(UTC))
    body = {"size": 0, "query": {"bool": {"filter": filters}},
            "aggs": {**_ranking_aggs(grown_to, min_size, order_by), "as_of": AS_OF_AGG}}
    aggs = search(client, posts_alias(prefix), body).get("aggregations")
    as_of = bound or ((aggs or {}).get("as_of") or {}).get("value_as_string")
    buckets = aggs["issues"]["buckets"] if aggs else []
    states = issue_states(client, prefix, [b["key"] for b in buckets])
    chosen = _rank(buckets, states, order_by=order_by, state=state)
    ranked, last = _page(chosen, order_by=order_by, after=page.after if page else None, limit=limit)
    issues = _summaries(client, prefix, principal, filters, [i for i, _ in ranked], grown_to)
    next_cursor = (encode_cursor(Cursor(last, until.isoformat(), as_of=as_of), fingerprint=fingerprint)
                   if last else None)
    total = int(aggs["total_issues"]["value"]) if aggs else 0
    if state is not None or min_size > 1:
        # the issues the filters leave, which the pages go through: every issue in range counted
        # 25 where state=acknowledged listed 1
        total = len(chosen)
    return IssuePage(since=since, until=until, issues=issues, total_issues=total, next_cursor=next_cursor,
                     as_of=datetime.fromisoformat(as_of) if as_of else None)


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
    """Regions and units of all the issue's posts; IssueNotFound if the caller sees none.

    An action is recorded with them, as its state is the issue's in every region: recorded with
    the caller's own regions only, a responder of another region of a shared issue saw it resolved
    with no action in its history saying who resolved it, or why.
    """
    aggs: dict[str, Any] = {f: {"terms": {"field": f, "size": ISSUE_REGIONS}} for f in ("region", "unit")}
    aggs["in_scope"] = {"filter": {"bool": {"filter": scope_filters(principal)}}}
    resp = search(client, posts_alias(prefix), {"size": 0, "track_total_hits": True,
                         "query": {"bool": {"filter": [{"term": {"issue_id": issue_id}}]}}, "aggs": aggs})
    if resp["hits"]["total"]["value"] == 0 or resp["aggregations"]["in_scope"]["doc_count"] == 0:
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


def action_scope(client: Elasticsearch, prefix: str, principal: Principal,
                 filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of the actions the filters keep, those the caller sees, as one more filter: an action is
    recorded with the regions and units of its issue's posts then, and is seen by a caller of those,
    or by one that sees the issue now (``issue_visibility``): a township whose posts joined the issue
    later found its history without what was done before, or by whom."""
    recorded = [{"terms": {field: sorted(scope)}}
                for field, scope in (("regions", principal.regions), ("units", principal.units))
                if scope is not None]
    if not recorded:
        return []
    others = distinct(client, small_alias(prefix, "actions"), "issue_id",
                      [*filters, {"bool": {"must_not": [{"bool": {"filter": recorded}}]}}])
    seen: list[dict[str, Any]] = [{"bool": {"filter": recorded}}]
    if issues := visible_issues(client, prefix, principal, others):
        seen.append({"terms": {"issue_id": sorted(issues)}})
    return [{"bool": {"should": seen, "minimum_should_match": 1}}]


def list_actions(client: Elasticsearch, *, prefix: str, principal: Principal, issue_id: str | None = None,
                 responder: str | None = None, action: ActionKind | None = None,
                 since: datetime | None = None, until: datetime | None = None, limit: int = 50,
                 cursor: str | None = None) -> ActionPage:
    filters = term_filters(issue_id=issue_id, responder=responder, action=action)
    filters += range_filter("at", since, until)
    filters += action_scope(client, prefix, principal, filters)
    fingerprint = query_fingerprint({"issue_id": issue_id, "responder": responder, "action": action,
                                     "since": since, "until": until})
    body: dict[str, Any] = {"size": limit, "sort": ACTION_SORT, "query": {"bool": {"filter": filters}}}
    if cursor:
        body["search_after"] = decode_cursor(cursor, fingerprint=fingerprint, width=len(ACTION_SORT)).after
    resp = search(client, small_alias(prefix, "actions"), body)
    hits = resp["hits"]["hits"]
    if issue_id is not None and not hits and not cursor:
        _issue_scope(client, prefix, principal, issue_id)  # no such issue in the caller's scope: 404
    actions = [ActionRead.model_validate(h["_source"]) for h in hits]
    next_cursor = (encode_cursor(Cursor(hits[-1]["sort"], datetime.now(UTC).isoformat()),
                                 fingerprint=fingerprint) if len(hits) == limit else None)
    return ActionPage(actions=actions, next_cursor=next_cursor)
