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

The model's topic does not say which matters are the county's: the app's failure is read as online
service, billing, outage or praise, and a township's own posts are read as online service too. What
the posts say does: a small lexicon of what fails or spreads for every township at once
(``COUNTY_KINDS``: the payment failing, a change of the price; domain words, not any set's posts). A
kind alone is not enough either (a township's own double deduction, a township's price rumour): issues
founded by posts naming one kind in the same hours are one matter when such posts come from
``county_towns`` townships or more (``IssueGrouper._county_step``); such an issue is then open to every
township's posts naming its kind, which pay no penalty for the township and score the kind's bonus
against it (``GroupingParams.county_kinds``, docs/search.md, *The thirteenth round*).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from services.search.open_issues import Member, OpenIssue

if TYPE_CHECKING:
    from services.search.issue_params import GroupingParams


# each county-wide kind of matter: words that name it (simplified, lower case, as ``issue_text.clean``
# reads a post): what fails for every township at once, or what every township hears at once
COUNTY_KINDS: dict[str, str] = {
    # the app or the online payment failing, and its recovery
    "payment": "交不了|交不进|交不上|充不进|充不上|缴费失败|支付失败|交费失败|扣了两次|扣两次|重复扣|"
               "未到账|没到账|余额没变|闪退|白屏|转圈|登录不上|登不上|系统繁忙|打不开|崩了|瘫了|能交了|"
               "可以交了|交成功",
    # a change of the price of electricity, the rumour about it and its denial
    "price": "电价.{0,4}涨|涨.{0,4}电价|电费要涨|涨电费|电价上调|电价调整|调价|涨价|电价没",
}
_COUNTY = {kind: re.compile(words) for kind, words in COUNTY_KINDS.items()}


@lru_cache(maxsize=50_000)
def county_kinds(text: str) -> frozenset[str]:
    """The county-wide kinds of matter a (cleaned) text names."""
    return frozenset(kind for kind, pattern in _COUNTY.items() if pattern.search(text))


def names_county(member: Member, p: GroupingParams) -> frozenset[str]:
    """The county-wide kinds (of ``county_kinds``) a post names."""
    return county_kinds(member.view.text) & p.county_kinds if p.county_kinds else frozenset()


def founder_county(issue: OpenIssue, p: GroupingParams) -> frozenset[str]:
    """The county-wide kinds an issue's founder names: the matter it was opened for."""
    return names_county(issue.members[0], p) if issue.members else frozenset()


def shares_county(member: Member, issue: OpenIssue, p: GroupingParams) -> bool:
    """Whether a post names the county-wide kind of matter an issue was founded for."""
    named = names_county(member, p)
    return bool(named and named & founder_county(issue, p))


def county_towns(issues: list[OpenIssue], p: GroupingParams) -> set[str]:
    """The townships whose posts in these issues name a county-wide kind of matter."""
    return {m.town for issue in issues for m in issue.members if m.town and names_county(m, p)}


def county_wide(issue: OpenIssue, p: GroupingParams) -> bool:
    """Whether an issue's posts naming a county-wide kind come from ``county_towns`` townships or
    more: the matter of the whole county, open to every township's posts naming its kind."""
    return bool(p.county_kinds) and len(county_towns([issue], p)) >= p.county_towns


def county_matter(issue: OpenIssue, recent: Iterable[OpenIssue], at: datetime, p: GroupingParams,
                  corrected: Container[str]) -> list[OpenIssue]:
    """The issues to merge into one county-wide matter, the oldest first (``[]``: none): ``issue`` and
    those of ``recent`` (newest first) active within ``gap`` of ``at``, founded by posts naming the kind
    ``issue``'s founder named, when their posts naming it come from ``county_towns`` townships or more.
    An issue of another matter that drew such a post (a township's new meters' bills) is left alone, as
    are issues a responder corrected. Work: the issues active within ``gap`` (one cached search each)."""
    named = founder_county(issue, p)
    if not named:
        return []
    found = [issue]
    for other in recent:
        if other.last_seen < at - p.gap:
            break
        if other is not issue and other.issue_id not in corrected and named & founder_county(other, p):
            found.append(other)
    if len(found) < 2 or len(county_towns(found, p)) < p.county_towns:
        return []
    return sorted(found, key=lambda i: (i.first_seen, i.issue_id))


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
    if county_pair(member, issue, p) or shares_county(member, issue, p):
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
