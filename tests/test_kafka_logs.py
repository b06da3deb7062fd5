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
