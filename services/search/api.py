"""The responders' HTTP API (FastAPI): app factory, request ids, error mapping.

Every response carries ``X-Request-Id`` (the caller's, when it sends a sane
one, else a fresh one); every log line written while serving a request
carries it too, and one access line is logged per request.
"""


import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ConnectionError as EsConnectionError
from elasticsearch.exceptions import RequestError, TransportError
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Scope

from services.search import metrics
from services.search.admin import KeyExists, lookup_key
from services.search.auth import KeyStore, load_key_file
from services.search.deps import SearchState, State
from services.search.es import ensure_templates, make_client
from services.search.issue_corrections import PostNotFound
from services.search.issues import InvalidTransition, IssueMerged, IssueNotFound
from services.search.query import QueryError
from services.search.settings import SearchSettings
from services.search.views import router
from yuqing.http_edge import (
    Limit,
    RateLimiter,
    RequestContextMiddleware,
    install_problem_handlers,
    install_request_id_logging,
    problem,
)

log = logging.getLogger(__name__)
DESCRIPTION = """Search, issues, alerts and response tracking for the public-opinion desk.

Authenticate with `X-Api-Key: yq_<id>_<secret>` or `Authorization: Bearer <HS256 JWT>`.
Roles: `viewer` reads, `responder` reads and acts on issues, `admin` also manages keys.
A key restricted to regions/units only ever sees posts, issues, alerts and actions inside them.
"""


def _observe(scope: Scope, status: int, seconds: float) -> None:
    """Metrics per route and one access line per request."""
    route = getattr(scope.get("route"), "path", "unmatched")
    metrics.QUERY_SECONDS.labels(endpoint=route).observe(seconds)
    metrics.REQUESTS.labels(endpoint=route, status=str(status)).inc()
    subject = (scope.get("state") or {}).get("subject", "-")
    log.info("%s %s -> %d in %.1f ms (caller %s)", scope["method"], route, status, seconds * 1000,
             subject)


def _install_error_handlers(app: FastAPI) -> None:
    """The service's own errors; HTTP, validation and unknown errors: :mod:`yuqing.http_edge`."""
    install_problem_handlers(app)
    simple: dict[type[Exception], int] = {
        QueryError: 400, PermissionError: 403, IssueNotFound: 404, PostNotFound: 404, InvalidTransition: 409,
        KeyExists: 409,
    }
    for exc_type, status in simple.items():
        def handler(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            detail = str(exc) if not isinstance(exc, IssueNotFound) else f"issue {exc} not found"
            if isinstance(exc, KeyExists):
                detail = f"key {exc} already exists"
            if isinstance(exc, PermissionError):  # a scope refused, as deps.require counts a role
                metrics.AUTH_FAILURES.labels(status="403").inc()
            return problem(status, detail)

        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(IssueMerged)
    async def merged_away(request: Request, exc: IssueMerged) -> JSONResponse:
        answer = problem(404, str(exc))
        if request.method == "GET":  # the issue's page, or a search of its posts: where they now are
            path = request.url.path.replace(f"/issues/{exc.issue_id}", f"/issues/{exc.target}", 1)
            params = [(k, exc.target if k == "issue_id" and v == exc.issue_id else v)
                      for k, v in request.query_params.multi_items()]
            query = urlencode(params)
            answer = problem(308, str(exc), {"Location": path + (f"?{query}" if query else "")})
        return answer

    @app.exception_handler(RequestError)
    async def rejected_query(_: Request, exc: RequestError) -> JSONResponse:
        log.info("elasticsearch rejected a query: %s", exc.error)
        return problem(400, f"query rejected by the search engine ({exc.error})")

    @app.exception_handler(TransportError)
    async def backend_down(_: Request, exc: TransportError) -> JSONResponse:
        if isinstance(exc, EsConnectionError) or exc.status_code in (429, 502, 503, 504):
            log.warning("elasticsearch unavailable: %s", exc)
            return problem(503, "search backend unavailable, retry later", {"Retry-After": "5"})
        log.error("elasticsearch error %s: %s", exc.status_code, exc.error)
        return problem(500, "internal error")


def create_app(settings: SearchSettings | None = None, *, client: Elasticsearch | None = None) -> FastAPI:
    settings = settings or SearchSettings()
    client = client or make_client(settings.es)
    prefix = settings.es.index_prefix
    file_keys = load_key_file(settings.api_keys_path) if settings.api_keys_path else {}
    keys = KeyStore(file_keys=file_keys, lookup=lambda key_id: lookup_key(client, prefix, key_id),
                    ttl_s=settings.key_cache_s)
    state = SearchState(settings, client, keys, RateLimiter(),
                        Limit.per_minute(settings.rate_limit_per_minute), settings.gazetteer())
    if settings.anonymous_role:
        log.warning("requests without credentials get role %s (development only)", settings.anonymous_role)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            ensure_templates(client, settings.es, settings.refresh_interval)
        except (TransportError, EsConnectionError) as exc:
            log.warning("could not install index templates yet: %s", exc)
        yield

    install_request_id_logging()
    app = FastAPI(title="Yuqing search API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.search = state
    app.add_middleware(RequestContextMiddleware, observe=_observe)
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"], responses={503: {"description": "Elasticsearch unreachable"}})
    def healthz(state: State) -> dict[str, str]:
        if not state.client.ping():
            raise HTTPException(503, "elasticsearch unreachable")
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.API_REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return app
