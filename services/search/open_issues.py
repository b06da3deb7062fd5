"""What grouping keeps of posts and open issues, and how two topics agree (pure, no I/O).

An open issue pools its members' word vectors (its centroid), topics and places,
so that a post is compared with it at the cost of a few cosines (grouping.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from services.search.issue_text import VOICE, TextView, Voice, cosine, stem, town_of, view
from yuqing.contracts import Topic

if TYPE_CHECKING:
    from services.search.issue_params import GroupingParams

NEUTRAL_TOPICS = frozenset({"other"})
TOPIC_COUNT = len(Topic)
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


def _count(counts: Counter[str], key: str, by: int) -> None:
    counts[key] += by
    if counts[key] <= 0:
        del counts[key]


def _shift(values: dict[str, float], key: str, by: float) -> None:
    value = values.get(key, 0.0) + by
    if abs(value) > 1e-9:
        values[key] = value
    else:
        values.pop(key, None)


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


def agreement(member: Member, issue: OpenIssue, p: GroupingParams) -> float:
    """How far a post's topic agrees with an issue's, -1..1: ``post_agreement`` against the issue's
    most frequent topic, or, with ``GroupingParams.soft_topics`` and the classifier's scores, the
    expected agreement of the two distributions (``soft_agreement``) where that is higher. So an
    issue whose topic is ``other`` by a tie (``停电了？`` and ``同问``), or one the classifier read
    half as outage and half as service, still agrees in part with an outage post; a post without
    scores (labelled topics, an input line with a topic only) is read as before. The soft reading
    only lifts: taken alone, a little incompatible mass in a matter's mix would turn away the
    compatible posts its burst or its one matter draws (measured: docs/search.md, the ninth round)."""
    hard = post_agreement(member, issue.topic, same_margin=p.second_same_margin,
                          compatible_margin=p.second_margin)
    if not p.soft_topics or member.topic_share is None or hard >= 1:
        return hard
    return max(hard, soft_agreement(member.topic_mix(), issue.topic_mix(p.soft_topic_smoothing)))


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
    # the classifier's highest score (``topic_score`` on the index); None: the post carries no scores
    topic_share: float | None = None


@dataclass
class Member:
    post_id: str
    view: TextView
    created_at: datetime
    topic: str | None
    town: str
    second_topic: str | None = None
    second_gap: float = 1.0
    topic_share: float | None = None
    # ``topic_mix``, computed once: a member's topic and scores do not change
    _mix: dict[str, float] | None = field(default=None, init=False, repr=False, compare=False)

    def topic_mix(self) -> Mapping[str, float]:
        """What the classifier said of the post's topic, as probabilities: the topic at its score
        and the second choice at its own (the rest, spread over other topics, is not kept: the index
        stores these two, so a grouper rebuilt from it reads the same); the topic alone, sure, for a
        post without scores (labelled topics)."""
        if self._mix is None:
            self._mix = self._topic_mix()
        return self._mix

    def _topic_mix(self) -> dict[str, float]:
        topic = self.topic or "other"
        if self.topic_share is None:
            return {topic: 1.0}
        mix = {topic: self.topic_share}
        if self.second_topic:
            second = min(self.topic_share - self.second_gap, 1.0 - self.topic_share)
            mix[self.second_topic] = round(max(0.0, second), 4)
        return mix


def member_of(post: PostSignal, voice: Voice = VOICE) -> Member:
    seen = view(post.text, post.region, voice)
    return Member(post.post_id, seen, post.created_at, post.topic, post_town(post.region, seen),
                  post.second_topic, post.second_gap, post.topic_share)


def soft_agreement(mix: Mapping[str, float], issue_mix: Mapping[str, float]) -> float:
    """The expected ``topic_agreement`` of a post and an issue, each topic read as a distribution:
    the sum over topic pairs of p_post(t) x p_issue(t') x agreement(t, t') (1 same, -1 incompatible,
    0 compatible or ``other``). A post the classifier hesitates on between outage and service
    beside an outage agrees in part; neither the post's argmax nor an alphabetical tie between the
    issue's topics decides alone."""
    total = 0.0
    for topic, p in mix.items():
        for other, q in issue_mix.items():
            total += p * q * topic_agreement(topic, other)
    return total


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
    # the sum of the members' ``topic_mix`` (one per member counted in ``topics``), and of the log
    # of each topic's likelihood ratio, log((smoothing + p) / smoothing) (``topic_mix``)
    topic_mass: dict[str, float] = field(default_factory=dict)
    topic_evidence: dict[str, float] = field(default_factory=dict)
    places: Counter[str] = field(default_factory=Counter)
    place_stems: Counter[str] = field(default_factory=Counter)  # of ``places``: ``stem`` -> places
    size: int = 0
    # ``topic_mix`` as last computed, and the smoothing it was computed with; None after
    # ``shift_topics`` (the only change to ``topics``, ``topic_mass`` and ``topic_evidence``): every
    # candidate issue is asked for its mix on every post, and it changes only as members come and go
    _mix: tuple[float, Mapping[str, float]] | None = field(default=None, init=False, repr=False,
                                                           compare=False)

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

    def count_places(self, places: Iterable[str], sign: int) -> None:
        """Count a member's places in (``sign`` 1) or out (-1), and their stems."""
        for place in places:
            _count(self.places, place, sign)
            _count(self.place_stems, stem(place), sign)

    topic: str | None = None  # the most frequent topic of the members
    recent_text: str = ""  # the latest members' texts, for places they name without a suffix

    def shift_topics(self, member: Member, sign: int, smoothing: float = 0.0) -> None:
        """Count a member's topic and its topic mix in (``sign`` 1) or out (-1)."""
        self._mix = None
        self.topics[member.topic or "other"] += sign
        for topic, p in member.topic_mix().items():
            _shift(self.topic_mass, topic, sign * p)
            if smoothing > 0:
                _shift(self.topic_evidence, topic, sign * math.log((smoothing + p) / smoothing))

    def topic_mix(self, smoothing: float = 0.0) -> Mapping[str, float]:
        """The issue's topic as a distribution: the mean of its posts' (``smoothing`` 0), or the
        posterior of one topic for the whole matter, each post's distribution read as independent
        evidence, smoothed so that one post's zero does not rule a topic out: the matter's topic
        grows surer with each post that reads it so. Kept until members come or go."""
        if self._mix is None or self._mix[0] != smoothing:
            self._mix = (smoothing, self._topic_mix(smoothing))
        return self._mix[1]

    def _topic_mix(self, smoothing: float) -> dict[str, float]:
        count = sum(self.topics.values())
        if smoothing <= 0 or not self.topic_evidence:
            return {t: m / count for t, m in self.topic_mass.items()} if count > 0 else {}
        top = max(self.topic_evidence.values())
        weights = {t: math.exp(v - top) for t, v in self.topic_evidence.items()}
        total = sum(weights.values()) + (TOPIC_COUNT - len(weights)) * math.exp(-top)
        return {t: w / total for t, w in weights.items()}

    def refresh(self, nearest: int, specific_first: bool = False) -> None:
        """Derived fields, after members came or went. ``specific_first``: on a tie of counts, a
        topic beats ``other`` (else the names decide, and ``other`` beats ``outage``)."""
        ranked = sorted(self.topics.items(),
                        key=lambda kv: (-kv[1], specific_first and kv[0] in NEUTRAL_TOPICS, kv[0]))
        self.topic = ranked[0][0] if ranked else None
        self.recent_text = " ".join(m.view.text for m in self.members[-nearest:])


def post_town(region: str | None, post: TextView) -> str:
    own = town_of(region)
    if own:
        return own
    return min(post.towns) if post.towns else ""
