"""The offset-gap guard: a worker must never read past messages it did not get."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from yuqing.consumer.records import Record


class SkippedOffsets(RuntimeError):
    """A partition's offsets jumped forward: reading on would leave messages unhandled."""


class OffsetGaps:
    """Checks that each partition's offsets come without gaps (pure).

    A message read again (a lower offset, after a restart or a rebalance) is
    fine; a jump forward means the client skipped messages. ``forget``
    partitions when they are revoked or assigned, since a new owner starts
    from the committed offset. Topics here are neither compacted nor
    transactional, so consecutive offsets are the rule.
    """

    def __init__(self) -> None:
        self._next: dict[tuple[str, int], int] = {}

    def check(self, records: Sequence[Record]) -> None:
        for record in records:
            self.check_one(record.topic, record.partition, record.offset)

    def check_one(self, topic: str, partition: int, offset: int) -> None:
        where = (topic, partition)
        expected = self._next.get(where)
        if expected is not None and offset > expected:
            raise SkippedOffsets(f"{topic}[{partition}]: offset {offset} came next, "
                                 f"{offset - expected} messages after {expected} were skipped")
        if expected is None or offset >= expected:
            self._next[where] = offset + 1

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        for where in partitions:
            self._next.pop(where, None)
