"""How much two open issues look like one matter, for the grouping's issue-level step (pure).

See ``grouping.py`` (``IssueGrouper._merge_step``) and docs/search.md, *Issue-level merging*.
"""

from __future__ import annotations

import math
from collections.abc import Container
from typing import TYPE_CHECKING

from services.search.issue_text import cosine
from services.search.open_issues import OpenIssue, topic_agreement

if TYPE_CHECKING:
    from services.search.grouping import GroupingParams


def merge_score(issue: OpenIssue, other: OpenIssue, p: GroupingParams,
                corrected: Container[str]) -> float | None:
    """The cosine of the two centroids + a shared place + the same topic + both of >= 2 posts; None
    when they may not be merged (itself, corrected by a responder, another township, an
    incompatible topic, apart in time, two places and none shared)."""
    if other is issue or other.town != issue.town or other.issue_id in corrected:
        return None
    agreement = topic_agreement(issue.topic, other.topic)
    if agreement < 0 or (other.first_seen - issue.last_seen > p.merge_gap
                         or issue.first_seen - other.last_seen > p.merge_gap):
        return None
    shared = issue.places.keys() & other.places.keys()
    if not shared and issue.places and other.places:
        return None  # two villages' outages of one afternoon are two matters
    norms = issue.centroid_norm2 * other.centroid_norm2
    score = cosine(issue.centroid, other.centroid) / math.sqrt(norms) if norms > 1e-9 else 0.0
    if shared:
        score += p.merge_place_bonus
    if agreement > 0:
        score += p.merge_topic_bonus
    if issue.size >= 2 and other.size >= 2:
        score += p.merge_size_bonus
    return score
