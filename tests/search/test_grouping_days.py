"""Matters that outlast a few hours and posts that carry no region: the township a post opens
with, and what joins a township's matter the next day."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_towns import KnownTownships

TZ = timezone(timedelta(hours=8))
T0 = datetime(2027, 3, 1, 9, 0, tzinfo=TZ)
# the township's app outage of a morning, as its posts with a region raise it
APP = ["高塘镇这边交电费的APP登不上去", "网上营业厅交费一直失败", "APP里扣了钱余额没到账"]


def _post(n: int, text: str, minutes: float, region: str | None = "高塘镇",
          topic: str | None = "online_service") -> PostSignal:
    return PostSignal(post_id=f"p{n}", text=text, created_at=T0 + timedelta(minutes=minutes), region=region,
                      topic=topic)


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
        grouper = IssueGrouper(replace(GroupingParams(), leading_township=leading))
        app = {grouper.assign(_post(i, text, 10 * i)).issue_id for i, text in enumerate(APP)}
        assert len(app) == 1
        assert (grouper.assign(post).issue_id in app) is joins
