"""The forum pollers of the ingest service: one background task per enabled forum source.

They run inside ``yuqing ingest serve`` (``YUQING_INGEST_POLL_FORUMS=true``, the
default) or on their own with :func:`run_pollers`. Run them in exactly one
process: two pollers of one source would share its cursor file.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

import httpx

from services.ingest import metrics
from services.ingest.forum import ForumPoller, build_forum_source
from services.ingest.forum_io import JsonCursorStore
from services.ingest.registry import RegisteredSource, SourceRegistry
from services.ingest.runtime import build_runtime
from services.ingest.settings import IngestSettings
from services.ingest.sink import PostSink
from yuqing.contracts import Channel, RawPost

log = logging.getLogger(__name__)

BATCH_SIZE = 100


class ForumPollers:
    """Starts a poller per enabled forum source; ``stop`` ends them and closes the HTTP client."""

    def __init__(self, registry: SourceRegistry, sink: PostSink, settings: IngestSettings) -> None:
        self._sources = list(registry.sources(Channel.FORUM))
        self._sink = sink
        self._settings = settings
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    async def _publish(self, posts: Sequence[RawPost]) -> None:
        # A post the edge refuses is skipped (nobody to answer); PublishError propagates:
        # the poller keeps its cursor and retries with backoff.
        posts, refused = self._sink.admission.partition(posts)
        for post, reason in refused:
            metrics.POSTS_REFUSED.labels(channel=Channel.FORUM.value, reason=reason.kind).inc()
            log.warning("forum post %s of %s skipped: %s", post.external_id, post.source, reason)
        await self._sink.publish(posts, channel=Channel.FORUM,
                                 timeout_s=self._settings.publish_timeout_s)

    def start(self) -> None:
        if not self._sources:
            return
        self._client = httpx.AsyncClient(trust_env=False, follow_redirects=True)
        store = JsonCursorStore(self._settings.cursor_dir)
        for source in self._sources:
            self._tasks.append(asyncio.create_task(self._run(source, store),
                                                   name=f"forum-poller-{source.id}"))
        log.info("polling %d forum source(s): %s; cursors in %s", len(self._sources),
                 ", ".join(s.id for s in self._sources), self._settings.cursor_dir)

    async def _run(self, source: RegisteredSource, store: JsonCursorStore) -> None:
        assert self._client is not None
        config = source.config
        try:
            poller = ForumPoller(build_forum_source(source, self._client), store, self._publish,
                                 batch_size=BATCH_SIZE)
            await poller.run(self._stop, interval_s=config.poll_interval_s,  # type: ignore[union-attr]
                             max_backoff_s=config.max_backoff_s)  # type: ignore[union-attr]
        except Exception:
            log.exception("forum poller of source %s stopped", source.id)

    async def stop(self, timeout_s: float = 10) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()


async def run_pollers(settings: IngestSettings | None = None, *,
                      stop: asyncio.Event | None = None,
                      registry: SourceRegistry | None = None) -> None:
    """Poll every enabled forum source until ``stop`` is set (``yuqing ingest poll``).

    Without ``stop``, until SIGINT or SIGTERM.
    """
    settings = settings or IngestSettings()
    runtime = build_runtime(settings, registry=registry)
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    pollers = ForumPollers(runtime.registry, runtime.sink, settings)
    pollers.start()
    try:
        await stop.wait()
    finally:
        await pollers.stop()
        await runtime.publisher.close()
