"""The consumer runtime every worker runs on.

A worker supplies one processing function, ``records -> BatchOutcome``
(outputs to produce, invalid records to dead-letter), and its wiring; the
runtime does the rest, the same way for every worker:

* one record type (:class:`Record`: topic, partition, offset, key, value);
* an offset-gap guard (:class:`OffsetGaps`): a partition that skips offsets
  stops the worker uncommitted;
* one dead-letter policy (:class:`DlqPolicy` over a frozen :class:`DlqLimit`,
  built from the shared :class:`ConsumerSettings`), counted before the
  dead letters are sent, and dead letters cut to fit the topic;
* produce, wait for the broker's acknowledgements, then commit -- or stop
  without committing (:func:`stop_uncommitted`: exit 75, or 65 past the
  dead-letter cap).

The client-specific halves live in ``faust_driver`` and ``kafka_driver``
(imported from there, so a kafka-python worker never imports Faust).
"""

from yuqing.consumer.dlq import DeadLetterRateExceeded, DlqLimit, DlqPolicy, make_dead_letter
from yuqing.consumer.offsets import OffsetGaps, SkippedOffsets
from yuqing.consumer.records import BatchOutcome, InvalidMessage, Output, Record
from yuqing.consumer.runtime import Runtime
from yuqing.consumer.settings import ConsumerSettings
from yuqing.consumer.stop import exit_code_for, stop_uncommitted

__all__ = [
    "BatchOutcome", "ConsumerSettings", "DeadLetterRateExceeded", "DlqLimit", "DlqPolicy",
    "InvalidMessage", "OffsetGaps", "Output", "Record", "Runtime", "SkippedOffsets",
    "exit_code_for", "make_dead_letter", "stop_uncommitted",
]
