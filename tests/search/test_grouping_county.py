"""A matter of the whole county (the app or online payment failing for everyone): its posts of no
region and of several townships' regions are not kept apart for lack of a township
(``issue_county``), while a township's outage still does not draw posts of no township for it."""

from dataclasses import replace

from services.search.grouping import GroupingParams, IssueGrouper
from tests.search.factory import post

OFF = replace(GroupingParams(), county_topics=frozenset())
# the app fails one morning: a post of one township, then posts of no region, read as online service
APP = [("网上缴费交不了", 0.0, "柘林镇"), ("app打不开，一直转圈", 0.1, None),
       ("同问，缴费页面报错", 0.4, None), ("网上国网是不是崩了", 0.9, None)]


def _issues(params: GroupingParams) -> list[str]:
    grouper = IssueGrouper(params)
    return [grouper.assign(post(i, text, hours, region=region, topic="online_service")).issue_id
            for i, (text, hours, region) in enumerate(APP)]


def test_an_app_outage_s_posts_of_no_region_join_a_township_s_post_of_it() -> None:
    assert len(set(_issues(GroupingParams()))) == 1
    assert len(set(_issues(OFF))) > 1


def test_an_outage_post_of_no_township_is_still_unplaced() -> None:
    grouper = IssueGrouper()
    outage = grouper.assign(post(0, "坳背村停电了", 0, region="棠梨乡")).issue_id
    # no township, no shared words: it may be any township's outage
    assert grouper.assign(post(1, "屋里黑漆漆的，娃作业写不成", 0.2, region=None)).issue_id != outage
