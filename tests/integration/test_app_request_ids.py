"""An APP request id is "already accepted" (409, do not retry) only once its feedback is in Kafka.

The APP may retry with the same request id. A retry that arrived while the first attempt was
still waiting for Kafka was answered 409, which tells the APP that the feedback is in; the first
attempt then ended in 503, answered to nobody, and the feedback was lost.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.test_ingest_channels import ingest, send_feedback
from yuqing.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_a_retry_while_the_first_attempt_waits_for_kafka_is_told_to_retry(tmp_path: Path) -> None:
    # a broker that takes connections and never answers: a publish waits out its timeout
    with socket.create_server(("127.0.0.1", 0)) as silent:
        kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{silent.getsockname()[1]}")
        answers = _first_and_retry(kafka, tmp_path)
    first, retry, still_waiting, again = answers


    assert still_waiting, "the first attempt was answered before the retry: nothing was in flight"
    assert first.status_code == 503, first.text
    assert retry.status_code == 503, retry.text
    assert retry.headers["Retry-After"] == "5"
    assert "still being" in retry.json()["detail"]
    assert again.status_code == 503, again.text


def _first_and_retry(kafka: KafkaSettings, tmp_path: Path) -> tuple[httpx.Response, httpx.Response,
                                                                      bool, httpx.Response]:
    with ingest(kafka, tmp_path, publish_timeout_s=4) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(send_feedback, url, "fb-7", "req-7")
        time.sleep(1.5)
        retry = send_feedback(url, "fb-7", "req-7")
        still_waiting = not first.done()
        answered = first.result()
        again = send_feedback(url, "fb-7", "req-7")  # after the first failed: its id is free again
    return answered, retry, still_waiting, again
