"""The HTTP edge: explicit errors, request ids, bounded body reading, per-channel request metrics."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic_core import ErrorDetails
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest import metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
JSON_TYPES = frozenset({"application/json"})
XML_TYPES = frozenset({"text/xml", "application/xml"})

_REQUEST_ID = contextvars.ContextVar[str | None]("request_id", default=None)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CHANNEL_PREFIXES = (("/v1/posts", "integration"), ("/v1/app/", "app"), ("/v1/wechat/", "wechat"))


class Problem(HTTPException):
    """An HTTP error answered as ``{"detail": ...}``; logged at INFO with the request id."""


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


def channel_of(path: str) -> str:
    for prefix, channel in _CHANNEL_PREFIXES:
        if path.startswith(prefix):
            return channel
    return "none"


class RequestContextMiddleware:
    """Gives every request an id (the client's valid ``X-Request-Id`` or a new one), echoes it
    in the response, and records the answer time and refusals per channel."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        _REQUEST_ID.set(request_id)  # not reset: the 500 handler runs after this returns
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            channel = channel_of(scope["path"])
            metrics.REQUEST_SECONDS.labels(channel=channel).observe(time.perf_counter() - started)
            if status >= 400:
                metrics.REQUESTS_REJECTED.labels(channel=channel, status=str(status)).inc()


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


def install_error_handlers(app: FastAPI) -> None:
    """Log refusals at INFO; answer unknown errors with a bare 500 and log them with a traceback."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        log.info("refused %s %s: %d %s", request.method, request.url.path, exc.status_code,
                 exc.detail)
        return await http_exception_handler(request, exc)

    async def unknown_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        request_id = current_request_id()
        return JSONResponse({"detail": "internal error", "request_id": request_id}, status_code=500,
                            headers={REQUEST_ID_HEADER: request_id} if request_id else None)

    app.add_exception_handler(HTTPException, refused)
    app.add_exception_handler(Exception, unknown_error)


async def read_body(request: Request, *, limit: int, media_types: frozenset[str]) -> bytes:
    """The raw body: 415 for another Content-Type, 413 beyond ``limit`` bytes (never read further)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in media_types:
        raise Problem(415, f"Content-Type must be {' or '.join(sorted(media_types))}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"body larger than {limit} bytes")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"invalid JSON: {exc}") from exc


def field_errors(errors: Sequence[ErrorDetails]) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{"loc": [...], "msg": ..., "type": ...}]`` (at most 50)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors[:50]]


def request_body(media_type: str, schema: dict[str, Any], *, example: Any = None) -> dict[str, Any]:
    """``openapi_extra`` for a view that reads its raw body, so the schema documents the body."""
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"required": True, "content": {media_type: content}}}
