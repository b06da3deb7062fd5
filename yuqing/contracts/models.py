"""Pydantic models of the topic contracts (version v1).

The JSON Schemas under ``schemas/`` are generated from these models
(``yuqing schemas export``) and a test checks that the committed files and
the models agree, so the two cannot drift.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$", examples=["app-main"])]
PostId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="md5(source + ':' + external_id)")]
AttributeValue = str | int | float | bool | None

MAX_TEXT_CHARS = 100_000


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
    title: Annotated[str | None, Field(max_length=1_000)] = None
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = ""
    created_at: AwareDatetime
    received_at: AwareDatetime
    region: Annotated[str | None, Field(max_length=64)] = None
    unit: Annotated[str | None, Field(max_length=64)] = None
    thread_id: Annotated[str | None, Field(max_length=256)] = None
    reply_to: Annotated[str | None, Field(max_length=256)] = None
    url: Annotated[str | None, Field(max_length=2_048)] = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class EnrichedPost(RawPost):
    """A post with its classification (topic ``posts.enriched``)."""

    topic: Topic
    topic_scores: dict[Topic, float]
    sentiment: Sentiment
    sentiment_scores: dict[Sentiment, float]
    keywords: list[str] = Field(default_factory=list, max_length=20)
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$", description="64-bit SimHash")]
    redacted_text: str
    rule_hits: list[str] = Field(default_factory=list)
    model_version: str
    enriched_at: AwareDatetime
    low_confidence: bool = Field(
        False, description="the model's top topic probability is below its threshold")


class AlertKey(_Contract):
    family: Literal["overall", "topic", "topic_region", "source", "cluster"]
    topic: Topic | None = None
    region: str | None = None
    source: str | None = None
    cluster: str | None = None

    def label(self) -> str:
        parts = [self.family]
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


CONTRACTS: dict[str, type[BaseModel]] = {
    "posts.raw": RawPost,
    "posts.enriched": EnrichedPost,
    "alerts": Alert,
    "posts.dlq": DeadLetter,
}
