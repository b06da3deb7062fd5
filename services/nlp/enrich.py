"""Pure text logic of the NLP worker: normalise, redact, keywords, fingerprint, rules.

No Kafka, Faust or model imports here; the worker calls these per batch.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from yuqing.contracts import EnrichedPost, RawPost, Sentiment, Topic
from yuqing.segmentation import jieba_ready

MODEL_TEXT_CHARS = 2_000  # the model reads at most a few hundred tokens anyway

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to half-width), no control characters, one space."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text).strip()


def model_input(post: RawPost) -> str:
    text = normalize(f"{post.title} {post.text}" if post.title else post.text)
    return text[:MODEL_TEXT_CHARS]


# Order matters: the 18-digit ID must be masked before bank cards and phones match inside it.
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_BANK_CARD = re.compile(r"(?<!\d)\d{12,15}(\d{4})(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?\d{3,4}(\d{4})(?!\d)")


def redact(text: str) -> str:
    """Mask mainland mobile/landline numbers, ID numbers, bank cards and e-mail addresses."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _BANK_CARD.sub(lambda m: f"****{m.group(1)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(2)}", text)


@cache
def _jieba() -> Any:
    jieba_ready()
    import jieba.analyse

    return jieba.analyse


_KEYWORD_OK = re.compile(r"[\u4e00-\u9fffA-Za-z]")


def keywords(text: str, limit: int = 8) -> list[str]:
    """Top TF-IDF words (jieba), at least two characters, no numbers or punctuation."""
    if not text:
        return []
    tags = _jieba().extract_tags(text[:MODEL_TEXT_CHARS], topK=limit * 2)
    return [t for t in tags if len(t) >= 2 and _KEYWORD_OK.search(t)][:limit]


def _shingles(text: str, size: int = 3) -> list[str]:
    compact = re.sub(r"[\W_]+", "", text.lower())
    if len(compact) <= size:
        return [compact] if compact else []
    return [compact[i:i + size] for i in range(len(compact) - size + 1)]


def simhash(text: str) -> str:
    """64-bit SimHash over character 3-grams; near-duplicates differ in few bits."""
    weights = [0] * 64
    for gram in _shingles(normalize(text)):
        h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += 1 if h >> bit & 1 else -1
    value = sum(1 << bit for bit in range(64) if weights[bit] > 0)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class TopicRule:
    """A boolean keyword rule: any ``include`` word, none of ``exclude``."""

    name: str
    topic: Topic
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    mode: str = "boost"  # "boost" adds ``boost`` to the score, "override" forces the topic
    boost: float = 0.3

    def matches(self, text: str) -> bool:
        return any(w in text for w in self.include) and not any(w in text for w in self.exclude)


def load_rules(path: Path) -> list[TopicRule]:
    """Read ``[[rule]]`` tables from a TOML file operations staff can edit."""
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = []
    for item in data.get("rule", []):
        mode = item.get("mode", "boost")
        if mode not in ("boost", "override"):
            raise ValueError(f"rule {item.get('name')!r}: mode must be boost or override")
        rules.append(TopicRule(
            name=item["name"], topic=Topic(item["topic"]), include=tuple(item["include"]),
            exclude=tuple(item.get("exclude", ())), mode=mode, boost=float(item.get("boost", 0.3)),
        ))
    return rules


def apply_rules(
    text: str, scores: Mapping[str, float], rules: Sequence[TopicRule],
) -> tuple[str, dict[str, float], list[str]]:
    """Combine model topic scores with keyword rules; returns topic, scores, rule hits."""
    adjusted = {t.value: float(scores.get(t.value, 0.0)) for t in Topic}
    hits = [r for r in rules if r.matches(text)]
    for rule in hits:
        if rule.mode == "boost":
            adjusted[rule.topic.value] += rule.boost
    total = sum(adjusted.values()) or 1.0
    adjusted = {k: round(v / total, 4) for k, v in adjusted.items()}
    overrides = [r for r in hits if r.mode == "override"]
    topic = overrides[0].topic.value if overrides else max(adjusted, key=adjusted.__getitem__)
    return topic, adjusted, [r.name for r in hits]


def enrich(
    post: RawPost, *, topic: str, topic_scores: Mapping[str, float], sentiment: str,
    sentiment_scores: Mapping[str, float], rule_hits: Sequence[str], model_version: str,
    now: datetime | None = None, low_confidence: bool = False,
) -> EnrichedPost:
    text = model_input(post)
    return EnrichedPost(
        **post.model_dump(),
        topic=Topic(topic),
        topic_scores={Topic(k): round(float(v), 4) for k, v in topic_scores.items()},
        sentiment=Sentiment(sentiment),
        sentiment_scores={Sentiment(k): round(float(v), 4) for k, v in sentiment_scores.items()},
        keywords=keywords(text),
        fingerprint=simhash(text),
        redacted_text=redact(post.text),
        rule_hits=list(rule_hits),
        model_version=model_version,
        enriched_at=now or datetime.now(UTC),
        low_confidence=low_confidence,
    )
