"""Keywords of unbounded length (``posts.enriched`` bounds their number, not their length) must
not make the alerts worker's state too large for Kafka: a window's evidence keeps up to 32
keywords, and 32 of 120,000 characters made one table entry of over 3 MB, beyond the broker's
message limit, which stops the worker at the changelog write of every restart."""

from __future__ import annotations

import json

from services.alerts.evidence import MAX_KEYWORD_CHARS, EvidenceLimits, Observation, WindowEvidence
from services.alerts.settings import AlertsSettings
from services.alerts.worker import route
from yuqing.consumer import Record
from yuqing.contracts.limits import BROKER_MAX_MESSAGE_BYTES
from yuqing.topics import SCHEMAS_DIR


def _observation(i: int) -> Observation:
    example = SCHEMAS_DIR / "posts.enriched" / "examples" / "outage-complaint.json"
    post = json.loads(example.read_text(encoding="utf-8"))
    long_words = [f"w{i}k{k}" + "x" * 120_000 for k in range(8)]  # 8 distinct words a post
    post.update({"post_id": f"{i:032x}", "keywords": long_words, "text": "", "redacted_text": ""})
    message = json.dumps(post).encode()
    assert len(message) < BROKER_MAX_MESSAGE_BYTES  # such a post fits on posts.enriched
    routed = route(Record("t.posts.enriched", 0, i, b"k", message), AlertsSettings())
    assert isinstance(routed, Observation)
    return routed


def test_a_windows_evidence_stays_small_whatever_the_keywords_length() -> None:
    evidence, limits = WindowEvidence(), EvidenceLimits()
    for i in range(8):
        evidence.add(_observation(i), limits)

    assert len(evidence.keywords) == limits.max_keywords
    assert all(len(word) <= MAX_KEYWORD_CHARS for word in evidence.keywords)
    assert len(json.dumps(evidence.to_dict(), ensure_ascii=False).encode()) < BROKER_MAX_MESSAGE_BYTES // 100


def test_short_keywords_are_kept_as_they_are() -> None:
    example = SCHEMAS_DIR / "posts.enriched" / "examples" / "outage-complaint.json"
    post = json.loads(example.read_text(encoding="utf-8"))

    routed = route(Record("t.posts.enriched", 0, 0, b"k", json.dumps(post).encode()), AlertsSettings())

    assert isinstance(routed, Observation) and list(routed.keywords) == post["keywords"][:8]
