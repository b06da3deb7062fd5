"""Waiting out a Kafka outage: which errors are retried, and how the wait ends (pure logic)."""

from __future__ import annotations

import pytest
from kafka.errors import CommitFailedError, KafkaConnectionError, KafkaTimeoutError

from yuqing.kafka import is_transient, until_kafka_answers


def test_connection_and_timeout_errors_are_transient_a_lost_generation_is_not():
    assert is_transient(KafkaConnectionError("111 ECONNREFUSED"))
    assert is_transient(KafkaTimeoutError("Unable to bootstrap"))
    assert not is_transient(CommitFailedError("group rebalanced"))
    assert not is_transient(ValueError("not Kafka"))


def test_transient_failures_are_retried_until_the_call_succeeds(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    failures = [KafkaConnectionError("down"), KafkaTimeoutError("still down")]

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "committed"

    assert until_kafka_answers("committing", call) == "committed"
    assert not failures


def test_other_errors_are_raised_at_once():
    calls = []

    def call() -> None:
        calls.append(1)
        raise CommitFailedError("group rebalanced")

    with pytest.raises(CommitFailedError):
        until_kafka_answers("committing", call)
    assert calls == [1]


def test_give_up_ends_the_wait_with_the_last_error(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    calls = []

    def call() -> None:
        calls.append(1)
        raise KafkaConnectionError(f"down {len(calls)}")

    with pytest.raises(KafkaConnectionError, match="down 3"):
        until_kafka_answers("committing", call, give_up=lambda: len(calls) >= 3)
    assert len(calls) == 3
