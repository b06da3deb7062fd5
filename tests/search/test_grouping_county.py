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


def test_a_county_matter_founded_of_no_township_stays_open_to_every_township() -> None:
    # the app's first post names no township; a post of 柘林镇 joins it, then one of 蒲田乡: the issue
    # must not have become 柘林镇's (a township's post sees only its own and unplaced issues)
    app = [("app打不开，一直转圈", 0.0, None), ("网上缴费交不了，app报错", 0.2, "柘林镇"),
           ("app一直转圈，交不了电费", 0.4, "蒲田乡")]

    def issues(params: GroupingParams) -> list[str]:
        grouper = IssueGrouper(params)
        return [grouper.assign(post(i, text, hours, region=region, topic="online_service")).issue_id
                for i, (text, hours, region) in enumerate(app)]

    assert len(set(issues(GroupingParams()))) == 1
    assert len(set(issues(replace(GroupingParams(), county_unhomed=False)))) == 2


def test_an_issue_of_no_township_of_another_topic_takes_its_first_township() -> None:
    grouper = IssueGrouper()
    outage = grouper.assign(post(0, "停电了，黑漆漆的", 0, region=None)).issue_id
    assert grouper.assign(post(1, "停电了，黑漆漆的一片", 0.1, region="柘林镇")).issue_id == outage
    # the outage is now 柘林镇's: another township's post of it is not compared with it
    assert grouper.assign(post(2, "停电了，黑漆漆的一片", 0.2, region="蒲田乡")).issue_id != outage
