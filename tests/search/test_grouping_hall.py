"""The service hall's queue and a township's outage of the same hours are two matters: the outage's
burst does not draw the hall's posts, and the two issues are not merged (``issue_matters``,
``GroupingParams.hall_apart``); a call to the hall that is not answered is still the outage's."""

from dataclasses import replace

from services.search.grouping import GroupingParams, IssueGrouper
from services.search.issue_matters import names_hall
from tests.search.factory import post

OFF = replace(GroupingParams(), hall_apart=False)
# a village's outage one morning, a post every few minutes
OUTAGE = ["坳背村停电了，什么时候来电", "我家也没电", "坳背村全黑了", "冰箱停了，肉要坏了",
          "还没来电", "停了快一个小时了"]
QUEUE = ["棠梨营业厅排队排到门外了", "营业厅只开一个窗口，等了一个钟头"]


def _grouped(params: GroupingParams, late: list[str]) -> tuple[str, list[str]]:
    """The outage's issue and the issues of ``late``, posted among the outage's posts."""
    grouper = IssueGrouper(params)
    outage = [grouper.assign(post(i, text, i * 0.1)).issue_id for i, text in enumerate(OUTAGE)]
    found = [grouper.assign(post(10 + i, text, 0.55 + i * 0.05, topic="service")).issue_id
             for i, text in enumerate(late)]
    return grouper.resolve(outage[-1]), [grouper.resolve(i) for i in found]


def test_the_hall_s_queue_is_not_drawn_by_the_township_s_outage() -> None:
    outage, queue = _grouped(GroupingParams(), QUEUE)
    assert outage not in queue
    assert len(set(queue)) == 1  # the queue's two posts are one matter of their own
    outage, queue = _grouped(OFF, QUEUE)
    assert queue == [outage, outage]  # without the rule the outage's burst draws them


def test_a_call_to_the_hall_not_answered_is_still_the_outage_s() -> None:
    outage, call = _grouped(GroupingParams(), ["营业厅电话打不通"])
    assert call == [outage]


def test_what_names_the_hall() -> None:
    assert names_hall("棠梨营业厅排队排到门外了")
    assert names_hall("排了一下午队还没办上")
    assert not names_hall("网上营业厅交费一直失败")  # the app, not the hall
    assert not names_hall("营业厅电话打不通")
    assert not names_hall("停电了，什么时候来电")
