"""What grouping keeps of posts and open issues, and how two topics agree (pure, no I/O).

An open issue pools its members' word vectors (its centroid), topics and places,
so that a post is compared with it at the cost of a few cosines (grouping.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.search.issue_text import VOICE, TextView, Voice, cosine, town_of, view

NEUTRAL_TOPICS = frozenset({"other"})
# Topics the classifier confuses on posts about one matter (measured on the development sets): an
# outage's posts are also read as safety (电梯困人), service (电话打不通), praise (抢修辛苦) or a
# rumour about its cause; a billing matter's as policy, rumour or service; the thanks for a fixed
# hazard (电杆已经扶正了，点赞) as praise, and the utility's answer to a hazard reported
# (打电话报了，说是下午派人过来) as service; a new connection's or a solar connection's (报装, 光伏并网:
# energy use) as service, where the service hall's answers about it are read. Staff matters (shifts,
# pay: employee) are not the public's outage, whatever the township and hour. A post of a compatible
# topic is neither rewarded nor penalised: words, place and time decide.
_COMPATIBLE = {
    "outage": "safety service praise_suggestion rumor energy_use",
    "billing": "policy rumor service online_service",
    "rumor": "policy safety",
    "safety": "praise_suggestion service",
    "service": "employee praise_suggestion online_service energy_use",
    "policy": "energy_use",
}
COMPATIBLE_TOPICS = frozenset(frozenset((a, b)) for a, others in _COMPATIBLE.items() for b in others.split())


def compatible(topic: str | None, other: str | None) -> bool:
    """Whether two different topics are read on one matter's posts (``COMPATIBLE_TOPICS``)."""
    return frozenset((topic, other)) in COMPATIBLE_TOPICS


def topic_agreement(topic: str | None, issue_topic: str | None) -> int:
    """1 for the same topic, -1 for an incompatible one, 0 when either is unknown, neutral or compatible."""
    if not topic or not issue_topic or topic in NEUTRAL_TOPICS or issue_topic in NEUTRAL_TOPICS:
        return 0
    if topic == issue_topic:
        return 1
    return 0 if compatible(topic, issue_topic) else -1


def relays_answer(member: Member) -> bool:
    """A service post that says what the utility answered (``打客服说系统在维护``,
    ``问供电所说施工延误了``, ``去供电所登记，说要等调查结果``): the township's matter of those hours,
    in words of its own (the cause, the wait) that share nothing with the complaints."""
    return member.topic == "service" and "说" in member.view.text


def runner_up(topic: str | None, scores: Mapping[str, float]) -> tuple[str | None, float]:
    """The classifier's second choice for a post and how far its score is below the topic's
    (``None, 1.0`` without scores): the posts of one matter that the classifier reads now as one
    topic, now as another, have the other as a close second."""
    if not topic or not scores:
        return None, 1.0
    others = sorted(((s, t) for t, s in scores.items() if t != topic), reverse=True)
    if not others:
        return None, 1.0
    score, second = others[0]
    return second, round(max(0.0, scores.get(topic, 0.0) - score), 4)


def post_agreement(member: Member, issue_topic: str | None, *, same_margin: float,
                   compatible_margin: float) -> int:
    """``topic_agreement`` of a post with an issue, read with the classifier's second choice for
    the post: when the issue's topic is that second choice, scored within ``same_margin`` of the
    first, the post counts as of the same topic (1); else, when its topic is incompatible with the
    issue's but the second choice is compatible, scored within ``compatible_margin``, as compatible
    (0). Margins of 0: the topic alone."""
    agreement = topic_agreement(member.topic, issue_topic)
    second, gap = member.second_topic, member.second_gap
    if second is None or agreement > 0:
        return agreement
    if second == issue_topic and same_margin > 0 and gap <= same_margin and second not in NEUTRAL_TOPICS:
        return 1
    if agreement < 0 and compatible_margin > 0 and gap <= compatible_margin and (
            topic_agreement(second, issue_topic) >= 0):
        return 0
    return agreement


@dataclass(frozen=True)
class PostSignal:
    """What grouping needs of a post."""

    post_id: str
    text: str
    created_at: datetime
    region: str | None = None
    topic: str | None = None
    # the region the NLP worker inferred from the text for a post without one (``posts.enriched``
    # ``inferred_region``); grouping reads it only when ``region`` is empty
    inferred_region: str | None = None
    # the classifier's second choice and how far below the topic's its score was (``runner_up``)
    second_topic: str | None = None
    second_gap: float = 1.0


@dataclass
class Member:
    post_id: str
    view: TextView
    created_at: datetime
    topic: str | None
    town: str
    second_topic: str | None = None
    second_gap: float = 1.0


def member_of(post: PostSignal, voice: Voice = VOICE) -> Member:
    seen = view(post.text, post.region, voice)
    return Member(post.post_id, seen, post.created_at, post.topic, post_town(post.region, seen),
                  post.second_topic, post.second_gap)


@dataclass
class OpenIssue:
    issue_id: str
    town: str
    first_seen: datetime
    last_seen: datetime
    members: list[Member] = field(default_factory=list)
    centroid: dict[str, float] = field(default_factory=dict)  # sum of the members' word vectors
    centroid_norm2: float = 0.0  # its squared length, kept up to date as members come and go
    topics: Counter[str] = field(default_factory=Counter)
    places: Counter[str] = field(default_factory=Counter)
    size: int = 0

    def centroid_cosine(self, words: dict[str, float]) -> float:
        if self.centroid_norm2 <= 1e-9:
            return 0.0
        return cosine(words, self.centroid) / math.sqrt(self.centroid_norm2)

    def shift_centroid(self, words: dict[str, float], sign: float) -> None:
        """Add (``sign`` 1) or take away (-1) a unit word vector: |c ± v|² = |c|² ± 2 c·v + 1."""
        dot = cosine(words, self.centroid)
        self.centroid_norm2 = max(0.0, self.centroid_norm2 + sign * 2 * dot + (1.0 if words else 0.0))
        for term, weight in words.items():
            value = self.centroid.get(term, 0.0) + sign * weight
            if abs(value) > 1e-9:
                self.centroid[term] = value
            else:
                self.centroid.pop(term, None)

    topic: str | None = None  # the most frequent topic of the members
    recent_text: str = ""  # the latest members' texts, for places they name without a suffix

    def refresh(self, nearest: int) -> None:
        """Derived fields, after members came or went."""
        ranked = sorted(self.topics.items(), key=lambda kv: (-kv[1], kv[0]))
        self.topic = ranked[0][0] if ranked else None
        self.recent_text = " ".join(m.view.text for m in self.members[-nearest:])


def post_town(region: str | None, post: TextView) -> str:
    own = town_of(region)
    if own:
        return own
    return min(post.towns) if post.towns else ""
