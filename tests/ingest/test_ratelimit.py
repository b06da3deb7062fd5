"""Token buckets per source."""

from __future__ import annotations

import pytest

from services.ingest.ratelimit import Limit, RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=2, burst=3, clock=clock)

    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 100
    assert [bucket.take() for _ in range(4)][-1] > 0  # never more than the burst


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


def test_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=0, burst=1)
