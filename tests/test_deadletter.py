import pytest

from yuqing.deadletter import DeadLetterBudget, DeadLetterRateExceeded, make_dead_letter


def test_budget_tolerates_occasional_failures():
    budget = DeadLetterBudget(window=100, max_ratio=0.5, min_failures=10)
    for i in range(1000):
        budget.record(failed=i % 5 == 0)


def test_budget_stops_when_everything_fails():
    budget = DeadLetterBudget(window=100, max_ratio=0.5, min_failures=10)
    with pytest.raises(DeadLetterRateExceeded):
        for _ in range(100):
            budget.record(failed=True)


def test_dead_letter_keeps_bytes_and_reason():
    letter = make_dead_letter(value=b"\xff", key=b"k", topic="posts.raw", partition=1, offset=7,
                              error=ValueError("bad"), service="nlp")
    assert letter.original_b64 == "/w==" and letter.error_class == "ValueError"
    assert (letter.topic, letter.partition, letter.offset) == ("posts.raw", 1, 7)
