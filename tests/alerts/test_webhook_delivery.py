"""Webhook delivery against a real HTTP server: what it answers decides the outcome, and no
answer stops the delivery task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from services.alerts.notify import Notifier
from services.alerts.settings import AlertsSettings
from tests.alerts.test_notify import _alert


class Hook(BaseHTTPRequestHandler):
    """``/moved`` redirects elsewhere, ``/garbled`` sends a body its own encoding header
    cannot decode, any other path accepts."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/moved":
            self._answer(301, b"", Location="https://hooks.elsewhere.test/send")
        elif self.path == "/garbled":
            self._answer(200, b"not gzip at all", **{"Content-Encoding": "gzip"})
        else:
            self._answer(200, b'{"errcode": 0}')

    def _answer(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def hook_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _notifier(url: str, outcomes: list[str] | None = None) -> Notifier:
    return Notifier(url=url, fmt="wecom", min_wait_s=0.0, max_wait_s=0.0, max_attempts=2,
                    on_outcome=(outcomes if outcomes is not None else []).append)


def test_a_redirect_is_not_counted_as_sent(hook_url: str) -> None:
    # The POST is not repeated at the new address, so nobody was told.
    assert asyncio.run(_notifier(f"{hook_url}/moved").deliver(_alert())) == "rejected"


def test_an_answer_that_cannot_be_read_fails_that_alert_and_the_next_is_delivered(
        hook_url: str) -> None:
    outcomes: list[str] = []

    async def scenario() -> None:
        # One notifier whose endpoint is repaired between two alerts.
        garbled = _notifier(f"{hook_url}/garbled", outcomes)
        task = asyncio.create_task(garbled.run())
        garbled.submit(_alert())
        await asyncio.wait_for(garbled.queue.join(), timeout=10)
        garbled.url = f"{hook_url}/ok"
        garbled.submit(_alert())
        await asyncio.wait_for(garbled.queue.join(), timeout=10)
        assert not task.done()
        task.cancel()

    asyncio.run(scenario())
    assert outcomes == ["failed", "sent"]


@pytest.mark.parametrize("url", ["hooks.example.com/send", "ftp://hooks.example.com/send",
                                 "http://hooks example.com/send", "https://"])
def test_a_webhook_url_that_is_no_web_address_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="webhook_url"):
        AlertsSettings(webhook_url=url)


def test_a_web_address_is_accepted() -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"
    assert AlertsSettings(webhook_url=url).webhook_url == url


def test_an_empty_webhook_url_means_no_webhook() -> None:
    assert AlertsSettings(webhook_url="").webhook_url is None
