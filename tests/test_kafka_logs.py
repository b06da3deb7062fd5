"""What kafka-python logs on behalf of the services: a client's own close is no error."""

from __future__ import annotations

import logging

import pytest
from kafka.errors import Cancelled, KafkaConnectionError

import yuqing.kafka  # noqa: F401  (installs the filter on kafka-python's loggers)


def test_a_request_cancelled_by_closing_its_client_is_logged_at_debug(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("kafka.cluster").error("Metadata refresh: failed %s", Cancelled())
    logging.getLogger("kafka.coordinator").error("Error sending %s to node %s [%s]",
                                                 "JoinGroupRequest", "coordinator-1", Cancelled())
    logging.getLogger("kafka.cluster").error("Metadata refresh: failed %s", KafkaConnectionError("lost"))
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("kafka.cluster", "DEBUG"), ("kafka.coordinator", "DEBUG"), ("kafka.cluster", "ERROR")]
    assert caplog.records[0].getMessage() == "Metadata refresh: failed Cancelled"


def _read_error(transport: str) -> None:
    try:
        None.recv(4096)  # type: ignore[attr-defined]  # the socket a closing client has dropped
    except AttributeError:
        logging.getLogger("kafka.net.transport").exception(
            "%s: Error receiving network data closing socket", transport)


def test_a_read_cut_short_by_closing_its_client_is_logged_at_debug(caplog: pytest.LogCaptureFixture):
    # kafka-python's IO thread read a transport the indexer's stop had just closed (1 stop in ~25)
    caplog.set_level(logging.DEBUG)
    _read_error("<KafkaTCPTransport [none] (closed)>")
    _read_error("<KafkaTCPTransport node=1 host=127.0.0.1:9092 [connected]>")  # not a close: an error
    assert [r.levelname for r in caplog.records] == ["DEBUG", "ERROR"]
    assert "kafka.net.transport" in logging.root.manager.loggerDict
