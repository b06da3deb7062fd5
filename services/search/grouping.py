"""Posts grouped into issues by meaning, place and time, one post at a time (pure, no I/O).

An issue is one matter a responder handles once: the outage of one village on
one evening, the wrong bills after one meter replacement. A post joins the open
issue of its township that it fits best, or founds a new one:

* **Township** (the region, else the township the text names, short forms
  too: ``蓝田这边``, issue_towns.py) must match: the same complaint in another
  township is another issue. An issue founded by
  a post of no known township is open to every township's posts until one of
  them joins it; it then belongs to that township. A matter of the whole county (the
  app: online service) pays no penalty for a missing township (issue_county.py).
* **Time**: the issue's last post at most ``gap`` before (or after) the post and
  its first at most ``span`` before; older issues are closed for grouping. So
  the same complaint two days later is another issue. Up to ``late_gap`` on
  stronger evidence, and then an issue of one post only for a post naming its place.
* **Words** (issue_text.py): cosine of IDF-weighted character bigrams, to the
  nearest member and to the issue's centroid.
* **Place**: a place named by both (village, 小区, street …) adds; two different
  places subtract.
* **Topic**: the same topic adds, another subtracts (``other`` is neutral); the classifier's
  close second choice and its distributions count too (``open_issues.agreement``).
* A post that says little beyond its place (``+1``, ``我家也是，滨河小区``) is
  judged on place, topic and time: its word score is blended towards a prior in
  proportion to how little it says.
* **Bursts**: an issue at least three posts joined in the last hour draws the
  township's posts of a compatible topic that name no other place, whatever
  their words (``蜡烛都点上了``, ``客服电话打不通`` beside ``杨柳村停电了``).
* **A matter of the whole county** (issue_county.py): issues founded by posts naming one
  county-wide kind of matter (the app's payment failing, a change of the price), in the same hours,
  holding such posts of three townships or more, are merged into one issue, which every township's
  later posts naming that kind may join (``_county_step``).
* **The township's one matter**: when exactly one issue of the township holds three
  posts or more within ``gap`` of the post, it draws the township's posts of a
  compatible topic that name no other place and share a word or two with it (a
  slow matter's service and rumour posts, a post an hour: ``_sole``), or relay the
  utility's answer (``客服说系统在维护``: a service post, ``说``).

The post joins the best issue scoring at least ``threshold``; ties go to the
smaller issue id; if it also fits an issue of no known township of the same
topic, the two are merged (``_bridge``). Then the **issue-level step** compares
the issue the post is in with the township's other open issues (an issue of no known township: with
the others of none; the same
bounded candidates) and merges the best pair that looks like one matter
(``issue_merging.py``; a lone post of a compatible topic beside the township's
larger matter of those hours needs few shared words; so do two issues of two posts or more whose
topics are compatible, not the same: companions; two issues sharing a place may be up to
``merge_place_gap`` apart: the next morning's thanks for the village's outage): the issue
founded first keeps its id, and the merge is kept for the indexer to record
(``take_merges``). Issues a responder split or moved posts of are left out.

A new issue's id is ``<topic>-<16 hex digits of blake2b(post id)>``: derived
from the founding post, so every process that sees the same posts in the same
order names the issue the same way, and a post seen again (a replay) keeps the
issue it had. State is bounded: idle issues are dropped, members per issue and
issues in all are capped, and an issue's places and word totals are those of the members it
keeps. Corrections (merge, move, split) change the state so that later posts
follow them; see ``merge``, ``move`` and ``split``.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Reversible
from dataclasses import dataclass
from datetime import datetime

from services.search.issue_county import (
    county_matter,
    county_towns,
    county_wide,
    keeps_no_town,
    names_county,
    shares_county,
    unplaced_penalty,
)
from services.search.issue_matters import hall_post_apart, shares_kind
from services.search.issue_merging import merge_score
from services.search.issue_model import JoinModel, load_join_model
from services.search.issue_params import GroupingParams as GroupingParams  # re-exported for its users
from services.search.issue_text import TextView, cosine, stem
from services.search.issue_towns import KnownTownships
from services.search.open_issues import COMPATIBLE_TOPICS as COMPATIBLE_TOPICS
from services.search.open_issues import (
    Member,
    OpenIssue,
    member_of,
    relays_answer,
    topic_agreement,
)
from services.search.open_issues import PostSignal as PostSignal  # the grouping's input, re-exported
from services.search.open_issues import agreement as topic_agreement_of
from yuqing.fingerprint import band_terms as band_terms  # re-exported for documents.py
from yuqing.places import NO_PLACES, Gazetteer

CANDIDATE_POOL = 4  # a post's candidates: the nearest in time of this many times max_candidates


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a post and an issue share, read once for the rules' score and the join model."""

    centroid: float  # cosine of the post's words to the issue's centroid
    nearest: float  # ... to the nearest of its latest members
    said: float  # how much the post says (0..1)
    agreement: float  # topic agreement
    place: float  # the place term (``_place_score``)
    kind: bool  # a kind of slow matter or a county-wide kind both name
    hall: bool  # a post of the service hall's queue against an outage issue that does not name it


@dataclass(frozen=True)
class Assignment:
    issue_id: str
    distance: int  # 0..100: how far the post was from its issue (100 - 100 x score; 0 for a founder)


@dataclass(frozen=True)
class IssueMerge:
    """An issue merged into another by the grouping itself (no responder): recorded like a
    responder's merge, with ``score`` as its reason."""

    source_id: str  # the issue that goes away (the younger)
    target_id: str  # the issue that stays (the older)
    score: float  # a county-wide matter's merge (``_county_step``): the townships that named it
    at: datetime  # the time of the post that led to it


def founder_issue_id(post_id: str, topic: str | None, salt: str = "") -> str:
    """The id of the issue a post founds: stable across processes and replays."""
    digest = hashlib.blake2b(f"{post_id}{salt}".encode(), digest_size=8).hexdigest()
    return f"{topic or 'other'}-{digest}"


class IssueGrouper:
    """Online grouping state: open issues per township, and the issue of every recent post."""

    def __init__(self, params: GroupingParams | None = None, places: Gazetteer = NO_PLACES) -> None:
        """``places``: the configured gazetteer (the NLP worker's); the townships of the stream are
        learned from the posts' regions (``issue_towns.py``)."""
        self.params = params or GroupingParams()
        self._townships = KnownTownships(places, leading=self.params.leading_township,
                                         voice=self.params.voice)
        self._issues: OrderedDict[str, OpenIssue] = OrderedDict()  # least recently active first
        self._by_town: dict[str, OrderedDict[str, None]] = {}  # least recently active first
        # issues listed under other townships too: a responder merged an issue of each into them
        self._also_in: dict[str, set[str]] = {}
        self._post_issue: OrderedDict[str, str] = OrderedDict()
        self._distance: dict[str, int] = {}  # of the posts that joined an issue, as first assigned
        self._aliases: OrderedDict[str, str] = OrderedDict()
        # issues a responder split or moved posts out of or into: never merged automatically
        self._corrected: OrderedDict[str, None] = OrderedDict()
        self._merges: list[IssueMerge] = []  # automatic merges not yet taken (``take_merges``)
        # issues of a county-wide matter (``issue_county.county_wide``), least recently active first
        self._county: OrderedDict[str, None] = OrderedDict()
        self._now: datetime | None = None
        self._model: JoinModel | None = load_join_model() if self.params.learned else None

    def __len__(self) -> int:
        return len(self._issues)

    def issue_of(self, post_id: str) -> str | None:
        found = self._post_issue.get(post_id)
        return self.resolve(found) if found else None

    def resolve(self, issue_id: str) -> str:
        """The issue an id now stands for (after merges)."""
        seen = set()
        while issue_id in self._aliases and issue_id not in seen:
            seen.add(issue_id)
            issue_id = self._aliases[issue_id]
        return issue_id

    def assign(self, post: PostSignal) -> Assignment:
        """The issue of a post; remembers the post for the posts after it."""
        known = self.issue_of(post.post_id)
        if known is not None:
            return Assignment(known, self._distance.get(post.post_id, 0))
        member = self._member(self._townships.place(post, infer=self.params.infer_township))
        town = member.town
        self._advance(post.created_at)
        ranked = self._ranked(member)
        if not ranked:
            issue_id = founder_issue_id(post.post_id, post.topic)
            self._add(issue_id, town, member)
            return Assignment(self._after(issue_id, post.created_at), 0)
        best = ranked[0]
        self._add(best[1], town, member)
        distance = max(0, min(100, round(100 - 100 * best[0])))
        if distance:
            self._distance[post.post_id] = distance
        issue_id = self._bridge(best[1], ranked[1:], post.created_at)
        return Assignment(self._after(issue_id, post.created_at), distance)

    def remember(self, post: PostSignal, issue_id: str, distance: int = 0) -> None:
        """Take a post whose issue is already decided (warm-up from the index, other replicas)."""
        if post.post_id in self._post_issue:
            return
        if distance:
            self._distance[post.post_id] = distance
        member = self._member(self._townships.place(post, infer=self.params.infer_township))
        self._advance(post.created_at)
        self._add(self.resolve(issue_id), member.town, member)

    # --- corrections -------------------------------------------------------------

    def merge(self, source_id: str, target_id: str, *, keep_towns: bool = False) -> None:
        """Every post of ``source_id`` (and every later post that would join it) goes to ``target_id``.

        ``keep_towns`` (a responder's merge): the target is listed under the source's township too,
        so that the township's later posts find it. Listed under its own only, a township's issue a
        responder merged into another township's (a county-wide rumour told township by township)
        was no candidate for the township's next post, which founded a new issue.
        """
        source_id, target_id = self.resolve(source_id), self.resolve(target_id)
        if source_id == target_id:
            return
        if source_id in self._corrected:
            self.protect(target_id)  # the merged issue holds a responder's correction
        self._aliases[source_id] = target_id
        while len(self._aliases) > self.params.max_posts:
            self._aliases.popitem(last=False)
        towns = set(self._also_in.get(source_id, ()))
        source = self._drop_issue(source_id)
        if source is not None:
            for member in source.members:
                self._add(target_id, source.town, member)
            self._issues[target_id].size += source.size - len(source.members)  # members beyond the cap
            towns.add(source.town)
        if keep_towns and target_id in self._issues:
            self._list_under(target_id, towns)

    def _list_under(self, issue_id: str, towns: set[str]) -> None:
        """List a merged issue under these townships and those of its posts (replayed after a
        restart, the merge finds the source's posts in the target already)."""
        issue = self._issues[issue_id]
        for town in (towns | {m.town for m in issue.members}) - {issue.town, ""}:
            self._by_town.setdefault(town, OrderedDict())[issue_id] = None
            self._also_in.setdefault(issue_id, set()).add(town)

    def protect(self, *issue_ids: str) -> None:
        """Keep these issues out of automatic merging: a responder split or moved posts out of or
        into them, and an automatic merge must never undo that."""
        for issue_id in issue_ids:
            self._corrected[self.resolve(issue_id)] = None
            self._corrected.move_to_end(self.resolve(issue_id))
        while len(self._corrected) > self.params.max_issues:
            self._corrected.popitem(last=False)

    def is_protected(self, issue_id: str) -> bool:
        return issue_id in self._corrected or self.resolve(issue_id) in self._corrected

    def take_merges(self) -> list[IssueMerge]:
        """The automatic merges made since the last call, oldest first."""
        taken, self._merges = self._merges, []
        return taken

    def move(self, post_id: str, target_id: str, post: PostSignal | None = None) -> None:
        """One post to another issue; later posts like it follow it there."""
        source_id = self.issue_of(post_id)
        member = self._take(post_id)
        if member is None and post is not None:
            member = self._member(post)
        target_id = self.resolve(target_id)
        self.protect(target_id, *([source_id] if source_id else []))
        if member is not None:
            town = self._issues[target_id].town if target_id in self._issues else member.town
            self._add(target_id, town, member)
        else:
            self._post_issue[post_id] = target_id

    def split(self, post_id: str, post: PostSignal | None = None, issue_id: str | None = None) -> str:
        """One post out into a new issue of its own (id derived from the post, or ``issue_id``: the
        one a recorded split named); returns the id."""
        source_id = self.issue_of(post_id)
        member = self._take(post_id)
        if member is None and post is not None:
            member = self._member(post)
        topic = member.topic if member else (post.topic if post else None)
        issue_id = issue_id or founder_issue_id(post_id, topic, salt=":split")
        self.protect(issue_id, *([source_id] if source_id else []))
        if member is not None:
            self._add(issue_id, member.town, member)
        else:
            self._post_issue[post_id] = issue_id
        return issue_id

    # --- the issue-level step ------------------------------------------------------

    def _after(self, issue_id: str, at: datetime) -> str:
        """The issue-level steps after a post: the township's merge, then the county's."""
        return self._county_step(self._merge_step(issue_id, at), at)

    def _merge_step(self, issue_id: str, at: datetime) -> str:
        """Merge the issue a post joined with the best partner of its township, if one scores
        ``merge_threshold``; returns the id the post's issue now has. Work: at most
        ``max_candidates`` centroid cosines."""
        issue = self._issues.get(issue_id)
        unplaced_off = issue is not None and not issue.town and not self.params.merge_unplaced
        if issue is None or unplaced_off or issue_id in self._corrected:
            return issue_id
        best: tuple[float, str] | None = None
        # its township's issues only (merge_score refuses every other): for an issue of no known
        # township, the recent issues of every township took the candidates' places, and two issues
        # of one county-wide matter, busy both, were never compared while a steady stream went on
        for other_id in self._recent(self._by_town.get(issue.town, OrderedDict()), at):
            score = merge_score(issue, self._issues[other_id], self.params, self._corrected)
            if score is not None and score >= self.params.merge_threshold and (
                    best is None or (score, best[1]) > (best[0], other_id)):
                best = (score, other_id)
        return issue_id if best is None else self._merge_pair(issue, self._issues[best[1]], best[0], at)

    def _county_step(self, issue_id: str, at: datetime) -> str:
        """Merge the issues of one county-wide matter read township by township
        (``issue_county.county_matter``) into the oldest; returns the id the post's issue now has."""
        issue = self._issues.get(issue_id)
        if issue is None or issue_id in self._corrected:
            return issue_id
        recent = (self._issues[i] for i in reversed(self._issues))
        found = county_matter(issue, recent, at, self.params, self._corrected)
        for other in found[1:]:
            self._merge_pair(found[0], other, float(len(county_towns(found, self.params))), at)
        return found[0].issue_id if found else issue_id

    def _bridge(self, issue_id: str, others: list[tuple[float, str]], at: datetime) -> str:
        """A post that joined its township's issue and also fits an issue of no known township of
        the same topic (its founder named no township) shows that they are one matter: merged, the
        older id stays."""
        issue = self._issues[issue_id]
        if not self.params.bridge_unplaced or not issue.town or issue_id in self._corrected:
            return issue_id
        for score, other_id in others:
            other = self._issues.get(other_id)
            if (other is not None and not other.town and other_id not in self._corrected
                    and topic_agreement(issue.topic, other.topic) > 0):
                return self._merge_pair(issue, other, score, at)
        return issue_id

    def _merge_pair(self, issue: OpenIssue, other: OpenIssue, score: float, at: datetime) -> str:
        """The younger of two issues merged into the older (ties: the smaller id); its id."""
        younger, older = sorted((issue, other), key=lambda i: (i.first_seen, i.issue_id), reverse=True)
        self.merge(younger.issue_id, older.issue_id)  # an issue of no known township takes the other's
        self._merges.append(IssueMerge(younger.issue_id, older.issue_id, round(score, 4), at))
        return older.issue_id

    # --- internals ---------------------------------------------------------------

    def _member(self, post: PostSignal) -> Member:
        return member_of(post, self.params.voice)

    def _ranked(self, member: Member) -> list[tuple[float, str]]:
        """The issues the post may join, best first (ties: the smaller id), with their scores: the
        join model's probability at least its threshold, or (``learned`` off) the rules' score at
        least ``threshold``.

        Every candidate is ranked roughly first (centroid words, shared place, topic);
        only the ``refine`` best are scored by the rules in full, with their latest members.
        """
        if self._model is not None:
            return self._learned(member)
        candidates = self._township_candidates(member)
        sole = self._sole(member, candidates)
        found = []
        for issue_id in self._roughly(member, candidates, sole)[:self.params.refine]:
            score = self._score(self._issues[issue_id], member, sole=issue_id == sole)
            if score is not None and score >= self.params.threshold:
                found.append((-score, issue_id))
        return [(-negated, issue_id) for negated, issue_id in sorted(found)]

    def _township_candidates(self, member: Member) -> list[str]:
        p = self.params
        candidates = self._candidates(member.town, member.created_at)
        if names_county(member, p):  # a county-wide matter's issue of its kind, whatever its township
            candidates += [i for i in self._recent(self._county, member.created_at)
                           if i not in candidates and shares_county(member, self._issues[i], p)]
        return candidates

    def _roughly(self, member: Member, candidates: list[str], sole: str | None,
                 other_town: float = 0.0) -> list[str]:
        """The candidates by a rough score (centroid words, shared place, topic, hours; another
        township: - ``other_town``), best first."""
        p, words, places = self.params, member.view.words, member.view.places
        quick = []
        for issue_id in candidates:
            issue = self._issues[issue_id]
            rough = issue.centroid_cosine(words) + (p.place_bonus if places & issue.places.keys() else 0.0)
            agreement = topic_agreement_of(member, issue, p)
            rough += p.topic_bonus * agreement if agreement > 0 else p.topic_penalty * agreement
            # time too: a post that says little ("+1", "同问") has no words to rank by
            apart = abs(member.created_at - issue.last_seen)
            rough -= p.decay_per_hour * min(apart, p.gap).total_seconds() / 3600 + (
                p.late_margin if apart > p.gap else 0.0)
            rough += p.sole_bonus if issue_id == sole else 0.0
            if member.town and issue.town and member.town != issue.town:
                rough -= other_town
            quick.append((-rough, issue_id))
        return [issue_id for _, issue_id in sorted(quick)]

    def join_candidates(self, member: Member) -> list[tuple[str, list[float]]]:
        """The issues the join model compares a post with, each with its ``FEATURES``: the
        township's (and county-wide) candidates and up to ``learned_wide`` other recently active
        issues, the ``learned_refine`` best by the rough score (0: all)."""
        p = self.params
        candidates = self._township_candidates(member)
        sole = self._sole(member, candidates)
        if p.learned_wide:
            candidates += [i for i in self._recent(self._issues, member.created_at)
                           if i not in candidates][:p.learned_wide]
        if p.learned_refine and len(candidates) > p.learned_refine:
            candidates = self._roughly(member, candidates, sole, p.learned_other_town)[:p.learned_refine]
        return [(i, self._features(self._issues[i], member, i == sole)) for i in candidates]

    def _learned(self, member: Member) -> list[tuple[float, str]]:
        model = self._model
        assert model is not None
        found = []
        for issue_id, row in self.join_candidates(member):
            probability = model.probability(row)
            if probability >= model.threshold:
                found.append((-probability, issue_id))
        return [(-negated, issue_id) for negated, issue_id in sorted(found)]

    def _features(self, issue: OpenIssue, member: Member, sole: bool) -> list[float]:
        """The evidence of the post and the issue, as ``issue_model.FEATURES`` names it."""
        p, at = self.params, member.created_at
        hours = abs(at - issue.last_seen).total_seconds() / 3600
        since = max(0.0, (at - issue.first_seen).total_seconds() / 3600)
        found = self._evidence(issue, member)
        centroid, nearest, said, agreement = found.centroid, found.nearest, found.said, found.agreement
        place, kind, hall = found.place, found.kind, found.hall
        busy = self._busy(issue, at)
        rules = self._score(issue, member, sole=sole, evidence=found)
        same = bool(member.town) and member.town == issue.town
        other = bool(member.town) and bool(issue.town) and member.town != issue.town
        lexical = p.nearest_weight * nearest + (1 - p.nearest_weight) * centroid
        late = hours > p.gap.total_seconds() / 3600
        shared = place == p.place_bonus
        return [
            0.0 if rules is None else rules, float(rules is None),
            centroid, nearest, lexical, said, said * lexical,
            agreement, max(agreement, 0.0), min(agreement, 0.0),
            float(shared), float(place < 0), float(place == p.place_open),
            min(hours, 3.0) / 3.0, float(late), math.log1p(hours), math.log1p(since), late * lexical,
            math.log1p(issue.size), float(issue.size == 1), float(same), float(other),
            float(not member.town), float(not issue.town),
            float(kind), float(hall), float(sole), busy, float(relays_answer(member)),
            other * lexical, float(late and shared), (1 - said) * same, (1 - said) * busy,
        ]

    def _sole(self, member: Member, candidates: list[str]) -> str | None:
        """The township's one matter of the hours around the post, if it has exactly one (of
        ``sole_min`` posts, active within ``gap``) and the post's words touch it (``sole_cosine``).

        A slow matter (new meters' bills, an app that fails all morning) gathers a post an hour,
        each read as another topic (billing, service, rumour, policy) and saying it in other words:
        no burst draws them, and the dominant-issue merge needs a few shared words. A service post
        relaying the utility's answer (``relays_answer``) needs none: it says the cause or the wait.
        Where the township has two such matters in those hours (two villages' outages, a planned outage
        and a line fault), neither is its one matter, and words and places decide as before.
        """
        p = self.params
        if p.sole_bonus <= 0 or not member.town:
            return None
        large = [i for i in candidates if self._issues[i].town == member.town
                 and self._issues[i].size >= p.sole_min
                 and abs(member.created_at - self._issues[i].last_seen) <= p.gap]
        if len(large) != 1:
            return None
        if self._issues[large[0]].centroid_cosine(member.view.words) >= p.sole_cosine:
            return large[0]
        # the utility's answer, relayed: the cause or the wait, in words the complaints never used
        return large[0] if p.sole_relayed and relays_answer(member) else None

    def _evidence(self, issue: OpenIssue, member: Member) -> Evidence:
        p, words = self.params, member.view.words
        nearest = max((cosine(words, m.view.words) for m in issue.members[-p.nearest_members:]), default=0.0)
        return Evidence(
            centroid=issue.centroid_cosine(words), nearest=nearest,
            said=min(1.0, member.view.mass / p.low_info_mass),
            agreement=topic_agreement_of(member, issue, p), place=self._place_score(issue, member.view),
            kind=shares_kind(member, issue, p.nearest_members) or shares_county(member, issue, p),
            hall=p.hall_apart and hall_post_apart(member, issue, p.nearest_members))

    def _score(self, issue: OpenIssue, member: Member, sole: bool = False,
               evidence: Evidence | None = None) -> float | None:
        p = self.params
        at = member.created_at
        apart = abs(at - issue.last_seen)
        if apart > p.late_gap or at - issue.first_seen > p.span:
            return None
        found = evidence or self._evidence(issue, member)
        lexical = p.nearest_weight * found.nearest + (1 - p.nearest_weight) * found.centroid
        said, agreement, place = found.said, found.agreement, found.place
        score = said * lexical + (1 - said) * p.low_info_prior
        if apart > p.gap and place < 0:
            return None  # a late post naming another place: the next matter there is a new one
        kind = p.kind_bonus > 0 and agreement >= 0 and found.kind
        if apart > p.gap and issue.size < p.late_min_size and place < p.place_bonus \
                and not (kind and p.kind_late):
            return None  # a lone post of the day before is continued by one naming its place or kind
        score += p.kind_bonus if kind else 0.0
        if apart > p.gap and place == p.place_open:
            place = p.late_place_open
        score += place
        if agreement > 0:
            score += p.topic_bonus * agreement * (p.informed_topic_share * said + 1 - said)
        elif agreement < 0:
            score += p.topic_penalty * agreement
        score -= unplaced_penalty(member, issue, p, said * lexical)
        # a burst draws its township's posts that say its matter in other words, not those a shared
        # place places; a busy issue of no known township draws no township's posts by being busy
        # the township's one matter of the hours draws its posts of other words too (``_sole``); a
        # post drawn by both takes the larger; a post of the service hall's queue is drawn by neither
        # when the issue is an outage that does not name the hall
        hall = found.hall
        drawn = p.sole_bonus if sole and not hall else 0.0
        if not hall and member.town and member.town == issue.town and agreement >= 0 \
                and 0 <= place < p.place_bonus and apart <= p.busy_window:
            drawn = max(drawn, p.busy_bonus * self._busy(issue, at))
        if agreement >= 0 and 0 <= place < p.place_bonus:
            score += drawn
        hours = min(apart, p.gap).total_seconds() / 3600
        return score - p.decay_per_hour * hours - (p.late_margin if apart > p.gap else 0.0)

    def _busy(self, issue: OpenIssue, at: datetime) -> float:
        """0..1: how many posts the issue had in the ``busy_window`` before ``at`` (log scale)."""
        since = at - self.params.busy_window
        recent = sum(1 for m in issue.members if since <= m.created_at <= at)
        # 0 below ``busy_min`` posts, then log2 of the posts counted from there (1 at ``busy_full``)
        p, extra = self.params, recent - self.params.busy_min + 2
        return min(1.0, math.log2(extra) / math.log2(p.busy_full - p.busy_min + 2)) if extra > 1 else 0.0

    def _candidates(self, town: str, at: datetime) -> list[str]:
        """The township's issues last active within ``late_gap`` of the post, at most ``max_candidates``
        (every township's, for a post without one).

        Issues are kept in order of activity, so the walk from the most recent stops
        at the first one idle since well before the window.
        """
        # a post that names no township (no region, none in the text) may be about any township's
        # matter: the most recently active issues of all townships are its candidates
        if not town:
            return sorted(self._recent(self._issues, at))
        found = self._recent(self._by_town.get(town, OrderedDict()), at)
        if "" in self._by_town and len(found) < self.params.max_candidates:
            # issues founded by a post of no known township that no township's post has joined yet
            found += self._recent(self._by_town[""], at)[:self.params.max_candidates - len(found)]
        return sorted(found)

    def _recent(self, issues: Reversible[str], at: datetime) -> list[str]:
        """Of issues kept in order of activity: those last active within ``late_gap`` of ``at``, at
        most ``max_candidates``: those last active nearest to ``at``, most recently active first.

        In time order (each issue of the walk last active no later than the one before, and none after
        the post) the most recently active are the nearest, and the walk stops at the first
        ``max_candidates``, as it always did. Otherwise it goes on through at most ``CANDIDATE_POOL`` x
        ``max_candidates`` issues of the window and keeps the nearest in time. Out of order (a
        partition read ahead of another: a replay, a back-fill, a consumer lagging on one
        partition), the issues the other partition had touched, minutes or hours from a late post,
        were the first ten, and forty posts of one matter that named no township became five issues.
        """
        window, pool = self.params.late_gap, []
        wanted, limit = self.params.max_candidates, self.params.max_candidates * CANDIDATE_POOL
        in_order, previous = True, at  # each issue last active no later than the one before, and ``at``
        for issue_id in reversed(issues):
            last = self._issues[issue_id].last_seen
            if last < at - window - self.params.gap:
                break
            if abs(last - at) <= window:
                pool.append(issue_id)
                in_order = in_order and last <= previous
                previous = last
                if len(pool) >= (wanted if in_order else limit):
                    break
        if len(pool) <= wanted:
            return pool
        nearest = sorted(range(len(pool)), key=lambda k: (abs(self._issues[pool[k]].last_seen - at), k))
        return [pool[k] for k in sorted(nearest[:wanted])]

    def _place_score(self, issue: OpenIssue, post: TextView) -> float:
        if not post.places and not issue.places:
            return 0.0
        if post.places & issue.places.keys() or post.names(issue.place_stems.keys()):
            return self.params.place_bonus
        if any(stem(place) in issue.recent_text for place in post.places):
            return self.params.place_bonus
        if post.places and issue.places:
            return -self.params.place_conflict
        return self.params.place_open

    def _add(self, issue_id: str, town: str, member: Member) -> None:
        issue = self._issues.get(issue_id)
        if issue is None:
            issue = OpenIssue(issue_id, town, member.created_at, member.created_at)
            self._issues[issue_id] = issue
            self._by_town.setdefault(town, OrderedDict())[issue_id] = None
        elif town and not issue.town and not keeps_no_town(issue, self.params):
            self._rehome(issue, town)
        issue.first_seen = min(issue.first_seen, member.created_at)
        issue.last_seen = max(issue.last_seen, member.created_at)
        issue.members.append(member)
        if len(issue.members) > self.params.max_members:
            self._let_go(issue, issue.members.pop(1))  # keep the founder and the most recent members
        issue.shift_centroid(member.view.words, 1.0)
        issue.shift_topics(member, 1, self.params.soft_topic_smoothing)
        issue.count_places(member.view.places, 1)
        issue.refresh(self.params.nearest_members, self.params.specific_topic_first)
        issue.size += 1
        if names_county(member, self.params) and county_wide(issue, self.params):
            self._county[issue_id] = None
            self._county.move_to_end(issue_id)
        self._issues.move_to_end(issue_id)
        for town in (issue.town, *self._also_in.get(issue_id, ())):
            self._by_town[town].move_to_end(issue_id)
        self._post_issue[member.post_id] = issue_id
        self._post_issue.move_to_end(member.post_id)
        while len(self._post_issue) > self.params.max_posts:
            self._distance.pop(self._post_issue.popitem(last=False)[0], None)
        while len(self._issues) > self.params.max_issues:
            self._drop_issue(next(iter(self._issues)))

    @staticmethod
    def _let_go(issue: OpenIssue, member: Member) -> None:
        """Take what a member beyond the kept ones added out of its issue's words and places: they
        describe the members kept. Counted in for good, an issue's places and words grew with every
        post it ever had (posts naming 600 villages each: 150,000 places in one issue of 250 posts,
        49 MB, and every merge comparison of two such issues as long). Its topics and size still
        count every post (at most one entry a topic)."""
        issue.shift_centroid(member.view.words, -1.0)
        issue.count_places(member.view.places, -1)

    def _take(self, post_id: str) -> Member | None:
        issue_id = self._post_issue.pop(post_id, None)
        issue = self._issues.get(self.resolve(issue_id)) if issue_id else None
        if issue is None:
            return None
        for i, member in enumerate(issue.members):
            if member.post_id == post_id:
                del issue.members[i]
                issue.shift_centroid(member.view.words, -1.0)
                issue.shift_topics(member, -1, self.params.soft_topic_smoothing)
                issue.count_places(member.view.places, -1)
                issue.topics = +issue.topics
                issue.refresh(self.params.nearest_members, self.params.specific_topic_first)
                issue.size -= 1
                return member
        return None

    def _rehome(self, issue: OpenIssue, town: str) -> None:
        """An issue founded by a post of no known township takes the township of the first post
        of a known one that joins it (so that township's later posts find it)."""
        unplaced = self._by_town.get("", OrderedDict())
        unplaced.pop(issue.issue_id, None)
        if not unplaced:
            self._by_town.pop("", None)
        issue.town = town
        self._by_town.setdefault(town, OrderedDict())[issue.issue_id] = None

    def _drop_issue(self, issue_id: str) -> OpenIssue | None:
        self._county.pop(issue_id, None)
        issue = self._issues.pop(issue_id, None)
        if issue is not None:
            for town in (issue.town, *self._also_in.pop(issue_id, ())):
                town_issues = self._by_town.get(town, OrderedDict())
                town_issues.pop(issue_id, None)
                if not town_issues:
                    self._by_town.pop(town, None)
        return issue

    def _advance(self, at: datetime) -> None:
        """Forget issues idle for longer than ``span + late_gap`` before the newest post seen.

        The margin beyond ``gap`` keeps issues for posts that arrive late (a batch
        mixes partitions; ingest back-fills); whether a post may join is decided
        by its own time (``_score``), not by this horizon.
        """
        if self._now is None or at > self._now:
            self._now = at
        horizon = self._now - self.params.late_gap - self.params.span
        while self._issues:
            oldest = next(iter(self._issues.values()))
            if oldest.last_seen >= horizon:
                break
            self._drop_issue(oldest.issue_id)
