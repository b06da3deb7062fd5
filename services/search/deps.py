"""Dependencies of the views: the app's state, the caller, and permission checks."""


import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from elasticsearch import Elasticsearch
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BeforeValidator

from services.search import metrics
from services.search.auth import (
    KeyStore,
    Permission,
    Principal,
    Role,
    Unauthenticated,
    verify_jwt,
)
from services.search.settings import SearchSettings
from yuqing.contracts.models import DateTime
from yuqing.http_edge import Limit, RateLimiter
from yuqing.places import NO_PLACES, Gazetteer
from yuqing.text import place_name

log = logging.getLogger(__name__)
API_KEY = APIKeyHeader(name="X-Api-Key", auto_error=False, description="yq_<key id>_<secret>")
BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="HS256 token")


@dataclass
class SearchState:
    settings: SearchSettings
    client: Elasticsearch
    keys: KeyStore
    limiter: RateLimiter
    limit: Limit | None
    places: Gazetteer = NO_PLACES

    @property
    def prefix(self) -> str:
        return self.settings.es.index_prefix


def get_state(request: Request) -> SearchState:
    return request.app.state.search  # type: ignore[no-any-return]


State = Annotated[SearchState, Depends(get_state)]


def _unauthorized(detail: str) -> HTTPException:
    metrics.AUTH_FAILURES.labels(status="401").inc()
    return HTTPException(401, detail, {"WWW-Authenticate": 'Bearer, ApiKey realm="yuqing"'})


def _identify(state: SearchState, api_key: str | None,
              bearer: HTTPAuthorizationCredentials | None) -> Principal:
    settings = state.settings
    try:
        if api_key:
            return state.keys.verify(api_key)
        if bearer and settings.jwt_secret is not None:
            return verify_jwt(bearer.credentials, secret=settings.jwt_secret.get_secret_value(),
                              audience=settings.jwt_audience)
    except Unauthenticated as exc:
        raise _unauthorized(str(exc)) from exc
    if bearer:
        raise _unauthorized("bearer tokens are not enabled on this server")
    if settings.anonymous_role is not None:
        return Principal("anonymous", Role(settings.anonymous_role), method="anonymous")
    raise _unauthorized("credentials required: X-Api-Key header or Authorization: Bearer <JWT>")


def authenticate(request: Request, state: State, api_key: Annotated[str | None, Depends(API_KEY)],
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
    """The caller, rate-limited per subject; 401 when it cannot be identified, 429 when too fast."""
    principal = _identify(state, api_key, bearer)
    request.state.subject = principal.subject
    wait = state.limiter.retry_after(principal.subject, state.limit)
    if wait > 0:
        metrics.RATE_LIMITED.inc()
        raise HTTPException(429, "rate limit exceeded for this key", {"Retry-After": str(wait)})
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    def check(principal: Caller) -> Principal:
        if not principal.can(permission):
            metrics.AUTH_FAILURES.labels(status="403").inc()
            raise HTTPException(403, f"role {principal.role.value} may not {permission.value}")
        return principal

    return check


_JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def json_content(request: Request) -> None:
    """415 for a body sent as another type than JSON: FastAPI would read no body and answer
    that a field is missing, or that the body is not an object (``curl -d`` sends a form)."""
    if request.method not in _JSON_BODY_METHODS:
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json") and await request.body():
        raise HTTPException(415, "Content-Type must be application/json")


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route reads, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def known_query(request: Request) -> None:
    """400 for a query parameter the route does not read, or one given more than once: FastAPI
    ignores the first and keeps the last of the second, so a misspelt filter (``regoin=``), another
    endpoint's name for a setting or a second region would answer as if unfiltered, or filtered
    by one value."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise HTTPException(400, f"unknown query parameter {', '.join(map(repr, unknown))} "
                                 f"(this endpoint accepts: {accepted})")
    # every parameter takes one value and FastAPI reads the last one given: region=河口镇&region=城关镇
    # answered for 城关镇 alone, as if the caller had asked for one region
    repeated = sorted(name for name in set(request.query_params)
                      if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise HTTPException(400, f"query parameter {', '.join(map(repr, repeated))} given more than once "
                                 "(each takes one value)")


# "…T20:00:00+08:00" typed into a URL without encoding its "+" (curl, a browser's address bar)
# arrives as "…T20:00:00 08:00": a 422 that said the time had no offset, which it had
_PLUS_READ_AS_SPACE = re.compile(r"([Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?) ([0-9]{2}:[0-9]{2})$")


def _offset_plus(value: object) -> object:
    return _PLUS_READ_AS_SPACE.sub(r"\1+\2", value) if isinstance(value, str) else value


def _query_time(value: datetime) -> datetime:
    if not QUERY_YEARS[0] <= value.year < QUERY_YEARS[1]:
        raise ValueError(f"must be a date-time of the years {QUERY_YEARS[0]} to {QUERY_YEARS[1] - 1}")
    return value


# Times in queries: RFC 3339 text only (``0.5`` is not a date-time) of the years 2000-2099
# (the schema says so with a pattern), so that ``until - 7 days`` never leaves the calendar.
QUERY_YEARS = (2000, 2100)
QueryTime = Annotated[DateTime, BeforeValidator(_offset_plus), AfterValidator(_query_time)]
_TIME_SCHEMA = {"pattern": r"^20[0-9]{2}-"}
Since = Annotated[QueryTime | None, Query(description="inclusive", examples=["2026-11-28T00:00:00+08:00"],
                                          json_schema_extra=_TIME_SCHEMA)]
Until = Annotated[QueryTime | None, Query(description="exclusive", examples=["2026-11-29T00:00:00+08:00"],
                                          json_schema_extra=_TIME_SCHEMA)]

# Path and query parameters the views share.
PAGE_SIZE_MAX = 100
"""Items per page at most: part of the API contract, the same on every deployment."""
PageSize = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description=f"at most {PAGE_SIZE_MAX}")]
OptionalPageSize = Annotated[int | None, Query(ge=1, le=PAGE_SIZE_MAX,
                                                description=f"at most {PAGE_SIZE_MAX}; default 20")]
FormerPageSize = Annotated[int | None, Query(ge=1, le=PAGE_SIZE_MAX, deprecated=True,
                                              description="the former name of `limit`")]
PostIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", examples=["68c3c8310ffbb3e61c3e4cf53607b7f1"])]
ISSUE_ID = re.compile(r"^[a-z_]{2,32}-[0-9a-f]{16}$")
IssueIdPath = Annotated[str, Path(pattern=ISSUE_ID.pattern, examples=["outage-9f2c41d07a3be815"])]


def _issue_id_filter(value: str | None) -> str | None:
    # pasted with a space around it, a zero-width character or in capitals, the id found no post
    # and the search answered 0 as if the issue had none; a mistyped one, too
    clean = place_name(value)
    issue_id = clean.lower() if isinstance(clean, str) else None
    if value is not None and (issue_id is None or not ISSUE_ID.match(issue_id)):
        raise ValueError("must be an issue id, such as outage-9f2c41d07a3be815")
    return issue_id


IssueIdFilter = Annotated[str | None, AfterValidator(_issue_id_filter),
                          Query(max_length=64, examples=["outage-9f2c41d07a3be815"])]
AlertIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{8,64}$", examples=["a3f9c2e1b7d40c11"])]
KeyIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{2,39}$", examples=["hekou-desk"])]
Keyword = Annotated[str | None, Query(min_length=1, max_length=64)]


def _place_filter(value: str | None) -> str | None:
    clean = place_name(value)
    if value is not None and clean is None:
        raise ValueError("must name a region or unit (it is blank)")
    return clean if isinstance(clean, str) else None


def _source_filter(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must name a source (it is blank)")
    return value.strip().lower() if value is not None else None


# Filters read as the edge publishes the values: a region or unit without spaces around it or
# invisible characters in it, a source id in lower case (the contract's). " 河口镇" or "河口镇\u200b"
# pasted into a filter found nothing, and a key scoped to 河口镇 was refused it as outside its scope;
# source=APP-MAIN found nothing.
PlaceFilter = Annotated[str | None, AfterValidator(_place_filter), Query(min_length=1, max_length=64)]
SourceFilter = Annotated[str | None, AfterValidator(_source_filter), Query(min_length=1, max_length=64)]


def _region_filter(state: State, region: PlaceFilter = None) -> str | None:
    # a township's responder types 河口 for 河口镇, or pastes 河口鎮: read as a region of its own,
    # it found nothing (and a key scoped to 河口镇 was refused it) while posts kept arriving
    return state.places.region_called(region) if region is not None else None


RegionFilter = Annotated[str | None, Depends(_region_filter)]
"""``region``: as the edge publishes it, and a known region named by its short form or in
traditional characters read as that region (``places_file``)."""
Cursor = Annotated[str | None,
                   Query(min_length=1, max_length=2000, description="`next_cursor` of the last page")]

Reader = Annotated[Principal, Depends(require(Permission.READ))]
Actor = Annotated[Principal, Depends(require(Permission.ACT))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
