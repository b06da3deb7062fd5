"""Why an alert fired, in terms a responder can act on (pure).

An explanation says what was observed against what was expected, which
keywords and sources dominate the surge window, how negative it is, and which
posts to read first: the most *central* ones, those whose SimHash fingerprints
are nearest (smallest total Hamming distance) to the other posts of the window,
so the samples show the bulk of the surge rather than its outliers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.alerts.evidence import WindowEvidence
from services.alerts.keys import is_band
from yuqing.contracts import AlertExplanation, AlertKey, Topic

MAX_SAMPLE_POSTS = 5
TOP_KEYWORDS = 5
TOP_SOURCES = 3

TOPIC_NAMES = {
    Topic.OUTAGE: "停电", Topic.BILLING: "电费", Topic.SERVICE: "服务",
    Topic.ONLINE_SERVICE: "线上业务", Topic.SAFETY: "用电安全", Topic.POLICY: "政策",
    Topic.RUMOR: "谣言", Topic.EMPLOYEE: "员工", Topic.ENERGY_USE: "用能",
    Topic.PRAISE_SUGGESTION: "表扬建议", Topic.OTHER: "其他",
}


@dataclass(frozen=True)
class Explained:
    explanation: AlertExplanation
    sample_post_ids: list[str]


def representative_posts(samples: Sequence[tuple[str, str]], limit: int = MAX_SAMPLE_POSTS) -> list[str]:
    """Ids of the ``limit`` most central posts among ``(post_id, fingerprint)`` pairs."""
    prints = [int(fingerprint, 16) for _, fingerprint in samples]
    totals = [sum((p ^ q).bit_count() for q in prints) for p in prints]
    ranked = sorted(zip(totals, (post_id for post_id, _ in samples), strict=True))
    return [post_id for _, post_id in ranked[:limit]]


def explain(
    key: AlertKey, evidence: WindowEvidence | None, *, observed: float, expected: float,
    bucket_seconds: int,
) -> Explained:
    """The explanation and sample posts of an alert on ``key`` for one window's evidence."""
    evidence = evidence or WindowEvidence()
    keywords = evidence.top_keywords(TOP_KEYWORDS)
    sources = evidence.top_sources(TOP_SOURCES)
    negative_share = evidence.negative_share
    line = summary(key, observed=observed, expected=expected, bucket_seconds=bucket_seconds,
                   negative_share=negative_share, keywords=keywords)
    samples = representative_posts([(post_id, fp) for _, post_id, fp in evidence.samples])
    explanation = AlertExplanation(top_keywords=keywords, top_sources=sources,
                                   negative_share=negative_share, summary=line)
    return Explained(explanation, samples)


def subject(key: AlertKey) -> str:
    """What the key covers, in words (Chinese, as the responders read it)."""
    topic = TOPIC_NAMES.get(key.topic, str(key.topic)) if key.topic else ""
    if key.family == "topic_region":
        return f"{key.region}·{topic}"
    if key.family == "topic":
        return f"{topic}类"
    if key.family == "source":
        return f"来源 {key.source}"
    if key.family == "cluster" and is_band(key):
        return f"近似重复帖簇 {key.cluster}"
    if key.family == "cluster":
        return f"议题 {key.cluster}"
    return "全部来源"


def summary(
    key: AlertKey, *, observed: float, expected: float, bucket_seconds: int,
    negative_share: float | None, keywords: Sequence[str],
) -> str:
    """One line: who, how many against how many, how negative, about what."""
    minutes = max(bucket_seconds // 60, 1)
    ratio = (observed / expected) if expected >= 0.05 else None
    parts = [f"{subject(key)}舆情突增：{minutes}分钟内{observed:.0f}条，预期{expected:.1f}条"]
    if ratio is not None:
        parts[0] += f"（约{ratio:.0f}倍）" if ratio >= 10 else f"（约{ratio:.1f}倍）"
    if negative_share is not None:
        parts.append(f"负面占比{negative_share:.0%}")
    if keywords:
        parts.append("热词：" + "、".join(keywords))
    return "，".join(parts)
