"""Per-source rate limits: one token bucket per source (an API key belongs to one source).

A request takes one token. A bucket holds at most ``burst`` tokens and refills at
``rate_per_s``; an empty bucket answers how long until the next token, which the
API turns into ``429`` with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class TokenBucket:
    """``burst`` tokens, refilled continuously at ``rate_per_s``. Not thread-safe (one event loop)."""

    def __init__(self, *, rate_per_s: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when granted, else the seconds until they would be there."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        return (cost - self._tokens) / self._rate


@dataclass(frozen=True)
class Limit:
    rate_per_s: float
    burst: int


class RateLimiter:
    """Token buckets by key (the source id), created on first use with the key's limit."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[Limit, TokenBucket]] = {}

    def retry_after(self, key: str, limit: Limit | None) -> int:
        """0 if the request may go ahead, else whole seconds to wait (at least 1).

        ``limit`` None means unlimited. A changed limit replaces the key's bucket.
        """
        if limit is None:
            return 0
        entry = self._buckets.get(key)
        if entry is None or entry[0] != limit:
            entry = (limit, TokenBucket(rate_per_s=limit.rate_per_s, burst=limit.burst,
                                        clock=self._clock))
            self._buckets[key] = entry
        wait = entry[1].take()
        return 0 if wait == 0 else max(1, math.ceil(wait))
