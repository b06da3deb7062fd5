"""Cursor files and polite HTTP (rate limit, retries with backoff) of the forum pollers."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.ingest.forum_io import (
    MAX_ANSWER_BYTES,
    CursorError,
    FetchError,
    ForumCursor,
    HttpFetcher,
    JsonCursorStore,
    RequestPacer,
)

URL = "http://forum.invalid/posts.json"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedForum:
    """Answers with the scripted responses in turn, then 200; counts requests."""

    def __init__(self, *script: httpx.Response | Exception) -> None:
        self._script = list(script)
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self._script:
            step = self._script.pop(0)
            if isinstance(step, Exception):
                raise step
            return step
        return httpx.Response(200, json={"latest_posts": []})


def fetch(forum: ScriptedForum | Callable[[httpx.Request], httpx.Response], time: FakeTime,
          calls: int = 1, **options: Any) -> httpx.Response:
    settings: dict[str, Any] = {"min_interval_s": 0, "backoff_initial_s": 1, "max_backoff_s": 60,
                                **options}

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.MockTransport(forum)) as client:
            fetcher = HttpFetcher(client, sleep=time.sleep, clock=time.clock, **settings)
            responses = [await fetcher.get(URL) for _ in range(calls)]
            return responses[-1]

    return asyncio.run(scenario())


def test_5xx_is_retried_with_growing_backoff() -> None:
    forum, time = ScriptedForum(httpx.Response(503), httpx.Response(502), httpx.Response(500)), FakeTime()

    response = fetch(forum, time)

    assert response.status_code == 200
    assert forum.requests == 4
    assert len(time.sleeps) == 3
    assert 1 <= time.sleeps[0] <= 2 and 2 <= time.sleeps[1] <= 3 and 4 <= time.sleeps[2] <= 5


def test_429_waits_at_least_retry_after() -> None:
    time = FakeTime()

    fetch(ScriptedForum(httpx.Response(429, headers={"Retry-After": "17"})), time)

    assert time.sleeps == [17.0]


def test_retry_after_as_an_http_date_is_understood() -> None:
    time = FakeTime()
    when = "Wed, 01 Jan 2200 00:00:00 GMT"  # far future: capped by max_backoff_s

    fetch(ScriptedForum(httpx.Response(503, headers={"Retry-After": when})), time)

    assert time.sleeps == [60.0]


def test_retry_after_is_capped_by_max_backoff() -> None:
    time = FakeTime()

    fetch(ScriptedForum(httpx.Response(429, headers={"Retry-After": "86400"})), time)

    assert time.sleeps == [60.0]


def test_backoff_never_exceeds_max_backoff() -> None:
    time = FakeTime()
    forum = ScriptedForum(*(httpx.Response(500) for _ in range(7)))

    fetch(forum, time, max_attempts=8, max_backoff_s=5)

    assert max(time.sleeps) <= 5


def test_retries_give_up_after_max_attempts() -> None:
    forum = ScriptedForum(*(httpx.Response(500) for _ in range(5)))

    with pytest.raises(FetchError, match="after 3 attempts"):
        fetch(forum, FakeTime(), max_attempts=3)
    assert forum.requests == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(status: int) -> None:
    forum = ScriptedForum(httpx.Response(status))

    with pytest.raises(FetchError, match=f"HTTP {status}"):
        fetch(forum, FakeTime())
    assert forum.requests == 1


def test_connection_errors_are_retried() -> None:
    request = httpx.Request("GET", URL)
    forum = ScriptedForum(httpx.ConnectError("refused", request=request),
                          httpx.ReadTimeout("slow", request=request))

    assert fetch(forum, FakeTime()).status_code == 200
    assert forum.requests == 3


def test_rate_limiter_spaces_requests() -> None:
    time = FakeTime()
    limiter = RequestPacer(2.0, clock=time.clock, sleep=time.sleep)

    async def scenario() -> None:
        for _ in range(3):
            await limiter.wait()
        time.now += 5
        await limiter.wait()

    asyncio.run(scenario())
    assert time.sleeps == [2.0, 2.0]


def test_fetcher_applies_the_rate_limit_to_every_request() -> None:
    time = FakeTime()
    forum = ScriptedForum(httpx.Response(500))

    fetch(forum, time, calls=2, min_interval_s=10, backoff_initial_s=1)

    # request 1 fails, backoff 1-2 s, retry waits for the interval, request 3 waits again
    assert forum.requests == 3
    assert len(time.sleeps) == 3
    assert sum(time.sleeps) == pytest.approx(20)


def test_cursor_file_round_trips_and_is_json(tmp_path: Path) -> None:
    cursor = ForumCursor(last_published=datetime(2026, 11, 28, 10, 30, tzinfo=UTC), last_guid="g")
    JsonCursorStore(tmp_path / "cursors").save("forum-notices", cursor)

    assert JsonCursorStore(tmp_path / "cursors").load("forum-notices") == cursor
    assert json.loads((tmp_path / "cursors" / "forum-notices.json").read_text())["last_guid"] == "g"
    assert JsonCursorStore(tmp_path / "cursors").load("forum-other") == ForumCursor()


def test_cursor_save_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    store = JsonCursorStore(tmp_path)
    store.save("forum-intranet", ForumCursor(last_id=104))
    store.save("forum-intranet", ForumCursor(last_id=107))

    assert store.load("forum-intranet").last_id == 107
    assert [p.name for p in tmp_path.iterdir()] == ["forum-intranet.json"]


def test_failed_cursor_write_keeps_the_old_cursor(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = JsonCursorStore(tmp_path)
    store.save("forum-intranet", ForumCursor(last_id=104))

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.save("forum-intranet", ForumCursor(last_id=107))

    assert store.load("forum-intranet").last_id == 104
    assert [p.name for p in tmp_path.iterdir()] == ["forum-intranet.json"]


@pytest.mark.parametrize("content", ["{not json", '{"last_id": "many"}', '{"cursor": 1}'])
def test_corrupt_cursor_is_an_error_not_a_reset(tmp_path: Path, content: str) -> None:
    (tmp_path / "forum-notices.json").write_text(content)

    with pytest.raises(CursorError):
        JsonCursorStore(tmp_path).load("forum-notices")


def test_cursor_store_refuses_path_like_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        JsonCursorStore(tmp_path).save("../evil", ForumCursor())


@pytest.mark.timeout(30)
def test_an_answer_larger_than_the_limit_is_refused_as_it_is_read() -> None:
    # read whole, a feed URL answering with a file of gigabytes took the ingest service's memory
    served: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            served.append(1)
            yield b"<rss>" * 200_000  # a megabyte

    with pytest.raises(FetchError, match=f"larger than {MAX_ANSWER_BYTES:,} bytes"):
        fetch(lambda request: httpx.Response(200, content=endless()), FakeTime())
    assert len(served) <= MAX_ANSWER_BYTES // 1_000_000 + 1


def test_a_compressed_answer_is_read_decompressed_with_its_charset() -> None:
    feed = "<rss><channel><title>停电</title></channel></rss>".encode("gbk")
    answer = httpx.Response(200, content=gzip.compress(feed), headers={
        "content-encoding": "gzip", "content-type": "application/rss+xml; charset=gbk"})

    response = fetch(lambda request: answer, FakeTime())

    assert (response.content, response.charset_encoding) == (feed, "gbk")
