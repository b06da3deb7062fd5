"""I/O for the forum pollers: cursor files and polite HTTP.

Cursors: one JSON file per source, written to a temporary file, fsynced and
renamed over the old one, so a crash leaves either the old or the new cursor.

HTTP: a minimum interval between requests, and retries of transport errors, 429
and 5xx with exponential backoff plus jitter (never longer than ``max_backoff_s``);
a ``Retry-After`` header lengthens the wait. Other 4xx answers are configuration
mistakes and fail at once, and so does an answer over ``MAX_ANSWER_BYTES`` (32 MiB).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

Sleep = Callable[[float], Awaitable[None]]


class FetchError(Exception):
    """The resource could not be read (after retries, or a non-retryable answer)."""


class CursorError(Exception):
    """A stored cursor is unreadable; fix or remove the file, it is never reset silently."""


MAX_PUBLISHED_GUIDS = 2_000
"""The guids a feed cursor remembers, the latest published: far more than a feed lists."""
MAX_PUBLISHED_IDS = 1_000
"""The post ids a Discourse cursor remembers, the latest published: far more than a page lists."""


class ForumCursor(BaseModel):
    """How far a source has been published: highest post id and the latest ids published
    (``published_ids``, oldest first); for a feed, the latest item
    published (published, guid) and the digests of the latest guids published
    (``published_guids``, oldest first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    last_id: int | None = None
    published_ids: tuple[int, ...] = ()
    last_published: AwareDatetime | None = None
    last_guid: str | None = None
    published_guids: tuple[str, ...] = ()


def guid_digest(guid: str) -> str:
    """What a feed cursor keeps of a guid: 16 hex digits (a guid is often a long link)."""
    return hashlib.sha256(guid.encode()).hexdigest()[:16]


class CursorStore(Protocol):
    def load(self, source_id: str) -> ForumCursor: ...

    def save(self, source_id: str, cursor: ForumCursor) -> None: ...


class JsonCursorStore:
    """``<directory>/<source_id>.json``, written to a temporary file, fsynced, then renamed."""

    def __init__(self, directory: str | Path) -> None:
        self._directory = Path(directory)

    def load(self, source_id: str) -> ForumCursor:
        path = self._path(source_id)
        try:
            return ForumCursor.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return ForumCursor()
        except (OSError, ValidationError) as exc:
            raise CursorError(f"cursor file {path} is unreadable: {exc}") from exc

    def save(self, source_id: str, cursor: ForumCursor) -> None:
        path = self._path(source_id)
        self._directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._directory, prefix=f".{source_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(cursor.model_dump_json().encode())
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(self._directory)

    def _path(self, source_id: str) -> Path:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{1,63}", source_id):
            raise ValueError(f"not a source id: {source_id!r}")
        return self._directory / f"{source_id}.json"


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not supported on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RequestPacer:
    """At least ``min_interval_s`` between the starts of consecutive requests."""

    def __init__(self, min_interval_s: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._interval = min_interval_s
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._next_at is not None and now < self._next_at:
                await self._sleep(self._next_at - now)
                now = self._clock()
            self._next_at = now + self._interval


class _RetryableError(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class HttpFetcher:
    """GET with rate limiting, a per-request timeout and retries (see the module docstring)."""

    def __init__(self, client: httpx.AsyncClient, *, min_interval_s: float = 1.0,
                 max_attempts: int = 5, backoff_initial_s: float = 1.0,
                 max_backoff_s: float = 300, timeout_s: float = 10,
                 headers: dict[str, str] | None = None, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._limiter = RequestPacer(min_interval_s, clock=clock, sleep=sleep)
        self._max_attempts = max_attempts
        self._backoff = wait_exponential_jitter(initial=backoff_initial_s, max=max_backoff_s,
                                                jitter=backoff_initial_s)
        self._max_backoff_s = max_backoff_s
        self._timeout_s = timeout_s
        self._headers = headers or {}
        self._sleep = sleep

    async def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """The successful (2xx/3xx) response; raises :class:`FetchError` otherwise."""
        retrying = AsyncRetrying(stop=stop_after_attempt(self._max_attempts), wait=self._wait,
                                 retry=retry_if_exception_type(_RetryableError),
                                 sleep=self._sleep, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_once(url, params)
        except _RetryableError as exc:
            raise FetchError(f"GET {url} failed after {self._max_attempts} attempts: {exc}",
                             ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, url: str, params: dict[str, Any] | None) -> httpx.Response:
        await self._limiter.wait()
        try:
            async with self._client.stream("GET", url, params=params, headers=self._headers,
                                           timeout=self._timeout_s) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise _RetryableError(f"HTTP {response.status_code}",
                                          _retry_after(response.headers.get("Retry-After")))
                if response.status_code >= 400:
                    raise FetchError(f"GET {url}: HTTP {response.status_code}")
                content = await _read_at_most(response, MAX_ANSWER_BYTES, url)
        except httpx.TransportError as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}") from exc
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length")]  # read decoded
        return httpx.Response(response.status_code, headers=headers, content=content,
                              request=response.request)

    def _wait(self, state: RetryCallState) -> float:
        delay: float = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableError) and exc.retry_after_s is not None:
            delay = max(delay, min(exc.retry_after_s, self._max_backoff_s))
        return delay


MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""The largest answer read from a forum: a feed or page (after decompression) beyond it is a
FetchError. Read whole, a feed URL that answered with a file of gigabytes (an archive, a
misconfigured portal) took the ingest service's memory, every channel with it."""


async def _read_at_most(response: httpx.Response, limit: int, url: str) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError(f"GET {url}: the answer is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    if value.strip().isascii() and value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
