"""The township's one matter of the hours draws a service post relaying the utility's answer, which
shares no word with the complaints; and energy use (new connections, solar) is compatible with
service, where the service hall's answers about it are read."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.open_issues import member_of, relays_answer, topic_agreement
from tests.search import factory

TZ = timezone(timedelta(hours=8))
T0 = datetime(2027, 3, 3, 8, 50, tzinfo=TZ)
# the rule off, and the dominant-issue merge off (it would not merge the answer either: no shared word)
NO_RELAY = replace(GroupingParams(), sole_relayed=False, dominant_bonus=0.0)
# one morning's payment failures in 荷塘乡, a post every half hour: no burst
APP = [(0, "荷塘乡用掌上电力交电费一直失败", "billing"),
       (30, "APP付款提示网络异常，交不进去", "billing"),
       (55, "电费交不进去，试了好几次", "billing")]
# what the service line said: the cause, in words none of the complaints used
ANSWER = "打客服说系统在维护"


def _post(n: int, minutes: float, text: str, topic: str, region: str = "荷塘乡") -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes))


def _app(grouper: IssueGrouper) -> str:
    ids = {grouper.assign(_post(n, minutes, text, topic)).issue_id
           for n, (minutes, text, topic) in enumerate(APP)}
    assert len(ids) == 1
    return ids.pop()


def test_a_relayed_answer_joins_the_townships_one_matter() -> None:
    grouper = IssueGrouper()
    app = _app(grouper)
    answer = _post(9, 80, ANSWER, "service")
    words = member_of(answer).view.words
    complaints = [member_of(_post(0, 0, text, topic)).view.words for _, text, topic in APP]
    assert all(not words.keys() & said.keys() for said in complaints)  # no word shared
    assert grouper.assign(answer).issue_id == app
    assert grouper.take_merges() == []  # joined as a post
    alone = IssueGrouper(NO_RELAY)
    app = _app(alone)
    assert alone.assign(answer).issue_id != app


def test_no_draw_without_an_answer_or_beside_two_matters_or_in_another_township() -> None:
    grouper = IssueGrouper(replace(GroupingParams(), dominant_bonus=0.0))
    app = _app(grouper)
    assert grouper.assign(_post(10, 80, "营业厅几点下班", "service")).issue_id != app  # a question
    assert grouper.assign(_post(11, 85, ANSWER, "service", region="竹山镇")).issue_id != app
    busy = IssueGrouper(replace(GroupingParams(), dominant_bonus=0.0))
    app = _app(busy)
    # the same morning 荷塘乡's 新街 loses power: the township has two matters, neither is the one
    for n, minutes in enumerate((60, 65, 70), start=20):
        busy.assign(_post(n, minutes, "新街停电了，什么时候来电", "outage"))
    assert busy.assign(_post(12, 80, ANSWER, "service")).issue_id != app


def test_relays_answer_wants_a_service_post_that_says_what_was_said() -> None:
    assert relays_answer(member_of(_post(1, 0, ANSWER, "service")))
    assert relays_answer(member_of(_post(2, 0, "去供电所登记，说要等调查结果", "service")))
    assert not relays_answer(member_of(_post(3, 0, "客服电话一直打不通", "service")))  # no answer
    assert not relays_answer(member_of(_post(4, 0, "听说是变压器烧了", "rumor")))  # hearsay, not service


def test_a_service_answer_about_a_solar_connection_joins_it() -> None:
    assert topic_agreement("service", "energy_use") == 0  # compatible, no longer against each other
    grouper = IssueGrouper()
    solar = [(0, "新塘镇光伏并网申请交了一个月还没批"), (100, "光伏并网要走哪些流程"),
             (160, "光伏板装好了，就是不给并网")]
    ids = {grouper.assign(_post(n, minutes, text, "energy_use", "新塘镇")).issue_id
           for n, (minutes, text) in enumerate(solar)}
    assert len(ids) == 1
    # the service hall's answer that afternoon shares only 并网 with them: the township's one matter
    # draws it now that its topic is not held against it (incompatible, it stood alone)
    answer = grouper.assign(_post(5, 220, "去问并网的事，营业厅让等", "service", "新塘镇"))
    assert answer.issue_id in ids
