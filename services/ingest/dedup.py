"""Bounded time-to-live sets: the dedup window for posts and the replay cache for requests.

Sources redeliver: WeChat retries a message three times when the reply is slow,
the APP resends after a timeout, a forum poll overlaps the last one. Post ids
are deterministic (``make_post_id(source, external_id)``), so remembering the
ids published in the last window is enough to publish each post once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from yuqing.contracts import RawPost

Clock = Callable[[], float]


class TtlSet:
    """A set whose members expire ``ttl_s`` seconds after they were added.

    At most ``max_entries`` members are kept; beyond that the oldest are evicted
    early and counted in ``evictions``. Thread-safe. ``clock`` returns seconds
    and must not go backwards (``time.monotonic`` by default).
    """

    def __init__(self, *, ttl_s: float, max_entries: int, clock: Clock = time.monotonic) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError("ttl_s and max_entries must be positive")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def add(self, key: str) -> bool:
        """Add ``key``; False if it is already present (its expiry is not extended)."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            if key in self._expiry:
                return False
            self._expiry[key] = now + self._ttl_s
            while len(self._expiry) > self._max_entries:
                self._expiry.popitem(last=False)
                self.evictions += 1
            return True

    def discard(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._purge(self._clock())
            return key in self._expiry

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._expiry)

    def _purge(self, now: float) -> None:
        # Insertion order is expiry order because every entry lives exactly ttl_s.
        while self._expiry:
            key, expires_at = next(iter(self._expiry.items()))
            if expires_at > now:
                return
            del self._expiry[key]


class DedupWindow:
    """Publishes each post id once per window, without losing posts on failed publishes.

    Use it in two steps so a failed publish is retried rather than swallowed::

        posts = window.fresh(batch)      # drop ids published within the window
        await publish(posts)
        window.mark_published(posts)     # only after the sink succeeded
    """

    def __init__(self, *, ttl_s: float = 3_600, max_entries: int = 200_000,
                 clock: Clock = time.monotonic) -> None:
        self._published = TtlSet(ttl_s=ttl_s, max_entries=max_entries, clock=clock)

    def fresh(self, posts: Iterable[RawPost]) -> list[RawPost]:
        """``posts`` minus those published within the window and repeats within ``posts``."""
        seen: set[str] = set()
        result = []
        for post in posts:
            if post.post_id in seen or post.post_id in self._published:
                continue
            seen.add(post.post_id)
            result.append(post)
        return result

    def mark_published(self, posts: Iterable[RawPost]) -> None:
        for post in posts:
            self._published.add(post.post_id)

    def seen(self, post_id: str) -> bool:
        return post_id in self._published

    @property
    def evictions(self) -> int:
        """Ids forgotten before their window ended because the window was full."""
        return self._published.evictions

    def __len__(self) -> int:
        return len(self._published)
