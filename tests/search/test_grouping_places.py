"""Places read from a post's words (``yuqing.places``): a clause's words (看不见路, 请村民, 说是村) and
common words (农村) are no place, so they do not conflict with the village of the matter a post is
about; townships of three characters and subdistricts (柳树湾乡, 西岗街道) are known by their short
form, as two-character ones are."""

from collections import Counter
from dataclasses import replace

import pytest

from services.search.grouping import GroupingParams, IssueGrouper
from services.search.issue_text import Voice, town_of, view
from services.search.issue_towns import KnownTownships
from services.search.open_issues import OpenIssue
from tests.search.factory import BASE_TIME, post
from yuqing.hanzi import simplified
from yuqing.places import short_form, specific_places

LOOSE = replace(GroupingParams(), voice=Voice(strict_places=False))  # every match of the pattern


def test_a_clause_s_words_and_common_words_are_no_place() -> None:
    assert specific_places("我一个老婆子看不见路") == frozenset()
    assert specific_places("请村民关好电器") == frozenset()
    assert specific_places("听说是村口变压器烧了") == frozenset()
    assert specific_places("听说农村电价要涨") == frozenset()
    assert specific_places("计量班组已组织校验") == frozenset()
    # read as they stood before: each a place that conflicts with the matter's village
    assert specific_places("我一个老婆子看不见路", strict=False) == {"不见路"}
    assert specific_places("听说农村电价要涨", strict=False) == {"说农村"}


def test_a_name_is_read_again_after_a_clause_s_character() -> None:
    assert specific_places("请问花园小区什么时候来电") == {"花园小区"}
    assert specific_places("请问花园小区什么时候来电", strict=False) == {"请问花园"}
    assert specific_places("说是新街村停电了") == {"新街村"}
    # names are kept: at the start of a text, and a village whose name ends like a common word
    assert specific_places("老街这边一早就没电") == {"老街"}
    assert specific_places("东山村还是没电") == {"东山村"}


def _outage_then(text: str, params: GroupingParams) -> tuple[str, str]:
    grouper = IssueGrouper(params)
    first = ""
    for i, (said, hours) in enumerate([("篁竹村停电了", 0.0), ("篁竹村没电，啥时候来", 0.1),
                                       ("篁竹村整个村都黑了", 0.2), ("篁竹村还没来电", 0.4)]):
        first = grouper.assign(post(i, said, hours)).issue_id
    return first, grouper.assign(post(9, text, 0.6)).issue_id


def test_a_post_whose_words_read_as_a_place_joins_the_village_s_outage() -> None:
    text = "电没了啊，我一个老婆子看不见路"
    outage, joined = _outage_then(text, GroupingParams())
    assert joined == outage
    outage, alone = _outage_then(text, LOOSE)
    assert alone != outage  # 不见路 against 篁竹村: two places, two matters


def test_townships_of_three_characters_and_subdistricts_by_their_short_form() -> None:
    assert short_form("柳树湾乡") == "柳树湾" and short_form("西岗街道") == "西岗"
    assert short_form("河口镇") == "河口" and short_form("城关") is None
    assert town_of("柳树湾乡") == "柳树湾" and town_of("市区") == "市区"
    known = KnownTownships()
    for region in ("柳树湾乡", "西岗街道", "黄土岭镇"):
        known.learn(region)
    assert known.region_of("柳树湾这边又停电了") == "柳树湾乡"
    assert known.region_of("黄土岭还没来电，天都黑了") == "黄土岭镇"
    assert known.region_of("西岗新村电压低好几天了") == "西岗街道"
    # the region's own name is no word of the post: 柳树湾乡 is not read as 树湾 and a stray 柳
    assert view("柳树湾乡这边又停电", "柳树湾乡").words.keys() == view("这边又停电").words.keys()


def test_a_post_naming_a_three_character_township_joins_its_issue() -> None:
    grouper = IssueGrouper()
    region = "柳树湾乡"
    first = grouper.assign(post(0, "王家台村停电了，整个村都黑着", 0, region=region)).issue_id
    grouper.assign(post(1, "王家台村没电，冰箱里的肉要坏了", 0.1, region=region))
    grouper.assign(post(2, "黄土岭镇停电了", 0.1, region="黄土岭镇"))
    assert grouper.assign(post(3, "柳树湾乡王家台村到现在还是黑的", 0.5, region=None)).issue_id == first
    assert grouper.assign(post(4, "黄土岭还没来电", 0.6, region=None)).issue_id != first


def _villages(count: int) -> list[str]:
    chars = [c for c in map(chr, range(0x4F90, 0x55D0)) if simplified(c) == c]  # none of 这边又停电了
    names = (a + b for a in chars for b in chars)
    return [f"{name}村" for name, _ in zip(names, range(count), strict=False)]


@pytest.mark.timeout(60)
def test_an_issue_s_places_are_looked_for_in_a_text_in_time_with_the_text_not_the_issue() -> None:
    # an issue keeps the places of every post it had, and the text of each post compared with it
    # was searched for each of them: posts naming 600 villages each took 0.5 s a post after 150
    issue = OpenIssue("i", "河口", BASE_TIME, BASE_TIME)
    villages = _villages(300_000)
    for start in range(0, len(villages), 600):
        issue.count_places(villages[start:start + 600], 1)
    stems, said = issue.place_stems.keys(), "又停电了" * 450

    for village in villages[::1_000]:
        assert view(f"{said}{village[:2]}这边").names(stems)
        assert not view(f"{said}{village[:1]}这边，{village[1:]}").names(stems)
    assert view("东街又停电了").names(issue.place_stems.keys() | {"东街"})


def test_an_issue_counts_the_stems_of_its_members_places_as_they_come_and_go() -> None:
    grouper = IssueGrouper()
    first = grouper.assign(post(1, "滨河小区、新街村停电了"))
    grouper.assign(post(2, "滨河小区停电了", 0.1))
    issue = grouper._issues[first.issue_id]
    assert issue.place_stems == {"滨河": 2, "新街": 1}

    grouper.split("p1")
    assert issue.place_stems == {"滨河": 1}


def _kept_totals(issue: OpenIssue) -> tuple[Counter[str], dict[str, float]]:
    """The places and the word totals of an issue's kept members, counted afresh."""
    places: Counter[str] = Counter()
    words: dict[str, float] = {}
    for member in issue.members:
        places.update(member.view.places)
        for term, weight in member.view.words.items():
            words[term] = words.get(term, 0.0) + weight
    return places, words


@pytest.mark.timeout(120)
def test_an_issue_s_places_and_words_are_those_of_its_kept_members() -> None:
    # one township, 250 posts of one complaint each naming 600 villages: the issue counted the
    # places of every post it ever had, 149,230 of them (49 MB), long after the posts left it
    grouper = IssueGrouper()
    villages = _villages(250 * 600)
    for i in range(250):
        grouper.assign(post(i, "又停电了" + "".join(villages[i * 600:(i + 1) * 600]), i * 0.01))
    assert len(grouper) == 1
    issue = next(iter(grouper._issues.values()))
    assert issue.size == 250 and len(issue.members) == GroupingParams().max_members
    places, words = _kept_totals(issue)
    assert issue.places == places and issue.place_stems.total() == places.total()
    assert len(issue.places) <= GroupingParams().max_members * 600
    assert issue.centroid.keys() == words.keys()
    assert all(issue.centroid[t] == pytest.approx(w) for t, w in words.items())


def test_a_merged_issue_s_places_and_words_are_those_of_its_kept_members() -> None:
    grouper = IssueGrouper(replace(GroupingParams(), max_members=4))
    first = grouper.assign(post(0, "新街村停电了，啥时候来电")).issue_id
    for i, place in enumerate(["东关村", "滨河小区", "河口街", "杨柳村", "石桥村", "上枫村"], start=1):
        grouper.remember(post(i, f"新街村{place}都停电了，冰箱里的肉要坏了", i * 0.1), first)
    other = grouper.assign(post(9, "阳光小区电梯困人", 1.0, topic="safety")).issue_id
    grouper.remember(post(10, "阳光小区电梯还没修好", 1.1, topic="safety"), other)
    grouper.merge(other, first)
    issue = grouper._issues[first]
    assert [m.post_id for m in issue.members] == ["p0", "p6", "p9", "p10"]
    places, words = _kept_totals(issue)
    assert issue.places == places == Counter({"新街村": 2, "上枫村": 1, "阳光小区": 2})
    assert issue.centroid.keys() == words.keys()
    assert all(issue.centroid[t] == pytest.approx(w) for t, w in words.items())
    assert issue.centroid_norm2 == pytest.approx(sum(w * w for w in words.values()))
