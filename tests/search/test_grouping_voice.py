"""Posts written in other voices read alike: traditional characters written simplified, dialect words
and input-method slips joined to their standard forms (``issue_text.Voice``); and a hazard's report
and the utility's answer to it (safety and service) are compatible topics."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_text import PLAIN, Voice, clean, cosine, view
from services.search.issue_towns import KnownTownships
from services.search.open_issues import topic_agreement
from tests.search import factory
from yuqing.hanzi import simplified

TZ = timezone(timedelta(hours=8))
T0 = datetime(2027, 5, 13, 10, 0, tzinfo=TZ)
BEFORE = replace(GroupingParams(), voice=PLAIN)  # the reading before the eighth round


def _post(n: int, minutes: float, text: str, topic: str | None = "outage",
          region: str | None = "花桥乡") -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes))


def test_traditional_characters_are_written_simplified() -> None:
    assert simplified("什麼時候來電？停電兩個小時了") == "什么时候来电？停电两个小时了"
    assert simplified("河口镇停电了，什么时候来电") == "河口镇停电了，什么时候来电"  # unchanged
    assert clean("竹溪鄉停電") == "竹溪乡停电"
    assert clean("竹溪鄉停電", PLAIN) == "竹溪鄉停電"


def test_a_traditional_post_says_the_same_words() -> None:
    simplified_words = view("杉湾村停电两个小时了，有没有人管").words
    assert cosine(view("杉湾村停電兩個小時了，有沒有人管").words, simplified_words) > 0.99
    assert cosine(view("杉湾村停電兩個小時了，有沒有人管", voice=PLAIN).words, simplified_words) < 0.5


def test_dialect_and_slips_are_read_as_the_standard_words() -> None:
    standard = view("这边也停电了").words
    for said in ("这边也莫得电了", "这边也冇电了", "这边也没得电了", "这边也停点了", "这边也黑灯瞎火了"):
        assert cosine(view(said).words, standard) > 0.99, said
        assert "停电" not in view(said, voice=PLAIN).words, said
    assert "电费" in view("这个月电废翻了一倍").words
    assert "跳闸" in view("晚上跳闸了").words  # a tripped breaker is not read as an outage
    assert "停电" in view("晚上跳闸了", voice=Voice(trip=True)).words


def test_a_dialect_post_joins_the_outage_it_speaks_of() -> None:
    # an hour later, read as no topic: its words alone place it (dev9's 花桥乡 outage split so)
    posts = [_post(0, 0, "花桥乡停电了，啥时候来电"), _post(1, 60, "我屋头也莫得电了", "other")]
    for params, together in ((GroupingParams(), True), (BEFORE, False)):
        grouper = IssueGrouper(params)
        first, second = (grouper.assign(post).issue_id for post in posts)
        assert (first == second) is together


def test_a_township_named_in_traditional_characters_places_a_post() -> None:
    post = PostSignal(post_id="t", text="我们竹溪鄉停電了", created_at=T0)
    towns = KnownTownships()
    towns.learn("竹溪乡")
    assert towns.place(post).region == "竹溪乡"
    plain = KnownTownships(voice=PLAIN)
    plain.learn("竹溪乡")
    assert plain.place(post).region is None


def test_the_answer_to_a_reported_hazard_joins_it() -> None:
    assert topic_agreement("safety", "service") == 0  # compatible: neither rewarded nor penalised
    assert topic_agreement("safety", "billing") == -1
    grouper = IssueGrouper()
    pole = [_post(0, 0, "青石乡大院子组那根电线杆子歪得吓人，风一吹晃来晃去的", "safety", "青石乡"),
            _post(1, 40, "大院子那个杆子确实歪了，电线都垂到房顶上了", "safety", "青石乡"),
            _post(2, 85, "大院子组电杆快倒了，赶紧找人来弄", "safety", "青石乡")]
    issue = {grouper.assign(post).issue_id for post in pole}
    assert len(issue) == 1
    answer = _post(3, 190, "打电话报了，说是下午派人过来", "service", "青石乡")
    assert grouper.assign(answer).issue_id == issue.pop()
