"""What a consumer reads and what it asks to have produced."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Record:
    """One Kafka message as every worker sees it, whatever client read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Output:
    """A message a worker's processing function wants on a topic."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class InvalidMessage:
    """A record the processing function could not handle, and why (it goes to the dead letters)."""

    topic: str
    partition: int
    offset: int
    reason: str
    error_class: str = "InvalidMessage"


@dataclass
class BatchOutcome:
    """What a processing function returns for one batch.

    ``outputs`` are produced, ``invalid`` records dead-lettered; both are
    acknowledged by the broker before the batch's offsets are committed.
    A record in neither list was handled by a sink of the worker's own
    (Elasticsearch for the indexer).
    """

    outputs: list[Output] = field(default_factory=list)
    invalid: list[InvalidMessage] = field(default_factory=list)
