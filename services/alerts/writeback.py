"""A write-back cache in front of a changelog-backed table (pure).

Every write to a Faust table is a message on its changelog. The counting stage
rewrites the same few keys (``overall``, each topic, its detector states) for
every post, so it writes through this cache instead and flushes once per batch
of posts: one changelog message per changed key and batch, whatever the number
of posts in it. Reads see the pending writes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

_DELETED = object()
_MISSING = object()


class WriteBack(MutableMapping[str, Any]):
    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table
        self._pending: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self._pending.get(key, _MISSING)
        if value is _DELETED:
            raise KeyError(key)
        if value is not _MISSING:
            return value
        return self.table[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._pending[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._pending[key] = _DELETED

    def __contains__(self, key: object) -> bool:
        if key in self._pending:
            return self._pending[key] is not _DELETED
        return key in self.table

    def __iter__(self) -> Iterator[str]:
        for key, value in self._pending.items():
            if value is not _DELETED:
                yield key
        for key in list(self.table):
            if key not in self._pending:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> int:
        """Write the pending changes to the table; returns how many there were."""
        count = len(self._pending)
        for key, value in self._pending.items():
            if value is _DELETED:
                if key in self.table:
                    del self.table[key]
            else:
                self.table[key] = value
        self._pending.clear()
        return count
