"""Dependencies of the views: the app's state, the caller, and permission checks."""


import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from elasticsearch import Elasticsearch
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.search import metrics
from services.search.auth import (
    KeyStore,
    Permission,
    Principal,
    RateLimiter,
    Role,
    Unauthenticated,
    verify_jwt,
)
from services.search.settings import SearchSettings

log = logging.getLogger(__name__)
API_KEY = APIKeyHeader(name="X-Api-Key", auto_error=False, description="yq_<key id>_<secret>")
BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="HS256 token")


@dataclass
class SearchState:
    settings: SearchSettings
    client: Elasticsearch
    keys: KeyStore
    limiter: RateLimiter

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
    wait = state.limiter.retry_after(principal.subject)
    if wait > 0:
        metrics.RATE_LIMITED.inc()
        raise HTTPException(429, "rate limit exceeded for this key",
                            {"Retry-After": str(max(1, round(wait)))})
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    def check(principal: Caller) -> Principal:
        if not principal.can(permission):
            metrics.AUTH_FAILURES.labels(status="403").inc()
            raise HTTPException(403, f"role {principal.role.value} may not {permission.value}")
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Permission.READ))]
Actor = Annotated[Principal, Depends(require(Permission.ACT))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
