"""A tiny Discourse-style forum for the demo and the tests: ``GET /posts.json[?before=ID]``.

It answers like Discourse: the latest posts, newest first, ``page_size`` per page,
older pages with ``before``. Posts are added while it runs, so they "arrive"
between two polls. It runs in a daemon thread of the calling process.
"""

from __future__ import annotations

import html
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def discourse_post(post_id: int, *, topic_id: int, title: str, text: str, username: str,
                   created_at: datetime, post_number: int = 1, category_id: int = 1) -> dict[str, Any]:
    """A post as Discourse lists it in ``/posts.json`` (the fields the connector reads)."""
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
    return {
        "id": post_id, "username": username, "created_at": created_at.isoformat(),
        "cooked": paragraphs, "raw": text, "post_number": post_number, "post_type": 1,
        "reply_to_post_number": None, "topic_id": topic_id, "topic_slug": "topic",
        "topic_title": title, "category_id": category_id,
        "post_url": f"/t/topic/{topic_id}/{post_number}", "hidden": False, "deleted_at": None,
    }


class FixtureForum:
    """Serve posts on ``url``; :meth:`wait_until_polled` tells when a poller took them."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, page_size: int = 50) -> None:
        self._posts: dict[int, dict[str, Any]] = {}
        self._lock = threading.Condition()
        self._page_size = page_size
        self._polls = 0  # requests without ``before``: each starts a new poll
        self._served_in_poll: dict[int, int] = {}
        self._host = host
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fixture-forum")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    def add(self, *posts: dict[str, Any]) -> None:
        with self._lock:
            for post in posts:
                self._posts[int(post["id"])] = post

    @property
    def polls(self) -> int:
        with self._lock:
            return self._polls

    def wait_until_polled(self, post_id: int, timeout_s: float) -> bool:
        """True once a poll fetched ``post_id`` and the next poll has begun (so the one that
        fetched it has finished, and published it); False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                served_in = self._served_in_poll.get(post_id)
                if served_in is not None and self._polls > served_in:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(timeout=remaining)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _page(self, before: int | None) -> list[dict[str, Any]]:
        with self._lock:
            self._polls += before is None
            ids = sorted((i for i in self._posts if before is None or i < before), reverse=True)
            page = [self._posts[i] for i in ids[:self._page_size]]
            for post in page:
                self._served_in_poll.setdefault(int(post["id"]), self._polls)
            self._lock.notify_all()
            return page

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        forum = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/posts.json":
                    self._send(404, b'{"errors": ["not found"]}')
                    return
                before = parse_qs(url.query).get("before", [""])[0]
                page = forum._page(int(before) if before.isdigit() else None)
                self._send(200, json.dumps({"latest_posts": page}, ensure_ascii=False).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
