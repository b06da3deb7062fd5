"""Responders' corrections to the grouping: merge two issues, move a post, split a post out.

Each correction is kept twice: as an action in the issue's history (``actions``
index, like acknowledge or resolve) and as a record in
``<prefix>-issue-corrections`` that the indexers read (``LiveIssues.refresh``)
so that later grouping follows it. The posts' ``issue_id`` is changed at once
(update by query), so lists and searches show the correction immediately.

**Regions** (issue 12, item 11): a region- or unit-scoped responder may only
correct issues that lie *wholly* within their scope; an issue with any post
of another region or unit is 403 (``OutOfScope``), because a merge, move or split
changes what other regions' responders see (a post of no region is no other
region's, ``other_scopes``). Unscoped responders and admins may correct
any issue. The same rule covers the target of a merge or move.

**Automatic merges** (``issue_auto_merges.py``) are recorded the same way, with
the responder ``SYSTEM``; ``apply_to_grouper`` leaves out an automatic merge of
an issue a responder split or moved posts out of or into (the responder's
correction wins).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ConflictError

from services.search.auth import Principal
from services.search.correction_locks import correcting
from services.search.grouping import IssueGrouper, founder_issue_id
from services.search.issue_visibility import CORRECTIONS
from services.search.issues import InvalidTransition, IssueNotFound
from services.search.mappings import posts_alias, small_index
from services.search.models import ActionKind, ActionRead, IssueState
from services.search.posts import search
from services.search.query import scope_filters

KINDS = ("merge", "move", "split")
SYSTEM = "system"  # the responder of the grouping's own (automatic) merges
CORRECTIONS_PAGE = 1000  # corrections read per request, oldest first
_KEYWORD = {"type": "keyword"}
CORRECTION_MAPPING: dict[str, Any] = {"dynamic": "strict", "properties": {
    "correction_id": _KEYWORD, "kind": _KEYWORD, "issue_id": _KEYWORD, "target_issue_id": _KEYWORD,
    "post_id": _KEYWORD, "responder": _KEYWORD, "at": {"type": "date"}, "regions": _KEYWORD,
}}


class OutOfScope(PermissionError):
    """The issue has posts outside the caller's regions or units (HTTP 403)."""


class CorrectionError(InvalidTransition):
    """The correction makes no sense (merging an issue into itself, a post not in the issue): 409."""


class PostNotFound(LookupError):
    """The post of a move or split does not exist, or lies outside the caller's scope (HTTP 404)."""

    def __str__(self) -> str:
        return f"post {self.args[0]} not found"


@dataclass(frozen=True)
class Correction:
    kind: str  # merge | move | split
    issue_id: str  # the issue corrected (merge: the one that goes away)
    target_issue_id: str  # merge/move: where the posts go; split: the new issue
    post_id: str | None
    at_text: str  # ISO time, also the order in which indexers apply corrections
    responder: str = ""  # SYSTEM for an automatic merge

    def to_document(self, responder: str, regions: list[str], correction_id: str | None = None,
                    ) -> dict[str, Any]:
        return {"correction_id": correction_id or uuid.uuid4().hex, "kind": self.kind,
                "issue_id": self.issue_id,
                "target_issue_id": self.target_issue_id, "post_id": self.post_id,
                "responder": responder, "at": self.at_text, "regions": regions}


def corrections_index(prefix: str) -> str:
    return small_index(prefix, CORRECTIONS)


def ensure_index(client: Elasticsearch, prefix: str) -> None:
    client.indices.create(index=corrections_index(prefix), body={
        "settings": {"number_of_shards": 1}, "mappings": CORRECTION_MAPPING}, ignore=400)


def corrections_since(client: Elasticsearch, prefix: str, after: str | None) -> list[Correction]:
    """Corrections recorded after ``after`` (ISO time), oldest first, at most ``CORRECTIONS_PAGE``."""
    query: dict[str, Any] = {"range": {"at": {"gt": after}}} if after else {"match_all": {}}
    body = {"size": CORRECTIONS_PAGE, "query": query, "sort": [{"at": "asc"}, {"correction_id": "asc"}]}
    resp = client.search(index=corrections_index(prefix), body=body, ignore_unavailable=True)
    return [Correction(s["kind"], s["issue_id"], s["target_issue_id"], s.get("post_id"), s["at"],
                       s.get("responder") or "")
            for s in (h["_source"] for h in resp.get("hits", {}).get("hits", []))]


MERGE_HOPS = 8  # a merged issue's target merged in turn, and so on: followed this far


def merged_into(client: Elasticsearch, prefix: str, principal: Principal, issue_id: str) -> str | None:
    """Where an issue that has no posts went: the target of its latest merge, followed through
    later merges, when the caller sees posts there (otherwise None, and the answer stays 404)."""
    current, seen = issue_id, {issue_id}
    for _ in range(MERGE_HOPS):
        resp = client.search(index=corrections_index(prefix), ignore_unavailable=True, body={
            "size": 1, "query": {"bool": {"filter": [{"term": {"kind": "merge"}},
                                                     {"term": {"issue_id": current}}]}},
            "sort": [{"at": "desc"}, {"correction_id": "desc"}]})
        hits = resp.get("hits", {}).get("hits", [])
        if not hits or hits[0]["_source"]["target_issue_id"] in seen:
            break
        current = str(hits[0]["_source"]["target_issue_id"])
        seen.add(current)
        filters = [{"term": {"issue_id": current}}, *scope_filters(principal)]
        if client.count(index=posts_alias(prefix), body={"query": {"bool": {"filter": filters}}})["count"]:
            return current
    return None


def apply_to_grouper(grouper: IssueGrouper, correction: Correction) -> bool:
    """Make the grouping follow a correction; False when it was left out: an automatic merge of
    an issue a responder split or moved posts of (the responder's correction wins)."""
    if correction.kind == "merge":
        if correction.responder == SYSTEM and (grouper.is_protected(correction.issue_id)
                                               or grouper.is_protected(correction.target_issue_id)):
            return False
        # a responder's merge keeps the merged issue's township: its later posts follow the merge
        grouper.merge(correction.issue_id, correction.target_issue_id,
                      keep_towns=correction.responder != SYSTEM)
        return True
    if not correction.post_id:
        return False
    # by id too: after a restart the post already sits in its corrected issue
    grouper.protect(correction.issue_id, correction.target_issue_id)
    if correction.kind == "move":
        grouper.move(correction.post_id, correction.target_issue_id)
    elif correction.kind == "split":  # the recorded issue: a post not seen yet has no topic here
        grouper.split(correction.post_id, issue_id=correction.target_issue_id)
    return True


def reassign_posts(client: Elasticsearch, prefix: str, correction: Correction) -> int:
    """Set the posts' ``issue_id`` as the correction says; returns how many changed."""
    if correction.kind == "merge":
        query: dict[str, Any] = {"term": {"issue_id": correction.issue_id}}
    else:
        query = {"term": {"post_id": correction.post_id}}
    resp = client.update_by_query(index=posts_alias(prefix), body={
        "query": query, "script": {"lang": "painless", "source": "ctx._source.issue_id = params.to",
                                   "params": {"to": correction.target_issue_id}}},
        conflicts="proceed", refresh=True)
    return int(resp.get("updated", 0))


@dataclass(frozen=True)
class IssueScope:
    """What a correction needs to know of an issue: its posts, regions and units."""

    posts: int
    regions: list[str]
    units: list[str]


def other_scopes(principal: Principal) -> dict[str, Any]:
    """Posts of a region or unit outside the caller's scope. A post of no region (or no unit) is
    no other region's: no region's responder sees it, and one in a township's issue (a WeChat
    post naming no place) made the issue one its township's responder could not correct."""
    clauses = [{"bool": {"filter": [{"exists": {"field": field}}],
                         "must_not": [{"terms": {field: sorted(scope)}}]}}
               for field, scope in (("region", principal.regions), ("unit", principal.units))
               if scope is not None]
    return {"bool": {"should": clauses, "minimum_should_match": 1}} if clauses else {"match_none": {}}


def _issue_scope(client: Elasticsearch, prefix: str, principal: Principal, issue_id: str) -> IssueScope:
    """The issue's size, regions and units; OutOfScope when it has posts of another region or
    unit than the caller's."""
    filters = [{"term": {"issue_id": issue_id}}]
    body = {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": filters}},
            "aggs": {"region": {"terms": {"field": "region", "size": 100}},
                     "unit": {"terms": {"field": "unit", "size": 100}},
                     "in_scope": {"filter": {"bool": {"filter": scope_filters(principal)}}},
                     "outside": {"filter": other_scopes(principal)}}}
    # before any post is indexed there is no posts index: no such issue (it was a 500)
    resp = search(client, posts_alias(prefix), body)
    total = resp["hits"]["total"]["value"]
    visible = resp["aggregations"]["in_scope"]["doc_count"] if total else 0
    if visible == 0:
        raise IssueNotFound(issue_id)
    if resp["aggregations"]["outside"]["doc_count"]:
        raise OutOfScope(f"issue {issue_id} has posts outside this key's scope; "
                         "only a responder for all of its regions may correct it")
    aggs = resp["aggregations"]
    return IssueScope(total, [b["key"] for b in aggs["region"]["buckets"]],
                      [b["key"] for b in aggs["unit"]["buckets"]])


def _post_in(client: Elasticsearch, prefix: str, principal: Principal, issue_id: str,
             post_id: str) -> dict[str, Any]:
    """The post's topic; PostNotFound when the caller sees no such post (a mistyped id was a 409
    "not in issue", as if it were in another), CorrectionError when it is in another issue."""
    resp = client.search(index=posts_alias(prefix), body={"size": 1, "query": {"bool": {"filter": [
        {"term": {"post_id": post_id}}, *scope_filters(principal)]}}, "_source": ["topic", "issue_id"]})
    hits = resp["hits"]["hits"]
    if not hits:
        raise PostNotFound(post_id)
    if hits[0]["_source"].get("issue_id") != issue_id:
        raise CorrectionError(f"post {post_id} is not in issue {issue_id}")
    source: dict[str, Any] = hits[0]["_source"]
    return source


def correct(client: Elasticsearch, *, prefix: str, principal: Principal, kind: str, issue_id: str,
            target_issue_id: str | None = None, post_id: str | None = None, note: str | None = None,
            now: datetime | None = None) -> Correction:
    """Check scope, record the correction and change the posts; returns what was done. One
    correction of an issue at a time (``correction_locks``): another meanwhile is a 409."""
    changed = [issue_id, *([target_issue_id] if target_issue_id else [])]
    with correcting(client, prefix, changed, holder=principal.subject):
        return _correct(client, prefix=prefix, principal=principal, kind=kind, issue_id=issue_id,
                        target_issue_id=target_issue_id, post_id=post_id, note=note, now=now)


def _correct(client: Elasticsearch, *, prefix: str, principal: Principal, kind: str, issue_id: str,
             target_issue_id: str | None, post_id: str | None, note: str | None,
             now: datetime | None) -> Correction:
    scopes = [_issue_scope(client, prefix, principal, issue_id)]
    if kind in ("merge", "move"):
        if not target_issue_id or target_issue_id == issue_id:
            raise CorrectionError("the target must be another issue")
        scopes.append(_issue_scope(client, prefix, principal, target_issue_id))
    if kind in ("move", "split"):
        if not post_id:
            raise CorrectionError(f"{kind} needs a post")
        source = _post_in(client, prefix, principal, issue_id, post_id)
        if kind == "move" and scopes[0].posts <= 1:
            # the issue would be left without posts: its handling lost with it, its page a bare 404
            raise CorrectionError(f"post {post_id} is the only post of issue {issue_id}: merge the issue "
                                  f"into {target_issue_id} instead")
        if kind == "split":
            target_issue_id = _split_target(issue_id, post_id, source.get("topic"), scopes[0].posts)
    assert target_issue_id is not None
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    correction = Correction(kind, issue_id, target_issue_id, post_id, at)
    regions = sorted({r for scope in scopes for r in scope.regions})
    ensure_index(client, prefix)
    correction_id = uuid.uuid4().hex
    client.index(index=corrections_index(prefix), document=correction.to_document(
        principal.subject, regions, correction_id), refresh="wait_for")
    reassign_posts(client, prefix, correction)
    units = sorted({u for scope in scopes for u in scope.units})
    _record_history(client, prefix, principal.subject, correction, (regions, units), note, correction_id)
    return correction


def _split_target(issue_id: str, post_id: str, topic: str | None, posts: int) -> str:
    """The issue a split makes; CorrectionError when the post is alone in its issue already (a
    split would record a correction that changes nothing, or a new id for the same one post)."""
    target = founder_issue_id(post_id, topic, salt=":split")
    if target == issue_id:
        raise CorrectionError(f"issue {issue_id} is the one post {post_id} was split out into: "
                              "nothing to split")
    if posts <= 1:
        raise CorrectionError(f"post {post_id} is the only post of issue {issue_id}: nothing to split")
    return target


def _record_history(client: Elasticsearch, prefix: str, responder: str, correction: Correction,
                    scope: tuple[list[str], list[str]], note: str | None, correction_id: str) -> None:
    """The correction as an action in the history of the issue it changed (its state unchanged,
    but for the handling a merge carries over), with the regions and units of its posts, so that a
    responder scoped to them finds it there; a move or split also in the history of the issue
    the post went to, with the same ``correction_id`` (``arrival_action``)."""
    state = _state(client, prefix, history_issue(correction))
    carried = carry_handling(client, prefix, correction) if correction.kind == "merge" else None
    action_id, document = history_action(correction, responder=responder, state=state, regions=scope[0],
                                         note=note, units=scope[1], to_state=carried,
                                         correction_id=correction_id)
    body: list[dict[str, Any]] = [{"index": {"_index": small_index(prefix, "actions"), "_id": action_id}},
                                  document]
    if correction.kind != "merge":
        action_id, document = arrival_action(
            correction, responder=responder, state=_state(client, prefix, correction.target_issue_id),
            scope=scope, note=note, correction_id=correction_id)
        body += [{"index": {"_index": small_index(prefix, "actions"), "_id": action_id}}, document]
    client.bulk(body=body, refresh="wait_for")


def _state(client: Elasticsearch, prefix: str, issue_id: str) -> IssueState:
    current = client.get(index=small_index(prefix, "issue-states"), id=issue_id, ignore=404)
    return IssueState(current["_source"]["state"]) if current.get("found") else IssueState.OPEN


def carry_handling(client: Elasticsearch, prefix: str, correction: Correction) -> IssueState | None:
    """After a merge, the handling of the issue merged away (acknowledged, assigned, responded:
    its state, assignee and reply) when the issue that stays has none; the state carried, if any.

    The responders' work stayed with the id that went away, and the issue that stayed read as open,
    unassigned and unanswered. An issue with a state of its own keeps it; a resolution is not
    carried (the matter may have gone on in the issue that stays).
    """
    index = small_index(prefix, "issue-states")
    source = client.get(index=index, id=correction.issue_id, ignore=404)
    if not source.get("found"):
        return None
    state = IssueState(source["_source"]["state"])
    if state in (IssueState.OPEN, IssueState.RESOLVED):
        return None
    document = {**source["_source"], "issue_id": correction.target_issue_id}
    try:  # created only where there is none: a target acted on meanwhile keeps its own
        client.index(index=index, id=correction.target_issue_id, document=document, op_type="create",
                     refresh="wait_for")
    except ConflictError:
        return None
    return state


def history_issue(correction: Correction) -> str:
    """The issue whose history keeps a correction: for a merge the one that stays (the other has
    no posts left)."""
    return correction.target_issue_id if correction.kind == "merge" else correction.issue_id


def history_action(correction: Correction, *, responder: str, state: IssueState, regions: list[str],
                   note: str | None, action_id: str | None = None, units: list[str] | None = None,
                   to_state: IssueState | None = None,
                   correction_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """The action document of a correction in the ``actions`` index, and its id. ``units``: the
    units of the issue's posts (none known: a unit-scoped caller does not see the action);
    ``to_state``: the handling a merge carried over (``carry_handling``), if any."""
    carried = f"; its handling carried over ({to_state.value})" if to_state is not None else ""
    read = ActionRead(action_id=action_id or uuid.uuid4().hex, issue_id=history_issue(correction),
                      action=ActionKind(correction.kind), responder=responder,
                      at=datetime.fromisoformat(correction.at_text), from_state=state,
                      to_state=to_state or state, correction_id=correction_id,
                      note=f"{_describe(correction)}{carried}{f': {note}' if note else ''}")
    return read.action_id, {**read.model_dump(mode="json"), "regions": regions, "units": units or []}


def arrival_action(correction: Correction, *, responder: str, state: IssueState,
                   scope: tuple[list[str], list[str]], note: str | None,
                   correction_id: str) -> tuple[str, dict[str, Any]]:
    """A move or split in the history of the issue the post went to (the new issue of a split): a
    responder opening it saw no history, nor where the post came from or who brought it."""
    came = "moved here" if correction.kind == "move" else "split out into this issue"
    read = ActionRead(action_id=uuid.uuid4().hex, issue_id=correction.target_issue_id,
                      action=ActionKind(correction.kind), responder=responder,
                      at=datetime.fromisoformat(correction.at_text), from_state=state, to_state=state,
                      correction_id=correction_id,
                      note=f"post {correction.post_id} {came} from {correction.issue_id}"
                           f"{f': {note}' if note else ''}")
    return read.action_id, {**read.model_dump(mode="json"), "regions": scope[0], "units": scope[1]}


def _describe(correction: Correction) -> str:
    if correction.kind == "merge":
        return f"{correction.issue_id} merged into this issue"
    if correction.kind == "move":
        return f"post {correction.post_id} moved to {correction.target_issue_id}"
    return f"post {correction.post_id} split out into {correction.target_issue_id}"
