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


def test_such_a_record_reaches_no_handler_when_debug_is_off() -> None:
    # relabelled DEBUG but passed on, a normal stop printed it as a "debug" line under level INFO
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()  # level NOTSET, as the services' one handler
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("kafka.cluster")
    level = logger.level
    logger.setLevel(logging.WARNING)  # as configure_logging sets kafka-python's loggers
    logger.addHandler(handler)
    try:
        logger.error("Metadata refresh: failed %s", Cancelled())
        logger.error("Metadata refresh: failed %s", KafkaConnectionError("lost"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [r.getMessage() for r in seen] == ["Metadata refresh: failed KafkaConnectionError: lost"]
