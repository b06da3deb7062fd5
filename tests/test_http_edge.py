"""The shared HTTP edge: the token bucket per key, the Allow header of a 405, bodies not in UTF-8."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from yuqing.http_edge import Limit, Problem, RateLimiter, install_problem_handlers, parse_json


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter, limit = RateLimiter(clock=clock), Limit(rate_per_s=2, burst=3)

    assert [limiter.retry_after("a", limit) for _ in range(3)] == [0, 0, 0]
    assert limiter.retry_after("a", limit) == 1  # half a second, rounded up
    clock.now += 0.5
    assert limiter.retry_after("a", limit) == 0
    clock.now += 100
    assert [limiter.retry_after("a", limit) for _ in range(4)][-1] > 0  # never more than the burst


def test_per_minute_limits_allow_a_fifth_at_once() -> None:
    limiter, limit = RateLimiter(clock=Clock()), Limit.per_minute(60)

    assert [limiter.retry_after("a", limit) for _ in range(13)] == [0] * 12 + [1]
    assert Limit.per_minute(0) is None


def test_limiter_keeps_one_bucket_per_source_and_rounds_retry_after_up() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    slow = Limit(rate_per_s=0.1, burst=1)

    assert limiter.retry_after("a", slow) == 0
    assert limiter.retry_after("a", slow) == 10
    assert limiter.retry_after("b", slow) == 0
    assert limiter.retry_after("c", None) == 0


def test_a_changed_limit_starts_a_new_bucket() -> None:
    limiter = RateLimiter(clock=Clock())
    limiter.retry_after("a", Limit(rate_per_s=0.1, burst=1))

    assert limiter.retry_after("a", Limit(rate_per_s=0.1, burst=2)) == 0


def test_a_limit_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Limit(rate_per_s=0, burst=1)


def test_405_lists_every_method_of_the_path() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    def list_things() -> list[str]:
        return []

    @app.post("/things")
    def add_thing() -> str:
        return "ok"

    resp = TestClient(app).put("/things")

    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le"])
def test_a_body_in_another_encoding_is_named_so_not_a_syntax_error(encoding: str) -> None:
    body = '{"external_id": "t-1", "text": "outage"}'.encode(encoding)  # ASCII: UTF-16 as valid UTF-8

    with pytest.raises(Problem) as refused:
        parse_json(body)

    assert refused.value.status_code == 400
    assert str(refused.value.detail).startswith("the body is not UTF-8 (invalid byte at ")


def test_a_utf8_body_with_an_escaped_nul_is_json() -> None:
    assert parse_json(b'{"text": "a\\u0000b"}') == {"text": "a\x00b"}
