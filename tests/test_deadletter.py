"""The older dead-letter budget, kept for the alerts worker until it moves onto yuqing.consumer."""

import pytest

from yuqing.deadletter import DeadLetterBudget, DeadLetterRateExceeded


def test_budget_tolerates_occasional_failures():
    budget = DeadLetterBudget(window=100, max_ratio=0.5, min_failures=10)
    for i in range(1000):
        budget.record(failed=i % 5 == 0)


def test_budget_stops_when_everything_fails():
    budget = DeadLetterBudget(window=100, max_ratio=0.5, min_failures=10)
    with pytest.raises(DeadLetterRateExceeded):
        for _ in range(100):
            budget.record(failed=True)
