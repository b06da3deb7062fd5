"""Intranet forum polling: Discourse ``/posts.json`` and RSS 2.0 / Atom feeds.

A :class:`ForumSource` returns what is new after a :class:`ForumCursor`, oldest
first. :class:`ForumPoller` publishes it in batches and saves the cursor only
after each batch was published (at-least-once: a crash repeats, never skips).
Cursors live in one JSON file per source, replaced atomically.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import email.utils
import hashlib
import html
import logging
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import httpx
from defusedxml import ElementTree as SafeElementTree

from services.ingest import metrics
from services.ingest.forum_io import (
    MAX_PUBLISHED_GUIDS,
    MAX_PUBLISHED_IDS,
    CursorStore,
    FetchError,
    ForumCursor,
    HttpFetcher,
    Sleep,
    guid_digest,
)
from services.ingest.registry import RegisteredSource, pseudonymize
from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.limits import DEFAULT_EVENT_MAX_LEAD, MAX_TEXT_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[RawPost]], Awaitable[None]]
ForumFetchError = FetchError  # the forum could not be read; the poll loop retries later

_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
_DC_DATE = "{http://purl.org/dc/elements/1.1/}date"
# a feed's time without an offset, and one in "CST", is China Standard Time (UTC+8): the sites a
# county's forums and intranet run on write local time so, and Java's date formats name UTC+8 "CST"
# (RFC 822 reads it as US Central, -06:00, which put such items 14 hours ahead); the same local
# time as ``yuqing issues group`` and the alerts' ``utc_offset_hours`` read by default
FEED_LOCAL_TIME = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class ForumItem:
    """One unit of progress: a post (None when skipped) and the cursor once it is published
    (``position``; or the function that builds it when asked)."""

    post: RawPost | None
    cursor: ForumCursor | Callable[[], ForumCursor]

    @property
    def position(self) -> ForumCursor:
        return self.cursor if isinstance(self.cursor, ForumCursor) else self.cursor()


class ForumSource(ABC):
    """A pollable forum."""

    source_id: str

    @abstractmethod
    async def fetch_new(self, cursor: ForumCursor) -> list[ForumItem]:
        """Everything after ``cursor``, oldest first; nothing at or before it."""


# ---- HTML to text -------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "blockquote", "pre",
                         "h1", "h2", "h3", "h4", "h5", "h6", "hr", "section", "article"})
_DROPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg"})
# Discourse's markup around the poster's words: quotes repeat another post, link previews
# (onebox) another page, and an image box's meta its file name, size and weight.
_DROPPED_CLASSES = {"aside": frozenset({"quote", "onebox"}), "div": frozenset({"meta"})}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropped: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropped is not None:
            self._depth += tag == self._dropped
            return
        classes = frozenset((dict(attrs).get("class") or "").split())
        if tag in _DROPPED_TAGS or classes & _DROPPED_CLASSES.get(tag, frozenset()):
            self._dropped, self._depth = tag, 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._dropped is not None:
            self._depth -= tag == self._dropped
            if self._depth == 0:
                self._dropped = None
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._dropped is None:
            self.parts.append(data)


def _no_open_tags_at_the_end(markup: str) -> str:
    """``markup`` with each ``<`` after its last ``>`` written ``&lt;``: no tag can end there.

    The parser reads each such ``<`` as the start of a tag and looks for its end through the rest
    of the text before taking it for a letter: a feed text of 56,000 characters saying ``a<b`` over
    and over (a portal's plain text, HTML-escaped once) took 15 s, four times as long for twice
    the text, and the poll held the ingest service's event loop, every channel's requests with
    it."""
    last = markup.rfind(">")
    return markup[:last + 1] + markup[last + 1:].replace("<", "&lt;")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment: no script/style/quotes, entities unescaped,
    whitespace collapsed within lines, one line per block."""
    extractor = _TextExtractor()
    extractor.feed(_no_open_tags_at_the_end(markup))
    extractor.close()
    lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(extractor.parts).split("\n"))
    return "\n".join(line for line in lines if line)


# ---- Discourse ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    """What every post of a source shares."""

    source_id: str
    author_salt: str
    region: str | None = None
    unit: str | None = None


@dataclass
class _WalkBack:
    """A walk back through more pages of new posts than one poll reads: where it stopped."""

    after_id: int  # the cursor it walks back to
    before: int  # the next page ends before this post id
    collected: dict[int, dict[str, Any]]


def _late_posts(first_page: list[dict[str, Any]], cursor: ForumCursor,
                ) -> tuple[ForumCursor, dict[int, dict[str, Any]]]:
    """The posts of the newest page numbered at or below the cursor's and never published: committed
    after a higher-numbered post that was published (Discourse numbers a post when its transaction
    inserts it, and two saved at once can commit in the other order); the cursor moved past them,
    and they were never read. A cursor written before it held ids takes that page's posts up to
    it as published (returned with them)."""
    if cursor.last_id is None:
        return cursor, {}
    below = {p["id"]: p for p in first_page if p["id"] <= cursor.last_id}
    if not cursor.published_ids:
        return cursor.model_copy(update={"published_ids": tuple(sorted(below))}), {}
    known, oldest = set(cursor.published_ids), min(cursor.published_ids)
    return cursor, {i: p for i, p in below.items() if i not in known and i > oldest}


def _id_positions(new: list[int], cursor: ForumCursor) -> list[Callable[[], ForumCursor]]:
    """The cursor once each of the ``new`` post ids (in order) is published, built when asked (as
    a feed's, ``_positions``: a walk back over many pages held 1,000 ids for each post it read)."""
    ids = [*cursor.published_ids[-MAX_PUBLISHED_IDS:], *new]
    before, start = len(ids) - len(new), cursor.last_id or 0

    def position(i: int) -> Callable[[], ForumCursor]:
        end = before + i + 1
        return lambda: ForumCursor(last_id=max(start, new[i]),
                                   published_ids=tuple(ids[max(0, end - MAX_PUBLISHED_IDS):end]))

    return [position(i) for i in range(len(new))]


class DiscourseSource(ForumSource):
    """Discourse ``GET /posts.json``: latest posts newest first, older pages via ``before``.

    When more new posts wait than ``max_pages`` pages hold (after downtime, on a busy forum), a
    poll reads ``max_pages`` pages and publishes nothing: the next poll goes on walking back from
    where it stopped, until it reaches the cursor, and then every new post is published, oldest
    first. The posts read on the way are held in memory; a restart walks back again from the newest.
    """

    def __init__(self, info: SourceInfo, *, base_url: str, fetcher: HttpFetcher,
                 max_pages: int = 20, backfill_pages: int = 1) -> None:
        self.source_id = info.source_id
        self._info = info
        self._base_url = base_url.rstrip("/") + "/"
        self._fetcher = fetcher
        self._max_pages = max_pages
        self._backfill_pages = backfill_pages
        self._walk: _WalkBack | None = None

    async def fetch_new(self, cursor: ForumCursor) -> list[ForumItem]:
        last_id = cursor.last_id or 0
        pages = self._max_pages if cursor.last_id is not None else max(1, self._backfill_pages)
        walk = self._walk if self._walk is not None and self._walk.after_id == last_id else None
        collected: dict[int, dict[str, Any]] = dict(walk.collected) if walk else {}
        before: int | None = walk.before if walk else None
        first: list[dict[str, Any]] = []
        for _ in range(pages):
            latest = await self._page(before)
            first = first or (latest if before is None else [])
            newer = [p for p in latest if p["id"] > last_id]
            collected.update((p["id"], p) for p in newer)
            if not latest or len(newer) < len(latest):
                break
            before = min(p["id"] for p in latest)
        else:
            if cursor.last_id is not None and before is not None:
                # the cursor not reached: walk on at the next poll; publishing the newest posts now
                # would move the cursor past the older new ones, never read
                self._walk = _WalkBack(last_id, before, collected)
                log.warning("source %s: more than %d pages of new posts (%d read so far); walking back "
                            "further at the next poll", self.source_id, pages, len(collected))
                return []
        self._walk = None
        if cursor.last_id is None and self._backfill_pages == 0 and collected:  # start from now
            return [ForumItem(None, ForumCursor(last_id=max(collected),
                                                published_ids=tuple(sorted(collected))[-MAX_PUBLISHED_IDS:]))]
        cursor, late = _late_posts(first, cursor)
        collected.update(late)
        new = sorted(collected)
        return [ForumItem(_safely(self._to_post, collected[post_id]), position)
                for post_id, position in zip(new, _id_positions(new, cursor), strict=True)]

    async def _page(self, before: int | None) -> list[dict[str, Any]]:
        params = {"before": before} if before is not None else None
        response = await self._fetcher.get(urljoin(self._base_url, "posts.json"), params)
        try:
            posts: list[dict[str, Any]] = response.json()["latest_posts"]
            if not all(isinstance(p, dict) and isinstance(p.get("id"), int) for p in posts):
                raise TypeError("post without an integer id")
        except (ValueError, KeyError, TypeError) as exc:
            raise ForumFetchError(f"source {self.source_id}: unexpected posts.json: {exc}") from exc
        return posts

    def _to_post(self, post: dict[str, Any]) -> RawPost | None:
        if post.get("hidden") or post.get("deleted_at") or post.get("post_type", 1) != 1:
            return None  # moderator actions, whispers, hidden and deleted posts
        info = self._info
        external_id = str(post["id"])
        cooked, raw = post.get("cooked"), post.get("raw")
        reply = post.get("reply_to_post_number")
        text, cut = fit_text(_mentions_pseudonymised(info.author_salt,
                                                      html_to_text(cooked) if cooked else (raw or "")))
        received = datetime.now(UTC)
        created, ahead = _not_after(datetime.fromisoformat(post["created_at"]), received)
        return RawPost(
            post_id=make_post_id(info.source_id, external_id),
            source=info.source_id,
            channel=Channel.FORUM,
            external_id=external_id,
            author=_pseudonym(info.author_salt, post.get("username")),
            title=_fit_title(post.get("topic_title")),
            text=text,
            created_at=created,
            received_at=received,
            region=info.region,
            unit=info.unit,
            thread_id=_str_or_none(post.get("topic_id")),
            reply_to=f"{post['topic_id']}#{reply}" if reply and post.get("topic_id") else None,
            url=_fit_link(urljoin(self._base_url, post["post_url"]) if post.get("post_url") else None),
            attributes={"post_number": post.get("post_number"),
                        "category_id": post.get("category_id"), **cut, **ahead},
        )


def _not_after(created: datetime, received: datetime) -> tuple[datetime, dict[str, str]]:
    """A Discourse post's date, or the moment it was read if the forum dates it ahead of that
    (its server's clock ahead of ours), and the attribute keeping the forum's date then.

    Discourse dates a post when it is written, so one already on the forum was written by now.
    Published with the forum's date, it was refused by the edge as dated ahead (beyond
    ``YUQING_INGEST_EVENT_MAX_LEAD_S``) and skipped, the cursor moved past it: a forum whose clock
    ran fast lost every post."""
    if created.tzinfo is None or created <= received:
        return created, {}
    if created > received + DEFAULT_EVENT_MAX_LEAD:
        log.warning("forum post dated %s, ahead of now: published dated when it was read (is the "
                    "forum's clock fast?)", created.isoformat())
    return received, {"forum_created_at": created.isoformat()}


# ---- RSS 2.0 and Atom ---------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    guid: str
    published: datetime
    title: str | None
    link: str | None
    author: str | None
    html: str


def parse_feed(data: bytes, charset: str | None = None) -> list[FeedEntry]:
    """Entries of an RSS 2.0 or Atom document, oldest first; entries without a date are left out.
    ``charset``: the one its HTTP answer names, for a document that declares none."""
    try:
        root = SafeElementTree.fromstring(in_utf8(data, charset))  # entities and external references refused
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise ForumFetchError(f"feed is not safe, well-formed XML: {exc!r}") from exc
    if root.tag == f"{_ATOM}feed":
        entries = [_atom_entry(e) for e in root.iter(f"{_ATOM}entry")]
    elif root.tag == "rss":
        entries = [_rss_entry(e) for e in root.iter("item")]
    else:
        raise ForumFetchError(f"not an RSS 2.0 or Atom feed (root <{root.tag}>)")
    dated = [entry for entry in entries if entry is not None]
    if len(dated) < len(entries):
        log.warning("%d feed item(s) without a date or guid that can be read are left out",
                    len(entries) - len(dated))
    return sorted(dated, key=lambda entry: (entry.published, entry.guid))


_DECLARED = re.compile(rb"""(\xef\xbb\xbf)?(\s*<\?xml\s[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._-]+)(["'])""")


def in_utf8(data: bytes, charset: str | None = None) -> bytes:
    """An XML document in UTF-8: one that declares another encoding, or that declares none, is
    not UTF-8 and whose HTTP answer names an encoding (``charset``), decoded by it.

    The XML parser reads UTF-8, UTF-16 and single-byte encodings only: a feed in GB2312, GBK,
    GB18030 or Big5, as intranet sites in China often are, ended every poll in "multi-byte
    encodings are not supported" (or, named only by its HTTP answer, "not well-formed"), and none
    of its items was ever published. A document that is not in its encoding is refused
    (ForumFetchError), as malformed XML is.
    """
    declared = _DECLARED.match(data)
    if declared is not None:
        head, name, rest = declared.group(2) + b"UTF-8" + declared.group(4), declared.group(3), declared.end()
    elif charset and b"\x00" not in data[:4] and not _is_utf8(data):  # UTF-16 names itself
        head, name, rest = b"", charset.encode("ascii", "replace"), 0
    else:
        return data
    try:
        encoding = codecs.lookup(name.decode("ascii")).name
    except LookupError:
        return data  # the parser names an unknown encoding it is declared in
    try:
        text = data[rest:].decode(encoding)
    except UnicodeDecodeError as exc:
        raise ForumFetchError(f"feed is not in {encoding}, its encoding (invalid byte at "
                              f"{rest + exc.start})") from exc
    return head + text.removeprefix("\ufeff").encode("utf-8")


def _is_utf8(data: bytes) -> bool:
    # XML without a declaration is UTF-8: a server that names another charset for it is trusted
    # only where the bytes say it is right
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _rss_entry(item: Element) -> FeedEntry | None:
    # RSS says RFC 822; many feeds write ISO 8601 (2026-12-07T16:00:00+08:00, or 2026-12-07
    # 16:00:00) or only dc:date: read as no date, each of their items was left out, silently
    stated = _text(item, "pubDate")
    published = _rfc822(stated) or _rfc3339(stated) or _rfc3339(_text(item, _DC_DATE))
    link = _text(item, "link")
    guid = _text(item, "guid") or link
    if published is None or guid is None:
        return None
    markup = _text(item, _CONTENT_ENCODED) or _text(item, "description") or ""
    author = _text(item, _DC_CREATOR) or _text(item, "author")
    return FeedEntry(guid, published, _text(item, "title"), link, author, markup)


def _atom_entry(entry: Element) -> FeedEntry | None:
    published = _rfc3339(_text(entry, f"{_ATOM}published") or _text(entry, f"{_ATOM}updated"))
    links = entry.findall(f"{_ATOM}link")
    alternate = [x.get("href") for x in links if x.get("rel", "alternate") == "alternate"]
    guid = _text(entry, f"{_ATOM}id") or (alternate[0] if alternate else None)
    if published is None or guid is None:
        return None
    content = entry.find(f"{_ATOM}content")
    if content is None:
        content = entry.find(f"{_ATOM}summary")
    markup = "" if content is None else _element_html(content)
    author = _text(entry, f"{_ATOM}author/{_ATOM}name")
    return FeedEntry(guid, published, _text(entry, f"{_ATOM}title"),
                     alternate[0] if alternate else None, author, markup)


def _element_html(element: Element) -> str:
    kind = element.get("type", "text")
    if kind == "xhtml":
        return "".join(SafeElementTree.tostring(child, encoding="unicode") for child in element)
    return (element.text or "") if kind == "html" else html.escape(element.text or "")


def _text(element: Element, path: str) -> str | None:
    value = (element.findtext(path) or "").strip()
    return value or None


def _rfc822(value: str | None) -> datetime | None:
    words = value.split() if value else []
    china = bool(words) and words[-1] == "CST"
    try:
        stated = " ".join(words[:-1] if china else words)
        parsed = email.utils.parsedate_to_datetime(stated) if words else None
    except (TypeError, ValueError):
        return None
    if parsed is None or parsed.tzinfo:
        return parsed
    # RFC 822's -0000 (UTC, the sender's zone unknown) and no zone at all are both read naive
    return parsed.replace(tzinfo=UTC if words[-1] == "-0000" else FEED_LOCAL_TIME)


def _rfc3339(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=FEED_LOCAL_TIME)


def _positions(entries: list[FeedEntry], cursor: ForumCursor) -> list[Callable[[], ForumCursor]]:
    """The cursor once each of ``entries`` (new ones, in order) is published, built when asked.

    Each holds the latest guids published: built for every entry at once, a feed of 10,000 new
    items held 10,000 copies of 2,000 guids (169 MB for a feed of 1.7 MB), and the poller saves
    one cursor a batch."""
    digests = [*cursor.published_guids[-MAX_PUBLISHED_GUIDS:], *(guid_digest(e.guid) for e in entries)]
    before, latest, mark = len(digests) - len(entries), [], cursor.last_published
    for entry in entries:
        mark = entry.published if mark is None else max(mark, entry.published)
        latest.append(mark)

    def position(i: int) -> Callable[[], ForumCursor]:
        end = before + i + 1
        return lambda: ForumCursor(last_published=latest[i], last_guid=entries[i].guid,
                                   published_guids=tuple(digests[max(0, end - MAX_PUBLISHED_GUIDS):end]))

    return [position(i) for i in range(len(entries))]


def _new_entries(entries: list[FeedEntry], cursor: ForumCursor) -> list[FeedEntry] | None:
    """The entries not published yet: those whose guid the cursor does not hold; None when the
    guids cannot tell (a cursor written before it held guids, or a feed none of whose items dated
    up to the cursor's is known: its guids change between polls, a session id in the link).

    New meant dated after the last one published, and an item that appeared dated before it or
    like it (a notice dated by its document, a portal dating by the day: ``.../1000.html`` after
    ``.../999.html``) was taken for an old one and never published."""
    mark = cursor.last_published
    if not cursor.published_guids or mark is None:
        return None
    seen = set(cursor.published_guids)
    older = [guid_digest(e.guid) in seen for e in entries if e.published <= mark]
    if older and not any(older):
        return None
    return [e for e in entries if guid_digest(e.guid) not in seen]


def _after_the_mark(entries: list[FeedEntry], cursor: ForumCursor) -> list[FeedEntry]:
    """The entries after the cursor by date alone: after its (published, guid), or, for a feed whose
    guids change, after its date (one dated like the last one published has another guid now)."""
    if cursor.last_published is None or cursor.last_guid is None:
        return entries
    if cursor.published_guids:
        return [e for e in entries if e.published > cursor.last_published]
    mark = (cursor.last_published, cursor.last_guid)
    return [e for e in entries if (e.published, e.guid) > mark]


class FeedSource(ForumSource):
    """An RSS 2.0 or Atom feed; new means a guid the cursor has not published (by date, after the
    cursor's (published, guid), when the guids cannot tell)."""

    def __init__(self, info: SourceInfo, *, feed_url: str, fetcher: HttpFetcher) -> None:
        self.source_id = info.source_id
        self._info = info
        self._feed_url = feed_url
        self._fetcher = fetcher

    async def fetch_new(self, cursor: ForumCursor) -> list[ForumItem]:
        response = await self._fetcher.get(self._feed_url)
        entries = self._not_ahead(parse_feed(response.content, response.charset_encoding))
        if cursor.last_guid is not None:
            newer = _new_entries(entries, cursor)
            if newer is None:  # by date, and the feed's items up to the cursor taken as published
                if cursor.published_guids:
                    log.warning("source %s: no feed item dated up to the last one published has a "
                                "guid published; read by date (do its guids change?)", self.source_id)
                newer = _after_the_mark(entries, cursor)
                new = set(newer)  # a look-up in the list was quadratic: 22 s for 10,000 items
                published = [guid_digest(e.guid) for e in entries if e not in new]
                kept = tuple(published[-MAX_PUBLISHED_GUIDS:])
                cursor = cursor.model_copy(update={"published_guids": kept})
            if entries and len(newer) == len(entries):
                log.warning("source %s: every feed item is new; items may have been missed "
                            "(poll more often)", self.source_id)
            entries = newer
        return [ForumItem(_safely(self._to_post, e), position)
                for e, position in zip(entries, _positions(entries, cursor), strict=True)]

    def _not_ahead(self, entries: list[FeedEntry]) -> list[FeedEntry]:
        """The entries the edge would take now. One dated ahead (a feed writing local time as UTC, a
        notice dated next year) is left for a later poll: published now it was refused, and the
        cursor, moved to its date, skipped every later entry dated before it."""
        ahead = datetime.now(UTC) + DEFAULT_EVENT_MAX_LEAD
        kept = [entry for entry in entries if entry.published <= ahead]
        if len(kept) < len(entries):
            log.warning("source %s: %d feed item(s) dated after now are left until their time "
                        "(does the feed write local time as UTC?)", self.source_id, len(entries) - len(kept))
        return kept

    def _to_post(self, entry: FeedEntry) -> RawPost:
        info = self._info
        external_id = entry.guid if len(entry.guid) <= 256 else _digest(entry.guid)
        text, cut = fit_text(_mentions_pseudonymised(info.author_salt, html_to_text(entry.html)))
        return RawPost(
            post_id=make_post_id(info.source_id, external_id),
            source=info.source_id,
            channel=Channel.FORUM,
            external_id=external_id,
            author=_pseudonym(info.author_salt, entry.author),
            title=_fit_title(entry.title),
            text=text,
            created_at=entry.published,
            received_at=datetime.now(UTC),
            region=info.region,
            unit=info.unit,
            url=_fit_link(entry.link),
            attributes={**cut},
        )


def fit_text(text: str) -> tuple[str, dict[str, int]]:
    """A forum post's text within the contract, and the attribute that says it was cut.

    A forum has no sender to answer with a 413: a longer post was skipped as malformed, and
    the cursor moved past it for good. Cut, it is classified, indexed and counted like any
    other (the model reads its first few thousand characters anyway).
    """
    if len(text) <= MAX_TEXT_CHARS:
        return text, {}
    return text[:MAX_TEXT_CHARS], {"text_chars_before_cut": len(text)}


def _fit_title(title: str | None) -> str | None:
    return title[:MAX_TITLE_CHARS] if title else None


def _fit_link(url: str | None) -> str | None:
    """A post's link if the contract can carry it (2,048 characters), else none: a Discourse post
    whose link was longer (a percent-encoded Chinese slug of a long title) was skipped as
    malformed, and the cursor moved past it for good."""
    return url if url is not None and len(url) <= MAX_URL_CHARS else None


def _safely(to_post: Callable[[Any], RawPost | None], entry: Any) -> RawPost | None:
    # One malformed post must not block the source forever: log it and move past it.
    try:
        return to_post(entry)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("skipping a malformed forum post: %s", exc)
        return None


def _pseudonym(salt: str, account: Any) -> str | None:
    return pseudonymize(salt, str(account), prefix="forum") if account else None


# Discourse's @mention: an account name (ASCII letters, digits, _ . -, not ending in . or -). Not an
# e-mail address's domain: nothing of a name may stand right before the @.
_MENTION = re.compile(r"(?<![A-Za-z0-9_.@])@([A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,58}[A-Za-z0-9_])?)")


def _mentions_pseudonymised(salt: str, text: str) -> str:
    """``@zhangsan`` as ``@forum-…``, the pseudonym ``author`` carries for that account: the author
    is pseudonymised, and a mention named the same people in the text (and in its hot words)."""
    return _MENTION.sub(lambda m: f"@{_pseudonym(salt, m.group(1))}", text)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---- polling ------------------------------------------------------------------------------


class ForumPoller:
    """Moves one source's new posts to ``publish``, advancing the cursor batch by batch."""

    def __init__(self, source: ForumSource, store: CursorStore, publish: Publish, *,
                 batch_size: int = 100) -> None:
        self._source = source
        self._store = store
        self._publish = publish
        self._batch_size = batch_size

    async def poll_once(self) -> int:
        """Fetch, publish and checkpoint once; returns the number of posts published.

        If ``publish`` raises, the exception propagates and the cursor stays at
        the last batch that was published, so the next poll delivers the rest.
        """
        source_id = self._source.source_id
        items = await self._source.fetch_new(self._store.load(source_id))
        published = 0
        for start in range(0, len(items), self._batch_size):
            batch = items[start:start + self._batch_size]
            posts = [item.post for item in batch if item.post is not None]
            if posts:
                await self._publish(posts)
            self._store.save(source_id, batch[-1].position)
            published += len(posts)
        return published

    async def run(self, stop: asyncio.Event, *, interval_s: float, max_backoff_s: float = 300,
                  ) -> None:
        """Poll every ``interval_s`` until ``stop`` is set; failures back off exponentially."""
        failures, source = 0, self._source.source_id
        metrics.FORUM_LAST_POLL.labels(source=source).set(0)
        while not stop.is_set():
            try:
                await self.poll_once()
                failures, delay = 0, interval_s
                metrics.FORUM_POLLS.labels(source=source, outcome="ok").inc()
                metrics.FORUM_LAST_POLL.labels(source=source).set_to_current_time()
            except Exception:
                metrics.FORUM_POLLS.labels(source=source, outcome="failed").inc()
                failures += 1
                delay = min(max_backoff_s, interval_s * 2 ** min(failures, 16))
                delay *= random.uniform(0.5, 1.0)
                log.exception("source %s: poll failed (%d in a row), next try in %.0f s",
                              self._source.source_id, failures, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


_ACCEPT = {
    "discourse": "application/json",
    "rss": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
}


def build_forum_source(source: RegisteredSource, client: httpx.AsyncClient, *,
                       sleep: Sleep = asyncio.sleep, backoff_initial_s: float = 1.0,
                       ) -> ForumSource:
    """The connector for a registered forum source, configured from the registry."""
    config = source.config
    if config.channel != Channel.FORUM:
        raise ValueError(f"source {source.id!r} is not a forum")
    headers = {"Accept": _ACCEPT[config.kind]}
    api_key = source.optional_secret("api_key")
    if api_key is not None:
        headers |= {"Api-Key": api_key, "Api-Username": config.api_username or "system"}
    fetcher = HttpFetcher(client, min_interval_s=config.min_request_interval_s,
                          max_attempts=config.max_attempts, backoff_initial_s=backoff_initial_s,
                          max_backoff_s=config.max_backoff_s, timeout_s=config.timeout_s,
                          headers=headers, sleep=sleep)
    info = SourceInfo(config.id, source.secret("author_salt"), config.region, config.unit)
    if config.kind == "discourse":
        assert config.base_url is not None
        return DiscourseSource(info, base_url=config.base_url, fetcher=fetcher,
                               max_pages=config.max_pages, backfill_pages=config.backfill_pages)
    assert config.feed_url is not None
    return FeedSource(info, feed_url=config.feed_url, fetcher=fetcher)
