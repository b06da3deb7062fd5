from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal, founder_issue_id
from services.search.issue_offline import group_rows, read_posts
from services.search.issue_text import VIEW_CHARS, places, view
from tests.search import factory
from yuqing.fingerprint import band_terms, bands, hamming, simhash

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=TZ)
DEV = Path(__file__).resolve().parents[2] / "data" / "issues" / "dev.jsonl"

OUTAGE = ["河口镇新街村停电了，什么时候来电？", "新街村这边突然黑了，整个村都没电",
          "我家也是，新街村三组，一点电都没有", "河口新街停电+1",
          "停了快一个小时了，新街村到底啥时候恢复供电啊"]


def _post(n: int, text: str, minutes: float = 0, region: str | None = "河口镇",
          topic: str | None = "outage") -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes))


def _assign(grouper: IssueGrouper, posts: list[PostSignal]) -> list[str]:
    return [grouper.assign(p).issue_id for p in posts]


def test_fingerprint_module_matches_its_bands() -> None:
    value = 0x0123456789ABCDEF
    assert bands(value) == [0x0123, 0x4567, 0x89AB, 0xCDEF]
    assert band_terms(f"{value:016x}") == ["0:0123", "1:4567", "2:89ab", "3:cdef"]
    assert hamming(simhash("河口镇停电了，什么时候来电？"), simhash("河口镇停电了，什么时候来电？？")) <= 7


def test_places_are_keyed_by_name_and_suffix() -> None:
    assert places("家住滨河小区3栋，停了") == {"滨河小区"}
    assert places("河口镇新街整条街都没电了") == {"新街"}
    assert places("我们村全黑了") == frozenset()
    assert view("我家也是，滨河小区").words.keys() <= {"家也"}  # the place is not a word


def test_grouping_reads_a_post_as_far_as_the_model_does() -> None:
    # A post of 100,000 characters held up to a megabyte in the issue table (its text and every
    # place-like word in it) for the days its issue stays open: a few hundred filled the indexer.
    long = OUTAGE[0] + "，" + "电压不稳灯一直闪" * 12_500 + "，柳塘镇滨河小区"
    grouper = IssueGrouper()
    first = grouper.assign(_post(1, long)).issue_id

    seen = view(long, "河口镇")
    assert len(seen.text) == VIEW_CHARS and seen.places == {"新街村"}
    assert grouper.assign(_post(2, OUTAGE[1], minutes=5)).issue_id == first


def test_villages_named_with_direction_words_are_places_and_common_words_are_not() -> None:
    assert places("石门镇上河村停电了") == {"上河村"}
    assert places("下坝村停了，上坝村停不停") == {"下坝村", "上坝村"}
    assert places("马坪镇坪上村早上停了一会儿") == {"坪上村"}
    assert places("电线杆就在小学后门，马路边，高压线路下面") == frozenset()


def test_a_post_of_the_next_day_naming_no_place_does_not_join_a_placed_issue() -> None:
    grouper = IssueGrouper()
    outage = _assign(grouper, [_post(0, "清水乡下湾村停电了，中午饭做不成", region="清水乡"),
                               _post(1, "下湾村没电，是不是又在修线路", 6, region="清水乡")])
    next_day = grouper.assign(_post(2, "清水乡这两天电压不稳，灯一直闪", 20 * 60, region="清水乡")).issue_id
    same_place = grouper.assign(_post(3, "下湾村今天还是停电，没人来修", 1230, region="清水乡")).issue_id
    assert outage[0] == outage[1] == same_place != next_day


def test_the_next_village_of_the_same_township_is_another_issue() -> None:
    grouper = IssueGrouper()
    morning = _assign(grouper, [_post(0, "石门镇下河村一大早就停电了", region="石门镇"),
                                _post(1, "下河村没电，早饭都做不了", 5, region="石门镇")])
    evening = grouper.assign(_post(2, "石门镇上河村停电了", 8 * 60, region="石门镇")).issue_id
    assert morning[0] == morning[1] != evening


def test_a_question_sharing_neither_words_nor_place_stays_out_of_a_placed_issue() -> None:
    grouper = IssueGrouper()
    outage = _assign(grouper, [_post(0, "滨河小区又停电了，这个月第二次了"),
                               _post(1, "滨河小区3栋没电了，电梯都停了", 10)])
    hall = grouper.assign(_post(2, "请问河口营业厅几点下班，想去交电费", 20, topic="service")).issue_id
    shift = grouper.assign(_post(3, "这个月连着三周夜班，排班能不能均匀点", 25, topic="employee")).issue_id
    assert outage[0] == outage[1]
    assert len({outage[0], hall, shift}) == 3


def test_paraphrased_complaints_of_one_outage_form_one_issue() -> None:
    grouper = IssueGrouper()
    ids = _assign(grouper, [_post(i, text, minutes=10 * i) for i, text in enumerate(OUTAGE)])
    assert len(set(ids)) == 1
    assert ids[0] == founder_issue_id("p0", "outage")


def test_the_same_complaint_in_another_township_or_two_days_later_is_another_issue() -> None:
    grouper = IssueGrouper()
    first = grouper.assign(_post(0, OUTAGE[0])).issue_id
    elsewhere = grouper.assign(_post(1, "城关镇东关村停电了，什么时候来电？", 5, region="城关镇")).issue_id
    later = grouper.assign(_post(2, OUTAGE[0], 2 * 24 * 60)).issue_id
    assert len({first, elsewhere, later}) == 3


def test_another_village_and_another_matter_are_other_issues() -> None:
    grouper = IssueGrouper()
    outage = grouper.assign(_post(0, "新街村停电了，啥时候来电")).issue_id
    village = grouper.assign(_post(1, "滨河小区3栋电梯停了，老人被困在里面", 20)).issue_id
    bill = grouper.assign(_post(2, "这个月电费怎么翻倍了", 30, topic="billing")).issue_id
    assert len({outage, village, bill}) == 3


def test_replay_keeps_issues_and_warm_state_continues_them() -> None:
    posts = [_post(i, text, minutes=10 * i) for i, text in enumerate(OUTAGE)]
    first = IssueGrouper()
    ids = _assign(first, posts)
    assert _assign(first, posts) == ids  # a replayed post keeps its issue
    restarted = IssueGrouper()
    for post, issue in zip(posts[:3], ids[:3], strict=True):
        restarted.remember(post, issue)
    assert _assign(restarted, posts[3:]) == ids[3:]


def test_merge_move_and_split_steer_later_posts() -> None:
    grouper = IssueGrouper()
    a = grouper.assign(_post(0, "新街村停电了，啥时候来电")).issue_id
    b = grouper.assign(_post(1, "滨河小区3栋电梯停了，老人被困在里面", 5)).issue_id
    c = grouper.assign(_post(2, "这个月电费怎么翻倍了", 6, topic="billing")).issue_id
    grouper.merge(b, a)
    assert grouper.issue_of("p1") == a and grouper.resolve(b) == a
    assert grouper.assign(_post(3, "滨河小区电梯还是停着", 10)).issue_id == a
    grouper.move("p3", c)
    assert grouper.issue_of("p3") == c
    new = grouper.split("p0")
    assert new not in (a, c) and grouper.issue_of("p0") == new
    # a post like the split one follows it
    assert grouper.assign(_post(4, "新街村停电了，啥时候来电啊", 15)).issue_id == new


def test_state_is_bounded() -> None:
    grouper = IssueGrouper(GroupingParams(max_issues=10, max_posts=50))
    for i in range(200):
        grouper.assign(_post(i, f"第{i}号问题 电费{i}", minutes=i, region=f"{i % 7}镇", topic="billing"))
    assert len(grouper) <= 10


def test_offline_grouping_is_deterministic_and_in_input_order() -> None:
    rows = read_posts(DEV)
    first = group_rows(rows, classify=None)
    assert first == group_rows(list(rows), classify=None)
    shuffled = rows[::-1]
    assert group_rows(shuffled, classify=None) == first[::-1]  # grouped by created_at, output in input order


def test_the_issues_driving_a_surge_are_ranked_by_their_share() -> None:
    from services.search.issue_alerts import rank_issues

    ids = ["outage-a"] * 6 + ["outage-b"] * 3 + ["billing-c"]
    assert rank_issues(ids, limit=3, min_share=0.2) == [("outage-a", 6, 0.6), ("outage-b", 3, 0.3)]
    assert rank_issues([]) == []


def test_echoes_carry_no_words_of_their_own() -> None:
    assert view("+1").words == {}
    assert view("同问").words == {}
    assert view("新街村停电+1").words.keys() == view("新街村停电").words.keys()


def test_topics_the_model_confuses_do_not_split_a_matter() -> None:
    grouper = IssueGrouper()
    first = grouper.assign(_post(0, "河口镇新街村停电了，什么时候来电？")).issue_id
    # the same outage, read by the model as safety (a trapped lift) and as a rumour about its cause
    lift = grouper.assign(_post(1, "新街村停电，电梯里困了人", 10, topic="safety")).issue_id
    cause = grouper.assign(_post(2, "听说新街村停电是变压器烧了", 20, topic="rumor")).issue_id
    bill = grouper.assign(_post(3, "新街村这个月电费怎么这么高", 30, topic="billing")).issue_id
    assert lift == cause == first
    assert bill != first


def test_a_late_post_naming_another_place_founds_its_own_issue() -> None:
    grouper = IssueGrouper()
    first = grouper.assign(_post(0, "河口镇新街村停电了，什么时候来电？")).issue_id
    same_place = grouper.assign(_post(1, "新街村一晚上没电，早上还是没有", 10 * 60)).issue_id
    other_place = grouper.assign(_post(2, "滨河小区停电了，什么时候来电？", 14 * 60)).issue_id
    assert same_place == first
    assert other_place != first


def test_a_post_without_a_township_joins_the_matter_of_its_place() -> None:
    grouper = IssueGrouper()
    first = grouper.assign(_post(0, "河口镇新街村停电了，什么时候来电？")).issue_id
    grouper.assign(_post(1, "城关镇东关村电费怎么这么高", 5, region="城关镇", topic="billing"))
    reply = grouper.assign(_post(2, "新街村也停了，一片黑", 15, region=None)).issue_id
    assert reply == first


def test_a_post_of_no_township_needs_more_than_topic_and_hour_to_join_a_townships_issue() -> None:
    grouper = IssueGrouper()
    lift = _assign(grouper, [_post(0, "双河镇阳光小区停电，电梯里困了人", region="双河镇"),
                             _post(1, "阳光小区整栋楼没电了", 5, region="双河镇")])
    vague = grouper.assign(_post(2, "家里跳闸了，推不上去", 120, region=None)).issue_id
    echo = grouper.assign(_post(3, "阳光小区同问", 20, region=None)).issue_id
    assert lift[0] == lift[1] == echo != vague


def test_a_post_of_a_partition_read_behind_finds_its_matter_among_issues_read_ahead() -> None:
    # A partition read hours ahead of another (a replay, a consumer lagging on one partition) had
    # touched the last ten issues: a post of no township from the late partition compared itself
    # with those only, and founded a new issue beside its matter's, active a minute before it.
    app = ["掌上电力人脸识别一直失败，实名认证过不去", "更新掌上电力以后人脸认证老是失败",
           "掌上电力刷脸认证失败好几次了", "新版掌上电力实名认证卡在人脸识别这一步"]
    ahead = [("石门镇", "石门镇变压器冒烟了"), ("青山乡", "青山乡电费比上月多了一倍"),
             ("河口镇", "河口镇营业厅排队太久"), ("城关镇", "城关镇路灯不亮"),
             ("柳塘镇", "柳塘镇电压不稳"), ("白沙镇", "白沙镇电线被树压断了"),
             ("马鞍乡", "马鞍乡充电桩坏了"), ("蓝田乡", "蓝田乡光伏补贴没到账"),
             ("棠梨乡", "棠梨乡抄表员态度差"), ("新街村", "新街村电表箱没锁"),
             ("西岗街道", "西岗街道线路检修扰民")]
    for read_ahead in (False, True):
        grouper = IssueGrouper()
        matter = {grouper.assign(factory.post(i, text, i / 60, region=None, topic="online_service")).issue_id
                  for i, text in enumerate(app[:3])}
        assert len(matter) == 1
        if read_ahead:
            for k, (region, text) in enumerate(ahead):
                grouper.assign(factory.post(100 + k, text, 1 + k / 10, region=region, topic="service"))
        late = grouper.assign(factory.post(9, app[3], 3 / 60, region=None, topic="online_service"))
        assert grouper.resolve(late.issue_id) == matter.pop(), read_ahead
