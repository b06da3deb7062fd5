"""The ingest HTTP API: partner systems, the APP webhook, WeChat accounts; forum pollers beside.

Every channel ends in one place (:class:`~services.ingest.sink.PostSink`): a post
is answered 2xx only after Kafka acknowledged it; when Kafka cannot take it the
answer is 503 with ``Retry-After`` and nothing is reported as kept.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Scope

from services.ingest import metrics, views_app, views_posts, views_wechat
from services.ingest.pollers import ForumPollers
from services.ingest.publisher import AsyncPublisher, PublishError
from services.ingest.registry import SourceRegistry
from services.ingest.runtime import IngestRuntime, build_runtime
from services.ingest.settings import IngestSettings
from yuqing.http_edge import RequestContextMiddleware, install_problem_handlers, install_request_id_logging

log = logging.getLogger(__name__)

DESCRIPTION = """Posts from the mobile APP, WeChat official accounts and partner systems go to
the Kafka topic `posts.raw`; see docs/integrators.md. A 2xx answer means Kafka has the post."""


def create_app(settings: IngestSettings | None = None, *, registry: SourceRegistry | None = None,
               publisher: AsyncPublisher | None = None) -> FastAPI:
    """The app; the registry is loaded and Kafka connected when it starts (lifespan)."""
    settings = settings or IngestSettings()
    install_request_id_logging()
    app = FastAPI(title="Yuqing ingest API", version="1", description=DESCRIPTION,
                  lifespan=_lifespan(settings, registry, publisher))
    app.add_middleware(RequestContextMiddleware, observe=_observe)
    install_problem_handlers(app)
    for module in (views_posts, views_app, views_wechat):
        app.include_router(module.router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (Kafka may still be unreachable; see the 503s)."""
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


_CHANNEL_PREFIXES = (("/v1/posts", "integration"), ("/v1/app/", "app"), ("/v1/wechat/", "wechat"))


def channel_of(path: str) -> str:
    for prefix, channel in _CHANNEL_PREFIXES:
        if path.startswith(prefix):
            return channel
    return "none"


def _observe(scope: Scope, status: int, seconds: float) -> None:
    """Answer time and refusals per channel."""
    channel = channel_of(scope["path"])
    metrics.REQUEST_SECONDS.labels(channel=channel).observe(seconds)
    if status >= 400:
        metrics.REQUESTS_REJECTED.labels(channel=channel, status=str(status)).inc()


def _lifespan(settings: IngestSettings, registry: SourceRegistry | None,
              publisher: AsyncPublisher | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, registry=registry, publisher=publisher)
        app.state.runtime = runtime
        await _connect(runtime)
        pollers = ForumPollers(runtime.registry, runtime.sink, settings)
        if settings.poll_forums:
            pollers.start()
        try:
            yield
        finally:
            await pollers.stop()
            await runtime.publisher.close()

    return lifespan


async def _connect(runtime: IngestRuntime) -> None:
    # Starting without Kafka is allowed: requests are answered 503 until it is back.
    try:
        await runtime.publisher.start()
    except PublishError as exc:
        log.warning("starting without Kafka (requests get 503 until it is reachable): %s", exc)
