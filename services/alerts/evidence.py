"""What one key saw in one window, kept small enough to store per key (pure).

Every post counted into a key's window also leaves evidence there: the
negative-sentiment count, keyword, source and issue counters, and a sample of posts
(id and SimHash fingerprint) to pick representative posts from when the
window raises an alert. All of it is bounded, whatever the volume:

* counters keep at most ``max_terms`` entries (the *Space-Saving* heavy-hitters
  sketch: a new term replaces the smallest entry and inherits its count, so
  every frequent term is kept and counts are over-estimated by at most the
  smallest count);
* the sample keeps the ``max_samples`` posts with the smallest hash of their
  id (a bottom-k sample): uniform over the window, the same whatever the
  arrival order, and a post delivered twice is kept once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.alerts.keys import keys_for
from services.alerts.windows import event_time
from yuqing.contracts import AlertKey, EnrichedPost, Sentiment
from yuqing.contracts.models import ObservedPost
from yuqing.places import NO_PLACES, Gazetteer

KEYWORDS_PER_POST = 8
# posts.enriched bounds the number of keywords, not their length: a window's evidence keeps up to
# EvidenceLimits.max_keywords of them, and some of 100,000 characters made a table entry larger
# than the broker takes (a failed changelog write stops the worker). The NLP worker's are words.
MAX_KEYWORD_CHARS = 64


@dataclass(frozen=True)
class Observation:
    """One post as the counting stage needs it (internal message between stages)."""

    event_time: float
    post_id: str
    fingerprint: str
    source: str
    negative: bool
    keywords: tuple[str, ...]
    keys: tuple[AlertKey, ...]
    sentiment: str = "unknown"
    issue_id: str | None = None  # the issue it was grouped into (its cluster key)

    @property
    def topic(self) -> str:
        return next((key.topic.value for key in self.keys if key.family == "topic" and key.topic), "unknown")

    @classmethod
    def of(cls, post: EnrichedPost, *, max_future_seconds: float, places: Gazetteer = NO_PLACES,
           issue_id: str | None = None, now: float | None = None) -> Observation:
        """``now``: the reader's clock, which bounds the post's arrival (``windows.event_time``)."""
        return cls(event_time=event_time(post.created_at, post.received_at, max_future_seconds, now=now),
                   post_id=post.post_id, fingerprint=post.fingerprint, source=post.source,
                   negative=post.sentiment is Sentiment.NEGATIVE,
                   keywords=tuple(word[:MAX_KEYWORD_CHARS] for word in post.keywords[:KEYWORDS_PER_POST]),
                   keys=tuple(keys_for(post, places, issue_id=issue_id)),
                   sentiment=post.sentiment.value, issue_id=issue_id)

    def to_dict(self) -> dict[str, Any]:
        """The post part of an observations message (schemas/alerts.observations)."""
        body = {"kind": "post", "event_time": self.event_time, "post_id": self.post_id,
                "fingerprint": self.fingerprint, "source": self.source, "negative": self.negative,
                "sentiment": self.sentiment, "keywords": list(self.keywords),
                "keys": [key.model_dump(mode="json", exclude_none=True) for key in self.keys]}
        return {**body, "issue_id": self.issue_id} if self.issue_id else body

    @classmethod
    def of_message(cls, post: ObservedPost) -> Observation:
        """From the post part of an observations message."""
        return cls(event_time=post.event_time, post_id=post.post_id, fingerprint=post.fingerprint,
                   source=post.source, negative=post.negative, keywords=tuple(post.keywords),
                   keys=tuple(post.keys), sentiment=post.sentiment, issue_id=post.issue_id)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Observation:
        return cls(event_time=float(data["event_time"]), post_id=data["post_id"],
                   fingerprint=data["fingerprint"], source=data["source"], negative=bool(data["negative"]),
                   keywords=tuple(data["keywords"]),
                   keys=tuple(AlertKey.model_validate(key) for key in data["keys"]),
                   sentiment=data.get("sentiment", "unknown"), issue_id=data.get("issue_id"))


@dataclass(frozen=True)
class EvidenceLimits:
    max_samples: int = 32
    max_keywords: int = 32
    max_sources: int = 16
    max_issues: int = 16


@dataclass
class WindowEvidence:
    """Counts and bounded evidence of one key in one window (JSON-safe via to_dict)."""

    count: int = 0
    negative: int = 0
    keywords: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    # posts per issue (heavy hitters): how much of a cluster surge a topic alert holds
    issues: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[int, str, str]] = field(default_factory=list)  # (rank, post_id, fingerprint)

    def add(self, obs: Observation, limits: EvidenceLimits) -> None:
        self.count += 1
        self.negative += int(obs.negative)
        for word in dict.fromkeys(obs.keywords[:KEYWORDS_PER_POST]):
            _space_saving(self.keywords, word, limits.max_keywords)
        _space_saving(self.sources, obs.source, limits.max_sources)
        if obs.issue_id:
            _space_saving(self.issues, obs.issue_id, limits.max_issues)
        _bottom_k(self.samples, (_rank(obs.post_id), obs.post_id, obs.fingerprint), limits.max_samples)

    def absorb(self, other: WindowEvidence, limits: EvidenceLimits) -> None:
        """Add another key's evidence of the same window (an issue merged into this one)."""
        self.count += other.count
        self.negative += other.negative
        for mine, theirs, capacity in ((self.keywords, other.keywords, limits.max_keywords),
                                       (self.sources, other.sources, limits.max_sources),
                                       (self.issues, other.issues, limits.max_issues)):
            for item, count in sorted(theirs.items(), key=lambda kv: (-kv[1], kv[0])):
                _space_saving(mine, item, capacity, count)
        for sample in other.samples:
            _bottom_k(self.samples, sample, limits.max_samples)

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.count if self.count else None

    def top_keywords(self, n: int) -> list[str]:
        return _top(self.keywords, n)

    def top_sources(self, n: int) -> list[str]:
        return _top(self.sources, n)

    def top_issues(self, n: int, *, at_least: int = 1) -> list[str]:
        return [issue for issue in _top(self.issues, n) if self.issues[issue] >= at_least]

    def to_dict(self) -> dict[str, Any]:
        stored = {"count": self.count, "negative": self.negative, "keywords": self.keywords,
                  "sources": self.sources, "samples": [list(sample) for sample in self.samples]}
        return {**stored, "issues": self.issues} if self.issues else stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowEvidence:
        return cls(count=int(data["count"]), negative=int(data["negative"]), keywords=dict(data["keywords"]),
                   sources=dict(data["sources"]), issues=dict(data.get("issues") or {}),
                   samples=[(int(r), str(i), str(f)) for r, i, f in data["samples"]])


def _rank(post_id: str) -> int:
    # Post ids are md5 hex digests, already uniform: their first 32 bits rank them.
    try:
        return int(post_id[:8], 16)
    except ValueError:
        return 0xFFFFFFFF


def _space_saving(counter: dict[str, int], item: str, capacity: int, count: int = 1) -> None:
    if item in counter or len(counter) < capacity:
        counter[item] = counter.get(item, 0) + count
        return
    smallest = min(counter, key=lambda k: (counter[k], k))
    counter[item] = counter.pop(smallest) + count


def _bottom_k(samples: list[tuple[int, str, str]], sample: tuple[int, str, str], k: int) -> None:
    if any(existing[1] == sample[1] for existing in samples):
        return
    if len(samples) >= k and sample >= samples[-1]:
        return
    samples.append(sample)
    samples.sort()
    del samples[k:]


def _top(counter: dict[str, int], n: int) -> list[str]:
    return [item for item, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
