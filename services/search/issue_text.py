"""What a post says, where, for issue grouping: weighted character bigrams and place names (pure).

* **Places**: the township (镇/乡) and the specific places (村, 组, 小区, 街, 路,
  社区, schools, markets …) named in the text, as ``yuqing.places`` defines them
  (one definition for grouping and for the region a post is about). A place is
  keyed by its suffix and the two characters before it (``滨河小区``, ``新街村``,
  ``东街``): the same place written in two posts gets the same key even when the
  words before it differ (``家住滨河小区`` / ``滨河小区3栋``). Deictic prefixes
  (``整条街``, ``我们村``) are not places.
* **Voice** (``Voice``): before anything is read, traditional characters are written simplified
  (``停電`` → ``停电``, ``鄉`` → ``乡``; ``yuqing.hanzi``), and dialect words and input-method slips
  for the matter join the colloquial variants below (``莫得电``/``冇电``/``黑灯瞎火`` → ``停电``,
  ``咋个回事`` → ``原因``, ``电废`` → ``电费``): posts written in other voices say the same words.
* **Words**: character bigrams of the text without its place names, after a few
  colloquial variants are mapped to one form (``没电``/``断电``/``黑了`` → ``停电``),
  weighted by inverse document frequency over the bundled corpus (fixed, so the
  weights do not move with the stream) and L2-normalised. Place names are left
  out because place is scored on its own; what remains says *what* happened.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from yuqing.hanzi import simplified
from yuqing.places import NUMBER_GROUP, PLACE, PLACE_SUFFIXES, TOWN, short_form, specific_places, towns

CORPUS_DIR = Path(__file__).resolve().parents[2] / "data" / "corpus"
_VARIANTS = {
    "停电": "没有电|没电|断电|掉电|黑了|全黑|停了",
    "来电": "恢复供电|恢复了|通电了|有电了",
    "几时": "啥时候|什么时候|几点|多久|何时",
    "原因": "咋回事|怎么回事|啥情况|什么情况|什么原因|啥原因",
}
# other voices (``Voice.dialect``): south-western and southern dialect words for "no power", "when",
# "why" (莫得电, 冇电, 好久, 咋个, 啷个, 么子), and the slips of a pinyin input method on the matter's
# words (停点 for 停电, 电废 for 电费): domain knowledge, not a list of the development sets' posts
_DIALECT = {
    "停电": "莫得电|没得电|没的电|冇电|无电|木有电|停点|黑灯瞎火|黑起|黑咕隆咚",
    "来电": "来点了",
    "几时": "啥子时候|好久来|好久能|几时候",
    "原因": "咋个回事|啷个回事|咋个搞的|啷个搞的|搞么子|咋搞的|咋整的",
    "电费": "电废|电肺",
}
_TRIP = {"停电": "跳闸"}  # a tripped breaker: a household's, or the line's (``Voice.trip``)


def _variant_pattern(*groups: dict[str, str]) -> tuple[dict[str, str], re.Pattern[str]]:
    canonical = {variant: form for group in groups for form, variants in group.items()
                 for variant in variants.split("|")}
    return canonical, re.compile("|".join(sorted(canonical, key=len, reverse=True)))


@dataclass(frozen=True)
class Voice:
    """How a post's wording is read before its words are weighed (``GroupingParams.voice``)."""

    simplify: bool = True  # traditional characters written simplified (``yuqing.hanzi``)
    dialect: bool = True  # dialect words and input-method slips joined to their standard forms
    trip: bool = False  # ``跳闸`` read as ``停电`` (measured, not kept: docs/search.md)
    # places not read from a clause's words or common words (``看不见路``, ``请村民``, ``农村``;
    # ``yuqing.places.specific_places``, strict); False: every match of the place pattern
    strict_places: bool = True
    # a township's name before a place suffix is the name of a place in it (``柳塘镇柳塘街``), not
    # the township (dropped as the region's name); False: dropped wherever it stands
    town_streets: bool = False  # measured, not kept: docs/search.md, the eleventh round

    def variants(self) -> tuple[dict[str, str], re.Pattern[str]]:
        return _variants(self.dialect, self.trip)


@cache
def _variants(dialect: bool, trip: bool) -> tuple[dict[str, str], re.Pattern[str]]:
    return _variant_pattern(_VARIANTS, *([_DIALECT] if dialect else []), *([_TRIP] if trip else []))


VOICE = Voice()  # the default reading
PLAIN = Voice(simplify=False, dialect=False)  # the reading before the eighth round
_DROP = re.compile(r"[^\u4e00-\u9fff0-9a-z]+")
# "+1", "同问", "我家也是": agreement with what others said, no words of its own (the number in
# "+1" would otherwise be a rare, heavy term)
_ECHO = re.compile(r"[+＋]\s*1(?![0-9])|同问|同上|我家也是|我们也是|一样的")
STOP_BIGRAMS = frozenset({"我家", "也是", "我们", "这边", "那边", "一下", "了吗", "是不", "不是", "有没",
                          "没有"})


@dataclass(frozen=True)
class TextView:
    words: dict[str, float]  # bigram -> weight, L2-normalised (empty for "+1" posts)
    mass: float  # summed inverse document frequency of the bigrams: how much the text says
    places: frozenset[str]  # "滨河小区", "新街村"
    towns: frozenset[str]
    text: str  # cleaned, for places named without their suffix ("东关这边")

    def names(self, stems: AbstractSet[str]) -> bool:
        """Whether the text names one of the places of these stems (:func:`stem`), with or
        without its suffix."""
        if len(stems) <= len(self.text):
            return any(s in self.text for s in stems)
        # an issue's places are those of every post it had: a search of the text for each one's
        # stem grew with the issue (posts naming 600 villages each: 0.5 s a post after 150 of
        # them); the text's pieces as long as a stem are looked up instead
        pieces = {self.text[i:i + n] for n in STEM_LENGTHS for i in range(len(self.text) - n + 1)}
        return not stems.isdisjoint(pieces)


STEM_LENGTHS = range(2, 2 + max(map(len, PLACE_SUFFIXES.split("|"))))
"""The lengths of a stem: two characters of name, or a place of one (``东街``, ``东工业园``)."""


def stem(place: str) -> str:
    """A place's name without its suffix, when it has two characters (``新街村`` -> ``新街``)."""
    match = PLACE.fullmatch(place)
    return match.group(1) if match and len(match.group(1)) == 2 else place


def clean(text: str, voice: Voice = VOICE) -> str:
    """NFKC (full-width forms to half-width), lower case, and simplified characters (``voice``)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return simplified(text) if voice.simplify else text


def _without_towns(text: str, region: str | None, found_towns: frozenset[str], voice: Voice = VOICE) -> str:
    """The text without township names and numbered groups ("3栋", "五组": not places on their own);
    with ``Voice.town_streets``, a township's name before a place suffix stays (``柳塘街``: a street)."""
    # the region's own name first: ``TOWN`` reads only two characters before 镇/乡 (柳树湾乡 -> 树湾)
    body = NUMBER_GROUP.sub(" ", TOWN.sub(" ", text.replace(region, " ") if region else text))
    own = town_of(region)
    for town in (*found_towns, *([own] if own else [])):
        body = _town_name(town).sub(" ", body) if voice.town_streets else body.replace(town, " ")
    return body


@lru_cache(maxsize=1024)
def _town_name(town: str) -> re.Pattern[str]:
    """A township's name where it is not the name of a place in it (``柳塘街``, ``河口小学``)."""
    return re.compile(f"{re.escape(town)}(?!{PLACE_SUFFIXES})")


def places(text: str, region: str | None = None) -> frozenset[str]:
    """Specific places named in the text, keyed by (up to) two characters and the suffix."""
    return specific_places(_without_towns(text, region, towns(text)))


def _canonical(text: str, voice: Voice = VOICE) -> str:
    canonical, pattern = voice.variants()
    return pattern.sub(lambda m: canonical[m.group(0)], text)


def bigrams(text: str) -> list[str]:
    compact = _DROP.sub(" ", text)
    grams = []
    for run in compact.split():
        if len(run) == 1:
            grams.append(run)
        grams.extend(run[i:i + 2] for i in range(len(run) - 1))
    return [g for g in grams if g not in STOP_BIGRAMS]


MAX_TERMS = 32  # the heaviest bigrams of a post: what it is about; keeps every comparison cheap


def idf_table(voice: Voice = VOICE) -> tuple[dict[str, float], float]:
    """Inverse document frequency of bigrams over the bundled corpus, and the value for unseen ones
    (the corpus read in the same voice as the posts); built once per voice."""
    return _idf_table(voice)  # one cache key per voice, however the caller passed it


@cache
def _idf_table(voice: Voice) -> tuple[dict[str, float], float]:
    df: Counter[str] = Counter()
    docs = 0
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                docs += 1
                df.update(set(bigrams(_canonical(clean(json.loads(line)["text"], voice), voice))))
    return {g: math.log((docs + 1) / (n + 1)) + 1.0 for g, n in df.items()}, math.log(docs + 1) + 1.0


def town_of(region: str | None) -> str | None:
    """The name of a township region without its suffix (``河口镇`` -> ``河口``, ``柳树湾乡`` -> ``柳树湾``,
    ``西岗街道`` -> ``西岗``; ``yuqing.places.short_form``), else the region as it is."""
    return (short_form(region) or region) if region else region


VIEW_CHARS = 2_000
"""The characters of a post's text that grouping reads, as many as the model, the keywords and the
fingerprint read (``services.nlp.enrich.MODEL_TEXT_CHARS``). Grouping remembers views by their
text and keeps each open issue's latest members with their text and places for days: a post of
100,000 characters, which the edge accepts, held up to a megabyte there, so a few hundred of them
would fill the indexer's memory, and its warm-up reads them back after each restart."""


def view(text: str, region: str | None = None, voice: Voice = VOICE) -> TextView:
    """Words, places and townships of a post's text, of its first :data:`VIEW_CHARS` characters
    (the region's own name is not a word)."""
    return _view(text[:VIEW_CHARS], region, voice)


def forget_views() -> None:
    """Forget the views computed so far (a benchmark measures them afresh)."""
    _view.cache_clear()


# Copies and near-copies are common and a view is immutable, so views are remembered by their text.
# A view of 2,000 characters with its key holds about 19 KB: 8,192 of them at most 160 MB (50,000
# were up to 950 MB of long random posts, in the indexer and again in the alerts worker).
@lru_cache(maxsize=8_192)
def _view(text: str, region: str | None, voice: Voice) -> TextView:
    text = clean(text, voice)
    found_towns = towns(text)
    body = _without_towns(text, region, found_towns, voice)
    found_places = specific_places(body, strict=voice.strict_places)
    stripped = _ECHO.sub(" ", PLACE.sub(" ", body))
    idf, unseen = idf_table(voice)
    weights = {g: n * idf.get(g, unseen) for g, n in Counter(bigrams(_canonical(stripped, voice))).items()}
    mass = sum(weights.values())
    if len(weights) > MAX_TERMS:
        # heaviest first; equal weights keep their order in the text (sorted is stable)
        weights = {g: weights[g] for g in sorted(weights, key=weights.__getitem__, reverse=True)[:MAX_TERMS]}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    words = {g: w / norm for g, w in weights.items()}
    return TextView(words, mass, found_places, found_towns, text)


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Of two L2-normalised vectors; the shared terms are found by a (C-level) set intersection."""
    return sum(a[g] * b[g] for g in a.keys() & b.keys())
