"""The HTTP edge both APIs (ingest and search) share: request ids, problem answers, limits.

* **Request ids.** :class:`RequestContextMiddleware` gives every request an id (the
  caller's ``X-Request-Id`` when it is sane, else a new one), echoes it on every
  answer, and :func:`install_request_id_logging` puts it on every log record made
  while the request is served. Each service passes an ``observe`` callback for its
  own metrics and access log.
* **Problem answers.** Every error is ``{"detail": ..., "request_id": ...}`` with an
  explicit status (:class:`Problem`); validation errors are 422 with a field list;
  a 405 lists in ``Allow`` every method the path has; anything unexpected is a bare
  500, logged with its traceback, never leaking internals.
* **Limits.** :func:`read_body` reads at most a given number of bytes (413) of an
  allowed media type (415); :class:`RateLimiter` is the one token bucket per key.
"""

from __future__ import annotations

import codecs
import contextvars
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import ErrorDetails
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
JSON_TYPES = frozenset({"application/json"})
XML_TYPES = frozenset({"text/xml", "application/xml"})
MAX_FIELD_ERRORS = 50

_REQUEST_ID = contextvars.ContextVar[str | None]("request_id", default=None)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_UNPARSABLE_BODY = "There was an error parsing the body"

Observe = Callable[[Scope, int, float], None]
"""Called once per HTTP request with its scope, answer status and seconds taken."""


class Problem(HTTPException):
    """An HTTP error answered as ``{"detail": ..., "request_id": ...}``; logged at INFO."""

    def __init__(self, status_code: int, detail: Any = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code, detail, dict(headers) if headers else None)
        self.detail: Any = detail


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


class RequestContextMiddleware:
    """Request id in, request id out, and one ``observe`` call per request (pure ASGI)."""

    def __init__(self, app: ASGIApp, observe: Observe | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        _REQUEST_ID.set(request_id)  # not reset: the 500 handler runs after this returns
        status, started = 500, time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.observe is not None:
                self.observe(scope, status, time.perf_counter() - started)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None


_factory_installed = False


def install_request_id_logging() -> None:
    """Add ``request_id`` to every log record made while a request is handled (idempotent)."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = _REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def problem(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The answer to a refused request, with the request id in the body (the middleware
    puts it in the header)."""
    return JSONResponse({"detail": detail, "request_id": current_request_id()},
                        status_code=status, headers=dict(headers) if headers else None)


def install_problem_handlers(app: FastAPI) -> None:
    """Problem answers for HTTP errors (405 with every allowed method), validation errors
    (422) and anything unexpected (500, logged with its traceback)."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            # FastAPI's answer to a body that is not even text: one more invalid request body.
            return problem(422, [{"loc": ["body"], "msg": "the body is not UTF-8 JSON",
                                  "type": "json_invalid"}])
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        log.info("refused %s %s: %d %s", request.method, request.url.path, exc.status_code,
                 exc.detail)
        return problem(exc.status_code, exc.detail, headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        log.info("refused %s %s: 422 invalid request", request.method, request.url.path)
        return problem(422, field_errors(exc.errors()))

    async def unknown_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Answered outside the middleware (by Starlette's outermost error layer): add the id here.
        request_id = current_request_id()
        return problem(500, "internal error", {REQUEST_ID_HEADER: request_id} if request_id else None)

    app.add_exception_handler(HTTPException, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unknown_error)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of the app answers on this path (Starlette names one).

    Asked of the routes themselves, method by method, so that routes of included
    routers count as well as the app's own.
    """
    return [method for method in _METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL
                   for route in app.router.routes)]


def field_errors(errors: Sequence[ErrorDetails] | Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{"loc": [...], "msg": ..., "type": ...}]`` (at most 50)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in errors[:MAX_FIELD_ERRORS]]


async def read_body(request: Request, *, limit: int, media_types: frozenset[str]) -> bytes:
    """The raw body: 415 for another Content-Type, JSON in a charset other than UTF-8 or a compressed body,
    413 beyond ``limit`` bytes (never read further)."""
    media_type, *params = (part.strip() for part in request.headers.get("content-type", "").split(";"))
    if media_type.lower() not in media_types:
        raise Problem(415, f"Content-Type must be {' or '.join(sorted(media_types))}")
    charset = next((value.strip('"').lower() for name, _, value in (p.partition("=") for p in params)
                    if name.strip().lower() == "charset"), "utf-8")
    if media_type.lower() in JSON_TYPES and charset not in ("utf-8", "utf8"):
        # JSON is read as UTF-8 (RFC 8259 has no other encoding): a GBK body would be misread or
        # refused. XML declares its own encoding, which the parser follows.
        raise Problem(415, f"charset {charset} is not accepted: send the body in UTF-8 (charset=utf-8)")
    # Nothing decompresses request bodies: a gzip body would otherwise be read as broken JSON.
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding != "identity":
        raise Problem(415, f"Content-Encoding {encoding} is not accepted: send the body uncompressed")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body larger than {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Problem(413, f"body larger than {limit} bytes")
    except ClientDisconnect as exc:
        # The client's doing, not a fault here: nobody is left to answer, and a 500 would
        # count against the service (and log a traceback) for every dropped upload.
        raise Problem(400, "the client closed the connection before the body ended") from exc
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """JSON, or 400 (for a body not in UTF-8, or nested deeper than 1,024); a leading UTF-8
    byte order mark, which Windows tools write, is skipped (``yuqing publish`` skips it too)."""
    body = body.removeprefix(codecs.BOM_UTF8)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:  # orjson would speak of surrogates
        raise Problem(400, f"the body is not UTF-8 (invalid byte at {exc.start}): "
                      "JSON must be sent as UTF-8") from exc
    if (nul := body.find(b"\x00")) >= 0:
        # UTF-16 without a byte order mark is valid UTF-8, every other byte NUL; a raw NUL is never
        # JSON (control characters are escaped in strings), so it says the encoding, not the syntax.
        raise Problem(400, f"the body is not UTF-8 (invalid byte at {nul}): a NUL byte, as UTF-16 "
                      "writes; JSON must be sent as UTF-8")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"invalid JSON: {exc}") from exc


def request_body(media_type: str, schema: dict[str, Any], *, example: Any = None) -> dict[str, Any]:
    """``openapi_extra`` for a view that reads its raw body, so the schema documents the body."""
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"required": True, "content": {media_type: content}}}


@dataclass(frozen=True)
class Limit:
    """``rate_per_s`` requests per second on average, ``burst`` at once."""

    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")

    @classmethod
    def per_minute(cls, requests: int) -> Limit | None:
        """``requests`` a minute in bursts of a fifth of it; None (unlimited) for 0."""
        return cls(requests / 60.0, max(1, requests // 5)) if requests > 0 else None


class RateLimiter:
    """One token bucket per key (a source, a caller), created on first use with its limit.

    A request takes one token; a bucket holds at most ``burst`` and refills at
    ``rate_per_s``. Thread-safe (the search API serves sync views from a pool).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[Limit, float, float]] = {}  # limit, tokens, updated
        self._lock = threading.Lock()

    def retry_after(self, key: str, limit: Limit | None) -> int:
        """0 if the request may go ahead, else whole seconds to wait (at least 1).

        ``limit`` None means unlimited. A changed limit replaces the key's bucket.
        """
        if limit is None:
            return 0
        with self._lock:
            now = self._clock()
            held, tokens, updated = self._buckets.get(key, (limit, float(limit.burst), now))
            if held != limit:
                tokens, updated = float(limit.burst), now
            tokens = min(float(limit.burst), tokens + (now - updated) * limit.rate_per_s)
            if tokens >= 1:
                self._buckets[key] = (limit, tokens - 1, now)
                return 0
            self._buckets[key] = (limit, tokens, now)
            return max(1, math.ceil((1 - tokens) / limit.rate_per_s))
