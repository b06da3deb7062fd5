"""The consumer runtime inside a Faust agent (``stream.take_events`` batches).

Faust acknowledges a batch's events when the agent's loop body returns,
and commits acknowledged offsets on its own timer. So the body returns only
once everything the batch produced is acknowledged by the broker; on any
failure the process exits uncommitted instead of returning or raising
(see :func:`yuqing.consumer.stop.stop_uncommitted`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import faust

from yuqing.consumer.acks import await_acks
from yuqing.consumer.records import BatchOutcome, Output, Record
from yuqing.consumer.runtime import Runtime
from yuqing.consumer.stop import stop_uncommitted

Process = Callable[[list[Record]], Awaitable[BatchOutcome]]


class ProduceFailed(RuntimeError):
    """The broker did not acknowledge every message of a batch."""


class BatchInterrupted(RuntimeError):
    """The worker was stopped while a batch was in flight."""


def record_of(message: Any) -> Record:
    return Record(topic=message.topic, partition=message.partition, offset=message.offset,
                  key=message.key, value=message.value)


class FaustDriver:
    def __init__(self, app: faust.App, runtime: Runtime, *, ack_timeout_s: float) -> None:
        self.app, self.runtime, self.ack_timeout_s = app, runtime, ack_timeout_s
        self._topics: dict[str, faust.TopicT] = {}
        app.on_partitions_assigned.connect(self._forget)
        app.on_partitions_revoked.connect(self._forget)

    async def handle(self, events: Sequence[faust.EventT[Any]], process: Process) -> BatchOutcome:
        """One batch: returns when it may be committed, or exits the process uncommitted."""
        records = [record_of(event.message) for event in events]
        try:
            self.runtime.gaps.check(records)
            outcome = await process(records)
            await self.produce(self.runtime.settle(records, outcome))
        except Exception as exc:
            stop_uncommitted(exc)
        except asyncio.CancelledError:
            # The worker is stopping half way through the batch; Faust would still
            # acknowledge its events on the way out, and commit them.
            stop_uncommitted(BatchInterrupted(f"stopped during a batch of {len(records)} records"))
        return outcome

    async def produce(self, outputs: Iterable[Output]) -> None:
        """Send every output and wait until the broker has all of them, within the ack timeout.

        The sends are under the timeout too: a send waits for its topic's metadata, and for a
        topic deleted under the worker that wait is the producer's request timeout (Faust's:
        20 minutes); the worker hung there, and ignored SIGTERM, waiting for the batch.
        """
        deadline = asyncio.get_running_loop().time() + self.ack_timeout_s
        outputs = list(outputs)

        async def send_all() -> list[Awaitable[Any]]:
            return [await self._topic(o.topic).send(key=o.key, value=o.value) for o in outputs]

        try:
            pending = await asyncio.wait_for(send_all(), self.ack_timeout_s)
        except TimeoutError as exc:
            topics = ", ".join(sorted({o.topic for o in outputs}))
            raise ProduceFailed(f"messages: {len(outputs)} not sent within {self.ack_timeout_s:.0f}s "
                                f"(does {topics} exist?)") from exc
        left = max(deadline - asyncio.get_running_loop().time(), 0.001)
        await await_acks(pending, left, what="messages", error=ProduceFailed)

    def _topic(self, name: str) -> faust.TopicT:
        if name not in self._topics:
            self._topics[name] = self.app.topic(name, key_serializer="raw", value_serializer="raw")
        return self._topics[name]

    def _forget(self, sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        tps = args[0] if args else ()
        self.runtime.gaps.forget((tp.topic, tp.partition) for tp in tps)
