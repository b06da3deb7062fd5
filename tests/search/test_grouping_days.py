"""Matters that outlast a few hours and posts that carry no region: the township a post opens
with, and what joins a township's matter the next day."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_towns import KnownTownships
from tests.search import factory

TZ = timezone(timedelta(hours=8))
T0 = datetime(2027, 3, 1, 9, 0, tzinfo=TZ)
# the township's app outage of a morning, as its posts with a region raise it
APP = ["高塘镇这边交电费的APP登不上去", "网上营业厅交费一直失败", "APP里扣了钱余额没到账"]


def _post(n: int, text: str, minutes: float, region: str | None = "高塘镇",
          topic: str | None = "online_service") -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes))


def test_a_short_form_that_opens_a_clause_names_its_township() -> None:
    towns = KnownTownships()
    for region in ("高塘镇", "松岗乡", "平安镇"):
        towns.learn(region)
    assert towns.region_of("高塘新装的智能表是不是走得快") == "高塘镇"
    assert towns.region_of("问一下，松岗的电费通知是不是没发") == "松岗乡"
    assert towns.region_of("祝大家平安") is None  # inside a clause: a word, not a place
    assert towns.region_of("高塘，松岗，都没收到账单") is None  # two townships: neither
    strict = KnownTownships(leading=False)
    strict.learn("高塘镇")
    assert strict.region_of("高塘新装的智能表是不是走得快") is None


def test_a_post_of_no_region_opening_with_its_township_joins_its_matter() -> None:
    post = _post(9, "高塘手机交费也不行", 40, region=None)  # says too little to join unplaced
    for leading, joins in ((True, True), (False, False)):
        # an online-service post of no township, or one naming the payment failing, joins whatever
        # (test_grouping_county.py): here the township decides
        grouper = IssueGrouper(replace(GroupingParams(), leading_township=leading, county_topics=frozenset(),
                                       county_kinds=frozenset()))
        app = {grouper.assign(_post(i, text, 10 * i)).issue_id for i, text in enumerate(APP)}
        assert len(app) == 1
        assert (grouper.assign(post).issue_id in app) is joins


def test_a_lone_post_of_the_evening_is_not_open_the_next_morning() -> None:
    evening = _post(0, "高塘镇新村路的路灯坏了，晚上黑乎乎的", 600, topic="safety")
    morning = _post(1, "路灯还是不亮，晚上走路黑乎乎的", 600 + 14 * 60, topic="safety")
    for late_min, joins in ((2, False), (1, True)):
        # the kind of matter both name (路灯) would open it too (test_grouping_kinds.py): here the size alone
        grouper = IssueGrouper(replace(GroupingParams(), late_min_size=late_min, kind_bonus=0.0))
        lamp = grouper.assign(evening).issue_id
        assert (grouper.assign(morning).issue_id == lamp) is joins
    # a post naming its place continues it
    grouper = IssueGrouper()
    lamp = grouper.assign(evening).issue_id
    assert grouper.assign(replace(morning, text="新村路的路灯还是不亮，晚上走路黑乎乎的")).issue_id == lamp
    # an issue two posts raised is still open the next morning
    grouper = IssueGrouper()
    lamp = grouper.assign(evening).issue_id
    assert grouper.assign(_post(2, "新村路的路灯坏了好几天了", 620, topic="safety")).issue_id == lamp
    assert grouper.assign(morning).issue_id == lamp


OUTAGE = ["平安镇红星村停电了，什么时候来电", "红星村这边全黑了", "红星村停电快二十分钟了",
          "红星村还没来电，饭都做不了"]
THANKS = ["昨晚抢修的师傅辛苦了，半夜还在干活", "感谢供电所连夜抢修红星村线路"]


def test_the_next_mornings_thanks_naming_the_village_merge_into_its_outage() -> None:
    for gap, merged in ((timedelta(hours=12), True), (timedelta(hours=1), False)):
        grouper = IssueGrouper(replace(GroupingParams(), merge_place_gap=gap))
        outage = {grouper.assign(_post(i, text, 600 + 5 * i, region="平安镇", topic="outage")).issue_id
                  for i, text in enumerate(OUTAGE)}
        assert len(outage) == 1
        thanks = [grouper.assign(_post(10 + i, text, 600 + 12 * 60 + 20 * i, region="平安镇",
                                       topic="praise_suggestion")).issue_id for i, text in enumerate(THANKS)]
        assert (grouper.resolve(thanks[-1]) in outage) is merged


def test_the_next_mornings_matter_in_another_place_stays_apart() -> None:
    grouper = IssueGrouper()
    outage = {grouper.assign(_post(i, text, 600 + 5 * i, region="平安镇", topic="outage")).issue_id
              for i, text in enumerate(OUTAGE)}
    other = ["平安镇东岭村早上停电了", "东岭村这边也没电了"]
    found = {grouper.resolve(grouper.assign(_post(10 + i, text, 600 + 13 * 60 + 10 * i, region="平安镇",
                                                  topic="outage")).issue_id) for i, text in enumerate(other)}
    assert not found & outage


def test_a_post_of_no_township_joins_on_words_that_say_the_matter_not_on_topic_and_hour() -> None:
    for relief, joins in ((0.5, True), (0.0, False)):
        grouper = IssueGrouper(replace(GroupingParams(), unplaced_words_relief=relief,
                                       county_topics=frozenset(), county_kinds=frozenset()))  # as above
        app = {grouper.assign(_post(i, text, 10 * i)).issue_id for i, text in enumerate(APP)}
        assert (grouper.assign(_post(9, "手机交电费提示系统繁忙", 40, region=None)).issue_id in app) is joins
        # no words of its own, nor words of the matter: stays apart whatever the relief
        assert grouper.assign(_post(10, "+1", 41, region=None, topic="other")).issue_id not in app
        hours = _post(11, "营业厅几点下班", 42, region=None, topic="service")
        assert grouper.assign(hours).issue_id not in app
