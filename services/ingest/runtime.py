"""What the views share for the life of the process, and the dependencies that hand it out."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.ingest.admission import PostRefused
from services.ingest.app_webhook import DEFAULT_REPLAY_WINDOW_S, AppRequestVerifier
from services.ingest.dedup import DedupWindow
from services.ingest.publisher import AsyncPublisher, PublishError, make_async_publisher
from services.ingest.registry import (
    RegisteredSource,
    SourceDisabledError,
    SourceRegistry,
    UnknownSourceError,
    load_registry,
)
from services.ingest.settings import IngestSettings
from services.ingest.sink import Outcome, PostSink
from services.ingest.wechat import WeChatCrypto
from yuqing.contracts import Channel, RawPost
from yuqing.http_edge import Limit, Problem, RateLimiter


@dataclass
class IngestRuntime:
    settings: IngestSettings
    registry: SourceRegistry
    publisher: AsyncPublisher
    sink: PostSink
    verifier: AppRequestVerifier = field(default_factory=AppRequestVerifier)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    _wechat: dict[str, WeChatCrypto] = field(default_factory=dict, init=False, repr=False)

    def source(self, source_id: str, channel: Channel) -> RegisteredSource:
        """The enabled source of this channel: 404 when unknown or of another channel, 403 when
        disabled."""
        try:
            source = self.registry.get(source_id)
        except UnknownSourceError as exc:
            raise Problem(404, f"no {channel.value} source {source_id!r}") from exc
        except SourceDisabledError as exc:
            raise Problem(403, str(exc)) from exc
        if source.channel != channel:
            raise Problem(404, f"no {channel.value} source {source_id!r}")
        return source

    def check_rate(self, source: RegisteredSource) -> None:
        """429 with Retry-After when the source has used up its requests."""
        wait = self.limiter.retry_after(source.id, self._limit(source))
        if wait:
            raise Problem(429, f"source {source.id!r} is over its rate limit",
                          {"Retry-After": str(wait)})

    def _limit(self, source: RegisteredSource) -> Limit | None:
        config = self.settings
        rate = getattr(source.config, "rate_limit_per_s", None) or config.rate_limit_per_s
        burst = getattr(source.config, "rate_limit_burst", None) or config.rate_limit_burst
        return Limit(rate_per_s=rate, burst=burst) if rate > 0 else None

    async def publish(self, posts: Sequence[RawPost], *, channel: Channel,
                      timeout_s: float | None = None, fields_at: Sequence[str] | None = None,
                      ) -> Outcome:
        """Publish, or answer for the request: 413/422 for a post the edge refuses (nothing
        published), 503 with Retry-After when Kafka did not acknowledge every post.

        ``fields_at``: where the post's fields are in a body of one post (``[]`` for a post object,
        ``["body"]`` for an APP feedback, as its field errors); ``None`` for a batch."""
        try:
            return await self.sink.publish(posts, channel=channel,
                                           timeout_s=timeout_s or self.settings.publish_timeout_s)
        except PostRefused as exc:
            raise refusal(exc, fields_at=fields_at) from exc
        except PublishError as exc:
            raise Problem(503, unavailable_detail(exc),
                          {"Retry-After": str(self.settings.retry_after_s)}) from exc

    def wechat_crypto(self, source: RegisteredSource) -> WeChatCrypto:
        crypto = self._wechat.get(source.id)
        if crypto is None:
            crypto = WeChatCrypto(source.secret("token"), source.optional_secret("encoding_aes_key"),
                                  source.config.app_id)  # type: ignore[union-attr]
            self._wechat[source.id] = crypto
        return crypto


def refusal(exc: PostRefused, *, fields_at: Sequence[str] | None) -> Problem:
    """413 (too large) or 422 (a field) naming the post at fault where the sender finds it: by its
    index in a batch (``fields_at`` None), by its field in a body of one post (an APP feedback has
    no ``posts``)."""
    if exc.status == 413:
        return Problem(413, str(exc) if fields_at is not None else f"posts[{exc.index}]: {exc}")
    loc = [*fields_at, exc.field] if fields_at is not None else ["posts", exc.index, exc.field]
    return Problem(422, [{"loc": loc, "msg": str(exc), "type": exc.kind}])


def unavailable_detail(exc: PublishError) -> str:
    """What the client may conclude: "nothing was accepted" only when Kafka took none."""
    if exc.acknowledged == 0:
        return "message broker unavailable; nothing was accepted, retry later"
    kept = "some posts may have been kept" if exc.acknowledged is None else (
        f"{exc.acknowledged} of the posts were kept")
    return (f"message broker unavailable; {kept}, not all: retry the whole request (a post is "
            "identified by its external_id, so a retry does not make a second one)")


def build_runtime(settings: IngestSettings, *, registry: SourceRegistry | None = None,
                  publisher: AsyncPublisher | None = None) -> IngestRuntime:
    """Load the registry (fails on missing secrets) and create the publisher (not yet connected)."""
    registry = registry or load_registry(settings.sources_path, os.environ)
    publisher = publisher or make_async_publisher(
        settings.kafka, client=settings.producer, timeout_s=settings.publish_timeout_s,
        linger_ms=settings.producer_linger_ms, batch_bytes=settings.producer_batch_bytes)
    window = DedupWindow(ttl_s=settings.dedup_window_s, max_entries=settings.dedup_max_entries)
    # Request ids must be remembered for the longest replay window of any APP source.
    windows = [getattr(s.config, "replay_window_s", DEFAULT_REPLAY_WINDOW_S)
               for s in registry.sources(Channel.APP)]
    replay_window_s = max(windows, default=DEFAULT_REPLAY_WINDOW_S)
    return IngestRuntime(settings=settings, registry=registry, publisher=publisher,
                         sink=PostSink(publisher, window, settings.admission()),
                         verifier=AppRequestVerifier(replay_window_s=replay_window_s))


# Dependencies are coroutines: a plain ``def`` would cost a thread hop per request.
async def get_runtime(request: Request) -> IngestRuntime:
    runtime: IngestRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[IngestRuntime, Depends(get_runtime)]


def source_of(channel: Channel) -> Callable[[str, IngestRuntime], Awaitable[RegisteredSource]]:
    """Dependency: the path's ``source_id`` resolved to an enabled source of ``channel``."""

    async def resolve(source_id: str, runtime: Runtime) -> RegisteredSource:
        return runtime.source(source_id, channel)

    return resolve


AppSource = Annotated[RegisteredSource, Depends(source_of(Channel.APP))]
WeChatSource = Annotated[RegisteredSource, Depends(source_of(Channel.WECHAT))]
