"""Request and response models of the responders' API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.search.auth import Role
from yuqing.contracts import AlertExplanation
from yuqing.text import place_name

_POST_EXAMPLE: dict[str, Any] = {
    "post_id": "68c3c8310ffbb3e61c3e4cf53607b7f1", "score": 7.1, "source": "app-main",
    "channel": "app", "topic": "outage", "sentiment": "negative", "region": "河口镇",
    "unit": "河口供电所", "title": None,
    "text": "河口镇新街村从下午三点停电到现在，冰箱里的东西都要坏了，啥时候能来电？",
    "created_at": "2026-11-28T11:42:10Z", "keywords": ["停电", "冰箱"],
    "issue_id": "outage-9f2c41d07a3be815", "issue_state": "acknowledged",
    "highlight": "河口镇新街村从下午三点<em>停电</em>到现在", "title_highlight": None,
}


class IssueState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    RESPONDED = "responded"
    RESOLVED = "resolved"


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    RESPOND = "respond"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    # corrections of the grouping: their own endpoints, never POST .../actions
    MERGE = "merge"
    MOVE = "move"
    SPLIT = "split"


CORRECTIONS = frozenset({ActionKind.MERGE, ActionKind.MOVE, ActionKind.SPLIT})


class SortOrder(StrEnum):
    RELEVANCE = "relevance"
    TIME = "time"


class Problem(BaseModel):
    detail: str | list[dict[str, object]]
    request_id: str | None = None


class PostRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_POST_EXAMPLE]})

    post_id: str
    score: float | None = None
    source: str
    channel: str
    topic: str
    sentiment: str
    region: str | None = None
    region_source: str | None = Field(
        None, description="sender: the post's own region; text: inferred from its words", examples=["text"])
    unit: str | None = None
    title: str | None = None
    text: str
    url: str | None = None
    created_at: datetime
    keywords: list[str] = Field(default_factory=list)
    issue_id: str | None = None
    issue_state: IssueState | None = Field(None, description="looked up at query time")
    highlight: str | None = Field(None, description="HTML-escaped snippet; matches marked with <em>")
    title_highlight: str | None = Field(
        None, description="the title, HTML-escaped, with the matches marked with <em>; null when the "
                          "query matched nothing in it", examples=["<em>停电</em>投诉：幸福小区"])


class PostPage(BaseModel):
    total: int = Field(description="matching posts indexed up to `as_of`, the same on every page")
    as_of: datetime | None = Field(
        None, description="when the newest post the first page counted was indexed; later pages "
                          "count no post indexed after it (search again for newer ones); null "
                          "when nothing matched")
    hits: list[PostRead]
    facets: dict[str, dict[str, int]] = Field(
        default_factory=dict, examples=[{"topic": {"outage": 41, "billing": 3}}])
    next_cursor: str | None = Field(None, description="opaque; pass as `cursor` for the next page")


class IssueSummary(BaseModel):
    issue_id: str = Field(examples=["outage-9f2c41d07a3be815"])
    topic: str
    title: str = Field("", description="top keywords and the representative post, shortened",
                       examples=["停电、来电：河口镇停电了，什么时候来电？"])
    keywords: list[str] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list, description="places named in the latest posts",
                              examples=[["新街村", "滨河小区"]])
    size: int = Field(description="member posts in the requested range and scope")
    last_hour: int = Field(0, description="members created in the last hour of the range, or before now "
                                          "when the range ends later (growth)")
    before: int = Field(0, description="members created before that")
    negative_share: float = 0.0
    priority: float = Field(0.0, description="log2(1+size) + log2(1+last_hour) + negative_share")
    first_seen: datetime
    last_seen: datetime
    sentiment_mix: dict[str, int] = Field(examples=[{"negative": 30, "neutral": 2}])
    regions: dict[str, int] = Field(default_factory=dict, description="member posts per region (up to 200)")
    state: IssueState = IssueState.OPEN
    after_resolution: int = Field(0, description="resolved issues: members created after the resolution "
                                                 "(the matter came back; ranked among the unresolved)")
    assignee: str | None = None
    reply_text: str | None = Field(None, description="the latest public reply")
    representative: PostRead | None = Field(None, description="the member closest to all others")


class IssuePage(BaseModel):
    since: datetime
    until: datetime
    issues: list[IssueSummary]
    total_issues: int = Field(description="distinct issues in range (approximate above 3000); with "
                                          "`state` or `min_size`, those of the ranked issues it keeps")
    as_of: datetime | None = Field(
        None, description="when the newest post the first page counted was indexed; later pages "
                          "count the issues' posts indexed up to it (list again for newer ones); "
                          "null when no post is in range")
    next_cursor: str | None = Field(None, description="opaque; pass as `cursor` for the next page")


class ActionCreate(BaseModel):
    # The rules of _required_fields, in the schema too, so that clients (and generated tests)
    # know that assign needs an assignee and respond a reply_text.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "respond", "reply_text": "抢修人员已到达现场，预计22点前恢复供电。"},
        {"action": "assign", "assignee": "河口供电所-王工"},
    ], "allOf": [
        {"if": {"properties": {"action": {"const": "assign"}}, "required": ["action"]},
         "then": {"required": ["assignee"], "properties": {"assignee": {"type": "string"}}}},
        {"if": {"properties": {"action": {"const": "respond"}}, "required": ["action"]},
         "then": {"required": ["reply_text"], "properties": {"reply_text": {"type": "string"}}}},
        {"if": {"properties": {"action": {"not": {"const": "assign"}}}, "required": ["action"]},
         "then": {"properties": {"assignee": {"type": "null"}}}},
        {"if": {"properties": {"action": {"not": {"const": "respond"}}}, "required": ["action"]},
         "then": {"properties": {"reply_text": {"type": "null"}}}},
    ]})

    action: ActionKind
    # a name and a reply say something: spaces alone are refused (``\S``: some character not a space)
    assignee: Annotated[str | None, Field(min_length=1, max_length=128, pattern=r"\S")] = None
    reply_text: Annotated[str | None, Field(min_length=1, max_length=4000, pattern=r"\S",
                                            description="the public reply")] = None
    note: Annotated[str | None, Field(max_length=4000)] = None

    @model_validator(mode="after")
    def _required_fields(self) -> ActionCreate:
        if self.action in CORRECTIONS:
            raise ValueError(f"{self.action.value} has its own endpoint under /v1/issues/{{id}}")
        if self.action is ActionKind.ASSIGN and not self.assignee:
            raise ValueError("assign needs an assignee")
        if self.action is ActionKind.RESPOND and not self.reply_text:
            raise ValueError("respond needs reply_text")
        # each is recorded on the issue: an acknowledge with an assignee reassigned it with no
        # assign in its history, a resolve with a reply changed the public reply
        if self.action is not ActionKind.ASSIGN and self.assignee is not None:
            raise ValueError(f"{self.action.value} takes no assignee: assign does")
        if self.action is not ActionKind.RESPOND and self.reply_text is not None:
            raise ValueError(f"{self.action.value} takes no reply_text: respond does")
        return self


class ActionRead(BaseModel):
    action_id: str
    issue_id: str
    action: ActionKind
    responder: str
    at: datetime
    assignee: str | None = None
    reply_text: str | None = None
    note: str | None = None
    from_state: IssueState
    to_state: IssueState
    correction_id: str | None = Field(default=None, description=(
        "a merge, move or split: its correction, the same in the history of both issues"))


class CorrectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str | None, Field(max_length=4000)] = None


class MergeCreate(CorrectionCreate):
    into: Annotated[str, Field(pattern=r"^[a-z_]{2,32}-[0-9a-f]{16}$", description="the issue that stays")]


class MoveCreate(CorrectionCreate):
    to: Annotated[str, Field(pattern=r"^[a-z_]{2,32}-[0-9a-f]{16}$", description="the issue the post joins")]


class CorrectionRead(BaseModel):
    kind: ActionKind
    issue_id: str
    target_issue_id: str
    post_id: str | None = None
    at: datetime


class ActionPage(BaseModel):
    actions: list[ActionRead]
    next_cursor: str | None = None


class IssueRead(IssueSummary):
    members: list[PostRead] = Field(description="newest first, up to `limit`")
    actions: list[ActionRead] = Field(default_factory=list, description="newest first, up to 50")


class DrivingIssue(BaseModel):
    """An issue holding a large share of an alert's posts (its key, its window, the caller's scope)."""

    issue_id: str = Field(examples=["outage-9f2c41d07a3be815"])
    title: str = Field("", examples=["停电、来电：河口镇停电了，什么时候来电？"])
    size: int = Field(description="the issue's posts in the caller's scope (as GET /v1/issues/{id} counts)")
    posts: int = Field(description="of them, in the alert's key and window")
    share: float = Field(description="of the alert's posts in its window that the caller sees")
    state: IssueState = IssueState.OPEN
    after_resolution: int = Field(0, description="as the issue's record: members created after its "
                                                 "resolution")


class AlertRead(BaseModel):
    alert_id: str = Field(examples=["a3f9c2e1b7d40c11"])
    key_label: str = Field(examples=["topic_region|topic=outage|region=河口镇"])
    family: str
    topic: str | None = None
    region: str | None = None
    source: str | None = None
    cluster: str | None = None
    state: str = Field(examples=["firing"])
    severity: str
    score: float | None = None
    observed: float | None = None
    expected: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    updated_at: datetime
    explanation: AlertExplanation | None = None
    sample_post_ids: list[str] = Field(default_factory=list)
    driving_issues: list[DrivingIssue] = Field(
        default_factory=list, description="the issues holding most of the alert's posts (key and window)")


class AlertDetail(AlertRead):
    sample_posts: list[PostRead] = Field(description="the samples the caller may see, resolved")


class AlertPage(BaseModel):
    alerts: list[AlertRead]
    next_cursor: str | None = None


def scope_name(value: str) -> str:
    """A region or unit of a scope as the edge publishes it (``yuqing.text.place_name``): a key
    scoped to ' 河口镇' or '河口镇\u200b' saw no post of 河口镇, without a word."""
    clean = place_name(value)
    if not isinstance(clean, str):
        raise ValueError("must not be blank")
    return clean


# At least one: an empty list scoped a key to nothing (201, and a key that saw nothing); leave the
# field out for every region or unit.
ScopeList = Annotated[list[Annotated[str, Field(min_length=1, max_length=64), AfterValidator(scope_name)]],
                      Field(min_length=1, max_length=100, description="leave out for every one")]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"key_id": "hekou-desk", "role": "responder", "regions": ["河口镇"],
         "description": "河口供电所值班台"}]})

    key_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,39}$")]
    role: Role
    regions: ScopeList | None = None
    units: ScopeList | None = None
    description: Annotated[str, Field(max_length=500)] = ""


class KeyRead(BaseModel):
    key_id: str
    role: Role
    regions: list[str] | None = None
    units: list[str] | None = None
    description: str = ""
    created_at: datetime | None = None
    created_by: str | None = None
    revoked: bool = False


class KeyCreated(KeyRead):
    key: str = Field(description="shown once; only its sha256 is stored")


class SourceRead(BaseModel):
    source: str
    channels: list[str]
    posts: int
    last_seen: datetime | None = None


class Me(BaseModel):
    subject: str
    role: Role
    regions: list[str] | None = None
    units: list[str] | None = None
    method: str
