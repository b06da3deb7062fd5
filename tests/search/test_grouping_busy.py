"""A busy issue and the township's short posts; issues founded by posts of no known township."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from tests.search import factory

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 12, 14, 19, 0, tzinfo=TZ)
OUTAGE = ["石门镇杨柳村停电了，什么时候来电？", "杨柳村突然没电了，咋回事", "杨柳村一片漆黑，路灯都不亮",
          "请问杨柳村什么时候恢复供电", "杨柳村整片都没电，冰箱里的肉要坏了", "杨柳村停电，孩子作业写不了"]
QUIET = replace(GroupingParams(), busy_bonus=0.0, sole_bonus=0.0)  # no burst, no one matter


def _post(n: int, text: str, minutes: float, region: str | None = "石门镇",
          topic: str | None = "outage") -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes))


def _busy(grouper: IssueGrouper) -> str:
    """Six posts about one village's outage in 50 minutes; returns their issue."""
    issues = {grouper.assign(_post(i, text, 10 * i)).issue_id for i, text in enumerate(OUTAGE)}
    assert len(issues) == 1
    return issues.pop()


def test_a_busy_issue_draws_the_townships_posts_that_say_it_in_other_words() -> None:
    for params, joins in ((GroupingParams(), True), (QUIET, False)):
        grouper = IssueGrouper(params)
        outage = _busy(grouper)
        vague = grouper.assign(_post(10, "水泵抽不了水，田里等着浇", 55, topic="other")).issue_id
        assert (vague == outage) is joins


def test_a_busy_issue_does_not_draw_another_place_another_matter_or_another_township() -> None:
    grouper = IssueGrouper()
    outage = _busy(grouper)
    others = [_post(10, "高桥村也停电了吗", 55),  # another village: another outage
              _post(11, "这个月电费怎么这么高", 56, topic="billing"),
              _post(12, "水泵抽不了水，田里等着浇", 57, region="龙潭乡", topic="other"),
              _post(13, "水泵抽不了水，田里等着浇", 58, region=None, topic="other")]
    assert all(grouper.assign(post).issue_id != outage for post in others)


def test_a_busy_issue_draws_only_within_its_window() -> None:
    grouper = IssueGrouper(replace(GroupingParams(), sole_bonus=0.0))  # the burst alone
    outage = _busy(grouper)
    late = grouper.assign(_post(10, "水泵抽不了水，田里等着浇", 50 + 150, topic="other")).issue_id
    assert late != outage


def test_an_issue_founded_by_a_post_of_no_township_is_found_by_the_townships_posts() -> None:
    grouper = IssueGrouper()
    first = grouper.assign(_post(0, "杨柳村又停电了，这个月第三次了", 0, region=None)).issue_id
    placed = grouper.assign(_post(1, "杨柳村一片漆黑，路灯都不亮", 10)).issue_id
    echo = grouper.assign(_post(2, "同问", 12, topic="other")).issue_id
    assert first == placed == echo


def test_a_restart_rebuilds_the_township_of_such_an_issue() -> None:
    posts = [_post(0, "杨柳村又停电了，这个月第三次了", 0, region=None), _post(1, "杨柳村一片漆黑", 10),
             _post(2, "杨柳村突然没电了，咋回事", 20)]
    live = IssueGrouper()
    issues = [live.assign(post).issue_id for post in posts]
    restarted = IssueGrouper()
    for post, issue in zip(posts, issues, strict=True):
        restarted.remember(post, issue)
    echo = _post(3, "同问", 25, topic="other")
    assert restarted.assign(echo).issue_id == live.assign(echo).issue_id == issues[0]
