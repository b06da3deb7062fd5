"""Where every channel's posts go: publish each post once, and only report what Kafka took.

:class:`PostSink` combines the dedup window with the publisher. A post already
published within the window is a duplicate. A post that another request is
publishing right now (WeChat retries a message when the first answer is slow)
is not published twice either: the second request waits for the first one's
outcome. Runs on one event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from services.ingest import metrics
from services.ingest.admission import Admission, PostRefused
from services.ingest.dedup import DedupWindow
from services.ingest.publisher import AsyncPublisher, PublishError
from yuqing.contracts import Channel, RawPost


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    post_ids: list[str]


class PostSink:
    def __init__(self, publisher: AsyncPublisher, window: DedupWindow,
                 admission: Admission | None = None) -> None:
        self._publisher = publisher
        self._window = window
        self.admission = admission or Admission()
        self._in_flight: dict[str, asyncio.Future[bool]] = {}

    async def publish(self, posts: Sequence[RawPost], *, channel: Channel, timeout_s: float,
                      ) -> Outcome:
        """Publish the posts not yet published; raises :class:`PublishError` if any is not kept.

        Every post passes :class:`~services.ingest.admission.Admission` first: one
        refused post raises :class:`PostRefused` and nothing of the request is
        published. Waits at most ``timeout_s``. Posts that were published are
        remembered even when a concurrent request for the same posts failed.
        """
        try:
            posts = self.admission.admit_all(posts)
        except PostRefused as exc:
            metrics.POSTS_REFUSED.labels(channel=channel.value, reason=exc.kind).inc()
            raise
        fresh = self._window.fresh(posts)
        mine = [p for p in fresh if p.post_id not in self._in_flight]
        theirs = {self._in_flight[p.post_id] for p in fresh if p.post_id in self._in_flight}
        try:
            async with asyncio.timeout(timeout_s):
                await self._publish_claimed(mine)
                if theirs and not all(await asyncio.gather(*(asyncio.shield(f) for f in theirs))):
                    raise PublishError("a concurrent request for the same posts failed",
                                       acknowledged=None)
        except TimeoutError as exc:
            raise PublishError(f"kafka did not acknowledge within {timeout_s:g} s",
                               acknowledged=None) from exc
        _count(channel, accepted=len(mine), duplicates=len(posts) - len(mine))
        return Outcome(accepted=len(mine), duplicates=len(posts) - len(mine),
                       post_ids=[p.post_id for p in posts])

    async def _publish_claimed(self, posts: list[RawPost]) -> None:
        if not posts:
            return
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        for post in posts:
            self._in_flight[post.post_id] = done
        try:
            await self._publisher.publish(posts)
            self._window.mark_published(posts)
            done.set_result(True)
        finally:
            if not done.done():
                done.set_result(False)
            for post in posts:
                self._in_flight.pop(post.post_id, None)


def _count(channel: Channel, *, accepted: int, duplicates: int) -> None:
    if accepted:
        metrics.POSTS_ACCEPTED.labels(channel=channel.value).inc(accepted)
    if duplicates:
        metrics.POSTS_DUPLICATE.labels(channel=channel.value).inc(duplicates)
