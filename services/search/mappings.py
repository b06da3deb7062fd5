"""Index templates the project owns. Bump ``MAPPING_VERSION`` on incompatible changes.

Posts live in monthly indices ``<prefix>-posts-v1-YYYY.MM`` (by event time, so
a post always lands in the same index and re-indexing is idempotent), read
through the alias ``<prefix>-posts``. Retention = deleting old monthly indices.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAPPING_VERSION = 1

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}

POST_ANALYSIS: dict[str, Any] = {
    "analyzer": {
        # Chinese full text: CJK bigrams (phrase and partial matches without a dictionary).
        "zh_bigram": {"type": "custom", "tokenizer": "standard",
                      "filter": ["cjk_width", "lowercase", "cjk_bigram"]},
        # Words pre-segmented by jieba at index time and joined by spaces.
        "zh_words": {"type": "custom", "tokenizer": "whitespace",
                     "filter": ["cjk_width", "lowercase"]},
    }
}

POST_PROPERTIES: dict[str, Any] = {
    "post_id": _KEYWORD, "source": _KEYWORD, "channel": _KEYWORD, "external_id": _KEYWORD,
    "author": _KEYWORD, "msg_type": _KEYWORD, "region": _KEYWORD, "unit": _KEYWORD,
    "thread_id": _KEYWORD, "reply_to": _KEYWORD, "url": {"type": "keyword", "index": False},
    "title": {"type": "text", "analyzer": "zh_bigram"},
    "text": {"type": "text", "analyzer": "zh_bigram"},
    "text_words": {"type": "text", "analyzer": "zh_words"},
    "topic": _KEYWORD, "sentiment": _KEYWORD, "keywords": _KEYWORD,
    "topic_score": {"type": "float"}, "sentiment_score": {"type": "float"},
    "fingerprint": _KEYWORD, "issue_id": _KEYWORD, "issue_state": _KEYWORD,
    "rule_hits": _KEYWORD, "model_version": _KEYWORD,
    "created_at": _DATE, "received_at": _DATE, "enriched_at": _DATE, "indexed_at": _DATE,
}


def posts_alias(prefix: str) -> str:
    return f"{prefix}-posts"


def posts_index(prefix: str, created_at: datetime) -> str:
    return f"{prefix}-posts-v{MAPPING_VERSION}-{created_at:%Y.%m}"


def posts_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-posts-v{MAPPING_VERSION}-*"],
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0,
                         "analysis": POST_ANALYSIS},
            "mappings": {"dynamic": "strict", "properties": POST_PROPERTIES},
            "aliases": {posts_alias(prefix): {}},
        },
        "version": MAPPING_VERSION,
        "_meta": {"owner": "yuqing", "description": "enriched posts"},
    }
