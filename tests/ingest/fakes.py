"""Test doubles of the ingest service: a publisher, a forum, a cursor store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.ingest.forum import ForumItem, ForumSource
from services.ingest.forum_io import ForumCursor
from services.ingest.publisher import PublishError
from yuqing.contracts import RawPost


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[RawPost] = []
        self.calls = 0
        self.fail_with: BaseException | None = None
        self.delay_s = 0.0
        self.closed = False

    async def start(self) -> None:
        return None

    async def publish(self, posts: Sequence[RawPost]) -> None:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        self.published.extend(posts)

    async def close(self) -> None:
        self.closed = True

    def broker_down(self) -> None:
        self.fail_with = PublishError("broker unavailable")

    def broker_up(self) -> None:
        self.fail_with = None


class FakeForumSource(ForumSource):
    """In-memory forum; posts are numbered in the order they are added."""

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self._posts: list[RawPost] = []

    def add(self, *posts: RawPost) -> None:
        self._posts.extend(posts)

    async def fetch_new(self, cursor: ForumCursor) -> list[ForumItem]:
        start = cursor.last_id or 0
        return [ForumItem(post, ForumCursor(last_id=number))
                for number, post in enumerate(self._posts[start:], start=start + 1)]


class MemoryCursorStore:
    def __init__(self) -> None:
        self._cursors: dict[str, ForumCursor] = {}

    def load(self, source_id: str) -> ForumCursor:
        return self._cursors.get(source_id, ForumCursor())

    def save(self, source_id: str, cursor: ForumCursor) -> None:
        self._cursors[source_id] = cursor
