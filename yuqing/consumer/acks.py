"""Waiting for a producer's acknowledgements under a timeout (asyncio, any client).

A batch may be committed only once the broker has everything it wrote: its
outputs (the Faust driver's ``produce``) or its table writes (the alerts
worker's changelog receipts). Both hold one future per message sent and wait
for all of them here, so a failed or a hung send raises instead of letting the
batch be acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any


async def await_acks(pending: Sequence[Awaitable[Any]], timeout_s: float, *, what: str,
                     error: type[Exception] = RuntimeError) -> None:
    """Return once every send in ``pending`` is acknowledged.

    Raises ``error`` (its message starts with ``what``, e.g. ``"3 messages"``)
    if one of them failed, chained to the first failure, or if they are not all
    acknowledged within ``timeout_s``.
    """
    if not pending:
        return
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout_s)
    except TimeoutError as exc:
        raise error(f"{what}: {len(pending)} not acknowledged within {timeout_s:.0f}s") from exc
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failed:
        raise error(f"{what}: {len(failed)} of {len(pending)} not acknowledged, "
                    f"first: {failed[0]!r}") from failed[0]
