"""Place names in a post's text, and the known region a post without one is about (pure).

A WeChat push or a forum post carries no region: the township is only in the
words (``河口这边突然停电了``). :func:`place_names` lists the places a text names
(townships by their suffix 镇/乡, and villages, groups, estates, streets,
roads …); :class:`Gazetteer` knows the service area's regions (townships) and
answers which one a text is about, if exactly one.

A region is named in full (``河口镇``), by its short form (``河口``, the name
without 镇/乡) or by one of the places listed under it (``滨河小区``). A short
form is a common word as often as a place (``桃花开了``, ``青山绿水``), so it
counts only where a place name stands: followed by a locative (这边, 一带), a
place suffix (街, 村, 中学) or an outage word (停电, 来电); or at the end of a
phrase, after the start of the text or a word such as 在/是/我们 (``我在城关``).

The gazetteer is configuration (``config/places.toml``)::

    [[regions]]
    name = "河口镇"
    places = ["滨河小区"]   # optional: places inside it, each named in one region only
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yuqing.hanzi import simplified
from yuqing.paths import is_word_list, read_toml

TOWN = re.compile(r"([\u4e00-\u9fff]{2})(?:镇|乡)")
# A township as a region field names it: two or three characters before 镇/乡 (河口镇, 柳树湾乡), or
# two before 街道 (a town's subdistrict, 西岗街道). In running text only ``TOWN`` is read: a third
# character before a name is as often another word's (我们河口镇) as the name's.
REGION_NAME = re.compile(r"([\u4e00-\u9fff]{2,3})(?:镇|乡)|([\u4e00-\u9fff]{2})街道")
# A specific place: one or two characters of name and a suffix (滨河小区, 新街村, 三组, 东街).
# The one definition of place names: the alerts' and the NLP worker's region inference and
# the search issues' grouping (services/search/issue_text.py) read places alike.
PLACE_SUFFIXES = "小区|社区|新村|花园|家园|村|组|街|路|中学|小学|学校|医院|市场|广场|工业园|厂"
PLACE = re.compile(rf"([\u4e00-\u9fff0-9a-zA-Z]{{1,2}})({PLACE_SUFFIXES})")
# "3栋", "五组": numbered groups and buildings, not places on their own
NUMBER_GROUP = re.compile(r"([一二三四五六七八九十0-9]{1,2})(组|栋|号楼)")
# never part of a place's name: deictic words (整条街, 我们村) and particles before a place (就在小学)
NOT_NAME_CHARS = frozenset("们全本整这那隔邻同各哪啥个我你他条每满逛在的了到去从")
# characters of a clause, never of a place's name: negation, a request, speech, time (看不见路,
# 请村民, 说是村里, 已组织, 昨晚村里, 问村委会); the name is read again after them
CLAUSE_CHARS = frozenset("不没请已昨问说是")
# common words ending in a place suffix (the countryside, a crew, a team), not a place
COMMON_WORDS = frozenset({"农村", "班组", "小组", "村组"})
# part of a common word before 路/街/厂 (马路, 大街, 线路, 电厂, 走大路), but of a name before the
# other suffixes (上河村, 坪上村, 大坝村, 马家组)
WORD_CHARS = frozenset("上下一大马公线电短走出回道半")
WORD_SUFFIXES = frozenset({"路", "街", "厂"})
_CJK = re.compile(r"[\u4e00-\u9fff]")
# What may stand before a short form: the start, a non-Chinese character, or one of these words.
_BEFORE = ("在", "是", "到", "去", "住", "回", "从", "往", "离", "我们", "咱们", "我家", "我", "说", "和",
           "与", "跟", "及")
# What may follow it: a locative, a place suffix, an outage word.
_AFTER = ("这边", "那边", "这里", "那里", "这块", "那块", "那片", "这片", "一带", "附近", "片区", "方向",
          "街", "村", "路", "小区", "社区", "中学", "小学", "老街", "市场", "供电所", "营业厅",
          "停电", "没电", "来电", "断电", "停了", "又停", "电压", "跳闸", "全黑", "黑了", "变压器",
          "线路", "大面积")


def towns(text: str) -> frozenset[str]:
    """Township names (two characters before 镇/乡) mentioned in the text."""
    return frozenset(m.group(1) for m in TOWN.finditer(text))


def is_place_name(name: str, suffix: str) -> bool:
    """Whether the characters before a place suffix name a place (not ``整条街``, ``马路``, ``三组``)."""
    if name.isdigit() or any(c in NOT_NAME_CHARS for c in name):
        return False
    return suffix not in WORD_SUFFIXES or not any(c in WORD_CHARS for c in name)


def specific_places(body: str, *, strict: bool = True) -> frozenset[str]:
    """Specific places named in a text without its townships, each keyed by (up to) two
    characters and its suffix: the same place in two posts gets the same key even when the
    words before it differ (``家住滨河小区`` / ``滨河小区3栋``).

    ``strict``: a name holding a character of a clause (``看不见路``, ``请村民``, ``说是村``) is read
    again after that character, where a name of two characters must then stand before a suffix
    (``请问花园小区`` -> ``花园小区``; ``不见路`` -> none), and a common word ending in a suffix
    (``农村``, ``班组``) is no place; without it, every match of ``PLACE`` is read as it stands."""
    if not strict:
        return frozenset(f"{name}{suffix}" for name, suffix in PLACE.findall(body)
                         if is_place_name(name, suffix))
    found: set[str] = set()
    start, reread = 0, -1  # reread: where a name is read again after a clause's character
    while (match := PLACE.search(body, start)) is not None:
        name, suffix = match.groups()
        clause = [i for i, char in enumerate(name) if char in CLAUSE_CHARS]
        if clause:
            start = reread = match.start() + clause[-1] + 1
            continue
        start = match.end()
        if (match.start() == reread and len(name) < 2) or f"{name[-1]}{suffix}" in COMMON_WORDS:
            continue
        if is_place_name(name, suffix):
            found.add(f"{name}{suffix}")
    return frozenset(found)


def place_names(text: str) -> frozenset[str]:
    """Places named in the text with their suffix: townships (``河口镇``) and specific places
    (``滨河小区``, ``新街村``, ``东街``; see :func:`specific_places`)."""
    found = {m.group(0) for m in TOWN.finditer(text)}
    return frozenset(found | specific_places(NUMBER_GROUP.sub(" ", TOWN.sub(" ", text))))


def short_form(region: str) -> str | None:
    """A township's name without 镇/乡/街道 (``河口镇`` -> ``河口``, ``柳树湾乡`` -> ``柳树湾``,
    ``西岗街道`` -> ``西岗``); None for a region that names no township (``城关``)."""
    match = REGION_NAME.fullmatch(region)
    return (match.group(1) or match.group(2)) if match else None


def _stands_as_place(text: str, start: int, end: int) -> bool:
    # read in place: copies of the text before and after each match made a text saying a short
    # form over and over quadratic (100,000 characters of 河口 took 1.1 s in the alerts worker)
    if text.startswith(_AFTER, end):
        return True
    at_phrase_end = end == len(text) or not _CJK.match(text, end)
    return at_phrase_end and (start == 0 or not _CJK.match(text, start - 1)
                              or text.endswith(_BEFORE, 0, start))


@dataclass(frozen=True)
class Gazetteer:
    """The known regions (townships) of the service area, and places inside them."""

    regions: frozenset[str] = frozenset()
    places: dict[str, str] = field(default_factory=dict)  # place -> its region

    @classmethod
    def of(cls, regions: Iterable[str], places: dict[str, Iterable[str]] | None = None) -> Gazetteer:
        """Regions, and per region the places in it (a place listed under two regions is dropped)."""
        owner: dict[str, str | None] = {}
        for region, names in (places or {}).items():
            for name in names:
                owner[name] = region if owner.get(name, region) == region else None
        return cls(frozenset(regions), {name: region for name, region in owner.items() if region})

    def regions_named(self, text: str) -> frozenset[str]:
        """Every known region the text names: in full, by its short form, or by a place in it."""
        named = {region for region in self.regions if region in text}
        for region in self.regions - named:
            short = short_form(region)
            if short and any(_stands_as_place(text, m.start(), m.end())
                             for m in re.finditer(re.escape(short), text)):
                named.add(region)
        named.update(region for place, region in self.places.items() if place in text)
        return frozenset(named)

    def region_called(self, name: str) -> str:
        """The known region a filter names: itself, by its short form or in traditional characters
        (``河口`` and ``河口鎮`` are ``河口镇``); ``name`` when it names no known region, or several."""
        if name in self.regions:
            return name
        written = simplified(name)
        if written in self.regions:
            return written
        by_short = [region for region in self.regions if short_form(region) == written]
        return by_short[0] if len(by_short) == 1 else name

    def region_of(self, text: str) -> str | None:
        """The one known region the text names, or None (none named, or several)."""
        named = self.regions_named(text)
        return next(iter(named)) if len(named) == 1 else None


NO_PLACES = Gazetteer()


def existing_places_file(path: Path, setting: str) -> Path:
    """``path`` if it is a file; else a ``ValueError`` naming ``setting``. For a places file set
    on purpose: a worker that started without it inferred no region, and no post told."""
    if not path.is_file():
        raise ValueError(f"{setting}={path}: no such places file")
    return path


def _region_tables(path: Path, document: dict[str, Any]) -> list[Any]:
    # [[region]] was read as no regions: the worker inferred none, and no post told
    if unknown := sorted(set(document) - {"regions"}):
        raise ValueError(f"{path}: unknown {', '.join(unknown)}; each region is a [[regions]] table")
    entries = document.get("regions", [])
    if not isinstance(entries, list):
        raise ValueError(f"{path}: each region is a [[regions]] table (two brackets)")
    return entries


def load_gazetteer(path: Path) -> Gazetteer:
    """The gazetteer of a TOML file of ``[[regions]]`` (``name``, optional ``places``);
    an empty one if the file does not exist."""
    if not path.is_file():
        return NO_PLACES
    entries = _region_tables(path, read_toml(path))
    try:
        names = [e["name"] for e in entries]
        places = {e["name"]: e.get("places", []) for e in entries}
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: every [[regions]] entry needs a name ({error!r})") from error
    for entry in entries:
        if not isinstance(entry["name"], str) or not entry["name"]:
            raise ValueError(f"{path}: region {entry['name']!r}: name must be a region's name")
        if unknown := sorted(set(entry) - {"name", "places"}):  # place = [...] placed nothing
            raise ValueError(f"{path}: region {entry['name']!r}: unknown {', '.join(unknown)}; "
                             "an entry has name and places")
    for name, listed in places.items():
        if not is_word_list(listed):
            raise ValueError(f"{path}: region {name!r}: places must be a list of names, "
                             'e.g. places = ["下坝村"]')
    return Gazetteer.of(names, places)
