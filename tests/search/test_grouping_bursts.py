"""A burst of posts about one outage: posts that change topic, appliances, the township named by its
short form, echoes of no township; and what a burst does not draw."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_towns import KnownTownships
from tests.search import factory

TZ = timezone(timedelta(hours=8))
T0 = datetime(2027, 1, 15, 19, 0, tzinfo=TZ)
# a township's outage as it is first raised: five posts in 20 minutes, little said twice
BURST = [("蓝田乡停电了", "outage"), ("+1", "other"), ("蓝田这边没电了", "outage"), ("我家也是", "other"),
         ("全村都黑了", "outage")]
BEFORE = replace(GroupingParams(), busy_bonus=0.15, busy_window=timedelta(hours=2), busy_min=2)


def _post(n: int, text: str, minutes: float, region: str | None = "蓝田乡", topic: str | None = "outage",
          inferred: str | None = None) -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes),
                        inferred=inferred)


def _burst(grouper: IssueGrouper) -> str:
    issues = {grouper.assign(_post(i, text, 4 * i, topic=topic)).issue_id
              for i, (text, topic) in enumerate(BURST)}
    assert len(issues) == 1
    return issues.pop()


def test_a_burst_draws_the_posts_that_turn_to_service_cause_and_appliances() -> None:
    turns = [("客服电话打不通", "service"), ("听说是大风刮断了线", "safety"),
             ("电暖器不热了，冷", "energy_use"), ("老人孩子都冻着", "other")]
    for params, joins in ((GroupingParams(), True), (BEFORE, False)):
        grouper = IssueGrouper(params)
        outage = _burst(grouper)
        joined = [grouper.assign(_post(10 + i, text, 22 + i, topic=topic)).issue_id == outage
                  for i, (text, topic) in enumerate(turns)]
        assert joined == [joins] * len(turns), params


def test_two_posts_in_the_hour_are_not_a_burst() -> None:
    grouper = IssueGrouper()
    outage = {grouper.assign(_post(0, "蓝田乡停电了", 0)).issue_id,
              grouper.assign(_post(1, "蓝田这边没电了", 5)).issue_id}
    assert len(outage) == 1
    assert grouper.assign(_post(2, "客服电话打不通", 10, topic="service")).issue_id not in outage


def test_a_burst_draws_nothing_after_its_hour_nor_another_matter() -> None:
    grouper = IssueGrouper()
    outage = _burst(grouper)
    assert grouper.assign(_post(10, "过户要带什么材料", 30, topic="service")).issue_id == outage  # the price
    # ... but not a question about the service hall, another matter the outage does not name (hall_apart)
    assert grouper.assign(_post(13, "营业厅周六上班吗", 30, topic="service")).issue_id != outage
    assert grouper.assign(_post(11, "这个月电费怎么这么高", 31, topic="billing")).issue_id != outage
    assert grouper.assign(_post(12, "客服电话打不通", 16 + 61 + 120, topic="service")).issue_id != outage


def test_a_post_naming_its_township_by_its_short_form_is_placed_there() -> None:
    grouper = IssueGrouper()
    outage = _burst(grouper)
    # no region: placed in 蓝田乡 because earlier posts carried that region and the text names 蓝田
    post = _post(10, "蓝田这边电暖器不热了", 30, region=None, topic="energy_use")
    assert grouper.assign(post).issue_id == outage
    unplaced = IssueGrouper(replace(GroupingParams(), infer_township=False))
    _burst(unplaced)
    assert unplaced.assign(post).issue_id != outage


def test_the_nlp_workers_inferred_region_places_a_post() -> None:
    # the text names no township the grouping knows; the NLP worker's gazetteer placed it
    post = _post(10, "滨河小区的电暖器不热了", 30, region=None, topic="energy_use", inferred="蓝田乡")
    for inferred, joins in (("蓝田乡", True), (None, False)):
        grouper = IssueGrouper()
        outage = _burst(grouper)
        assert (grouper.assign(replace(post, inferred_region=inferred)).issue_id == outage) is joins


def test_two_echoes_of_no_township_do_not_make_an_issue_of_their_own() -> None:
    lenient = replace(GroupingParams(), unplaced_pair_penalty=0.0)
    for params, alone in ((GroupingParams(), True), (lenient, False)):
        grouper = IssueGrouper(params)
        lone = grouper.assign(_post(0, "电费账单在哪里查", 0, region=None, topic="billing")).issue_id
        echo = grouper.assign(_post(1, "+1", 30, region=None, topic="other")).issue_id
        assert (echo != lone) is alone


def test_known_townships_are_learned_from_regions_and_bounded() -> None:
    towns = KnownTownships(limit=2)
    assert towns.region_of("蓝田这边停电了") is None
    for region in ("蓝田乡", "市区", "石龙镇"):
        towns.learn(region)
    assert towns.region_of("蓝田这边停电了") == "蓝田乡"
    assert towns.region_of("石龙+1") == "石龙镇"
    assert towns.region_of("蓝田和石龙都停电了") is None  # two named: neither
    towns.learn("沙河镇")  # the oldest is forgotten
    assert towns.region_of("蓝田这边停电了") is None and towns.region_of("沙河停电了") == "沙河镇"


def test_a_post_like_a_split_out_one_follows_it_not_the_burst() -> None:
    grouper = IssueGrouper()
    village = ["蓝田乡东山村停电了", "东山村这边突然黑了，整个村都没电", "我家也是，东山村三组没电",
               "东山村停电+1"]
    outage = {grouper.assign(_post(i, text, 2 * i)).issue_id for i, text in enumerate(village)}
    assert len(outage) == 1
    apart = grouper.split("p1")  # a responder: that post is another matter
    # a burst of four posts in the hour, but the post names the village: words and place decide
    assert grouper.assign(_post(10, "东山村这边还是黑的，整个村都没电", 9)).issue_id == apart


APP_FACE = ["掌上电力新版本人脸识别一直失败，实名认证过不去", "更新掌上电力以后人脸认证老是失败，怎么办",
            "掌上电力的人脸识别认证失败好几次了", "新版掌上电力实名认证卡在人脸识别这一步",
            "掌上电力认证要刷脸，刷了十几次都失败", "今天更新了掌上电力，人脸识别认证一直不通过"]


def _app_matter(grouper: IssueGrouper, rounds: int = 1) -> set[str]:
    """A county-wide matter in six wordings (``rounds`` times), posts naming no township, one a minute."""
    texts = [opening + text for opening in ("", "请问", "急！")[:rounds] for text in APP_FACE]
    return {grouper.assign(_post(100 + i, text, i, region=None, topic="other")).issue_id
            for i, text in enumerate(texts)}


def test_paraphrases_naming_no_township_are_one_issue_by_their_words() -> None:
    for relief, issues in ((GroupingParams().unplaced_pair_relief, 1), (0.0, 2)):
        grouped = _app_matter(IssueGrouper(replace(GroupingParams(), unplaced_pair_relief=relief)))
        assert (len(grouped) == 1) if issues == 1 else (len(grouped) >= issues), (relief, grouped)


def test_a_busy_issue_of_no_township_draws_no_townships_unrelated_post() -> None:
    # 18 posts in 18 minutes: as busy as an issue gets; the township's queue post shares no word with it
    grouper = IssueGrouper()
    matter = _app_matter(grouper, rounds=3)
    assert len(matter) == 1
    queue = grouper.assign(_post(200, "营业厅排队太久了，窗口只开了一个", 18, topic="service")).issue_id
    assert grouper.resolve(next(iter(matter))) != grouper.resolve(queue)
