"""A forum post longer than the contract allows is published with its text cut to fit, not
skipped: the pollers skipped it as "malformed" (a warning in the log), moved their cursor past
it, and the post was lost for good. Forums have no sender to answer with a 413."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from services.ingest.forum import ForumPoller, build_forum_source
from services.ingest.registry import parse_registry
from tests.ingest.fakes import MemoryCursorStore
from yuqing.contracts import RawPost
from yuqing.contracts.limits import MAX_TEXT_CHARS, MAX_TITLE_CHARS

LONG = "停电" * 75_000  # 150,000 characters


def _post(post_id: int, cooked: str, title: str = "夜班") -> dict[str, Any]:
    return {"id": post_id, "username": "zhang.wei", "created_at": "2026-11-28T09:40:12.318Z",
            "cooked": f"<p>{cooked}</p>", "post_number": 1, "post_type": 1, "topic_id": 5521,
            "topic_title": title, "category_id": 12, "post_url": f"/t/topic/5521/{post_id}"}


def _poll(handler: Any, kind: str, url: str) -> list[RawPost]:
    text = (f'[[sources]]\nid = "forum-x"\nchannel = "forum"\nowner = "o"\nkind = "{kind}"\n'
            f'{"base_url" if kind == "discourse" else "feed_url"} = "{url}"\n'
            'author_salt_env = "SALT_ENV"\nmin_request_interval_s = 0\nbackfill_pages = 1')
    source = parse_registry(text, {"SALT_ENV": "forum-salt-0123456789"}).get("forum-x")
    published: list[RawPost] = []

    async def publish(posts: Sequence[RawPost]) -> None:
        published.extend(posts)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            poller = ForumPoller(build_forum_source(source, client), MemoryCursorStore(), publish)
            await poller.poll_once()

    asyncio.run(scenario())
    return published


def test_a_long_discourse_post_is_published_cut_to_fit() -> None:
    posts = [_post(2, "短帖"), _post(1, LONG, title="标" * 1_500)]

    published = {p.external_id: p for p in _poll(
        lambda request: httpx.Response(200, json={"latest_posts": posts}), "discourse",
        "https://forum.example.com")}

    assert set(published) == {"1", "2"}
    long = published["1"]
    assert long.text == LONG[:MAX_TEXT_CHARS] and long.attributes["text_chars_before_cut"] == len(LONG)
    assert long.title == "标" * MAX_TITLE_CHARS
    assert published["2"].text == "短帖" and "text_chars_before_cut" not in published["2"].attributes


def test_a_long_feed_item_is_published_cut_to_fit() -> None:
    feed = ("<rss><channel><item><guid>long-1</guid><title>公告</title>"
            "<pubDate>Sat, 28 Nov 2026 09:40:12 +0000</pubDate>"
            f"<description>{LONG}</description></item></channel></rss>").encode()

    [post] = _poll(lambda request: httpx.Response(200, content=feed,
                                                  headers={"Content-Type": "application/rss+xml"}),
                   "rss", "https://portal.example.com/feed.rss")

    assert post.text == LONG[:MAX_TEXT_CHARS] and post.attributes == {"text_chars_before_cut": len(LONG)}



def test_a_discourse_post_with_a_link_too_long_for_the_contract_is_published_without_it() -> None:
    # a Chinese title's slug, percent-encoded: nine characters a character
    long_link = {**_post(1, "城关镇停电了"), "post_url": "/t/" + "%E5%81%9C" * 240 + "/5521/1"}
    posts = [_post(2, "短帖"), long_link]

    published = {p.external_id: p for p in _poll(
        lambda request: httpx.Response(200, json={"latest_posts": posts}), "discourse",
        "https://forum.example.com")}

    assert set(published) == {"1", "2"}
    assert published["1"].text == "城关镇停电了" and published["1"].url is None
    assert published["2"].url == "https://forum.example.com/t/topic/5521/2"
