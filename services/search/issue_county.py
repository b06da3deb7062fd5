"""Matters of the whole county, for issue grouping (pure, no I/O).

The township gate (``grouping.py``) keeps the same complaint in two townships apart: an outage,
a leaning pole, a village's bills are matters of a place. Some matters are of no place: the app
or the online payment that fails all morning fails for every township at once, and its posts carry
whatever region their senders have, or none. A post of no township is penalised against a
township's issue (and against another of no township) unless its words place it, so such a matter
was one issue per township and one per post of no region (dev10's and dev11's app outages).

A post and an issue both of a topic of ``GroupingParams.county_topics`` (``online_service``), one
or both of no township, pay no penalty for it: words, topic and the hour decide. Posts of a
township still go to their township's issues first (the gate is kept: grouping such posts as of
no township whatever their region was measured and not kept, docs/search.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.search.open_issues import Member, OpenIssue

if TYPE_CHECKING:
    from services.search.issue_params import GroupingParams


def county_pair(member: Member, issue: OpenIssue, p: GroupingParams) -> bool:
    """Whether a post and an issue, one or both of no township, are both of a county's topic: one
    system's matter, where neither is unplaced for lack of a region."""
    unplaced = not member.town or not issue.town
    return unplaced and member.topic in p.county_topics and issue.topic in p.county_topics


def unplaced_penalty(member: Member, issue: OpenIssue, p: GroupingParams, words: float) -> float:
    """What a post scores less against an issue for a township missing on one side
    (``unplaced_penalty``) or on both (``unplaced_pair_penalty``), each relieved by the post's word
    score (``words``: how much it says x how well it says the issue's matter); nothing for a county's
    matter (``county_pair``), whose region says where its sender is, not where the matter is."""
    if county_pair(member, issue, p):
        return 0.0
    if bool(member.town) != bool(issue.town):
        return max(0.0, p.unplaced_penalty - p.unplaced_words_relief * words)
    if not member.town:
        return max(0.0, p.unplaced_pair_penalty - p.unplaced_pair_relief * words)
    return 0.0


def keeps_no_town(issue: OpenIssue, p: GroupingParams) -> bool:
    """Whether an issue of no township stays of none when a township's post joins it: a county's
    matter (``county_unhomed``; the app fails for every township at once), whose first township's
    post must not take it from the other townships' posts (dev12's app outage, 北门街道)."""
    return p.county_unhomed and not issue.town and issue.topic in p.county_topics
