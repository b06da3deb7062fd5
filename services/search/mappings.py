"""Index templates and index names the project owns.

Bump ``MAPPING_VERSION`` on an incompatible mapping change; new indices then get
new names and the old ones are rebuilt from Kafka (see docs/search.md).

Posts live in monthly indices ``<prefix>-posts-v1-YYYY.MM`` chosen by the
post's event time, so a post always lands in the same index and re-indexing
overwrites instead of duplicating; they are read through the alias
``<prefix>-posts``. Retention deletes whole monthly indices.

The smaller indices (alerts, issue states, response actions, API keys) are
single indices ``<prefix>-<name>-v1`` behind the alias ``<prefix>-<name>``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from yuqing.contracts.limits import INDEX_KEPT_MONTHS, RETENTION_GRACE, first_kept_instant
from yuqing.hanzi import TRADITIONAL_TO_SIMPLIFIED

MAPPING_VERSION = 1

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}
_FLOAT = {"type": "float"}

POST_ANALYSIS: dict[str, Any] = {
    # Traditional characters read as their simplified forms (yuqing.hanzi's table), in posts and
    # queries alike: a responder typing 停电 finds a post that says 停電, and one typing 停電 the
    # posts that say 停电. One character for one, so highlights keep their offsets.
    "char_filter": {"zh_simplified": {"type": "mapping", "mappings": [
        f"{traditional}=>{simple}" for traditional, simple in TRADITIONAL_TO_SIMPLIFIED.items()]}},
    "analyzer": {
        # Chinese full text: CJK bigrams (phrase and partial matches without a dictionary).
        "zh_bigram": {"type": "custom", "tokenizer": "standard", "char_filter": ["zh_simplified"],
                      "filter": ["cjk_width", "lowercase", "cjk_bigram"]},
        # Words pre-segmented by jieba at index time and joined by spaces.
        "zh_words": {"type": "custom", "tokenizer": "whitespace", "char_filter": ["zh_simplified"],
                     "filter": ["cjk_width", "lowercase"]},
    },
}

# Relevance that depends only on the post and the query: BM25's term-frequency
# saturation (k1 = 1.2) and length normalisation (b = 0.4) against a constant
# average length, without IDF. BM25 proper reads index-wide statistics that move
# whenever a post arrives, which reorders equal-looking posts between two pages
# and breaks ``search_after``; with this, a relevance-sorted page boundary stays
# put while posts keep arriving. Its cost in ranking quality is measured by
# bench/bench_search.py (docs/search.md). BM25's usual b = 0.75 ranked a post of
# a few lines that named both words of a query below every one-liner naming one;
# at 0.4 the judged P@10 and nDCG@10 rose from 0.513 and 0.550 to 0.533 and 0.564.
# An index keeps the similarity it was made with until ``yuqing search templates
# --update-similarity`` (es.update_similarity) gives it this one.
STABLE_SIMILARITY: dict[str, Any] = {
    "yq_stable": {"type": "scripted", "script": {"source": (
        "double tf = doc.freq; double norm = 0.6 + 0.4 * doc.length / 40.0;"
        " return query.boost * tf * 2.2 / (tf + 1.2 * norm);")}},
}
_TEXT = {"type": "text", "analyzer": "zh_bigram", "similarity": "yq_stable",
         # single characters: lets a query word match a post that says it in other words
         "fields": {"chars": {"type": "text", "analyzer": "standard", "similarity": "yq_stable"}}}

POST_PROPERTIES: dict[str, Any] = {
    "post_id": _KEYWORD, "source": _KEYWORD, "channel": _KEYWORD, "external_id": _KEYWORD,
    "author": _KEYWORD, "msg_type": _KEYWORD, "region": _KEYWORD, "unit": _KEYWORD,
    # where ``region`` comes from: "sender" or "text" (inferred by the NLP worker)
    "region_source": _KEYWORD,
    "thread_id": _KEYWORD, "reply_to": _KEYWORD, "url": {"type": "keyword", "index": False},
    "title": _TEXT, "text": _TEXT,
    "text_words": {"type": "text", "analyzer": "zh_words", "similarity": "yq_stable"},
    "topic": _KEYWORD, "sentiment": _KEYWORD, "keywords": _KEYWORD,
    "topic_score": _FLOAT, "sentiment_score": _FLOAT,
    # the classifier's second choice and how far below the topic's its score is (issue grouping)
    "topic_second": _KEYWORD, "topic_second_gap": _FLOAT,
    # Near-duplicate fingerprint (64-bit SimHash, hex) and its four 16-bit LSH bands.
    "fingerprint": _KEYWORD, "fingerprint_bands": _KEYWORD,
    # aggregated by GET /v1/issues after every refresh: build its ordinals at refresh time
    "issue_id": {"type": "keyword", "eager_global_ordinals": True}, "issue_distance": {"type": "byte"},
    "rule_hits": _KEYWORD, "model_version": _KEYWORD,
    "created_at": _DATE, "received_at": _DATE, "enriched_at": _DATE, "indexed_at": _DATE,
}

ALERT_PROPERTIES: dict[str, Any] = {
    "alert_id": _KEYWORD, "family": _KEYWORD, "key_label": _KEYWORD, "topic": _KEYWORD,
    "region": _KEYWORD, "source": _KEYWORD, "cluster": _KEYWORD, "state": _KEYWORD,
    "severity": _KEYWORD, "score": _FLOAT, "observed": _FLOAT, "expected": _FLOAT,
    "window_start": _DATE, "window_end": _DATE, "fired_at": _DATE, "resolved_at": _DATE,
    "updated_at": _DATE, "sample_post_ids": _KEYWORD,
    "explanation": {"type": "object", "enabled": False},
}

ISSUE_STATE_PROPERTIES: dict[str, Any] = {
    "issue_id": _KEYWORD, "state": _KEYWORD, "assignee": _KEYWORD, "responder": _KEYWORD,
    "reply_text": {"type": "text", "analyzer": "zh_bigram"}, "updated_at": _DATE,
}

ACTION_PROPERTIES: dict[str, Any] = {
    "action_id": _KEYWORD, "issue_id": _KEYWORD, "action": _KEYWORD, "responder": _KEYWORD,
    "assignee": _KEYWORD, "reply_text": {"type": "text", "analyzer": "zh_bigram"},
    "note": {"type": "text", "analyzer": "zh_bigram"}, "from_state": _KEYWORD,
    "to_state": _KEYWORD, "at": _DATE, "regions": _KEYWORD, "units": _KEYWORD,
    "correction_id": _KEYWORD,
}

API_KEY_PROPERTIES: dict[str, Any] = {
    "key_id": _KEYWORD, "sha256": {"type": "keyword", "index": False}, "role": _KEYWORD,
    "regions": _KEYWORD, "units": _KEYWORD, "description": {"type": "text"},
    "created_at": _DATE, "created_by": _KEYWORD, "revoked": {"type": "boolean"},
}

SMALL_INDICES: dict[str, dict[str, Any]] = {
    "alerts": ALERT_PROPERTIES,
    "issue-states": ISSUE_STATE_PROPERTIES,
    "actions": ACTION_PROPERTIES,
    "api-keys": API_KEY_PROPERTIES,
}


def posts_alias(prefix: str) -> str:
    return f"{prefix}-posts"


# Elasticsearch (java.time) reads UTC offsets of at most 18 hours; RFC 3339, and so the
# contract and the query parameters, allow up to 23:59.
ES_MAX_OFFSET = timedelta(hours=18)


def es_time(moment: datetime) -> str:
    """``moment`` as Elasticsearch reads it: its own offset kept when Elasticsearch can read
    it, else the same instant in UTC."""
    offset = moment.utcoffset()
    if offset is not None and abs(offset) > ES_MAX_OFFSET:
        moment = moment.astimezone(UTC)
    return moment.isoformat()


def posts_index(prefix: str, created_at: datetime) -> str:
    """The monthly index of a post: the month of its ``created_at`` in UTC, so that one instant
    written with another offset (a resend) lands in the same index, as retention counts it."""
    moment = created_at.astimezone(UTC) if created_at.tzinfo else created_at
    return f"{prefix}-posts-v{MAPPING_VERSION}-{moment:%Y.%m}"


DEFAULT_RETENTION_MONTHS = INDEX_KEPT_MONTHS
MAX_RETENTION_MONTHS = 1_200
"""A century: more reaches back before the year 1, which no date holds."""


def check_retention_months(months: int, name: str) -> int:
    """``months`` if the index keeps every month the ingest edge admits; else a ``ValueError``
    naming ``name`` (the setting or option) and the edge's window.

    The edge answers 202 to a post of any of the :data:`INDEX_KEPT_MONTHS` latest months (a
    back-fill's 396 days, a widened ``YUQING_INGEST_EVENT_MAX_AGE_S``); kept fewer, the index
    dead-lettered the older ones, or retention deleted them once indexed.
    """
    if months > MAX_RETENTION_MONTHS:
        # the first month kept was computed for every post: "year -473 is out of range" failed the
        # indexer's every batch, and it stopped uncommitted on the first after every restart
        raise ValueError(f"{name}={months} reaches back before the year 1; keep at most "
                         f"{MAX_RETENTION_MONTHS} ({MAX_RETENTION_MONTHS // 12} years)")
    if months < INDEX_KEPT_MONTHS:
        raise ValueError(
            f"{name}={months} is below the {INDEX_KEPT_MONTHS} months the ingest edge admits "
            f"(yuqing publish back-fills and YUQING_INGEST_EVENT_MAX_AGE_S reach back that far): "
            f"posts it accepted would be dropped; keep {INDEX_KEPT_MONTHS} or more")
    return months


class OutsideRetentionError(ValueError):
    """A post whose month the index does not keep: writing it would create an index that
    retention deletes at once (or, far in the future, never), one shard each."""


def retained_posts_index(prefix: str, created_at: datetime, *, keep_months: int,
                         now: datetime | None = None, grace: timedelta = RETENTION_GRACE) -> str:
    """The post's monthly index, if that month is one of the ``keep_months`` latest ``grace``
    ago (so the oldest month the edge admitted a post of is written for ``grace`` after the
    month's turn), or one up to the next (a post at a month's turn); else
    :class:`OutsideRetentionError`. Retention (``es.expired_indices``) keeps the same months."""
    now = now or datetime.now(UTC)
    month = _month_number(created_at.astimezone(UTC))
    first = first_kept_month(now, keep_months, grace)
    last = _month_number(now + timedelta(days=1))
    if not first <= month <= last:
        raise OutsideRetentionError(
            f"created_at {created_at.isoformat()} is outside the {keep_months} months the index keeps "
            f"(counted {grace.days} days back from now, for posts admitted before a month's turn)")
    return posts_index(prefix, created_at)


def first_kept_month(now: datetime, keep_months: int, grace: timedelta = RETENTION_GRACE) -> int:
    """The oldest month (``year * 12 + month - 1``) the index keeps and writes at ``now``."""
    return _month_number(first_kept_instant(now - grace, keep_months))


def _month_number(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


def posts_index_pattern(prefix: str) -> str:
    return f"{prefix}-posts-v{MAPPING_VERSION}-*"


def small_alias(prefix: str, name: str) -> str:
    """Alias of one of ``SMALL_INDICES`` (``alerts``, ``issue-states``, ``actions``, ``api-keys``)."""
    return f"{prefix}-{name}"


def small_index(prefix: str, name: str) -> str:
    return f"{prefix}-{name}-v{MAPPING_VERSION}"


def _template(pattern: str, alias: str, properties: dict[str, Any], description: str,
              refresh_interval: str) -> dict[str, Any]:
    return {
        "index_patterns": [pattern],
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0,
                         "refresh_interval": refresh_interval, "analysis": POST_ANALYSIS,
                         "similarity": STABLE_SIMILARITY},
            "mappings": {"dynamic": "strict", "properties": properties},
            "aliases": {alias: {}},
        },
        "version": MAPPING_VERSION,
        "_meta": {"owner": "yuqing", "description": description},
    }


def posts_template(prefix: str, refresh_interval: str = "1s") -> dict[str, Any]:
    return _template(posts_index_pattern(prefix), posts_alias(prefix), POST_PROPERTIES,
                     "enriched posts", refresh_interval)


def small_template(prefix: str, name: str) -> dict[str, Any]:
    return _template(small_index(prefix, name), small_alias(prefix, name), SMALL_INDICES[name],
                     name, "1s")


def templates(prefix: str, refresh_interval: str = "1s") -> dict[str, dict[str, Any]]:
    """Every template the project installs, by template name."""
    out = {f"{prefix}-posts": posts_template(prefix, refresh_interval)}
    out.update({f"{prefix}-{name}": small_template(prefix, name) for name in SMALL_INDICES})
    return out
