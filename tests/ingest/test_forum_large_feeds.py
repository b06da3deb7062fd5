"""A feed of many items (or many new Discourse posts) is read in time and memory in step with its
size: its cursors were built for every item at once, each with the latest 2,000 guids (169 MB for a
feed of 1.7 MB), and a feed read by date had each item looked up in the list of the new ones (22 s
for 10,000 items)."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest

from services.ingest.forum import ForumPoller, build_forum_source
from services.ingest.forum_io import MAX_PUBLISHED_GUIDS, ForumCursor, guid_digest
from services.ingest.registry import parse_registry
from tests.ingest.fakes import MemoryCursorStore
from yuqing.contracts import RawPost

START = datetime.now(UTC) - timedelta(days=1)


def _feed(count: int, session: str = "") -> bytes:
    items = "".join(f"<item><guid>https://portal.example.com/n/{k}.html{session}</guid><title>停电</title>"
                    f"<description>城关镇停电了</description>"
                    f"<pubDate>{format_datetime(START + timedelta(seconds=k), usegmt=True)}</pubDate></item>"
                    for k in range(count))
    return f"<rss><channel>{items}</channel></rss>".encode()


def _poll(feed: bytes, store: MemoryCursorStore) -> list[RawPost]:
    text = ('[[sources]]\nid = "forum-x"\nchannel = "forum"\nowner = "o"\nkind = "rss"\n'
            'feed_url = "https://portal.example.com/feed.rss"\nauthor_salt_env = "SALT_ENV"\n'
            'min_request_interval_s = 0')
    source = parse_registry(text, {"SALT_ENV": "forum-salt-0123456789"}).get("forum-x")
    published: list[RawPost] = []

    async def publish(posts: Sequence[RawPost]) -> None:
        published.extend(posts)

    async def scenario() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=feed))
        async with httpx.AsyncClient(transport=transport) as client:
            await ForumPoller(build_forum_source(source, client), store, publish).poll_once()

    asyncio.run(scenario())
    return published


def test_the_cursors_of_a_large_feed_take_memory_in_step_with_it() -> None:
    feed, store = _feed(10_000), MemoryCursorStore()

    tracemalloc.start()
    try:
        published = _poll(feed, store)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert len(published) == 10_000 and peak < 40 * len(feed)
    cursor = store.load("forum-x")
    assert cursor.last_guid == "https://portal.example.com/n/9999.html"
    assert cursor.last_published == START.replace(microsecond=0) + timedelta(seconds=9_999)
    assert cursor.published_guids == tuple(guid_digest(f"https://portal.example.com/n/{k}.html")
                                           for k in range(10_000 - MAX_PUBLISHED_GUIDS, 10_000))


@pytest.mark.timeout(60)
def test_a_large_feed_read_by_date_is_read_through_once() -> None:
    # a portal writing a session id into every guid: the new items are those after the cursor's
    # date, and each of the feed's items was looked for in the list of them
    store = MemoryCursorStore()
    mark = START.replace(microsecond=0) + timedelta(seconds=19_999)
    store.save("forum-x", ForumCursor(last_published=mark, last_guid="https://portal.example.com/n/x",
                                      published_guids=("0" * 16,)))

    published = _poll(_feed(40_000, session=";jsessionid=7"), store)

    assert [post.external_id for post in published[:1]] == [
        "https://portal.example.com/n/20000.html;jsessionid=7"]
    assert len(published) == 20_000
    assert len(store.load("forum-x").published_guids) == MAX_PUBLISHED_GUIDS


def test_the_cursors_of_many_new_discourse_posts_take_memory_in_step_with_them() -> None:
    # as a feed's: each post's cursor held the latest 1,000 ids, built for every post at once
    posts = [{"id": k, "username": "u", "created_at": START.isoformat(), "cooked": "<p>停电</p>",
              "post_number": 1, "post_type": 1, "topic_id": 1, "topic_title": "t", "post_url": "/t/t/1"}
             for k in range(20_000, 0, -1)]
    page = orjson.dumps({"latest_posts": posts})
    text = ('[[sources]]\nid = "forum-d"\nchannel = "forum"\nowner = "o"\nkind = "discourse"\n'
            'base_url = "https://forum.example.com"\nauthor_salt_env = "SALT_ENV"\n'
            'min_request_interval_s = 0\nbackfill_pages = 1')
    source = parse_registry(text, {"SALT_ENV": "forum-salt-0123456789"}).get("forum-d")
    store, published = MemoryCursorStore(), []

    async def publish(batch: Sequence[RawPost]) -> None:
        published.extend(batch)

    async def scenario() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=page))
        async with httpx.AsyncClient(transport=transport) as client:
            await ForumPoller(build_forum_source(source, client), store, publish).poll_once()

    tracemalloc.start()
    try:
        asyncio.run(scenario())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert len(published) == 20_000 and peak < 30 * len(page)  # 60 times the page before
    assert store.load("forum-d") == ForumCursor(last_id=20_000, published_ids=tuple(range(19_001, 20_001)))
