"""await_acks: a batch waits for every acknowledgement, and a failed or hung send raises."""

from __future__ import annotations

import asyncio

import pytest

from yuqing.consumer.acks import await_acks
from yuqing.consumer.faust_driver import ProduceFailed


def _futures(*outcomes: object) -> list[asyncio.Future[object]]:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[object]] = []
    for outcome in outcomes:
        future = loop.create_future()
        if isinstance(outcome, BaseException):
            loop.call_later(0.01, future.set_exception, outcome)
        elif outcome is not None:
            loop.call_later(0.01, future.set_result, outcome)
        futures.append(future)  # None: never acknowledged
    return futures


def test_returns_once_every_send_is_acknowledged() -> None:
    async def run() -> list[bool]:
        futures = _futures("a", "b", "c")
        await await_acks(futures, 5.0, what="messages")
        return [f.done() for f in futures]

    assert asyncio.run(run()) == [True, True, True]
    asyncio.run(await_acks([], 0.001, what="messages"))  # nothing sent, nothing to wait for


def test_a_failed_send_raises_the_given_error_chained_to_the_first_failure() -> None:
    broken = OSError("broker gone")

    async def run() -> None:
        await await_acks(_futures("a", broken, ValueError("later")), 5.0, what="messages",
                         error=ProduceFailed)

    with pytest.raises(ProduceFailed, match=r"messages: 2 of 3 not acknowledged") as raised:
        asyncio.run(run())
    assert raised.value.__cause__ is broken


def test_a_hung_send_raises_after_the_timeout() -> None:
    async def run() -> None:
        await await_acks(_futures("a", None), 0.1, what="windows changelog writes")

    with pytest.raises(RuntimeError, match=r"windows changelog writes: 2 not acknowledged within 0s"):
        asyncio.run(run())
