"""A post's ``url`` reaches responders only as a web link (http or https).

Any channel can carry a URL of the sender's choosing (a WeChat link message, an
RSS entry, a partner's post); a ``javascript:`` or ``data:`` URL rendered as a link in
a responder's console would run. The search API returns ``url`` only when it is an
http(s) URL.
"""

import pytest

from services.search.posts import to_post

SOURCE = {"post_id": "a" * 32, "source": "wechat-service", "channel": "wechat", "topic": "outage",
          "sentiment": "negative", "text": "停电了", "created_at": "2026-11-28T12:00:00+00:00"}


NOT_WEB_LINKS = ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x",
                 "//evil.example/x", "file:///etc/passwd", "\u0000javascript:x"]


@pytest.mark.parametrize("url", NOT_WEB_LINKS)
def test_a_url_that_is_not_a_web_link_is_not_returned(url: str) -> None:
    assert to_post({"_source": {**SOURCE, "url": url}}).url is None


@pytest.mark.parametrize("url", ["https://forum.example.internal/t/1207/14", "HTTP://mp.weixin.qq.com/s/x"])
def test_a_web_link_is_returned_as_sent(url: str) -> None:
    assert to_post({"_source": {**SOURCE, "url": url}}).url == url
