"""The search URL ``yuqing run`` prints works as printed, in curl as in a browser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from yuqing.supervisor import example_search_url


def test_the_example_search_url_is_ascii_and_searches_for_outages() -> None:
    url = example_search_url("http://127.0.0.1:8003")
    assert url.isascii(), "uvicorn answers 400 to a request line holding raw UTF-8"
    parts = urlsplit(url)
    assert parts.path == "/v1/posts/search"
    assert parse_qs(parts.query) == {"q": ["停电"]}
