"""The consumer runtime's pure parts: dead-letter cap, offset guard, dead letters that fit, settle."""

from __future__ import annotations

import base64

import pytest

from yuqing.consumer import (
    BatchOutcome,
    DeadLetterRateExceeded,
    DlqLimit,
    DlqPolicy,
    InvalidMessage,
    OffsetGaps,
    Output,
    Record,
    Runtime,
    SkippedOffsets,
    exit_code_for,
    make_dead_letter,
)
from yuqing.contracts import DeadLetter
from yuqing.contracts.codec import decode, encode
from yuqing.settings import EXIT_DEAD_LETTER_CAP, EXIT_RESTART


def test_policy_tolerates_occasional_invalid_messages():
    policy = DlqPolicy(DlqLimit(max_invalid_ratio=0.5, max_consecutive_count=5, window=100))
    for i in range(1000):
        policy.record(invalid=i % 3 == 0)


def test_policy_stops_past_the_consecutive_count():
    policy = DlqPolicy(DlqLimit(max_invalid_ratio=1.0, max_consecutive_count=5, window=100))
    for _ in range(5):
        policy.record(invalid=True)
    with pytest.raises(DeadLetterRateExceeded, match="6 invalid messages in a row"):
        policy.record(invalid=True)


def test_policy_stops_past_the_ratio_once_the_window_is_full():
    policy = DlqPolicy(DlqLimit(max_invalid_ratio=0.5, max_consecutive_count=1000, window=10))
    pattern = [True, True, False] * 3  # 6 of 9 invalid: the window is not full yet
    for invalid in pattern:
        policy.record(invalid=invalid)
    with pytest.raises(DeadLetterRateExceeded, match="7 of the last 10"):
        policy.record(invalid=True)


def test_limit_refuses_nonsense():
    with pytest.raises(ValueError):
        DlqLimit(max_invalid_ratio=0.0)


def test_offset_gaps_allow_rereads_and_stop_on_a_jump():
    gaps = OffsetGaps()
    gaps.check([Record("t", 0, 5, None, b""), Record("t", 0, 6, None, b""), Record("t", 1, 90, None, b"")])
    gaps.check_one("t", 0, 3)  # read again after a restart: fine
    gaps.check_one("t", 0, 7)
    with pytest.raises(SkippedOffsets, match=r"t\[0\]: offset 9 came next, 1 messages after 8"):
        gaps.check_one("t", 0, 9)
    gaps.forget([("t", 0)])
    gaps.check_one("t", 0, 500)  # a partition that changed owner starts over


def test_dead_letter_keeps_bytes_reason_and_class():
    letter = make_dead_letter(value=b"\xff", key=b"k", topic="posts.raw", partition=1, offset=7,
                              error=ValueError("bad"), service="nlp", error_class="contract")
    assert letter.original_b64 == "/w==" and letter.error_class == "contract"
    assert letter.error_message == "bad"


def test_a_dead_letter_of_a_huge_message_is_cut_to_fit_and_says_so():
    value = b"x" * 900_000  # base64 would be 1.2 MB
    letter = make_dead_letter(value=value, key=b"k", topic="posts.raw", partition=0, offset=1,
                              error=ValueError("why"), service="nlp", max_bytes=100_000)
    size = len(encode(letter))
    assert 90_000 < size <= 100_000
    kept = base64.b64decode(letter.original_b64)
    assert value.startswith(kept) and len(kept) > 70_000
    assert letter.error_message.startswith("why") and f"of {len(value)} bytes" in letter.error_message


def test_settle_counts_dead_letters_every_invalid_record_after_the_outputs():
    runtime = Runtime(service="svc", dlq_topic="dlq", policy=DlqPolicy(), max_message_bytes=1_000_000)
    seen: list[InvalidMessage] = []
    runtime.on_invalid = seen.append
    records = [Record("in", 0, i, f"k{i}".encode(), f"v{i}".encode()) for i in range(3)]
    bad = InvalidMessage("in", 0, 1, "contract: nope", "ContractError")
    out = Output("out", b"k0", b"enriched")
    produced = runtime.settle(records, BatchOutcome(outputs=[out], invalid=[bad]))
    assert produced[0] == out and [o.topic for o in produced] == ["out", "dlq"]
    letter = decode(DeadLetter, produced[1].value)
    assert (letter.offset, letter.error_class, letter.service) == (1, "ContractError", "svc")
    assert base64.b64decode(letter.original_b64) == b"v1" and produced[1].key == b"k1"
    assert seen == [bad]


def test_settle_stops_a_batch_past_the_cap_before_dead_lettering_it():
    limit = DlqLimit(max_invalid_ratio=1.0, max_consecutive_count=2, window=10)
    runtime = Runtime(service="svc", dlq_topic="dlq", policy=DlqPolicy(limit), max_message_bytes=10_000)
    sent: list[InvalidMessage] = []
    runtime.on_invalid = sent.append
    records = [Record("in", 0, i, None, b"?") for i in range(3)]
    with pytest.raises(DeadLetterRateExceeded):
        runtime.settle(records, BatchOutcome(invalid=[InvalidMessage("in", 0, i, "bad") for i in range(3)]))
    assert sent == []


def test_the_stop_at_the_cap_names_an_invalid_message_and_its_reason():
    """The stopping batch is not dead-lettered, so its stop line is all an operator has: it says why."""
    limit = DlqLimit(max_invalid_ratio=1.0, max_consecutive_count=2, window=10)
    runtime = Runtime(service="svc", dlq_topic="dlq", policy=DlqPolicy(limit), max_message_bytes=10_000)
    records = [Record("posts.raw", 3, 40 + i, None, b"?") for i in range(3)]
    invalid = [InvalidMessage("posts.raw", 3, 40 + i, f"contract: invalid JSON {i}", "ContractError")
               for i in range(3)]
    with pytest.raises(DeadLetterRateExceeded) as stopped:
        runtime.settle(records, BatchOutcome(invalid=invalid))
    assert "3 invalid messages in a row (limit 2)" in str(stopped.value)
    assert "posts.raw[3]@40: ContractError: contract: invalid JSON 0" in str(stopped.value)
    assert "3 invalid in this batch" in str(stopped.value)


def test_a_batch_of_valid_records_can_fill_the_window_past_the_cap_and_still_stop():
    limit = DlqLimit(max_invalid_ratio=0.5, max_consecutive_count=100, window=4)
    runtime = Runtime(service="svc", dlq_topic="dlq", policy=DlqPolicy(limit), max_message_bytes=10_000)
    runtime.settle([Record("in", 0, i, None, b"?") for i in range(3)],
                   BatchOutcome(invalid=[InvalidMessage("in", 0, i, "bad") for i in range(3)]))
    with pytest.raises(DeadLetterRateExceeded, match=r"3 of the last 4.*none invalid in this batch"):
        runtime.settle([Record("in", 0, 3, None, b"ok")], BatchOutcome())


def test_exit_codes_restart_unless_the_cap_stopped_the_worker():
    assert exit_code_for(SkippedOffsets("gap")) == EXIT_RESTART == 75
    assert exit_code_for(RuntimeError("broker")) == EXIT_RESTART
    assert exit_code_for(DeadLetterRateExceeded("flood")) == EXIT_DEAD_LETTER_CAP != EXIT_RESTART
