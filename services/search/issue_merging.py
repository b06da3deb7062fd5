"""How much two open issues look like one matter, for the grouping's issue-level step (pure).

See ``grouping.py`` (``IssueGrouper._merge_step``) and docs/search.md, *Issue-level merging*.
"""

from __future__ import annotations

import math
from collections.abc import Container
from datetime import timedelta
from typing import TYPE_CHECKING

from services.search.issue_matters import hall_issues_apart
from services.search.issue_text import cosine
from services.search.open_issues import OpenIssue, compatible, topic_agreement

if TYPE_CHECKING:
    from services.search.issue_params import GroupingParams


def merge_score(issue: OpenIssue, other: OpenIssue, p: GroupingParams,
                corrected: Container[str]) -> float | None:
    """The cosine of the two centroids + a shared place + the same topic + both of >= 2 posts (and
    one of them dominant, ``dominates``, or both large enough to be ``companions``); None when they
    may not be merged (itself, corrected by a responder, another township, an incompatible topic,
    apart in time, two places and none shared)."""
    if other is issue or other.town != issue.town or other.issue_id in corrected:
        return None
    agreement = topic_agreement(issue.topic, other.topic)
    dominant = agreement == 0 and dominates(issue, other, p)
    allowed = max(p.merge_gap, p.dominant_gap) if dominant else p.merge_gap
    shared = issue.places.keys() & other.places.keys()
    if shared and min(issue.size, other.size) >= p.merge_place_min:
        allowed = max(allowed, p.merge_place_gap)  # one place's matter, raised again the next day
    if agreement < 0 or apart(issue, other) > allowed:
        return None
    if not shared and issue.places and other.places:
        return None  # two villages' outages of one afternoon are two matters
    if p.hall_apart and hall_issues_apart(issue, other, p.nearest_members):
        return None  # the hall's queue in the hours of the township's outage
    norms = issue.centroid_norm2 * other.centroid_norm2
    score = cosine(issue.centroid, other.centroid) / math.sqrt(norms) if norms > 1e-9 else 0.0
    if shared:
        score += p.merge_place_bonus
    if agreement > 0:
        score += p.merge_topic_bonus
    if issue.size >= 2 and other.size >= 2:
        score += p.merge_size_bonus
    if dominant:
        score += p.dominant_bonus
    elif agreement == 0 and companions(issue, other, p):
        score += p.companion_bonus
    return score


def apart(issue: OpenIssue, other: OpenIssue) -> timedelta:
    """How long between the two issues' posts (negative when they overlap in time)."""
    return max(other.first_seen - issue.last_seen, issue.first_seen - other.last_seen)


def dominates(issue: OpenIssue, other: OpenIssue, p: GroupingParams) -> bool:
    """One of the two holds at least ``dominant_min`` posts and the other at most ``dominant_small``:
    the township's matter of the hour, and a post or two about it that the classifier read as a
    compatible topic (the app outage's ``客服说系统升级`` as service, the new meters' ``新电表被调快了``
    as rumour). Words cannot join them (they share none); topic and township alone do not join
    two matters of comparable size."""
    small, large = sorted((issue, other), key=lambda i: (i.size, i.issue_id))
    # a small issue naming a place the large one does not is that place's own matter
    return (large.size >= p.dominant_min and small.size <= p.dominant_small
            and small.places.keys() <= large.places.keys())


def companions(issue: OpenIssue, other: OpenIssue, p: GroupingParams) -> bool:
    """Both hold at least ``companion_min`` posts (their topics compatible, not the same): two parts
    of one matter the classifier reads as two topics, each gathering its own posts (the price
    rumour and the policy questions it raises, an app's payment errors as billing and as online
    service). Their centroids share a few words; the bonus leaves them that short of the threshold,
    so two matters of one township and hour that share nothing stay apart."""
    return (min(issue.size, other.size) >= p.companion_min
            and compatible(issue.topic, other.topic))  # not ``other``: no topic said
