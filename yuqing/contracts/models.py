"""Pydantic models of the topic contracts (version v1).

The JSON Schemas under ``schemas/`` are generated from these models
(``yuqing schemas export``) and a test checks that the committed files and
the models agree, so the two cannot drift.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from yuqing.contracts.limits import (
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
)

SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$", examples=["app-main"])]
PostId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="md5(source + ':' + external_id)")]
_RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
                      r"(:(?P<second>[0-9]{2})(\.[0-9]{1,9})?)?"
                      r"([Zz]|[+-](?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))$")


def _rfc3339_text(value: object) -> object:
    # pydantic's lax mode reads numbers (and numeric strings) as Unix times; the contract
    # says date-time, so only an RFC 3339 text (or a datetime built in code) is one.
    if isinstance(value, datetime):
        return _in_whole_minutes(value)
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-28T20:15:00+08:00")
    if problem := _clock_problem(match):
        raise ValueError(problem)
    return value


def _in_whole_minutes(moment: datetime) -> datetime:
    """``moment``, in UTC if its offset is not whole minutes (``+05:30:15``, which Python reads in
    a feed's date): RFC 3339 has no seconds in an offset, and the JSON of the post was written
    with the offset's minutes only, moving the moment by the seconds left out."""
    offset = moment.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        return moment.astimezone(UTC)
    return moment


def _clock_problem(match: re.Match[str]) -> str | None:
    """What is impossible in a time of day or offset that has the shape of RFC 3339 (pydantic
    would only speak of "unexpected extra characters")."""
    second = int(match["second"] or 0)
    if second == 60:
        return "a leap second (:60) cannot be represented: send :59"
    if int(match["hour"]) > 23 or int(match["minute"]) > 59 or second > 60:
        return "the time of day must lie between 00:00:00 and 23:59:59 (hour, minute, second)"
    if match["offset_hour"] and (int(match["offset_hour"]) > 23 or int(match["offset_minute"]) > 59):
        return "the UTC offset must lie between -23:59 and +23:59"
    return None


# The schema states the offset too: validators do not check "format" unless asked (JSON Schema
# 2020-12), and a message without one passed the schema only to be dead-lettered. ECMA-262 syntax.
_RFC3339_SCHEMA = {"pattern": re.sub(r"\?P<[a-z_]+>", "", _RFC3339.pattern)}
DateTime = Annotated[AwareDatetime, Field(json_schema_extra=_RFC3339_SCHEMA), BeforeValidator(_rfc3339_text)]
"""An aware date-time given as RFC 3339 text: ``0`` or ``"0.5"`` are not date-times."""

AttributeKey = Annotated[str, Field(min_length=1, max_length=MAX_ATTRIBUTE_KEY_CHARS)]
AttributeValue = Annotated[str, Field(max_length=MAX_ATTRIBUTE_VALUE_CHARS)] | int | float | bool | None
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)]
Place = Annotated[str | None, Field(max_length=64)]
"""A region (township) or unit name."""
Reference = Annotated[str | None, Field(max_length=256)]
"""A thread or reply reference in the source's own terms."""
Url = Annotated[str | None, Field(max_length=MAX_URL_CHARS)]
Probability = Annotated[float, Field(ge=0, le=1)]
"""A model's score for one class. The issue grouping takes its logarithm: a score below 0 (written
by a producer other than the NLP worker) failed the indexer's whole batch, for ever."""


class Channel(StrEnum):
    APP = "app"
    WECHAT = "wechat"
    FORUM = "forum"
    INTEGRATION = "integration"


class Topic(StrEnum):
    OUTAGE = "outage"
    BILLING = "billing"
    SERVICE = "service"
    ONLINE_SERVICE = "online_service"
    SAFETY = "safety"
    POLICY = "policy"
    RUMOR = "rumor"
    EMPLOYEE = "employee"
    ENERGY_USE = "energy_use"
    PRAISE_SUGGESTION = "praise_suggestion"
    OTHER = "other"


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def make_post_id(source: str, external_id: str) -> str:
    """Deterministic post id, so a post delivered twice keeps one identity."""
    return hashlib.md5(f"{source}:{external_id}".encode(), usedforsecurity=False).hexdigest()


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class RawPost(_Contract):
    """A post as a source delivered it (topic ``posts.raw``)."""

    schema_version: Literal["v1"] = "v1"
    post_id: PostId
    source: SourceId
    channel: Channel
    external_id: Annotated[str, Field(min_length=1, max_length=256)]
    author: Annotated[str | None, Field(max_length=128, description="pseudonym, never a real name")] = None
    msg_type: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] = "text"
    title: Annotated[str | None, Field(max_length=MAX_TITLE_CHARS)] = None
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = ""
    created_at: DateTime
    received_at: DateTime
    region: Place = None
    unit: Place = None
    thread_id: Reference = None
    reply_to: Reference = None
    url: Url = None
    attributes: Attributes = Field(default_factory=dict)


class EnrichedPost(RawPost):
    """A post with its classification (topic ``posts.enriched``)."""

    topic: Topic
    topic_scores: dict[Topic, Probability]
    sentiment: Sentiment
    sentiment_scores: dict[Sentiment, Probability]
    keywords: list[str] = Field(default_factory=list, max_length=20)
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$", description="64-bit SimHash")]
    redacted_text: str
    rule_hits: list[str] = Field(default_factory=list)
    model_version: str
    enriched_at: AwareDatetime
    low_confidence: bool = Field(
        False, description="the model's top topic probability is below its threshold")
    # ``region`` stays what the sender said; the region read from the text is a field of its
    # own, so a consumer that trusts ``region`` as declared is never handed a guess.
    inferred_region: Place = Field(
        None, description="the one known region (config/places.toml) the text names, set by the NLP "
        "worker when the post has no region; null when it has one, or its text names none or several")

    @property
    def region_inferred_upstream(self) -> bool:
        """Whether the producer inferred the region: a message written before ``inferred_region``
        existed lacks the field (a consumer then infers it itself)."""
        return "inferred_region" in self.model_fields_set

    @property
    def effective_region(self) -> str | None:
        """The region the post is about: the sender's, else the one inferred from its text."""
        return self.region or self.inferred_region


class AlertKey(_Contract):
    family: Literal["overall", "topic", "topic_region", "source", "cluster"]
    topic: Topic | None = None
    region: str | None = None
    source: str | None = None
    cluster: str | None = None

    def label(self) -> str:
        parts: list[str] = [self.family]
        parts += [f"{k}={v}" for k, v in (("topic", self.topic), ("region", self.region),
                  ("source", self.source), ("cluster", self.cluster)) if v is not None]
        return "|".join(parts)


class AlertExplanation(_Contract):
    top_keywords: list[str] = Field(default_factory=list)
    top_sources: list[str] = Field(default_factory=list)
    parents: list[str] = Field(default_factory=list, description="less specific keys that also surged")
    negative_share: float | None = None
    summary: str = ""


class Alert(_Contract):
    """A surge alert or its resolution (topic ``alerts``)."""

    schema_version: Literal["v1"] = "v1"
    alert_id: Annotated[str, Field(min_length=8, max_length=64)]
    key: AlertKey
    state: AlertState
    severity: Severity
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    window_start: AwareDatetime
    window_end: AwareDatetime
    observed: Annotated[float, Field(ge=0)]
    expected: Annotated[float, Field(ge=0)]
    sample_post_ids: list[PostId] = Field(default_factory=list, max_length=5)
    explanation: AlertExplanation = Field(default_factory=AlertExplanation)
    emitted_at: AwareDatetime


class DeadLetter(_Contract):
    """A message a consumer could not process (topic ``posts.dlq``)."""

    schema_version: Literal["v1"] = "v1"
    original_b64: str = Field(description="the message value exactly as received, base64")
    original_key_b64: str | None = None
    topic: str
    partition: int
    offset: int
    error_class: str
    error_message: Annotated[str, Field(max_length=4_000)]
    service: str
    failed_at: datetime


class ObservedPost(_Contract):
    """One enriched post as the alerts counting stage needs it, with where it was read."""

    kind: Literal["post"] = "post"
    event_time: float = Field(description="epoch seconds the post counts at (created_at, bounded)")
    post_id: PostId
    fingerprint: str
    source: str
    negative: bool
    sentiment: str
    keywords: list[str] = Field(max_length=8)
    keys: list[AlertKey] = Field(description="every alert key the post counts towards")
    issue_id: str | None = Field(
        None, description="the issue the post was grouped into, also its cluster key (absent in "
                          "messages from before issue keys, whose cluster key is a SimHash band)")
    source_partition: Annotated[int, Field(ge=0)] = Field(description="partition of posts.enriched")
    source_offset: Annotated[int, Field(ge=0)]
    source_partitions: Annotated[int, Field(ge=1)]
    merged_issues: list[tuple[str, str]] | None = Field(
        None, description="issues the grouping merged while grouping this post's batch, as [issue that "
                          "went away, issue it went into]: posts counted under the one count towards "
                          "the other's cluster key (on the batch's last post)")


class PartitionStatus(_Contract):
    """Which source partitions are idle, and the event time a silent stream has reached."""

    kind: Literal["status"] = "status"
    idle_partitions: list[int] = Field(default_factory=list)
    source_partitions: Annotated[int, Field(ge=1)]
    tick: float | None = Field(None, description="epoch seconds to close windows through, if any")


class AlertsObservation(_Contract):
    """The alerts worker's internal topic ``<app_id>-observations`` (stage 1 to stage 2)."""

    schema_version: Literal["v1"] = "v1"
    body: Annotated[ObservedPost | PartitionStatus, Field(discriminator="kind")]


CONTRACTS: dict[str, type[BaseModel]] = {
    "posts.raw": RawPost,
    "posts.enriched": EnrichedPost,
    "alerts": Alert,
    "posts.dlq": DeadLetter,
    "alerts.observations": AlertsObservation,
}
