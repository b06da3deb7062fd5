"""Enriched posts and alerts for search tests, built the way the NLP worker builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.nlp.enrich import keywords, redact, simhash
from services.search.grouping import PostSignal
from yuqing.consumer import Record
from yuqing.contracts import (
    Alert,
    AlertExplanation,
    AlertKey,
    AlertState,
    Channel,
    EnrichedPost,
    Sentiment,
    Severity,
    Topic,
    make_post_id,
)
from yuqing.contracts.codec import encode

BASE_TIME = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # in the past: search hides posts not yet received
GROUPING_TIME = datetime(2027, 8, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))  # local morning


def post(n: int, text: str, hours: float = 0.0, *, region: str | None = "棠梨乡",
         topic: str | None = "outage", start: datetime = GROUPING_TIME,
         inferred: str | None = None) -> PostSignal:
    """A post as the grouping reads it (``IssueGrouper.assign``): id ``p<n>``, ``hours`` after ``start``."""
    return PostSignal(post_id=f"p{n}", text=text, created_at=start + timedelta(hours=hours), region=region,
                      topic=topic, inferred_region=inferred)


def make_post(text: str, *, external_id: str, topic: Topic = Topic.OUTAGE,
              sentiment: Sentiment = Sentiment.NEGATIVE, region: str | None = "城关镇",
              unit: str | None = "城关供电所", source: str = "app-main",
              created_at: datetime | None = None, received_at: datetime | None = None,
              title: str | None = None, extra_keywords: list[str] | None = None) -> EnrichedPost:
    created = created_at or BASE_TIME
    return EnrichedPost(
        post_id=make_post_id(source, external_id), source=source, channel=Channel.APP,
        external_id=external_id, title=title, text=text, created_at=created,
        received_at=received_at or created + timedelta(seconds=1), region=region, unit=unit,
        topic=topic, topic_scores={topic: 0.9}, sentiment=sentiment, sentiment_scores={sentiment: 0.8},
        keywords=(extra_keywords or []) + keywords(text), fingerprint=simhash(text),
        redacted_text=redact(text), model_version="test/1", enriched_at=created + timedelta(seconds=2),
    )


def make_alert(alert_id: str, *, state: AlertState = AlertState.FIRING, region: str | None = "城关镇",
               sample_post_ids: list[str] | None = None, emitted_at: datetime | None = None) -> Alert:
    at = emitted_at or BASE_TIME
    return Alert(
        alert_id=alert_id, key=AlertKey(family="topic_region" if region else "topic", topic=Topic.OUTAGE,
                                        region=region),
        state=state, severity=Severity.CRITICAL, score=0.9, window_start=at - timedelta(minutes=10),
        window_end=at, observed=40, expected=2, sample_post_ids=sample_post_ids or [],
        explanation=AlertExplanation(top_keywords=["停电"], summary=f"{region} outage surge"),
        emitted_at=at,
    )


def as_messages(items: list[EnrichedPost | Alert], topic: str = "posts.enriched") -> list[Record]:
    return [Record(topic, 0, i, None, encode(item)) for i, item in enumerate(items)]
