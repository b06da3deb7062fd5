"""The one way a worker stops without committing."""

from __future__ import annotations

import logging
import os
from typing import NoReturn

from yuqing.consumer.dlq import DeadLetterRateExceeded
from yuqing.settings import EXIT_DEAD_LETTER_CAP, EXIT_RESTART

log = logging.getLogger(__name__)


def exit_code_for(reason: BaseException) -> int:
    """75 (restart me) for anything a restart can cure; the dead-letter cap waits for an operator."""
    return EXIT_DEAD_LETTER_CAP if isinstance(reason, DeadLetterRateExceeded) else EXIT_RESTART


def stop_uncommitted(reason: BaseException) -> NoReturn:
    """Exit at once, committing nothing: the restart reads the current batch again.

    Raising instead would let a Faust stream acknowledge the batch on the way
    out (``take_events`` acks in a ``finally``) and commit it on shutdown, as
    if it had been handled; a kafka-python worker's consumer is closed
    without a commit by the process exit alike.
    """
    code = exit_code_for(reason)
    log.critical("stopping without a commit (exit %d): %s: %s", code, type(reason).__name__, reason,
                 exc_info=code == EXIT_RESTART and not isinstance(reason, RuntimeError))
    logging.shutdown()
    os._exit(code)
