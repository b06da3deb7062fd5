"""Topics read as the classifier's distributions: an issue whose most frequent topic is ``other``
by a tie, or one read half as outage and half as service, still agrees in part with an outage post;
a post without scores is read as before."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from services.search.documents import to_document
from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_live import post_signal, stored_signal
from services.search.issue_offline import group_rows
from services.search.open_issues import OpenIssue, agreement, member_of, soft_agreement
from tests.search.factory import make_post
from yuqing.contracts import Topic

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 12, 21, 19, 0, tzinfo=TZ)
SOFT = replace(GroupingParams(), soft_topics=True, soft_topic_smoothing=0.02)
HARD = replace(SOFT, soft_topics=False)


def _signal(n: int, topic: str, scores: dict[str, float] | None, text: str = "x") -> PostSignal:
    share = max(scores.values()) if scores else None
    ranked = sorted(((s, t) for t, s in (scores or {}).items() if t != topic), reverse=True)
    second, gap = (ranked[0][1], round(share - ranked[0][0], 4)) if ranked and share else (None, 1.0)
    return PostSignal(post_id=f"p{n}", text=text, created_at=T0 + timedelta(minutes=n), region="马鞍乡",
                      topic=topic, second_topic=second, second_gap=gap, topic_share=share)


def _issue(*signals: PostSignal, smoothing: float = 0.02) -> OpenIssue:
    issue = OpenIssue("i", "马鞍乡", T0, T0)
    for signal in signals:
        issue.shift_topics(member_of(signal), 1, smoothing)
    issue.refresh(6)
    return issue


def test_a_post_mix_is_its_topic_and_second_choice_at_their_scores() -> None:
    member = member_of(_signal(1, "billing", {"billing": 0.6, "outage": 0.3, "service": 0.1}))
    assert member.topic_mix() == {"billing": 0.6, "outage": 0.3}
    assert member_of(_signal(2, "billing", None)).topic_mix() == {"billing": 1.0}  # no scores: sure


def test_soft_agreement_is_the_expected_agreement_of_two_distributions() -> None:
    assert soft_agreement({"outage": 1.0}, {"outage": 1.0}) == 1.0
    assert soft_agreement({"outage": 1.0}, {"billing": 1.0}) == -1.0
    assert soft_agreement({"outage": 1.0}, {"service": 1.0}) == 0.0  # compatible
    # half outage, half billing against an outage issue: 0.5 x 1 + 0.5 x -1
    assert soft_agreement({"outage": 0.5, "billing": 0.5}, {"outage": 1.0}) == 0.0
    assert soft_agreement({"outage": 0.8}, {"outage": 0.5, "other": 0.5}) == pytest.approx(0.4)


def test_an_issue_mix_grows_surer_with_each_post_that_reads_it_so() -> None:
    outage = {"outage": 0.8, "other": 0.2}
    one = _issue(_signal(1, "outage", outage)).topic_mix(0.02)
    three = _issue(*(_signal(n, "outage", outage) for n in range(3))).topic_mix(0.02)
    assert 0.5 < one["outage"] < three["outage"] < 1.0
    # smoothing 0: the mean of the posts' mixes
    assert _issue(_signal(1, "outage", outage), smoothing=0).topic_mix(0) == {"outage": 0.8, "other": 0.2}


def test_an_issue_other_by_a_tie_agrees_with_an_outage_post_when_read_softly() -> None:
    issue = _issue(_signal(1, "other", {"other": 0.55, "outage": 0.4}),
                   _signal(2, "outage", {"outage": 0.9, "other": 0.1}))
    assert issue.topic == "other"  # the tie of counts, by name
    post = member_of(_signal(3, "outage", {"outage": 0.95, "other": 0.05}))
    assert agreement(post, issue, HARD) == 0
    assert agreement(post, issue, SOFT) > 0.5
    # a post without scores is read as before, and the soft reading never lowers the hard one
    assert agreement(member_of(_signal(4, "outage", None)), issue, SOFT) == 0
    billing = member_of(_signal(5, "billing", {"billing": 0.9, "other": 0.1}))
    assert agreement(billing, issue, SOFT) >= agreement(billing, issue, HARD)


def _rows(scores: bool, third: str = "家里冰箱都不转了") -> list[dict[str, Any]]:
    # the evening's first post read as ``other`` (outage close behind), the second as outage: the
    # issue's topic is ``other`` by the tie of counts; the third says the outage in other words
    texts = [("马鞍乡晚上停电了？", "other", {"other": 0.5, "outage": 0.45}),
             ("马鞍乡停电了，什么时候来电", "outage", {"outage": 0.95, "other": 0.05}),
             (third, "outage", {"outage": 0.95, "other": 0.05})]
    return [{"id": f"p{n}", "text": text, "created_at": (T0 + timedelta(minutes=20 * n)).isoformat(),
             "region": "马鞍乡", "topic": topic, **({"topic_scores": mix} if scores else {})}
            for n, (text, topic, mix) in enumerate(texts)]


@pytest.mark.parametrize("third", ["家里冰箱都不转了", "还没好？？"])
def test_an_outage_post_joins_the_outage_whose_issue_is_other_by_a_tie(third: str) -> None:
    assert len(set(group_rows(_rows(True, third), classify=None, params=SOFT))) == 1
    assert len(set(group_rows(_rows(True, third), classify=None, params=HARD))) == 2  # the rule off


def test_a_post_without_scores_groups_as_before() -> None:
    without = group_rows(_rows(False), classify=None, params=SOFT)
    assert without == group_rows(_rows(False), classify=None, params=HARD)
    assert len(set(without)) == 2


def test_the_defaults_read_topics_softly() -> None:
    assert GroupingParams().soft_topics and GroupingParams().soft_topic_smoothing == 0.02


def test_the_soft_reading_survives_a_rebuild_from_the_index() -> None:
    post = make_post("马鞍乡停电了", external_id="soft", topic=Topic.OUTAGE).model_copy(
        update={"topic_scores": {Topic.OUTAGE: 0.7, Topic.SERVICE: 0.25, Topic.OTHER: 0.05}})
    live = post_signal(post)
    assert live.topic_share == 0.7
    assert stored_signal(to_document(post)) == live
    grouper = IssueGrouper(SOFT)
    grouper.remember(stored_signal(to_document(post)), "outage-1")
    assert member_of(live).topic_mix() == {"outage": 0.7, "service": 0.25}


def test_a_post_moved_out_takes_its_topic_evidence_with_it() -> None:
    first = _signal(1, "outage", {"outage": 0.9, "other": 0.1})
    issue = _issue(first)
    before = dict(issue.topic_evidence)
    billing = _signal(2, "billing", {"billing": 0.8, "outage": 0.15})
    issue.shift_topics(member_of(billing), 1, 0.02)
    mix = issue.topic_mix(0.02)
    assert mix["outage"] > mix["billing"] > 0.05  # the outage read twice, the billing once
    issue.shift_topics(member_of(billing), -1, 0.02)
    assert issue.topic_evidence == pytest.approx(before)
