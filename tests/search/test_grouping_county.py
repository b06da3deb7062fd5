"""A matter of the whole county (the app or online payment failing for everyone): its posts of no
region and of several townships' regions are not kept apart for lack of a township
(``issue_county``), while a township's outage still does not draw posts of no township for it."""

from dataclasses import replace

from services.search.grouping import GroupingParams, IssueGrouper
from tests.search.factory import post

OFF = replace(GroupingParams(), county_topics=frozenset(), county_kinds=frozenset())  # neither rule
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


# the payment fails one morning for the whole county: each township's first post of it, read as
# billing, online service or outage, founds an issue in its own township
PAYMENT = [("交电费一直转圈圈，交不了", 0.0, "望江街道", "online_service"),
           ("用app交费扣了钱显示失败，余额没变", 0.05, "黄泥塘镇", "billing"),
           ("缴费页面白屏", 0.1, "鹤鸣镇", "online_service"),
           ("交了两次都没到账，钱扣了两次", 0.2, "杏坪镇", "billing")]
NO_COUNTY_KINDS = replace(GroupingParams(), county_kinds=frozenset())


def _payment(params: GroupingParams, posts: list[tuple[str, float, str, str]]) -> list[str]:
    """Each post's issue once all are grouped (an issue merged later stands for the one it joined)."""
    grouper = IssueGrouper(params)
    assigned = [grouper.assign(post(i, text, hours, region=region, topic=topic)).issue_id
                for i, (text, hours, region, topic) in enumerate(posts)]
    return [grouper.resolve(issue_id) for issue_id in assigned]


def test_a_payment_failing_in_three_townships_at_once_is_one_matter() -> None:
    assert len(set(_payment(GroupingParams(), PAYMENT))) == 1
    assert len(set(_payment(NO_COUNTY_KINDS, PAYMENT))) == 4


def test_a_county_matter_draws_a_later_township_s_post_naming_its_kind() -> None:
    later = [*PAYMENT[:3], ("我们双溪也交不了，欠费提醒短信都来了", 0.5, "双溪乡", "billing")]
    issues = _payment(GroupingParams(), later)
    assert issues[3] == issues[0]


def test_two_townships_naming_the_payment_are_not_yet_the_county_s_matter() -> None:
    # a double deduction in one township and a failed payment in another: each its own matter
    issues = _payment(GroupingParams(), PAYMENT[:2])
    assert issues[0] != issues[1]


def test_a_township_s_matter_that_drew_a_payment_post_is_not_merged_into_the_county_s() -> None:
    grouper = IssueGrouper()
    meters = [grouper.assign(post(i, text, hours, region="杏坪镇", topic="billing")).issue_id
              for i, (text, hours) in enumerate([("谭家冲村换表后电费翻了一倍", -1.0),
                                                 ("石板村换表以后电费也涨了", -0.8),
                                                 ("换了新表电费高得离谱", -0.6),
                                                 ("交了两次都没到账，钱扣了两次", -0.4)])]
    assert len(set(meters)) == 1  # 杏坪's meters drew its payment post
    assigned = [grouper.assign(post(10 + i, text, hours, region=region, topic=topic)).issue_id
                for i, (text, hours, region, topic) in enumerate(PAYMENT[:3])]
    issues = [grouper.resolve(issue_id) for issue_id in assigned]
    assert issues[0] == issues[1] == issues[2]  # 望江, 黄泥塘, 鹤鸣: the county's payment
    assert grouper.resolve(meters[0]) not in issues  # 杏坪's meters stay its own matter
