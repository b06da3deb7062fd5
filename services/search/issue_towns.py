"""The township of a post that carries no region, for issue grouping (pure, no I/O).

A WeChat push or a forum post has no region, and many name their township only
by its short form (``蓝田这边停电了``, ``石龙+1``, ``永丰这边检修完了``): without
the township such a post is compared with every township's issues and joins
none of them (it is penalised as a post of no known township). The NLP worker
infers a region from the text with the configured gazetteer
(``inferred_region``, ``yuqing.places``); the configured regions are few (the
demo's), so grouping also learns the townships of its own stream: every
region a post carries is a known township, and a post without one is placed by
the same rule (``Gazetteer.region_of``: a township named in full, by its short
form where a place name stands, or by a place listed under it); failing that, by the short
form that opens a clause of the text whatever follows it (``高塘新装的智能表``), if the
text names no other township's short form.

Deterministic: the townships known at a post are those of the posts before it,
in the order they were grouped (a replica or a restarted indexer learns them
again from the posts it reads back). Bounded: at most ``MAX_TOWNSHIPS`` learned,
the oldest forgotten first; a lookup costs one regular-expression search of the known names, and
a scan of the known townships only when the text names one.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import replace

from services.search.issue_text import VOICE, Voice, clean
from services.search.open_issues import PostSignal
from yuqing.places import NO_PLACES, REGION_NAME, Gazetteer, short_form

MAX_TOWNSHIPS = 200  # a county has a few dozen; bounds the scan per post without a region


class KnownTownships:
    """Townships of the configured gazetteer and of the regions posts carried."""

    def __init__(self, configured: Gazetteer = NO_PLACES, limit: int = MAX_TOWNSHIPS, *,
                 leading: bool = True, voice: Voice = VOICE) -> None:
        """``leading``: a short form that opens a clause names its township whatever follows it
        (``高塘新装的智能表``, ``松岗的电费通知``; ``leading_region``); ``voice``: how the text is read
        (``鄉``, ``鎮`` in traditional characters)."""
        self._configured = configured
        self._limit = limit
        self._leading = leading
        self._voice = voice
        self._leaders: re.Pattern[str] | None = None  # the short forms, at the start of a clause
        self._shorts: re.Pattern[str] | None = None  # the short forms, anywhere
        self._by_short: dict[str, str | None] = {}  # short form -> its township (None: several)
        self._learned: OrderedDict[str, None] = OrderedDict()
        self._gazetteer: Gazetteer | None = None
        self._names: re.Pattern[str] | None = None  # every name a lookup may find, in one pattern

    def learn(self, region: str | None) -> None:
        """Remember a post's region if it names a township (``桑园乡``, ``柳树湾乡``, ``西岗街道``;
        not ``市区``)."""
        if not region or region in self._learned or region in self._configured.regions:
            return
        if REGION_NAME.fullmatch(region):
            self._learned[region] = None
            while len(self._learned) > self._limit:
                self._learned.popitem(last=False)
            self._gazetteer = None  # rebuilt at the next lookup

    def region_of(self, text: str) -> str | None:
        """The one known township the text names, or None (none named, or several)."""
        if self._gazetteer is None or self._names is None:
            regions = self._configured.regions | frozenset(self._learned)
            self._gazetteer = Gazetteer(regions, self._configured.places)
            names = {*regions, *(short_form(r) or r for r in regions), *self._configured.places}
            self._names = re.compile("|".join(sorted(map(re.escape, names)))) if names else None
            self._compile_leaders(regions)
        # most posts without a region name no township: one search, not a scan of every township
        if self._names is None or self._names.search(text) is None:
            return None
        named = self._gazetteer.regions_named(text)
        if named or not self._leading:
            return next(iter(named)) if len(named) == 1 else None
        return self.leading_region(text)

    def leading_region(self, text: str) -> str | None:
        """The township whose short form opens a clause of the text (the start, or after a
        punctuation mark), whatever follows it: a post opens with its place (``高塘新装的智能表是不是
        走得快``, ``金沙交电费的APP是不是坏了``); None if none does, or the text names the short forms
        of several (``蓝田和石龙都停电了``)."""
        if self._leaders is None or self._shorts is None or self._leaders.search(text) is None:
            return None
        found = {self._by_short.get(m.group()) for m in self._shorts.finditer(text)}
        return found.pop() if len(found) == 1 else None

    def _compile_leaders(self, regions: frozenset[str]) -> None:
        self._by_short = {}
        for region in sorted(regions):
            short = short_form(region)
            if short:
                self._by_short[short] = None if short in self._by_short else region
        shorts = "|".join(sorted(map(re.escape, self._by_short)))
        self._shorts = re.compile(shorts) if shorts else None
        self._leaders = re.compile(f"(?:^|[^\\u4e00-\\u9fff])(?:{shorts})") if shorts else None

    def place(self, post: PostSignal, *, infer: bool = True) -> PostSignal:
        """The post with the township it is about: its region (learned), else the region inferred
        from its text, by the NLP worker or else among the known townships (if ``infer``)."""
        if post.region:
            self.learn(post.region)
            return post
        region = (post.inferred_region or self.region_of(clean(post.text, self._voice))) if infer else None
        return replace(post, region=region) if region else post
