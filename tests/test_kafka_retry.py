"""Waiting out a Kafka outage: which errors are retried, how the wait ends, when clients are built."""

from __future__ import annotations

import socket

import pytest
from kafka.errors import CommitFailedError, KafkaConnectionError, KafkaTimeoutError

from bench.common import free_port
from yuqing.kafka import brokers_reachable, connect, is_transient, until_kafka_answers
from yuqing.settings import KafkaSettings


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


def test_connect_builds_no_client_while_no_broker_answers(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    built, checks = [], []

    def give_up() -> bool:
        checks.append(1)
        return len(checks) >= 3

    assert not brokers_reachable(settings)
    with pytest.raises(KafkaConnectionError, match="no bootstrap server"):
        connect("connecting", lambda: built.append(1), settings, give_up=give_up)
    assert built == [] and len(checks) == 3


def test_connect_builds_the_client_once_a_broker_answers():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{listener.getsockname()[1]}")
        assert connect("connecting", lambda: "client", settings) == "client"
