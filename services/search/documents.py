"""Enriched post -> Elasticsearch document (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from yuqing.contracts import EnrichedPost


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba


def segment(text: str) -> str:
    """jieba words joined by spaces, for the ``text_words`` field and for queries."""
    return " ".join(w for w in _jieba().cut_for_search(text) if w.strip())


def issue_id(post: EnrichedPost) -> str:
    """Near-duplicates share a fingerprint prefix; issues are (topic, fingerprint band)."""
    return f"{post.topic.value}-{post.fingerprint[:4]}"


def to_document(post: EnrichedPost, *, now: datetime | None = None) -> dict[str, Any]:
    text = post.redacted_text
    return {
        "post_id": post.post_id, "source": post.source, "channel": post.channel.value,
        "external_id": post.external_id, "author": post.author, "msg_type": post.msg_type,
        "region": post.region, "unit": post.unit, "thread_id": post.thread_id,
        "reply_to": post.reply_to, "url": post.url, "title": post.title,
        "text": text, "text_words": segment(f"{post.title or ''} {text}"),
        "topic": post.topic.value, "sentiment": post.sentiment.value,
        "topic_score": max(post.topic_scores.values(), default=0.0),
        "sentiment_score": max(post.sentiment_scores.values(), default=0.0),
        "keywords": post.keywords, "fingerprint": post.fingerprint, "issue_id": issue_id(post),
        "rule_hits": post.rule_hits, "model_version": post.model_version,
        "created_at": post.created_at.isoformat(), "received_at": post.received_at.isoformat(),
        "enriched_at": post.enriched_at.isoformat(),
        "indexed_at": (now or datetime.now(UTC)).isoformat(),
    }
