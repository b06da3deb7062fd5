"""The ingest HTTP API: integrators' ``POST /v1/posts`` plus health and metrics.

A post is answered 202 only after Kafka acknowledged it; when Kafka cannot
take it the answer is 503 with ``Retry-After`` and nothing is reported as kept.
"""


import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from yuqing.contracts import RawPost
from yuqing.contracts.codec import describe_validation_error
from yuqing.ingest import metrics
from yuqing.ingest.dedup import DedupWindow
from yuqing.ingest.models import Accepted, PostBatchIn, PostIn
from yuqing.ingest.publisher import KafkaPublisher, Publisher, PublishError
from yuqing.ingest.registry import (
    InvalidApiKeyError,
    RegisteredSource,
    SourceRegistry,
    load_registry,
)
from yuqing.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class Problem(HTTPException):
    """An HTTP error whose status is counted by the rejection metric."""

    def __init__(self, status: int, detail: object, headers: dict[str, str] | None = None):
        metrics.REQUESTS_REJECTED.labels(status=str(status)).inc()
        super().__init__(status, detail, headers)


async def read_json_body(request: Request, limit: int) -> object:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Problem(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"body larger than {limit} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"invalid JSON: {exc}") from exc


def parse_posts(data: object, max_posts: int) -> list[PostIn]:
    try:
        if isinstance(data, dict) and "posts" in data:
            posts = PostBatchIn.model_validate(data).posts
        else:
            posts = [PostIn.model_validate(data)]
    except ValidationError as exc:
        raise Problem(422, [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                            for e in exc.errors()[:50]]) from exc
    if len(posts) > max_posts:
        raise Problem(413, f"at most {max_posts} posts per request")
    return posts


def create_app(settings: IngestSettings | None = None, *, registry: SourceRegistry | None = None,
               publisher: Publisher | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["registry"] = registry or load_registry(settings.sources_path, os.environ)
        state["publisher"] = publisher or KafkaPublisher(settings.kafka,
                                                         timeout_s=settings.publish_timeout_s)
        state["dedup"] = DedupWindow(ttl_s=settings.dedup_window_s)
        yield
        state["publisher"].close()  # type: ignore[attr-defined]

    app = FastAPI(title="Yuqing ingest API", version="1", lifespan=lifespan)

    def integration_source(x_api_key: Annotated[str | None, Header()] = None) -> RegisteredSource:
        if not x_api_key:
            raise Problem(401, "missing X-Api-Key header", {"WWW-Authenticate": "ApiKey"})
        try:
            return state["registry"].authenticate_api_key(x_api_key)  # type: ignore[attr-defined]
        except InvalidApiKeyError as exc:
            raise Problem(401, str(exc), {"WWW-Authenticate": "ApiKey"}) from exc

    @app.exception_handler(Exception)
    async def unknown_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/posts", status_code=202, response_model=Accepted,
              responses={400: {}, 401: {}, 413: {}, 415: {}, 422: {}, 503: {}})
    async def publish_posts(
        request: Request, source: Annotated[RegisteredSource, Depends(integration_source)],
    ) -> Accepted:
        """Publish one post (a JSON object) or a batch (``{"posts": [...]}``)."""
        data = await read_json_body(request, settings.max_body_bytes)
        limit = min(settings.max_batch_posts, getattr(source.config, "max_batch", 10**6))
        incoming = parse_posts(data, limit)
        try:
            posts = [p.to_raw(source=source.id, channel=source.channel,
                              region=source.config.region, unit=source.config.unit)
                     for p in incoming]
        except ValidationError as exc:
            raise Problem(422, describe_validation_error(exc)) from exc
        return await publish(posts)

    async def publish(posts: list[RawPost]) -> Accepted:
        from starlette.concurrency import run_in_threadpool

        dedup: DedupWindow = state["dedup"]  # type: ignore[assignment]
        fresh = dedup.fresh(posts)
        try:
            await run_in_threadpool(state["publisher"].publish, fresh)  # type: ignore[attr-defined]
        except PublishError as exc:
            log.warning("refusing %d posts: %s", len(posts), exc)
            raise Problem(503, "message broker unavailable; nothing was accepted, retry later",
                          {"Retry-After": str(settings.retry_after_s)}) from exc
        dedup.mark_published(fresh)
        if fresh:
            metrics.POSTS_ACCEPTED.labels(channel=fresh[0].channel.value).inc(len(fresh))
        if len(posts) > len(fresh):
            metrics.POSTS_DUPLICATE.labels(channel=posts[0].channel.value).inc(
                len(posts) - len(fresh))
        return Accepted(accepted=len(fresh), duplicates=len(posts) - len(fresh),
                        post_ids=[p.post_id for p in posts])

    app.state.publish = publish
    app.state.runtime = state
    return app
