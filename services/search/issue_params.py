"""The grouping's parameters (``grouping.py``), in one place.

Each value was chosen on the development sets (``data/issues/dev*.jsonl``) with the default
model's topics as the indexer sees them, by leaving one set out (``bench/bench_issues.py``
``--loo``, ``--loo-dominant``, ``--loo-second``, ``--loo-days``, ``--loo-sole``,
``--loo-relay``, ``--loo-voice``, ``--loo-soft``, ``--loo-kind``, ``--loo-places``, ``--loo-county``,
``--loo-county-kinds``; ``--loo-gates --apart`` leaves one of the sets written apart out);
docs/search.md says how, round by round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.search.issue_text import VOICE, Voice


@dataclass(frozen=True)
class GroupingParams:
    """Tuned on the development sets (data/issues/dev*.jsonl), each value kept when chosen on the
    others it also held on the one left out, with the default model's topics as the indexer sees
    them (``bench/bench_issues.py --tune``, ``--loo``); see docs/search.md."""

    threshold: float = 0.15
    gap: timedelta = timedelta(hours=3)
    # beyond ``gap`` and up to ``late_gap`` after its last post, a post joins an issue only on
    # strong evidence (words and place): a matter still discussed the next day
    late_gap: timedelta = timedelta(hours=24)
    late_margin: float = 0.10
    # beyond ``gap``, an issue of fewer posts is open only to a post naming its place: a lone post
    # of the day before is not the matter the next morning's post continues (it would draw it away
    # from the township's matter of this morning)
    late_min_size: int = 2
    # an issue is open for this long after its first post: a matter over several days (a rumour, a
    # meter replacement's bills) on the sets written apart (docs/search.md, *The fourteenth round*)
    span: timedelta = timedelta(hours=96)
    nearest_weight: float = 0.6  # word score = this x nearest member + the rest x centroid
    place_bonus: float = 0.45
    place_conflict: float = 0.70
    place_open: float = 0.10  # one of the two names no place: the township's matter may be the same
    # a post of no known township (no region, none named) against a township's issue: it may be
    # about any township's matter: topic and hour alone do not place it, words or a place must
    unplaced_penalty: float = 0.25
    # the penalty less this x the post's word score: words that say the issue's matter place a post
    # that names no township; topic and hour alone do not
    unplaced_words_relief: float = 0.5
    unplaced_pair_penalty: float = 0.25  # the same for a post and an issue both of no known township
    unplaced_pair_relief: float = 1.0  # its relief by the post's words, as ``unplaced_words_relief``
    # a post without a region is placed in the township its text names (short forms too:
    # "蓝田这边", "石龙+1"), among the configured ones and those other posts carried (issue_towns.py)
    infer_township: bool = True
    # and in the one whose short form opens a clause, whatever follows it ("高塘新装的智能表")
    leading_township: bool = True
    late_place_open: float = 0.0  # the same beyond ``gap``: a later post joins on place or words
    topic_bonus: float = 0.30
    topic_penalty: float = 0.30
    # the classifier's second choice for a post (``open_issues.post_agreement``; 0: off): the
    # issue's topic as the second choice, scored within ``second_same_margin`` of the first,
    # counts as the same topic; a second choice compatible with the issue's topic, within
    # ``second_margin``, makes an incompatible topic compatible
    second_same_margin: float = 0.5
    second_margin: float = 0.3
    # the topic term read from the classifier's distributions (``open_issues.soft_agreement``: the
    # post's topic and second choice at their scores against the mean of the issue's posts'),
    # in place of the argmax, the second-choice margins and the issue's most frequent topic; a post
    # without scores is read as before
    soft_topics: bool = True
    # the issue's distribution: the posterior of one topic for its posts (each post's read as
    # evidence, smoothed by this), or their mean (0)
    soft_topic_smoothing: float = 0.02
    # an issue's topic (its id, the issue-level step): on a tie of counts a topic beats ``other``
    specific_topic_first: bool = False
    informed_topic_share: float = 1.0  # of the topic bonus, for a post that says enough (words decide)
    decay_per_hour: float = 0.02
    low_info_mass: float = 20.0  # below this much said, the word score is blended with the prior
    low_info_prior: float = 0.35
    max_members: int = 40
    nearest_members: int = 6  # the word score compares with this many of an issue's latest members
    max_candidates: int = 10  # per post: the township's most recently active open issues
    refine: int = 3  # candidates compared member by member (the others by centroid only)
    max_issues: int = 50_000
    max_posts: int = 500_000
    # issue-level step (``IssueMerge``): after a post, its issue is merged with the open issue of
    # its township of a compatible topic, overlapping in time or within ``merge_gap``, that scores
    # highest by the cosine of the two centroids + shared place + same topic + both of >= 2 posts,
    # if that reaches ``merge_threshold``; the older issue's id survives
    merge_threshold: float = 0.4  # 0.3 until the fourteenth round
    merge_gap: timedelta = timedelta(hours=1)
    merge_place_bonus: float = 0.45
    merge_topic_bonus: float = 0.30
    merge_size_bonus: float = 0.15
    # an issue of <= ``dominant_small`` posts naming no place of its own beside one of >= ``dominant_min``
    # of a compatible topic, up to ``dominant_gap`` apart: + this (``issue_merging.dominates``; 0: off)
    dominant_bonus: float = 0.25
    dominant_min: int = 3
    dominant_small: int = 1
    dominant_gap: timedelta = timedelta(hours=3)
    # two issues of >= ``merge_place_min`` posts each sharing a place may be up to this far apart:
    # one village's matter, raised again the next morning (the crew's thanks for 红星村's outage)
    merge_place_gap: timedelta = timedelta(hours=12)
    merge_place_min: int = 2
    # two issues of >= ``companion_min`` posts each, of compatible topics but not the same (a price
    # rumour and the policy questions it raises): + this (``issue_merging.companions``; 0: off)
    companion_bonus: float = 0.15
    companion_min: int = 2
    # a post that joins its township's issue and also scores ``threshold`` against an issue of no
    # known township merges the two (``IssueGrouper._bridge``)
    bridge_unplaced: bool = True
    # a matter many are raising right now draws the township's posts of its topic (or a compatible
    # one) that name no other place: + this x min(1, log2(n - busy_min + 2) / log2(busy_full -
    # busy_min + 2)) for the issue's n posts in the last ``busy_window``; 0 when n < ``busy_min``
    busy_bonus: float = 0.45
    busy_window: timedelta = timedelta(hours=1)
    busy_full: int = 8
    busy_min: int = 3
    # the township's one matter of the hours: when exactly one issue of the post's township holds
    # >= ``sole_min`` posts and was active within ``gap`` of it, the township's posts of a compatible
    # topic that name no other place and share at least ``sole_cosine`` of their words with it
    # (centroid) score + this (``IssueGrouper._sole``; 0: off)
    sole_bonus: float = 0.2
    sole_min: int = 3
    sole_cosine: float = 0.02
    # ... or, without the shared words, a service post relaying the utility's answer (``说``:
    # ``打客服说系统在维护``), which says the cause or the wait, not the complaint
    # (``open_issues.relays_answer``; False: off)
    sole_relayed: bool = True
    # how a post's wording is read (``issue_text.Voice``): traditional characters written simplified,
    # dialect words and input-method slips joined to their standard forms (莫得电 → 停电)
    voice: Voice = VOICE
    # a post and an issue of one township naming one kind of slow matter (``issue_matters``: meters,
    # a new connection, solar, burned appliances, a pole, the price, street lamps): + this, and
    # with ``kind_late`` an issue of one post stays open beyond ``gap`` to such a post (0: off)
    kind_bonus: float = 0.5
    kind_late: bool = True
    # a post and an issue both of these topics, one or both of no township, pay no penalty for it: a
    # matter of the whole county (the app, online payment; ``issue_county``)
    county_topics: frozenset[str] = frozenset({"online_service"})
    # an issue of a county's topic founded by a post of no township keeps none when a township's
    # post joins it, so every township's later posts still see it (``issue_county.keeps_no_town``)
    county_unhomed: bool = True
    # a county-wide kind of matter (``issue_county.COUNTY_KINDS``: the app's payment failing, the
    # price): when issues founded by posts naming one, active within ``gap``, hold such posts of
    # ``county_towns`` townships or more, they are merged into one issue open to every township's
    # posts naming it (``IssueGrouper._county_step``; empty: off)
    county_kinds: frozenset[str] = frozenset({"payment", "price"})
    county_towns: int = 3
    # a post naming the service hall's queue against an outage issue that does not name it is not
    # drawn by its burst or as the township's one matter, and the two issues are not merged
    # (``issue_matters.hall_post_apart``, ``hall_issues_apart``; False: off)
    hall_apart: bool = True
    # the issue-level step for two issues of no known township too: one county-wide matter whose
    # paraphrases, read out of time order (two partitions), founded two issues (False: off; no
    # change on any development set, docs/search.md)
    merge_unplaced: bool = True
    # the learned join score (``issue_model``, docs/search.md *The learned join score*): a post's
    # candidates are scored by the model trained on the development sets, which reads the rules'
    # evidence and their score, and the post joins the most probable one at the model's threshold.
    # Off by default: held out it gains F1 but joins posts naming two places of one township within
    # the hour, and splits a county-wide burst of no township the rules keep whole (docs/search.md)
    learned: bool = False
    # the model also sees this many other recently active issues, whatever their township (a
    # county-wide matter whose posts carry their senders' townships), and ``learned_refine`` of all
    # the candidates, ranked roughly (another township: - ``learned_other_town``), are scored
    learned_wide: int = 10
    learned_refine: int = 5
    learned_other_town: float = 0.3

