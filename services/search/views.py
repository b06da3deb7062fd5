"""The responders' endpoints: thin views over posts.py, issues.py, alerts.py and admin.py."""


from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query

from services.search import admin, alerts, issue_corrections, issues, posts
from services.search.auth import Principal
from services.search.correction_locks import correcting
from services.search.deps import (
    Actor,
    Admin,
    AlertIdPath,
    Caller,
    Cursor,
    FormerPageSize,
    IssueIdFilter,
    IssueIdPath,
    KeyIdPath,
    Keyword,
    OptionalPageSize,
    PageSize,
    PlaceFilter,
    PostIdPath,
    Reader,
    RegionFilter,
    SearchState,
    Since,
    SourceFilter,
    State,
    Until,
    json_content,
    known_query,
)
from services.search.metrics import RESPONSE_ACTIONS
from services.search.models import (
    ActionCreate,
    ActionKind,
    ActionPage,
    ActionRead,
    AlertDetail,
    AlertPage,
    CorrectionCreate,
    CorrectionRead,
    IssuePage,
    IssueRead,
    IssueState,
    KeyCreate,
    KeyCreated,
    KeyRead,
    Me,
    MergeCreate,
    MoveCreate,
    PostPage,
    PostRead,
    Problem,
    SortOrder,
    SourceRead,
)
from yuqing.contracts import AlertState, Channel, Sentiment, Severity, Topic


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Every route may answer 400 (``known_query``: a query parameter it does not read)."""
    described = {400: "bad or unknown query parameter, or bad cursor", 401: "missing or invalid credentials",
                 403: "role or scope does not allow this", 404: "not found (or outside the caller's scope)",
                 409: "conflicts with the current state", 415: "a body that is not application/json",
                 422: "invalid request", 429: "rate limit exceeded"}
    return {c: {"model": Problem, "description": described[c]} for c in sorted({400, 401, 422, 429, *codes})}


router = APIRouter(prefix="/v1", dependencies=[Depends(json_content), Depends(known_query)])


@router.get("/me", response_model=Me, responses=_errors(), tags=["auth"])
def me(caller: Caller) -> Me:
    """Who the credentials identify, with role and scope."""
    return Me(subject=caller.subject, role=caller.role, method=caller.method,
              regions=sorted(caller.regions) if caller.regions is not None else None,
              units=sorted(caller.units) if caller.units is not None else None)


@router.get("/posts/search", response_model=PostPage, responses={**_errors(400, 403), 308: {
    "description": "issue_id names an issue merged away: Location searches the issue it went into"}},
    tags=["posts"])
def search_posts(
    state: State, caller: Reader, region: RegionFilter,
    q: Annotated[str | None, Query(max_length=500, examples=['停电 -演习', '"幸福小区" 停电 | 跳闸'],
                                   description="words (ranked: a post needs at least one; more rank higher), "
                                               "`\"phrase\"`, `-exclude`, "
                                               "`a | b` or `a OR b`, `NOT x`, parentheses")] = None,
    topic: Topic | None = None, sentiment: Sentiment | None = None, source: SourceFilter = None,
    channel: Channel | None = None, unit: PlaceFilter = None,
    issue_id: IssueIdFilter = None,
    since: Since = None, until: Until = None,
    sort: Annotated[SortOrder | None, Query(description="default: relevance with q, else time")] = None,
    limit: OptionalPageSize = None, size: FormerPageSize = None,
    cursor: Cursor = None,
) -> PostPage:
    """Full-text search with filters, facets, escaped snippets and `search_after` pages."""
    if limit is not None and size is not None and limit != size:
        raise HTTPException(400, f"limit={limit} and size={size} disagree: give limit alone")
    page_size = limit or size or 20
    params = posts.SearchParams(q=q, topic=topic, sentiment=sentiment, source=source, channel=channel,
                                region=region, unit=unit, issue_id=issue_id, since=since,
                                until=until, sort=sort)
    page = posts.search_posts(state.client, prefix=state.prefix, params=params, principal=caller,
                              size=page_size, cursor=cursor)
    if issue_id is not None and cursor is None and page.total == 0:
        # the posts of an issue merged away carry the id of the issue it went into: a search for
        # them (a saved link, the issue's page) found none, where GET /v1/issues/{id} answers 308
        target = issue_corrections.merged_into(state.client, state.prefix, caller, issue_id)
        if target is not None:
            raise issues.IssueMerged(issue_id, target)
    return page


@router.get("/posts/{post_id}", response_model=PostRead, responses=_errors(404), tags=["posts"])
def get_post(state: State, caller: Reader, post_id: PostIdPath) -> PostRead:
    post = posts.get_post(state.client, prefix=state.prefix, post_id=post_id, principal=caller)
    if post is None:
        raise HTTPException(404, f"post {post_id} not found")
    return post


@router.get("/issues", response_model=IssuePage, responses=_errors(400, 403), tags=["issues"])
def list_issues(
    state: State, caller: Reader, region: RegionFilter, since: Since = None, until: Until = None,
    topic: Topic | None = None, unit: PlaceFilter = None,
    min_size: Annotated[int, Query(ge=1, le=10_000)] = 1,
    order_by: Annotated[str, Query(pattern="^(priority|size|last_seen)$")] = "priority",
    issue_state: Annotated[IssueState | None, Query(alias="state")] = None, limit: PageSize = 20,
    cursor: Cursor = None,
) -> IssuePage:
    """Issues active in the range (default: the last 7 days), by priority (unresolved first), size or
    latest; `state` keeps one state only; `next_cursor` continues the list."""
    return issues.list_issues(state.client, prefix=state.prefix, principal=caller, since=since,
                              until=until, topic=topic, region=region, unit=unit, min_size=min_size,
                              limit=limit, order_by=order_by, state=issue_state, cursor=cursor)


@contextmanager
def _merged_away(state: SearchState, caller: Principal, issue_id: str,
                 target_id: str | None = None) -> Iterator[None]:
    """An issue not found because it was merged away is IssueMerged, naming where it went: the
    issue of the path, or the target of a merge or move (a page read before a colleague merged
    that one away was answered a bare "not found")."""
    try:
        yield
    except issues.IssueNotFound as exc:
        missing = str(exc)
        if missing not in (issue_id, target_id):
            raise
        target = issue_corrections.merged_into(state.client, state.prefix, caller, missing)
        if target is None:
            raise
        raise issues.IssueMerged(missing, target) from None


@router.get("/issues/{issue_id}", response_model=IssueRead, responses={**_errors(404), 308: {
    "description": "the issue was merged: Location is the issue it was merged into"}}, tags=["issues"])
def get_issue(state: State, caller: Reader, issue_id: IssueIdPath, limit: PageSize = 50) -> IssueRead:
    with _merged_away(state, caller, issue_id):
        return issues.get_issue(state.client, prefix=state.prefix, principal=caller, issue_id=issue_id,
                                limit=limit)


@router.post("/issues/{issue_id}/actions", response_model=ActionRead, status_code=201,
             responses=_errors(403, 404, 409, 415), tags=["issues"])
def act_on_issue(state: State, caller: Actor, issue_id: IssueIdPath,
                 action: Annotated[ActionCreate, Body()]) -> ActionRead:
    """Acknowledge, assign, respond (with the public reply), resolve or reopen an issue."""
    # not while a merge, move or split of the issue runs: an action on an issue being merged away
    # would be recorded on it and lost with it
    with _merged_away(state, caller, issue_id), correcting(state.client, state.prefix, [issue_id],
                                                           holder=caller.subject):
        read = issues.record_action(state.client, prefix=state.prefix, principal=caller,
                                    issue_id=issue_id, action=action)
    RESPONSE_ACTIONS.labels(action=action.action.value).inc()
    return read


def _correction_read(done: issue_corrections.Correction) -> CorrectionRead:
    return CorrectionRead(kind=ActionKind(done.kind), issue_id=done.issue_id,
                          target_issue_id=done.target_issue_id, post_id=done.post_id,
                          at=datetime.fromisoformat(done.at_text))


@router.post("/issues/{issue_id}/merge", response_model=CorrectionRead, status_code=201,
             responses=_errors(403, 404, 409, 415), tags=["issues"])
def merge_issue(state: State, caller: Actor, issue_id: IssueIdPath,
                body: Annotated[MergeCreate, Body()]) -> CorrectionRead:
    """Merge this issue into `into`: its posts, and later posts like them, go there."""
    with _merged_away(state, caller, issue_id, body.into):
        return _correction_read(issue_corrections.correct(
            state.client, prefix=state.prefix, principal=caller, kind="merge", issue_id=issue_id,
            target_issue_id=body.into, note=body.note))


@router.post("/issues/{issue_id}/posts/{post_id}/move", response_model=CorrectionRead, status_code=201,
             responses=_errors(403, 404, 409, 415), tags=["issues"])
def move_post(state: State, caller: Actor, issue_id: IssueIdPath, post_id: PostIdPath,
              body: Annotated[MoveCreate, Body()]) -> CorrectionRead:
    """Move one post to another issue; later posts like it follow it."""
    with _merged_away(state, caller, issue_id, body.to):
        return _correction_read(issue_corrections.correct(
            state.client, prefix=state.prefix, principal=caller, kind="move", issue_id=issue_id,
            target_issue_id=body.to, post_id=post_id, note=body.note))


@router.post("/issues/{issue_id}/posts/{post_id}/split", response_model=CorrectionRead, status_code=201,
             responses=_errors(403, 404, 409, 415), tags=["issues"])
def split_post(state: State, caller: Actor, issue_id: IssueIdPath, post_id: PostIdPath,
               body: Annotated[CorrectionCreate | None, Body()] = None) -> CorrectionRead:
    """Split one post out into a new issue of its own."""
    with _merged_away(state, caller, issue_id):
        return _correction_read(issue_corrections.correct(
            state.client, prefix=state.prefix, principal=caller, kind="split", issue_id=issue_id,
            post_id=post_id, note=body.note if body else None))


@router.get("/issues/{issue_id}/actions", response_model=ActionPage, responses={**_errors(400, 404), 308: {
    "description": "the issue was merged and has no history of its own: Location is the history of the "
                   "issue it was merged into"}}, tags=["issues"])
def issue_actions(state: State, caller: Reader, issue_id: IssueIdPath, limit: PageSize = 50,
                  cursor: Cursor = None) -> ActionPage:
    # an issue merged away before anyone acted on it: its history is the merge, on the issue it went into
    with _merged_away(state, caller, issue_id):
        return issues.list_actions(state.client, prefix=state.prefix, principal=caller,
                                   issue_id=issue_id, limit=limit, cursor=cursor)


@router.get("/actions", response_model=ActionPage, responses=_errors(400), tags=["issues"])
def list_actions(state: State, caller: Reader, responder: Keyword = None,
                 action: ActionKind | None = None, since: Since = None, until: Until = None,
                 limit: PageSize = 50, cursor: Cursor = None) -> ActionPage:
    """The response history across issues, newest first."""
    return issues.list_actions(state.client, prefix=state.prefix, principal=caller, responder=responder,
                               action=action, since=since, until=until, limit=limit, cursor=cursor)


@router.get("/alerts", response_model=AlertPage, responses=_errors(400, 403), tags=["alerts"])
def list_alerts(
    state: State, caller: Reader, region: RegionFilter,
    alert_state: Annotated[AlertState | None, Query(alias="state")] = None,
    severity: Severity | None = None, topic: Topic | None = None,
    family: Annotated[str | None, Query(pattern="^(overall|topic|topic_region|source|cluster)$")] = None,
    since: Since = None, until: Until = None, limit: PageSize = 20, cursor: Cursor = None,
) -> AlertPage:
    """Surge alerts, newest surge first (by when the surge began, then id; an alert that changes
    keeps its place between pages). `since`/`until` apply to the last update."""
    return alerts.list_alerts(state.client, prefix=state.prefix, principal=caller, state=alert_state,
                              severity=severity, topic=topic, region=region, family=family,
                              since=since, until=until, limit=limit, cursor=cursor)


@router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=_errors(404), tags=["alerts"])
def get_alert(state: State, caller: Reader, alert_id: AlertIdPath) -> AlertDetail:
    """The alert with its explanation and its sample posts resolved."""
    alert = alerts.get_alert(state.client, prefix=state.prefix, principal=caller, alert_id=alert_id)
    if alert is None:
        raise HTTPException(404, f"alert {alert_id} not found")
    return alert


@router.get("/admin/keys", response_model=list[KeyRead], responses=_errors(403), tags=["admin"])
def list_keys(state: State, caller: Admin) -> list[KeyRead]:
    """Keys created through the API (keys from the key file are not listed); a scoped admin's:
    those within its scope."""
    return admin.list_keys(state.client, prefix=state.prefix, principal=caller)


@router.post("/admin/keys", response_model=KeyCreated, status_code=201,
             responses=_errors(403, 409, 415), tags=["admin"])
def create_key(state: State, caller: Admin, request: Annotated[KeyCreate, Body()]) -> KeyCreated:
    """Create an API key; the key is in this response only."""
    created = admin.create_key(state.client, prefix=state.prefix, request=request, creator=caller,
                               reserved=set(state.keys.file_keys))
    state.keys.forget(request.key_id)  # a probe before it existed left "not found" cached
    return created


@router.delete("/admin/keys/{key_id}", response_model=KeyRead, responses=_errors(403, 404),
               tags=["admin"])
def revoke_key(state: State, caller: Admin, key_id: KeyIdPath) -> KeyRead:
    revoked = admin.revoke_key(state.client, prefix=state.prefix, key_id=key_id, principal=caller)
    if revoked is None:
        raise HTTPException(404, f"key {key_id} not found")
    state.keys.forget(key_id)
    return revoked


@router.get("/admin/sources", response_model=list[SourceRead], responses=_errors(403), tags=["admin"])
def list_sources(state: State, caller: Admin) -> list[SourceRead]:
    """Sources seen in the indexed posts the caller may see, with counts."""
    return admin.list_sources(state.client, prefix=state.prefix, principal=caller)
