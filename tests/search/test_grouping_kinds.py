"""A township's slow matter (a solar connection's backlog, appliances burned by a surge) gathers a post
every few hours over two days, in other words and other topics: the kind of matter they name joins them
(``issue_matters``); another township's posts of that kind, and a kind named by no one, do not."""

from collections.abc import Sequence
from dataclasses import replace

from services.search.grouping import GroupingParams, IssueGrouper
from services.search.issue_matters import kinds
from tests.search.factory import post

WITHOUT = replace(GroupingParams(), kind_bonus=0.0)
# a solar connection waiting for its survey, raised every few hours over two days
SOLAR = [("屋顶的光伏板装好了，并网申请递上去三个礼拜没动静", 0, "energy_use"),
         ("到营业厅打听光伏的事，只说等人来现场看", 6, "service"),
         ("光伏什么时候能并网啊", 23, "energy_use"),
         ("供电所讲光伏勘查要排到下礼拜", 29, "service")]


def _issues(params: GroupingParams, posts: Sequence[tuple[str, float, str]]) -> list[str]:
    grouper = IssueGrouper(params)
    return [grouper.assign(post(i, text, hours, topic=topic)).issue_id
            for i, (text, hours, topic) in enumerate(posts)]


def test_a_slow_matter_s_posts_join_on_the_kind_they_name() -> None:
    assert len(set(_issues(GroupingParams(), SOLAR))) == 1
    assert len(set(_issues(WITHOUT, SOLAR))) == len(SOLAR)  # hours apart, few shared words: each alone


def test_burned_appliances_and_the_compensation_asked_the_next_morning_are_one_matter() -> None:
    burned = [("晚上来电那一下，家里电视冒烟了", 0, "energy_use"),
              ("隔壁的冰箱也烧坏了，电压忽高忽低", 0.3, "energy_use"),
              ("烧坏的东西供电所赔不赔", 13, "other"),
              ("去登记损坏的电器，说等核实", 15, "service")]
    assert len(set(_issues(GroupingParams(), burned))) == 1
    assert len(set(_issues(WITHOUT, burned))) > 1


def test_the_kind_does_not_cross_townships_nor_join_posts_naming_none() -> None:
    grouper = IssueGrouper()
    solar = grouper.assign(post(0, SOLAR[0][0], 0, topic="energy_use")).issue_id
    elsewhere = post(1, "光伏并网申请批下来要多久", 8, region="蒲田乡", topic="energy_use")
    assert grouper.assign(elsewhere).issue_id != solar
    assert grouper.assign(post(2, "空调一个月要用多少度电", 8, topic="energy_use")).issue_id != solar


def test_the_kinds_a_text_names() -> None:
    assert kinds("光伏并网申请交了") == {"solar"}
    assert kinds("换了新电表以后电费翻倍") == {"meter"}
    assert kinds("听说电价下个月要涨") == {"price"}
    assert kinds("阶梯电价是怎么算的") == frozenset()  # a question about the tariff, not a change of it
    assert kinds("停电了，什么时候来电") == frozenset()  # the next evening's outage is a new matter
