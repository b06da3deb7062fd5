"""A publisher fake: records what it was given, fails or stalls on request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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
