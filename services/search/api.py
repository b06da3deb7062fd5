"""The responders' HTTP API (FastAPI): app factory, request ids, error mapping.

Every response carries ``X-Request-Id`` (the caller's, when it sends a sane
one, else a fresh one); every log line written while serving a request
carries it too, and one access line is logged per request.
"""


import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ConnectionError as EsConnectionError
from elasticsearch.exceptions import RequestError, TransportError
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.search import metrics
from services.search.admin import KeyExists, lookup_key
from services.search.auth import KeyStore, RateLimiter, load_key_file
from services.search.deps import SearchState, State
from services.search.es import ensure_templates, make_client
from services.search.issues import InvalidTransition, IssueNotFound
from services.search.query import QueryError
from services.search.settings import SearchSettings
from services.search.views import build_router

log = logging.getLogger(__name__)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
DESCRIPTION = """Search, issues, alerts and response tracking for the public-opinion desk.

Authenticate with `X-Api-Key: yq_<id>_<secret>` or `Authorization: Bearer <HS256 JWT>`.
Roles: `viewer` reads, `responder` reads and acts on issues, `admin` also manages keys.
A key restricted to regions/units only ever sees posts, issues, alerts and actions inside them.
"""


def _install_log_request_ids() -> None:
    factory = logging.getLogRecordFactory()
    if getattr(factory, "yuqing_request_ids", False):
        return

    def with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        request_id = REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    with_request_id.yuqing_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(with_request_id)


def _problem(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "request_id": REQUEST_ID.get()}, status_code=status,
                        headers=headers)


async def _request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    incoming = request.headers.get("x-request-id", "")
    request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    try:
        try:
            response = await call_next(request)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            response = _problem(500, "internal error")
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.QUERY_SECONDS.labels(endpoint=route).observe(elapsed)
        metrics.REQUESTS.labels(endpoint=route, status=str(response.status_code)).inc()
        response.headers["X-Request-Id"] = request_id
        log.info("%s %s -> %d in %.1f ms (caller %s)", request.method, route, response.status_code,
                 elapsed * 1000, getattr(request.state, "subject", "-"))
    finally:
        REQUEST_ID.reset(token)
    return response


def _install_error_handlers(app: FastAPI) -> None:
    simple: dict[type[Exception], int] = {
        QueryError: 400, PermissionError: 403, IssueNotFound: 404, InvalidTransition: 409, KeyExists: 409,
    }
    for exc_type, status in simple.items():
        def handler(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            detail = str(exc) if not isinstance(exc, IssueNotFound) else f"issue {exc} not found"
            if isinstance(exc, KeyExists):
                detail = f"key {exc} already exists"
            return _problem(status, detail)

        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, exc.detail, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]]
        return _problem(422, errors)

    @app.exception_handler(RequestError)
    async def rejected_query(_: Request, exc: RequestError) -> JSONResponse:
        log.info("elasticsearch rejected a query: %s", exc.error)
        return _problem(400, f"query rejected by the search engine ({exc.error})")

    @app.exception_handler(TransportError)
    async def backend_down(_: Request, exc: TransportError) -> JSONResponse:
        if isinstance(exc, EsConnectionError) or exc.status_code in (429, 502, 503, 504):
            log.warning("elasticsearch unavailable: %s", exc)
            return _problem(503, "search backend unavailable, retry later", {"Retry-After": "5"})
        log.error("elasticsearch error %s: %s", exc.status_code, exc.error)
        return _problem(500, "internal error")

    @app.exception_handler(Exception)
    async def unknown_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _problem(500, "internal error")


def create_app(settings: SearchSettings | None = None, *, client: Elasticsearch | None = None) -> FastAPI:
    settings = settings or SearchSettings()
    client = client or make_client(settings.es)
    prefix = settings.es.index_prefix
    file_keys = load_key_file(settings.api_keys_path) if settings.api_keys_path else {}
    keys = KeyStore(file_keys=file_keys, lookup=lambda key_id: lookup_key(client, prefix, key_id),
                    ttl_s=settings.key_cache_s)
    state = SearchState(settings, client, keys, RateLimiter(settings.rate_limit_per_minute))
    if settings.anonymous_role:
        log.warning("requests without credentials get role %s (development only)", settings.anonymous_role)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            ensure_templates(client, settings.es, settings.refresh_interval)
        except (TransportError, EsConnectionError) as exc:
            log.warning("could not install index templates yet: %s", exc)
        yield

    _install_log_request_ids()
    app = FastAPI(title="Yuqing search API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.search = state
    app.middleware("http")(_request_context)
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"], responses={503: {"description": "Elasticsearch unreachable"}})
    def healthz(state: State) -> dict[str, str]:
        if not state.client.ping():
            raise HTTPException(503, "elasticsearch unreachable")
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(build_router(settings.page_size_max))
    return app
