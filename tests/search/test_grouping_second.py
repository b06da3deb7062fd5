"""The classifier's second choice as topic evidence: a post of an outage that the classifier read
as billing, with outage a close second, joins the outage's issue; a confident billing post does not."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from services.search.documents import to_document
from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_live import post_signal, stored_signal
from services.search.issue_offline import group_rows
from services.search.open_issues import Member, member_of, post_agreement, runner_up
from tests.search.factory import make_post
from yuqing.contracts import Topic

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 12, 20, 19, 0, tzinfo=TZ)
OFF = replace(GroupingParams(), second_same_margin=0.0, second_margin=0.0)
OUTAGE = [(0, "松岗乡停电了，什么时候来电"), (30, "松岗乡这边全黑了，一直没电"),
          (70, "停电快两个小时了，松岗乡还没恢复")]
# read as billing by the model: it speaks of a bill, but it is this evening's outage
BILL_READ = "没收到账单就被断了，太不讲理"


def _member(topic: str, second: str | None, gap: float) -> Member:
    return member_of(PostSignal(post_id="m", text="x", created_at=T0, topic=topic,
                                second_topic=second, second_gap=gap))


def test_runner_up_is_the_best_other_topic_and_its_distance_below_the_topic() -> None:
    assert runner_up("billing", {"billing": 0.55, "outage": 0.35, "service": 0.10}) == ("outage", 0.2)
    # a rule chose the topic over the model's first choice: the second is as close as can be
    assert runner_up("rumor", {"outage": 0.6, "rumor": 0.3}) == ("outage", 0.0)
    assert runner_up("billing", {}) == (None, 1.0)
    assert runner_up(None, {"billing": 1.0}) == (None, 1.0)


def test_post_agreement_reads_a_close_second_choice() -> None:
    margins = {"same_margin": 0.5, "compatible_margin": 0.3}
    assert post_agreement(_member("billing", "outage", 0.2), "outage", **margins) == 1
    assert post_agreement(_member("billing", "outage", 0.7), "outage", **margins) == -1  # far second
    assert post_agreement(_member("safety", "outage", 0.4), "outage", **margins) == 1  # compatible -> same
    # employee is incompatible with an outage; service, its close second, is compatible
    assert post_agreement(_member("employee", "service", 0.25), "outage", **margins) == 0
    assert post_agreement(_member("employee", "service", 0.35), "outage", **margins) == -1
    assert post_agreement(_member("billing", "outage", 0.0), "outage", same_margin=0.0,
                          compatible_margin=0.0) == -1  # off: the topic alone
    # "other" as a second choice says nothing
    assert post_agreement(_member("billing", "other", 0.1), "other", **margins) == 0


def _outage_then(grouper: IssueGrouper, gap: float) -> tuple[str, str]:
    ids = {grouper.assign(PostSignal(post_id=f"p{n}", text=text, created_at=T0 + timedelta(minutes=m),
                                     region="松岗乡", topic="outage")).issue_id
           for n, (m, text) in enumerate(OUTAGE)}
    assert len(ids) == 1
    late = grouper.assign(PostSignal(post_id="bill", text=BILL_READ, created_at=T0 + timedelta(minutes=80),
                                     region="松岗乡", topic="billing", second_topic="outage",
                                     second_gap=gap))
    return ids.pop(), late.issue_id


def test_a_post_read_as_billing_with_outage_close_second_joins_the_outage() -> None:
    outage, bill = _outage_then(IssueGrouper(), gap=0.2)
    assert bill == outage
    outage, bill = _outage_then(IssueGrouper(), gap=0.8)  # the classifier was sure: billing
    assert bill != outage
    outage, bill = _outage_then(IssueGrouper(OFF), gap=0.2)  # the rule off
    assert bill != outage


def _rows(scores: dict[str, float] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": f"p{n}", "text": text, "created_at": (T0 + timedelta(minutes=m)).isoformat(),
         "region": "松岗乡", "topic": "outage"} for n, (m, text) in enumerate(OUTAGE)]
    late = {"id": "bill", "text": BILL_READ, "created_at": (T0 + timedelta(minutes=80)).isoformat(),
            "region": "松岗乡", "topic": "billing"}
    return [*rows, {**late, "topic_scores": scores} if scores else late]


def test_offline_grouping_reads_topic_scores_given_with_the_topic() -> None:
    joined = group_rows(_rows({"billing": 0.55, "outage": 0.40, "service": 0.05}), classify=None)
    assert len(set(joined)) == 1
    alone = group_rows(_rows(None), classify=None)  # no scores: the topic alone
    assert alone[-1] != alone[0]


def test_a_grouper_rebuilt_from_the_index_reads_the_second_choice_as_the_live_one() -> None:
    post = make_post(BILL_READ, external_id="second", topic=Topic.BILLING).model_copy(
        update={"topic_scores": {Topic.BILLING: 0.55, Topic.OUTAGE: 0.40, Topic.SERVICE: 0.05}})
    live = post_signal(post)
    assert (live.second_topic, live.second_gap) == ("outage", 0.15)
    assert stored_signal(to_document(post)) == live
