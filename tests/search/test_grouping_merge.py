"""The issue-level step: two issues of one matter merged by the grouping itself, and when not."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal, founder_issue_id
from services.search.issue_corrections import SYSTEM, Correction, apply_to_grouper
from services.search.issue_offline import group_rows
from tests.search import factory

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 12, 14, 19, 0, tzinfo=TZ)
OFF = replace(GroupingParams(), merge_threshold=99.0, bridge_unplaced=False)
# One evening's outage of 河口镇: a post with no township founds an issue its words describe, the
# village's posts found a second (a post of no known township is not joined on topic and hour
# alone); a township post in the first one's words then fits both (it joins the village's issue,
# drawn by its burst, and bridges the first one), and the two are one matter.
FIRST = [(0, "灯一下子全灭了，小孩吓得直哭", None),
         (2, "河口镇新街村停电了，什么时候来电？", "河口镇"),
         (4, "新街村这边突然黑了，整个村都没电", "河口镇"),
         (6, "我家也是，新街村三组，一点电都没有", "河口镇")]
JOINING = (9, "灯全灭了，小孩吓得哭个不停", "河口镇")


def _post(n: int, text: str, minutes: float, region: str | None = "河口镇",
          topic: str | None = "outage") -> PostSignal:
    return factory.post(n, text, region=region, topic=topic, start=T0 + timedelta(minutes=minutes))


def _posts(rows: Sequence[tuple[float, str, str | None]], start: int = 0, **kw: str) -> list[PostSignal]:
    return [_post(start + n, text, minutes, region, **kw) for n, (minutes, text, region) in enumerate(rows)]


def _two_issues(grouper: IssueGrouper) -> tuple[str, str]:
    """The outage's first four posts: the unplaced founder's issue and the village's."""
    ids = [grouper.assign(post).issue_id for post in _posts(FIRST)]
    assert ids[0] != ids[1] == ids[2] == ids[3]
    return ids[0], ids[1]


def test_two_issues_of_one_outage_are_merged_and_the_older_id_stays() -> None:
    grouper = IssueGrouper()
    older, younger = _two_issues(grouper)
    joined = grouper.assign(_post(4, JOINING[1], JOINING[0])).issue_id
    assert joined == older == founder_issue_id("p0", "outage")
    assert {grouper.issue_of(f"p{n}") for n in range(5)} == {older}
    merges = grouper.take_merges()
    assert [(m.source_id, m.target_id) for m in merges] == [(younger, older)]
    assert merges[0].score >= grouper.params.merge_threshold
    assert merges[0].at == T0 + timedelta(minutes=9)
    assert grouper.take_merges() == []  # taken once
    # without the step the two stay apart: this is what the step changes
    apart = IssueGrouper(OFF)
    _two_issues(apart)
    # (the joining post goes to one of them: its words place it beside the founder's, the village's
    # burst draws it; which one wins depends on the words' weight for a post of no township's issue)
    assert apart.assign(_post(4, JOINING[1], JOINING[0])).issue_id in {older, younger}
    assert apart.issue_of("p0") == older and apart.issue_of("p1") == younger and apart.take_merges() == []


def test_later_posts_of_the_merged_issue_join_the_one_that_stays() -> None:
    grouper = IssueGrouper()
    older, younger = _two_issues(grouper)
    grouper.assign(_post(4, JOINING[1], JOINING[0]))
    assert grouper.resolve(younger) == older
    assert grouper.assign(_post(5, "新街村停电了，什么时候来电啊", 12)).issue_id == older


def test_no_merge_across_townships_topics_places_or_days() -> None:
    grouper = IssueGrouper()
    outage = [grouper.assign(p).issue_id for p in _posts([(0, "河口镇停电了，什么时候来电", "河口镇"),
                                                         (3, "停电一个小时了，还不来电", "河口镇")])]
    others = [
        _posts([(5, "柳塘镇停电了，什么时候来电", "柳塘镇"), (8, "停电一个小时了，还不来电", "柳塘镇")], 10),
        _posts([(6, "这个月电费怎么翻倍了", "河口镇"), (9, "电费比上个月多了一倍", "河口镇")], 20,
               topic="billing"),
        _posts([(60 * 48, "河口镇停电了，什么时候来电", "河口镇"),
                (60 * 48 + 3, "停电一个小时了，还不来电", "河口镇")], 30)]
    for posts in others:
        ids = {grouper.assign(p).issue_id for p in posts}
        assert outage[0] not in ids
    assert grouper.take_merges() == []


def test_two_villages_outages_of_one_afternoon_are_not_merged() -> None:
    grouper = IssueGrouper()
    rows = [(0, "新街村停电了，什么时候来电", "河口镇"), (3, "新街村还是没电", "河口镇"),
            (5, "高桥村停电了，冰箱里的肉要坏了", "河口镇"), (8, "高桥村还没来电", "河口镇")]
    ids = [grouper.assign(p).issue_id for p in _posts(rows)]
    assert ids[0] == ids[1] != ids[2] == ids[3]
    assert grouper.take_merges() == []


def test_issues_a_responder_corrected_are_never_merged_automatically() -> None:
    for correct in ("split", "move", "protect"):
        grouper = IssueGrouper()
        older, younger = _two_issues(grouper)
        if correct == "split":
            grouper.split("p3")  # the village's issue keeps two posts: it could still be merged
        elif correct == "move":
            grouper.move("p1", older)
            grouper.move("p1", younger)  # moved there and back: both issues were corrected
        else:
            grouper.protect(older)  # as a restarted indexer does from the corrections recorded
        grouper.assign(_post(4, JOINING[1], JOINING[0]))
        assert grouper.take_merges() == [], correct
        assert grouper.issue_of("p2") == younger


def test_the_merge_step_is_deterministic_on_replay_and_offline() -> None:
    posts = [*_posts(FIRST), _post(4, JOINING[1], JOINING[0])]
    first, second = IssueGrouper(), IssueGrouper()
    ids = [first.assign(p).issue_id for p in posts]
    assert [second.assign(p).issue_id for p in posts] == ids
    assert first.take_merges() == second.take_merges()
    # a replayed post keeps its (merged) issue and merges nothing again
    assert [first.issue_of(p.post_id) for p in posts] == [first.assign(p).issue_id for p in posts]
    assert first.take_merges() == []
    rows = [{"id": p.post_id, "text": p.text, "created_at": p.created_at.isoformat(), "region": p.region,
             "topic": p.topic} for p in posts]
    assert set(group_rows(rows, classify=None)) == {ids[-1]}  # earlier posts renamed too


def test_a_recorded_automatic_merge_is_applied_unless_a_responder_corrected_either_issue() -> None:
    at = T0.isoformat()
    for protected, applied in ((False, True), (True, False)):
        grouper = IssueGrouper(OFF)
        older, younger = _two_issues(grouper)
        if protected:
            apply_to_grouper(grouper, Correction("split", younger, "outage-s", "p3", at, "desk"))
        merge = Correction("merge", younger, older, None, at, SYSTEM)
        assert apply_to_grouper(grouper, merge) is applied
        assert (grouper.issue_of("p2") == older) is applied
    # a responder's merge is applied whatever was corrected before
    grouper = IssueGrouper(OFF)
    older, younger = _two_issues(grouper)
    grouper.protect(younger)
    assert apply_to_grouper(grouper, Correction("merge", younger, older, None, at, "desk"))
    assert grouper.issue_of("p2") == older and grouper.is_protected(older)


def test_a_post_bridges_its_townships_issue_and_one_of_no_township_of_the_same_topic_only() -> None:
    """The first post names no township; the village's posts come in a burst, which draws the post
    that says the first one's words: it fits both, so the two are merged (the older id stays). A
    rumour of no township that it also fits is another matter: another topic, never bridged."""
    for topic, bridged in (("outage", True), ("rumor", False)):
        grouper = IssueGrouper()
        first = grouper.assign(_post(0, FIRST[0][1], 0, region=None, topic=topic)).issue_id
        village = {grouper.assign(post).issue_id for post in _posts(FIRST[1:], 1)}
        assert first not in village and len(village) == 1
        joined = grouper.assign(_post(4, JOINING[1], JOINING[0])).issue_id
        assert (joined == first == grouper.issue_of("p1")) is bridged
        assert [(m.source_id, m.target_id) for m in grouper.take_merges()] == (
            [(village.pop(), first)] if bridged else [])


def test_a_recorded_split_of_a_post_not_yet_seen_pins_it_to_the_recorded_issue() -> None:
    # a rebuild replays the corrections before the posts: the split pinned the post to an issue
    # named without its topic (other-...), not the one the API had recorded and renamed it to
    grouper = IssueGrouper(OFF)
    target = founder_issue_id("p9", "outage", salt=":split")

    assert apply_to_grouper(grouper, Correction("split", "outage-0123456789abcdef", target, "p9",
                                                T0.isoformat(), "desk"))

    assert grouper.issue_of("p9") == target
    assert grouper.assign(_post(9, "河口镇新街村停电了", 30)).issue_id == target


# one matter of the app, no township named, in the order two partitions delivered it (minutes from
# T0): the second post founded an issue of its own (the two share little), and each then grew
APP_MATTER = [(0.05, "求助：掌上电力认证要刷脸，刷了十几次都失败"),
              (0.33, "有人知道吗？新版掌上电力实名认证卡在人脸识别这一步"),
              (1.2, "更新掌上电力以后人脸认证老是失败，怎么办"),
              (1.7, "急！掌上电力新版本人脸识别一直失败，实名认证过不去"),
              (3.0, "掌上电力认证要刷脸，刷了十几次都失败"),
              (3.9, "有人知道吗？掌上电力人脸认证失败，提示光线不足，换了地方也不行"),
              (4.1, "掌上电力的人脸识别认证失败好几次了，是不是新版本的问题"),
              (4.8, "求助：更新掌上电力以后人脸认证老是失败，怎么办"),
              (4.8, "急！人脸识别总提示失败，掌上电力刚更新的版本"),
              (6.8, "请问新版掌上电力实名认证卡在人脸识别这一步"),
              (0.1, "请问掌上电力新版本人脸识别一直失败，实名认证过不去"),
              (0.7, "有人知道吗？今天更新了掌上电力，人脸识别认证一直不通过"),
              (1.7, "急！新版掌上电力实名认证卡在人脸识别这一步"),
              (2.3, "掌上电力人脸认证失败，提示光线不足，换了地方也不行")]


def test_two_issues_of_one_matter_of_no_township_are_merged() -> None:
    posts = [_post(n, text, minutes, region=None, topic="other")
             for n, (minutes, text) in enumerate(APP_MATTER)]
    grouper = IssueGrouper()
    ids = [grouper.assign(post).issue_id for post in posts]
    assert ids[1] != ids[0]  # the second post founds an issue of its own ...
    assert {grouper.issue_of(f"p{n}") for n in range(len(posts))} == {ids[0]}  # ... merged into the first
    assert [m.target_id for m in grouper.take_merges()] == [ids[0]]
    # without the step for issues of no township, the matter stays in two
    apart = IssueGrouper(replace(GroupingParams(), merge_unplaced=False))
    for post in posts:
        apart.assign(post)
    assert len({apart.issue_of(f"p{n}") for n in range(len(posts))}) == 2


def test_two_issues_of_no_township_are_compared_however_busy_the_townships_are() -> None:
    # The issue-level step compared an issue of no known township with the ten issues touched
    # last, of every township, which it may never merge with: while eleven townships' matters
    # went on, a county-wide matter's two issues were never compared, and stayed two.
    app = [(0, "掌上电力人脸识别一直失败，实名认证过不去"), (1, "掌上电力人脸识别失败，认证过不去")]
    later = [(8, "掌上电力实名认证人脸识别一直失败"), (9, "掌上电力人脸识别认证失败，过不去")]
    towns = ["石门镇", "青山乡", "河口镇", "城关镇", "柳塘镇", "白沙镇", "马鞍乡", "蓝田乡", "棠梨乡",
             "桃花镇", "西岗街道"]
    grouper = IssueGrouper()
    first = {grouper.assign(_post(n, text, minutes, None, topic="online_service")).issue_id
             for n, (minutes, text) in enumerate(app)}
    for k, town in enumerate(towns):
        grouper.assign(_post(10 + k, f"{town}停电了，什么时候来电", 2 + k / 2, town))
    for n, (minutes, text) in enumerate(later):
        grouper.assign(_post(30 + n, text, minutes, None, topic="online_service"))
    (older,) = first
    assert {grouper.resolve(grouper.issue_of(f"p{n}") or "") for n in (0, 1, 30, 31)} == {older}
    # the first later post founded an issue of its own (the busy townships kept the first out of its
    # candidates), which the issue-level step merged into the first at once
    merges = [(m.source_id, m.target_id) for m in grouper.take_merges()]
    assert merges == [(founder_issue_id("p30", "online_service"), older)]


RUMOUR = {"柳塘镇": ["网上传明天拉闸限电，我们厂明天还要开工，到底限不限？", "听说明天全县限电，是真的吗",
                   "明天全县拉闸限电是真的吗"],
          "石门镇": ["有人转发说明天全县限电，供电所能不能出来说句话", "石门这边也在传明天全县限电"]}
RUMOUR_AGAIN = "有人转发说明天全县限电，供电所能不能出来说句话啊"


def _rumour_merged(responder: str) -> tuple[IssueGrouper, str]:
    """石门镇's issue of the county's rumour merged into 柳塘镇's, as ``responder`` recorded it; the
    issue that stays."""
    grouper, n = IssueGrouper(), 0
    found: dict[str, str] = {}
    for town, texts in RUMOUR.items():
        for text in texts:
            found[town] = grouper.assign(_post(n, text, n, region=town, topic="rumor")).issue_id
            n += 1
    merge = Correction("merge", found["石门镇"], found["柳塘镇"], None, T0.isoformat(), responder)
    assert apply_to_grouper(grouper, merge)
    return grouper, found["柳塘镇"]


def test_a_townships_later_post_follows_a_responders_merge_into_another_townships_issue() -> None:
    # the township's issue was listed under its township alone: after the merge, 石门镇's next
    # post of the rumour found no candidate there and founded a new issue
    grouper, stays = _rumour_merged("county-desk")

    again = grouper.assign(_post(10, RUMOUR_AGAIN, 30, region="石门镇", topic="rumor"))
    other = grouper.assign(_post(11, "石门镇老街停电了，什么时候来电", 31, region="石门镇"))

    assert again.issue_id == stays
    assert other.issue_id != stays  # another matter of the township still founds its own


def test_an_automatic_merge_across_townships_lists_the_issue_under_its_own_alone() -> None:
    grouper, stays = _rumour_merged(SYSTEM)

    assert grouper.assign(_post(10, RUMOUR_AGAIN, 30, region="石门镇", topic="rumor")).issue_id != stays


def test_an_issue_listed_under_two_townships_is_forgotten_under_both() -> None:
    grouper, stays = _rumour_merged("county-desk")
    late = T0 + timedelta(days=30)  # every issue idle far beyond the window

    grouper.assign(factory.post(12, "石门镇老街停电了", region="石门镇", start=late))

    assert stays not in grouper._by_town.get("石门镇", {}) and stays not in grouper._by_town.get("柳塘镇", {})
    assert stays not in grouper._also_in
