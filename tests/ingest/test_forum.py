"""Forum connectors: one contract suite run against the fake and against real HTTP.

The real sources talk to a local ``http.server`` that serves the fixtures in
``fixtures/``; it can hide the newest posts (so new posts "arrive" between polls),
and pages ``/posts.json`` like Discourse.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.ingest.admission import Admission
from services.ingest.forum import (
    ForumPoller,
    ForumSource,
    build_forum_source,
    html_to_text,
    parse_feed,
)
from services.ingest.forum_io import (
    FetchError,
    ForumCursor,
    JsonCursorStore,
)
from services.ingest.registry import RegisteredSource, parse_registry, pseudonymize
from tests.ingest.fakes import FakeForumSource, MemoryCursorStore
from yuqing.contracts import Channel, RawPost, make_post_id

FIXTURES = Path(__file__).parent / "fixtures"
SALT = "forum-salt-0123456789"
DISCOURSE = json.loads((FIXTURES / "discourse_posts.json").read_text(encoding="utf-8"))["latest_posts"]


# ---- the fixture server ------------------------------------------------------------------


@dataclass
class ServerState:
    hidden_newest: int = 0
    page_size: int = 3
    requests: list[str] = field(default_factory=list)


def _strip_newest(text: str, tag: str, count: int) -> str:
    for block in re.findall(rf"<{tag}>.*?</{tag}>", text, flags=re.S)[:count]:
        text = text.replace(block, "", 1)
    return text


class FixtureHandler(BaseHTTPRequestHandler):
    state: ServerState

    def do_GET(self) -> None:
        self.state.requests.append(self.path)
        url = urlsplit(self.path)
        routes: dict[str, Callable[[dict[str, list[str]]], tuple[bytes, str]]] = {
            "/posts.json": self._discourse,
            "/feed.rss": lambda _: self._feed("forum_feed.rss.xml", "item"),
            "/feed.atom": lambda _: self._feed("forum_feed.atom.xml", "entry"),
            "/bomb.rss": lambda _: ((FIXTURES / "xml_bomb.xml").read_bytes(), "application/xml"),
        }
        route = routes.get(url.path)
        if route is None:
            self._send(404, b"not found", "text/plain")
            return
        body, content_type = route(parse_qs(url.query))
        self._send(200, body, content_type)

    def _discourse(self, query: dict[str, list[str]]) -> tuple[bytes, str]:
        posts = DISCOURSE[self.state.hidden_newest:]
        if "before" in query:
            posts = [p for p in posts if p["id"] < int(query["before"][0])]
        page = {"latest_posts": posts[:self.state.page_size]}
        return json.dumps(page, ensure_ascii=False).encode(), "application/json"

    def _feed(self, name: str, tag: str) -> tuple[bytes, str]:
        text = (FIXTURES / name).read_text(encoding="utf-8")
        return _strip_newest(text, tag, self.state.hidden_newest).encode(), "application/xml"

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    handler = type("Handler", (FixtureHandler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fresh_server(server: tuple[str, ServerState]) -> tuple[str, ServerState]:
    url, state = server
    state.hidden_newest, state.page_size = 0, 3
    state.requests.clear()
    return url, state


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def registered(kind: str, url: str, **options: object) -> RegisteredSource:
    settings = {"min_request_interval_s": 0, "backfill_pages": 10, "max_attempts": 3, **options}
    lines = [
        "[[sources]]", f'id = "forum-{kind}"', 'channel = "forum"', 'owner = "信息通信分公司"',
        f'kind = "{"discourse" if kind == "discourse" else "rss"}"',
        f'{"base_url" if kind == "discourse" else "feed_url"} = "{url}"',
        'author_salt_env = "YUQING_FORUM_SALT"', 'region = "城关镇"',
        *(f"{key} = {json.dumps(value)}" for key, value in settings.items()),
    ]
    registry = parse_registry("\n".join(lines), {"YUQING_FORUM_SALT": SALT})
    return registry.get(f"forum-{kind}")


# ---- the contract suite ------------------------------------------------------------------


@dataclass
class Harness:
    """A forum in two stages: ``stages[i]`` are the external ids new at stage i, in order."""

    make_source: Callable[[httpx.AsyncClient], ForumSource]
    stages: list[list[str]]
    advance: Callable[[], None]


def fake_post(external_id: str, minute: int) -> RawPost:
    created = datetime(2026, 11, 28, 9, minute, tzinfo=UTC)
    return RawPost(post_id=make_post_id("forum-fake", external_id), source="forum-fake",
                   channel=Channel.FORUM, external_id=external_id, text=f"帖子 {external_id}",
                   created_at=created, received_at=created)


def fake_harness() -> Harness:
    stages = [["f1", "f2", "f3", "f4"], ["f5", "f6"]]
    fake = FakeForumSource("forum-fake")
    fake.add(*(fake_post(i, n) for n, i in enumerate(stages[0])))
    return Harness(lambda _: fake, stages,
                   lambda: fake.add(*(fake_post(i, 10 + n) for n, i in enumerate(stages[1]))))


def http_harness(kind: str, fresh_server: tuple[str, ServerState]) -> Harness:
    url, state = fresh_server
    path, stages = {
        "discourse": ("", [["101", "102", "103", "104"], ["105", "107"]]),  # 106 is a small action
        "rss": ("/feed.rss", [["notice-2026-1126-01", "notice-2026-1127-02", "notice-2026-1127-03"],
                              ["notice-2026-1128-01", "notice-2026-1128-02"]]),
        "atom": ("/feed.atom", [[f"tag:home.intranet.example.com,2026:post-900{n}" for n in (1, 2, 3)],
                                [f"tag:home.intranet.example.com,2026:post-900{n}" for n in (4, 5)]]),
    }[kind]
    state.hidden_newest = 3 if kind == "discourse" else 2

    def advance() -> None:
        state.hidden_newest = 0

    source = registered(kind, url + path)
    return Harness(lambda client: build_forum_source(source, client, sleep=no_sleep), stages, advance)


@pytest.fixture(params=["fake", "discourse", "rss", "atom"])
def harness(request: pytest.FixtureRequest, fresh_server: tuple[str, ServerState]) -> Harness:
    if request.param == "fake":
        return fake_harness()
    return http_harness(request.param, fresh_server)


class Sink:
    """A publish callback that records batches and can be told to fail."""

    def __init__(self, fail_on_calls: Sequence[int] = ()) -> None:
        self.batches: list[list[RawPost]] = []
        self.calls = 0
        self._fail_on = set(fail_on_calls)

    async def __call__(self, posts: Sequence[RawPost]) -> None:
        self.calls += 1
        if self.calls in self._fail_on:
            raise ConnectionError("broker unavailable")
        self.batches.append(list(posts))

    @property
    def ids(self) -> list[str]:
        return [post.external_id for batch in self.batches for post in batch]


def run(scenario: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await scenario(client)

    return asyncio.run(main())


def test_first_poll_publishes_everything_in_order(harness: Harness) -> None:
    sink = Sink()

    async def scenario(client: httpx.AsyncClient) -> int:
        source = harness.make_source(client)
        return await ForumPoller(source, MemoryCursorStore(), sink).poll_once()

    assert run(scenario) == len(harness.stages[0])
    assert sink.ids == harness.stages[0]
    posts = sink.batches[0]
    assert all(p.channel is Channel.FORUM and p.created_at.tzinfo is not None for p in posts)
    assert [p.created_at for p in posts] == sorted(p.created_at for p in posts)


def test_poll_without_new_posts_publishes_nothing(harness: Harness) -> None:
    sink = Sink()

    async def scenario(client: httpx.AsyncClient) -> int:
        poller = ForumPoller(harness.make_source(client), MemoryCursorStore(), sink)
        await poller.poll_once()
        return await poller.poll_once()

    assert run(scenario) == 0
    assert sink.calls == 1


def test_only_new_posts_are_published_after_they_arrive(harness: Harness) -> None:
    sink = Sink()

    async def scenario(client: httpx.AsyncClient) -> None:
        poller = ForumPoller(harness.make_source(client), MemoryCursorStore(), sink)
        await poller.poll_once()
        harness.advance()
        await poller.poll_once()

    run(scenario)
    assert [[p.external_id for p in batch] for batch in sink.batches] == harness.stages


def test_failed_publish_keeps_the_cursor(harness: Harness) -> None:
    sink, store = Sink(fail_on_calls=[1]), MemoryCursorStore()

    async def scenario(client: httpx.AsyncClient) -> str:
        source = harness.make_source(client)
        poller = ForumPoller(source, store, sink)
        with pytest.raises(ConnectionError):
            await poller.poll_once()
        cursor_after_failure = store.load(source.source_id)
        await poller.poll_once()
        return cursor_after_failure.model_dump_json()

    assert run(scenario) == ForumCursor().model_dump_json()
    assert sink.ids == harness.stages[0]


def test_cursor_advances_batch_by_batch(harness: Harness) -> None:
    sink = Sink(fail_on_calls=[2])

    async def scenario(client: httpx.AsyncClient) -> None:
        poller = ForumPoller(harness.make_source(client), MemoryCursorStore(), sink, batch_size=2)
        with pytest.raises(ConnectionError):
            await poller.poll_once()
        await poller.poll_once()

    run(scenario)
    assert sink.ids == harness.stages[0]  # the first batch is not repeated, the rest not skipped


def test_restart_neither_skips_nor_repeats(harness: Harness, tmp_path: Path) -> None:
    sink = Sink()

    async def scenario(client: httpx.AsyncClient) -> None:
        await ForumPoller(harness.make_source(client), JsonCursorStore(tmp_path), sink).poll_once()
        harness.advance()
        # a new process: new source object, new store object, same directory
        await ForumPoller(harness.make_source(client), JsonCursorStore(tmp_path), sink).poll_once()

    run(scenario)
    assert [[p.external_id for p in batch] for batch in sink.batches] == harness.stages
    assert [p.name for p in tmp_path.iterdir()] == [f"{sink.batches[0][0].source}.json"]


# ---- Discourse specifics -----------------------------------------------------------------


def poll_all(source: RegisteredSource, cursor: ForumCursor | None = None) -> list[RawPost]:
    store, sink = MemoryCursorStore(), Sink()
    if cursor is not None:
        store.save(source.id, cursor)

    async def scenario(client: httpx.AsyncClient) -> None:
        await ForumPoller(build_forum_source(source, client, sleep=no_sleep), store, sink).poll_once()

    run(scenario)
    return [post for batch in sink.batches for post in batch]


def test_discourse_post_fields(fresh_server: tuple[str, ServerState]) -> None:
    url, _ = fresh_server
    posts = {p.external_id: p for p in poll_all(registered("discourse", url))}

    reply = posts["105"]
    assert reply.title == "这个月又是连续三个夜班"
    assert reply.text == "我们所也一样，三个人顶五个人的班。希望工会能反映一下 & 尽快补人。"
    assert (reply.thread_id, reply.reply_to) == ("5521", "5521#2")
    assert reply.url == f"{url}/t/topic/5521/3"
    assert reply.author == pseudonymize(SALT, "li.na", prefix="forum")
    assert reply.region == "城关镇"
    assert reply.created_at == datetime(2026, 11, 28, 8, 55, 47, 20_000, tzinfo=UTC)
    assert "alert" not in posts["104"].text and posts["104"].text.endswith("有没有同样情况的？")
    assert posts["103"].text == ("新上线的移动作业终端 登录老是闪退，<抄表>模块根本打不开。\n"
                                 "型号：T8\n版本：2.3.1")
    assert "106" not in posts


def test_discourse_walks_back_pages_with_before(fresh_server: tuple[str, ServerState]) -> None:
    url, state = fresh_server

    posts = poll_all(registered("discourse", url), ForumCursor(last_id=101))

    assert [p.external_id for p in posts] == ["102", "103", "104", "105", "107"]
    assert state.requests == ["/posts.json", "/posts.json?before=105", "/posts.json?before=102"]


def test_more_new_posts_than_a_poll_reads_are_walked_back_over_several_polls_and_none_skipped(
        fresh_server: tuple[str, ServerState]) -> None:
    url, state = fresh_server
    state.page_size = 1  # one post a page: 102 to 107 are six pages, a poll reads two
    store, sink = MemoryCursorStore(), Sink()
    source = registered("discourse", url, max_pages=2)
    store.save(source.id, ForumCursor(last_id=101))
    published_after: list[list[str]] = []

    async def scenario(client: httpx.AsyncClient) -> None:
        poller = ForumPoller(build_forum_source(source, client, sleep=no_sleep), store, sink)
        for _ in range(4):
            await poller.poll_once()
            published_after.append(list(sink.ids))

    run(scenario)
    # nothing while walking back (the cursor stays), then every new post, oldest first
    assert published_after == [[], [], [], ["102", "103", "104", "105", "107"]]
    assert state.requests == ["/posts.json", "/posts.json?before=107", "/posts.json?before=106",
                              "/posts.json?before=105", "/posts.json?before=104",
                              "/posts.json?before=103", "/posts.json?before=102"]
    assert store.load(source.id).last_id == 107


def test_discourse_first_poll_backfills_only_the_configured_pages(
        fresh_server: tuple[str, ServerState]) -> None:
    url, state = fresh_server

    posts = poll_all(registered("discourse", url, backfill_pages=1))

    assert [p.external_id for p in posts] == ["105", "107"]
    assert len(state.requests) == 1


def test_discourse_backfill_zero_starts_from_now(fresh_server: tuple[str, ServerState]) -> None:
    url, _ = fresh_server
    store, sink = MemoryCursorStore(), Sink()
    source = registered("discourse", url, backfill_pages=0)

    async def scenario(client: httpx.AsyncClient) -> None:
        await ForumPoller(build_forum_source(source, client, sleep=no_sleep), store, sink).poll_once()

    run(scenario)
    assert sink.calls == 0
    assert store.load(source.id).last_id == 107


def test_discourse_sends_the_api_key_when_configured(fresh_server: tuple[str, ServerState]) -> None:
    url, _ = fresh_server
    text = (f'[[sources]]\nid = "forum-x"\nchannel = "forum"\nowner = "o"\nkind = "discourse"\n'
            f'base_url = "{url}"\nauthor_salt_env = "SALT_ENV"\napi_key_env = "KEY_ENV"\n'
            f'api_username = "yuqing-reader"')
    source = parse_registry(text, {"SALT_ENV": SALT, "KEY_ENV": "discourse-key-123"}).get("forum-x")
    seen: list[httpx.Headers] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"latest_posts": []})

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await build_forum_source(source, client).fetch_new(ForumCursor())

    asyncio.run(scenario())
    assert (seen[0]["Api-Key"], seen[0]["Api-Username"]) == ("discourse-key-123", "yuqing-reader")


# ---- feeds -------------------------------------------------------------------------------


def test_rss_item_fields(fresh_server: tuple[str, ServerState]) -> None:
    url, _ = fresh_server
    posts = {p.external_id: p for p in poll_all(registered("rss", url + "/feed.rss"))}

    notice = posts["notice-2026-1127-03"]
    assert notice.title == "柳塘供电所计划停电公告"
    assert notice.text == "因线路检修，11月30日 08:00–18:00 柳塘镇新街口一带计划停电。\n请相互转告。"
    assert notice.url == "https://portal.intranet.example.com/notices/2026/1127-03.html"
    assert notice.author == pseudonymize(SALT, "运检部", prefix="forum")
    assert notice.created_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert posts["notice-2026-1126-01"].author is None


def test_feed_warns_when_every_item_is_new(fresh_server: tuple[str, ServerState],
                                           caplog: pytest.LogCaptureFixture) -> None:
    url, _ = fresh_server
    old = ForumCursor(last_published=datetime(2026, 1, 1, tzinfo=UTC), last_guid="notice-0")

    posts = poll_all(registered("rss", url + "/feed.rss"), old)

    assert len(posts) == 5
    assert "items may have been missed" in caplog.text


def test_atom_entry_fields() -> None:
    feed = parse_feed((FIXTURES / "forum_feed.atom.xml").read_bytes())
    entries = {entry.guid.rsplit("-", 1)[-1]: entry for entry in feed}

    assert html_to_text(entries["9003"].html) == "填报页面太卡了，一个表要填半小时。"
    assert entries["9003"].published == datetime(2026, 11, 27, 19, 45, tzinfo=UTC)
    assert html_to_text(entries["9001"].html) == "给夜班的同事点赞 & 感谢后勤！"
    assert entries["9004"].html == "建议早班车提前十分钟。"
    assert (entries["9005"].link, entries["9005"].author) == ("https://home.intranet.example.com/p/9005",
                                                              "liu.yang")


def test_feed_with_entity_bomb_is_refused(fresh_server: tuple[str, ServerState]) -> None:
    url, _ = fresh_server

    with pytest.raises(FetchError, match="EntitiesForbidden"):
        poll_all(registered("rss", url + "/bomb.rss"))


@pytest.mark.parametrize("document", [b"<html><body>not a feed</body></html>", b"<rss><channel>"])
def test_non_feed_documents_are_refused(document: bytes) -> None:
    with pytest.raises(FetchError):
        parse_feed(document)


def test_feed_items_without_a_date_are_left_out() -> None:
    document = b"<rss><channel><item><guid>a</guid><title>x</title></item></channel></rss>"

    assert parse_feed(document) == []


# ---- HTML and the poll loop -------------------------------------------------------------


@pytest.mark.parametrize(("markup", "text"), [
    ("<p>停电&nbsp;了</p><p>第二段</p>", "停电 了\n第二段"),
    ("<div>a<script>var x = '<p>';</script>b</div>", "ab"),
    ("<style>p {}</style>正文 &lt;b&gt; &#x4E2D;", "正文 <b> 中"),
    ("<aside class='quote'><aside class='quote'>内层</aside>外层</aside>回复", "回复"),
    ("第一行<br>第二行<br/>  \n\t  第三行", "第一行\n第二行\n第三行"),
    ("", ""),
])
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def _run_until_published(source: FakeForumSource, sink: Sink) -> None:
    """Run the poller's loop (fast intervals) until the sink took a batch, then stop it."""
    async def scenario() -> None:
        stop = asyncio.Event()
        poller = ForumPoller(source, MemoryCursorStore(), sink)
        task = asyncio.create_task(poller.run(stop, interval_s=0.01, max_backoff_s=0.02))
        for _ in range(500):
            if sink.batches:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=2)

    asyncio.run(scenario())


def test_run_loop_survives_failures_and_stops_on_request() -> None:
    fake = FakeForumSource("forum-fake")
    fake.add(fake_post("f1", 0))
    sink = Sink(fail_on_calls=[1])

    _run_until_published(fake, sink)
    assert sink.ids == ["f1"]
    assert sink.calls >= 2


def test_the_run_loop_counts_its_polls_for_the_operators() -> None:
    # `yuqing ingest poll` served no /metrics, and a poll that failed was a log line only
    from services.ingest import metrics

    def sample(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, {"source": "forum-counted", **labels}) or 0.0

    fake = FakeForumSource("forum-counted")
    fake.add(fake_post("f1", 0))
    sink = Sink(fail_on_calls=[1])

    before = time.time()
    _run_until_published(fake, sink)
    assert sample("yuqing_ingest_forum_polls_total", outcome="failed") == 1
    assert sample("yuqing_ingest_forum_polls_total", outcome="ok") >= 1
    assert sample("yuqing_ingest_forum_last_poll_ok_timestamp_seconds") >= before


def test_a_feed_item_dated_ahead_neither_is_refused_nor_silences_the_feed(
        caplog: pytest.LogCaptureFixture) -> None:
    # A notice dated next year (or a feed writing local time as UTC) is refused by the edge; the
    # cursor used to move to its date, and every later item, dated before it, was skipped as old.
    now = datetime.now(UTC)
    items = [("n-1", now - timedelta(hours=1)), ("notice", now + timedelta(days=365))]

    def handler(request: httpx.Request) -> httpx.Response:
        body = "".join(f"<item><guid>{guid}</guid><title>停电</title><description>城关镇停电了</description>"
                       f"<pubDate>{format_datetime(at, usegmt=True)}</pubDate></item>" for guid, at in items)
        return httpx.Response(200, content=f"<rss><channel>{body}</channel></rss>".encode())

    published: list[str] = []
    refused: list[str] = []

    async def publish(posts: Sequence[RawPost]) -> None:  # as the ingest service's pollers do
        kept, at_fault = Admission().partition(posts)
        published.extend(post.external_id for post in kept)
        refused.extend(post.external_id for post, _ in at_fault)

    async def poll() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            source = build_forum_source(registered("rss", "http://feeds.invalid/feed.rss"), client)
            await ForumPoller(source, store, publish).poll_once()

    store = MemoryCursorStore()
    asyncio.run(poll())
    items.append(("n-2", now - timedelta(minutes=1)))
    asyncio.run(poll())

    assert (published, refused) == (["n-1", "n-2"], [])
    assert "dated after now are left until their time" in caplog.text


def test_a_discourse_post_dated_ahead_is_published_dated_when_read(
        caplog: pytest.LogCaptureFixture) -> None:
    # A forum whose clock runs fast dates its posts ahead of ours: they were refused by the edge
    # and skipped, the cursor moved past them, and the forum's every post was lost.
    now = datetime.now(UTC)
    ahead = now + timedelta(hours=1)
    posts = [{**DISCOURSE[-1], "id": 201, "created_at": (now - timedelta(minutes=1)).isoformat()},
             {**DISCOURSE[-1], "id": 202, "created_at": ahead.isoformat().replace("+00:00", "Z")},
             {**DISCOURSE[-1], "id": 203, "created_at": (now + timedelta(seconds=30)).isoformat()}]

    def handler(request: httpx.Request) -> httpx.Response:
        page = [p for p in reversed(posts) if "before" not in request.url.params
                or p["id"] < int(request.url.params["before"])]
        return httpx.Response(200, json={"latest_posts": page})

    published: list[RawPost] = []
    refused: list[str] = []

    async def publish(batch: Sequence[RawPost]) -> None:  # as the ingest service's pollers do,
        kept, at_fault = Admission(max_lead=timedelta(0)).partition(batch)  # set to allow no lead
        published.extend(kept)
        refused.extend(post.external_id for post, _ in at_fault)

    async def poll() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            source = build_forum_source(registered("discourse", "http://forum.invalid"), client)
            await ForumPoller(source, MemoryCursorStore(), publish).poll_once()

    asyncio.run(poll())

    assert ([p.external_id for p in published], refused) == (["201", "202", "203"], [])
    late = published[1]
    assert late.created_at == late.received_at and late.attributes["forum_created_at"] == ahead.isoformat()
    assert published[2].created_at == published[2].received_at
    assert published[0].created_at == datetime.fromisoformat(posts[0]["created_at"])
    assert "forum_created_at" not in published[0].attributes
    assert "ahead of now" in caplog.text


@pytest.mark.parametrize("encoding", ["gb2312", "gbk", "gb18030", "big5"])
def test_a_feed_in_a_chinese_encoding_is_read(encoding: str) -> None:
    # The XML parser reads no multi-byte encoding but UTF-8 and UTF-16: every poll of a feed in
    # GBK failed ("multi-byte encodings are not supported") and none of its items was published.
    published = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    feed = (f'<?xml version="1.0" encoding="{encoding}"?><rss><channel><item><guid>n-1</guid>'
            f"<title>城关镇计划停电通知</title><description>&lt;p&gt;明日检修线路&lt;/p&gt;</description>"
            f"<pubDate>{published}</pubDate></item></channel></rss>")
    if encoding == "big5":
        feed = feed.replace("城关镇计划停电通知", "城關鎮計劃停電通知").replace("检修线路", "檢修線路")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=feed.encode(encoding),
                              headers={"Content-Type": f"application/rss+xml; charset={encoding}"})

    sink = Sink()

    async def poll() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            source = build_forum_source(registered("rss", "http://feeds.invalid/feed.rss"), client)
            await ForumPoller(source, MemoryCursorStore(), sink).poll_once()

    asyncio.run(poll())

    [post] = [post for batch in sink.batches for post in batch]
    expected = (("城關鎮計劃停電通知", "明日檢修線路") if encoding == "big5"
                else ("城关镇计划停电通知", "明日检修线路"))
    assert (post.title, post.text) == expected


def test_a_feed_not_in_the_encoding_it_declares_is_refused() -> None:
    with pytest.raises(FetchError, match="not in gbk"):
        parse_feed(b'<?xml version="1.0" encoding="gbk"?><rss><channel>\xff\xff</channel></rss>')


def test_a_feed_that_declares_no_encoding_is_read_in_the_charset_of_its_answer() -> None:
    feed = ("<rss><channel><item><guid>n-1</guid><title>城关镇计划停电通知</title>"
            "<pubDate>Mon, 07 Dec 2026 08:00:00 +0800</pubDate></item></channel></rss>")
    assert parse_feed(feed.encode("gbk"), "gbk")[0].title == "城关镇计划停电通知"
    # UTF-8 bytes stay UTF-8 whatever charset a misconfigured server names
    assert parse_feed(feed.encode(), "gbk")[0].title == "城关镇计划停电通知"


def test_feed_items_dated_in_iso_8601_or_dublin_core_are_read(caplog: pytest.LogCaptureFixture) -> None:
    # RSS says RFC 822, but many feeds write ISO 8601 or only dc:date: each of their items was
    # taken for one without a date and left out, without a word, and the feed published nothing.
    an_hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    local = an_hour_ago.astimezone(timezone(timedelta(hours=8)))
    items = [("iso", f"<pubDate>{local.isoformat()}</pubDate>"),
             ("plain", f"<pubDate>{local:%Y-%m-%d %H:%M:%S}</pubDate>"),  # local time, UTC+8
             ("dc", f"<dc:date>{local.isoformat()}</dc:date>"),
             ("none", "<pubDate>昨天</pubDate>")]
    document = ('<rss xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>' + "".join(
        f"<item><guid>{guid}</guid><title>停电</title>{date}</item>" for guid, date in items)
        + "</channel></rss>").encode()

    entries = parse_feed(document)

    assert {entry.guid: entry.published for entry in entries} == {
        "iso": an_hour_ago, "plain": an_hour_ago, "dc": an_hour_ago}
    assert "1 feed item(s) without a date or guid" in caplog.text


def test_a_feed_date_in_cst_or_without_a_zone_is_china_standard_time() -> None:
    # Java's date formats name UTC+8 "CST", which RFC 822 reads as US Central (-06:00): such items
    # sat 14 hours ahead and were held back that long, then published at the wrong time
    items = [("cst", "Mon, 07 Dec 2026 16:00:00 CST"), ("bare", "Mon, 07 Dec 2026 16:00:00"),
             ("utc", "Mon, 07 Dec 2026 16:00:00 -0000"), ("offset", "Mon, 07 Dec 2026 16:00:00 +0800")]
    document = ("<rss><channel>" + "".join(
        f"<item><guid>{guid}</guid><title>停电</title><pubDate>{date}</pubDate></item>"
        for guid, date in items) + "</channel></rss>").encode()

    published = {entry.guid: entry.published for entry in parse_feed(document)}

    eight_utc = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert published == {"cst": eight_utc, "bare": eight_utc, "offset": eight_utc,
                          "utc": datetime(2026, 12, 7, 16, 0, tzinfo=UTC)}


class _Feed:
    """An RSS feed a poller reads: ``items()`` renders its items afresh at every poll."""

    def __init__(self, items: Callable[[], str]) -> None:
        self.items = items
        self.store = MemoryCursorStore()
        self.published: list[str] = []

    def poll(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=f"<rss><channel>{self.items()}</channel></rss>".encode())

        async def publish(posts: Sequence[RawPost]) -> None:
            self.published.extend(post.external_id for post in posts)

        async def poll() -> None:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                source = build_forum_source(registered("rss", "http://feeds.invalid/feed.rss"), client)
                await ForumPoller(source, self.store, publish).poll_once()

        asyncio.run(poll())


def _dated(items: list[tuple[str, datetime]], title: str = "") -> str:
    return "".join(f"<item><guid>{guid}</guid>{title}<description>城关镇停电了</description>"
                   f"<pubDate>{format_datetime(at, usegmt=True)}</pubDate></item>" for guid, at in items)


def test_a_feed_item_dated_as_one_already_published_is_published() -> None:
    # Portals date notices by the day (or the minute): an item that appears later with the same
    # date and a guid sorting before the last one published (.../1000.html after .../999.html) was
    # taken for an old one, and skipped for good.
    day = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%d")
    items = ["https://portal.example.com/n/998.html", "https://portal.example.com/n/999.html"]
    feed = _Feed(lambda: "".join(f"<item><guid>{guid}</guid><title>停电</title><description>城关镇停电了"
                                 f"</description><pubDate>{day}</pubDate></item>" for guid in items))

    feed.poll()
    items.append("https://portal.example.com/n/1000.html")
    feed.poll()
    feed.poll()

    assert feed.published == [*items[:2], items[2]]


def test_a_feed_item_that_appears_dated_before_the_last_one_published_is_published() -> None:
    # A portal dates a notice by the document (written yesterday, put online today): dated
    # before the last item published, it was taken for an old one and never published.
    today = datetime.now(UTC) - timedelta(hours=1)
    items = [("https://portal.example.com/n/999.html", today)]
    feed = _Feed(lambda: _dated(items, "<title>停电</title>"))

    feed.poll()
    items.append(("https://portal.example.com/n/1000.html", today - timedelta(days=1)))
    feed.poll()
    feed.poll()

    assert feed.published == [guid for guid, _ in items]


def test_a_feed_cursor_written_before_it_held_guids_does_not_publish_old_items_again() -> None:
    now = datetime.now(UTC)
    items = [(f"n-{k}", now - timedelta(hours=5 - k)) for k in range(3)]
    feed = _Feed(lambda: _dated(items))

    feed.store.save("forum-rss", ForumCursor(last_published=items[1][1], last_guid="n-1"))
    feed.poll()
    items.append(("n-3", now - timedelta(hours=1)))
    feed.poll()

    assert feed.published == ["n-2", "n-3"]


def test_a_feed_whose_guids_change_between_polls_is_read_by_date(caplog: pytest.LogCaptureFixture) -> None:
    # a portal writing a session id into every link (the guid): read by guid, every item would be
    # new at every poll, published again under a new id
    now = datetime.now(UTC)
    items = [("n-1", now - timedelta(hours=3)), ("n-2", now - timedelta(hours=2))]
    session = iter(range(100))

    def with_session() -> str:
        sid = next(session)
        return _dated([(f"https://portal.example.com/{guid};jsessionid={sid}", at) for guid, at in items])

    feed = _Feed(with_session)
    feed.poll()
    feed.poll()
    items.append(("n-3", now - timedelta(hours=1)))
    feed.poll()
    feed.poll()

    prefix = "https://portal.example.com/"
    assert [guid.split(";")[0] for guid in feed.published] == [prefix + "n-1", prefix + "n-2", prefix + "n-3"]
    assert "do its guids change?" in caplog.text


def test_a_discourse_post_that_appears_after_a_newer_one_was_published_is_published() -> None:
    # Discourse numbers a post when its transaction inserts it: of two posts saved at once, the
    # later-numbered one can commit, and be listed, first. The cursor moved past the other.
    now = datetime.now(UTC)
    posts = [{**DISCOURSE[-1], "id": k, "created_at": (now - timedelta(minutes=5)).isoformat()}
             for k in (100, 102)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"latest_posts": sorted(posts, key=lambda p: -p["id"])})

    published: list[str] = []

    async def publish(batch: Sequence[RawPost]) -> None:
        published.extend(post.external_id for post in batch)

    async def poll() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            source = build_forum_source(registered("discourse", "http://forum.invalid"), client)
            await ForumPoller(source, store, publish).poll_once()

    store = MemoryCursorStore()
    asyncio.run(poll())
    posts += [{**posts[0], "id": 101}, {**posts[0], "id": 103}]
    asyncio.run(poll())
    asyncio.run(poll())

    assert published == ["100", "102", "101", "103"]
