"""The kind of slow matter a post names, for the grouping (pure).

A township's slow matter — new meters' bills, a new connection waiting for its meter, a solar
connection's backlog, appliances burned by a surge and the compensation asked for — gathers a
post every few hours over a day or two, each in other words and read as another topic (billing,
service, rumour, energy use, other): ``光伏并网申请交了二十天了还没批`` in the morning,
``问营业厅光伏的事，说要等现场勘查`` in the afternoon, ``光伏并网太慢了`` the next day. Their
word cosine is small (the corpus weights these words little: many posts speak of meters), no
burst draws them, and beyond ``gap`` an issue of one post is closed to them. What they share is the
*kind* of matter they name, a small lexicon of the utility's slow matters below (domain knowledge,
like ``issue_text``'s dialect words: not a list of any set's posts). Outages are left out on
purpose: the same village's outage the next evening is a new matter, while a township's solar
backlog or its meter replacement is one matter all week.

``IssueGrouper._score`` reads :func:`shares_kind` for a post and an issue of the same township:
``GroupingParams.kind_bonus`` more, and an issue of one post stays open beyond ``gap`` to it
(``kind_late``). docs/search.md, *The tenth round*.

The service hall's queue is the opposite case: a matter of its own that a township's outage of the
same hours draws (the hall is busy that morning, its posts read as service, compatible with an
outage, and the outage's burst draws the township's posts of compatible topics). A post naming the
hall is not drawn by an outage issue that does not name it (:func:`hall_post_apart`), and the two
issues are not merged (:func:`hall_issues_apart`; ``GroupingParams.hall_apart``, docs/search.md,
*The twelfth round*).
"""

from __future__ import annotations

import re
from functools import lru_cache

from services.search.open_issues import Member, OpenIssue

# each kind: words that name it (simplified, lower case, as ``issue_text.clean`` reads a post)
KINDS: dict[str, str] = {
    # the meters: replaced, read, checked (the bills that follow them)
    "meter": "电表|换表|新表|旧表|老表|校表|表计|智能表|换了表|底数|集抄|抄表",
    # a new connection: applied for, waiting for its meter
    "connection": "报装|装表|接电|新装|动力电|bz",
    # a rooftop solar connection
    "solar": "光伏|并网|gf",
    # appliances burned by a surge, and who pays for them
    "damage": "烧坏|烧了|烧毁|冒烟|赔偿|赔不赔|谁赔|哪个赔|赔付|损坏",
    # a leaning pole, a sagging line
    "pole": "电线杆|电杆|线杆|杆子|立杆|倾斜|电线垂|线垂",
    # a change of the price of electricity, a rumour about it (not a question about the tariff)
    "price": "电价.{0,4}涨|涨.{0,4}电价|电价上调|电价调整|调价|涨价|听证",
    # the street lamps
    "lamp": "路灯",
}
_PATTERNS = {kind: re.compile(words) for kind, words in KINDS.items()}


@lru_cache(maxsize=50_000)  # a view's text is immutable, and copies are common
def kinds(text: str) -> frozenset[str]:
    """The kinds of slow matter a (cleaned) text names."""
    return frozenset(kind for kind, pattern in _PATTERNS.items() if pattern.search(text))


def issue_kinds(issue: OpenIssue, latest: int) -> frozenset[str]:
    """The kinds named by an issue's founder or its ``latest`` members (bounded work per issue)."""
    found: set[str] = set(kinds(issue.members[0].view.text)) if issue.members else set()
    for member in issue.members[-latest:]:
        found |= kinds(member.view.text)
    return frozenset(found)


def shares_kind(member: Member, issue: OpenIssue, latest: int) -> bool:
    """Whether a post and an issue of its township name one kind of slow matter."""
    named = kinds(member.view.text)
    return bool(named and member.town and member.town == issue.town and named & issue_kinds(issue, latest))


# the service hall: its queue, its windows (not the app's "online hall", 网上营业厅)
_HALL = re.compile(r"(?<!网上)营业厅|排队|排了.{0,6}队|窗口")
# ... not its telephone: a call that is not answered is the outage's (``营业厅电话打不通``)
_CALL = re.compile(r"电话|95598|客服")


@lru_cache(maxsize=50_000)
def names_hall(text: str) -> bool:
    """Whether a (cleaned) text names the service hall, its queue or its windows."""
    return bool(_HALL.search(text)) and not _CALL.search(text)


def hall_post_apart(member: Member, issue: OpenIssue, latest: int) -> bool:
    """Whether a post names the service hall and an outage issue does not (its founder and its
    ``latest`` members): the queue at the hall in the hours of the township's outage is its own matter."""
    if issue.topic != "outage" or not names_hall(member.view.text):
        return False
    founder = issue.members[:1]
    return not any(names_hall(m.view.text) for m in [*founder, *issue.members[-latest:]])


def hall_issues_apart(issue: OpenIssue, other: OpenIssue, latest: int) -> bool:
    """Whether one of two issues was founded by a post naming the service hall and the other is an
    outage that does not name it: the hall's queue and the township's outage, not merged."""
    return any(hall.members and hall_post_apart(hall.members[0], outage, latest)
               for hall, outage in ((issue, other), (other, issue)))
