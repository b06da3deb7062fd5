"""The indexer's stop against the real Kafka and Elasticsearch, with Elasticsearch gone away."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from elasticsearch import Elasticsearch

from services.search import indexer as indexer_module
from services.search.correction_locks import correcting
from services.search.es import make_client
from services.search.grouping import IssueMerge
from services.search.indexer import Indexer
from services.search.issue_corrections import CORRECTION_MAPPING, corrections_index
from services.search.mappings import posts_alias
from services.search.settings import SearchSettings
from tests.search.factory import BASE_TIME, make_post
from yuqing.consumer import Record
from yuqing.contracts import EnrichedPost, Topic
from yuqing.contracts.codec import encode
from yuqing.settings import ElasticsearchSettings, KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration


class Relay:
    """A TCP relay in front of Elasticsearch that can be taken away: connections refused after."""

    def __init__(self, target: str) -> None:
        host, port = target.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.holding = False  # connections taken and never answered (a host that hangs)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.holding:
                self.sockets.append(client)
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def hang(self) -> None:
        """Answer nothing from now on: the open connections end, new ones are held unanswered."""
        self.holding = True
        self._shut(self.sockets)

    def close(self) -> None:
        self._shut([self.listener, *self.sockets])

    @staticmethod
    def _shut(ends: list[socket.socket]) -> None:
        for end in ends:  # shut down: a close alone does not end accept()
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


@pytest.fixture
def relay(es_settings: ElasticsearchSettings) -> Iterator[Relay]:
    relay = Relay(es_settings.url)
    yield relay
    relay.close()


def _post(tag: str, text: str, minutes: float, region: str | None = "河口镇") -> EnrichedPost:
    return make_post(text, external_id=tag, region=region, unit=f"{region[:2]}供电所" if region else None,
                     topic=Topic.OUTAGE, created_at=BASE_TIME + timedelta(minutes=minutes))


def _records(settings: SearchSettings, posts: list[EnrichedPost]) -> list[Record]:
    topic = settings.kafka.topic(LogicalTopic.POSTS_ENRICHED)
    return [Record(topic, 0, n, p.post_id.encode(), encode(p)) for n, p in enumerate(posts)]


def _make_corrections_unanswering(es: Elasticsearch, prefix: str) -> None:
    """The corrections index with no shard started: its reads answer 503 (the recording fails)."""
    es.indices.delete(index=corrections_index(prefix), ignore=404)
    es.indices.create(index=corrections_index(prefix), wait_for_active_shards=0, body={
        "settings": {"index.routing.allocation.require._name": "no-such-node"},
        "mappings": CORRECTION_MAPPING})


def _settings(kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, url: str) -> SearchSettings:
    return SearchSettings(kafka=kafka_settings, es=es_settings.model_copy(update={"url": url}),
                          bulk_max_wait_s=0.2, bulk_max_docs=50,
                          indexer_group_id=f"{es_settings.index_prefix}-ix", bulk_max_retries=1)


def _merge_left_unrecorded(indexer: Indexer, es: Elasticsearch, prefix: str) -> IssueMerge:
    """Index an outage's posts whose last one merges two issues, with the merge's recording
    failed beside the batch (Elasticsearch took the posts, not the corrections): it is pending."""
    settings = indexer.settings
    # a post of no known township founds the outage's first issue, the village's posts a second
    first = [_post("s-0", "灯一下子全灭了，小孩吓得直哭", 0, region=None),
             _post("s-1", "河口镇新街村停电了，什么时候来电？", 2),
             _post("s-2", "新街村这边突然黑了，整个村都没电", 4),
             _post("s-3", "我家也是，新街村三组，一点电都没有", 6)]
    assert indexer.index(_records(settings, first)).invalid == []
    _make_corrections_unanswering(es, prefix)
    time.sleep(indexer.issues.refresh_s)
    assert indexer.index(_records(settings, [_post("s-4", "灯全灭了，小孩吓得哭个不停", 9)])).invalid == []
    (pending,) = indexer.issues.pending_merges
    return pending


def _relayed_with_a_merge_left(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, relay: Relay,
        caplog: pytest.LogCaptureFixture) -> tuple[Elasticsearch, str, Indexer, IssueMerge]:
    """An indexer writing through ``relay``, its warnings captured, with a merge left unrecorded."""
    es, prefix = make_client(es_settings), es_settings.index_prefix
    indexer = Indexer(_settings(kafka_settings, es_settings, f"http://127.0.0.1:{relay.port}"))
    caplog.set_level(logging.WARNING)
    return es, prefix, indexer, _merge_left_unrecorded(indexer, es, prefix)


def _stop_said(caplog: pytest.LogCaptureFixture) -> str:
    (said,) = [r.getMessage() for r in caplog.records
               if r.name == "services.search.indexer" and "not recorded" in r.getMessage()]
    return said


def test_a_stop_with_elasticsearch_away_says_which_merges_were_not_recorded_and_ends_well(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, relay: Relay,
        caplog: pytest.LogCaptureFixture) -> None:
    # the final recording of the automatic merges raised ConnectionError out of Indexer.run: the
    # requested stop ended "error: Elasticsearch: ..." with exit 1, and the merges were lost unsaid
    es, prefix, indexer, pending = _relayed_with_a_merge_left(kafka_settings, es_settings, relay, caplog)
    relay.close()  # Elasticsearch away
    indexer.stop()
    started = time.monotonic()
    indexer.run()  # returns: a requested stop
    assert time.monotonic() - started < 30
    said = _stop_said(caplog)
    assert said.startswith("1 automatic issue merge was not recorded at stop "
                           "(Elasticsearch: ConnectionError: ")
    assert f"{pending.source_id} into {pending.target_id}" in said and "next start" in said
    # what the line says of the index and of the next start holds
    es.indices.delete(index=corrections_index(prefix), ignore=404)
    es.indices.refresh(index=posts_alias(prefix))
    stored = {h["_source"]["external_id"]: h["_source"]["issue_id"]
              for h in es.search(index=posts_alias(prefix), body={"size": 10})["hits"]["hits"]}
    assert stored["s-1"] == pending.source_id and stored["s-0"] == pending.target_id
    restarted = Indexer(_settings(kafka_settings, es_settings, es_settings.url))
    try:
        assert restarted.issues.grouper.resolve(pending.source_id) == pending.source_id
        assert restarted.issues.pending_merges == []
    finally:
        restarted.stop()
        restarted.run()


def test_a_stop_with_elasticsearch_hanging_waits_a_bounded_time(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, relay: Relay,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    es, prefix, indexer, pending = _relayed_with_a_merge_left(kafka_settings, es_settings, relay, caplog)
    es.indices.delete(index=corrections_index(prefix), ignore=404)
    relay.hang()  # each request waits for its 30 s timeout
    monkeypatch.setattr(indexer_module, "STOP_RECORD_S", 1.0)
    indexer.stop()
    started = time.monotonic()
    indexer.run()
    assert time.monotonic() - started < 10
    said = _stop_said(caplog)
    assert "(Elasticsearch: no answer within 1 s)" in said
    assert f"{pending.source_id} into {pending.target_id}" in said


def test_a_merge_a_responder_holds_at_stop_is_said_not_recorded(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, relay: Relay,
        caplog: pytest.LogCaptureFixture) -> None:
    # a merge deferred because a responder is correcting one of its issues was dropped at stop unsaid
    es, prefix, indexer, pending = _relayed_with_a_merge_left(kafka_settings, es_settings, relay, caplog)
    es.indices.delete(index=corrections_index(prefix), ignore=404)  # Elasticsearch answers again
    with correcting(es, prefix, [pending.source_id], holder="desk"):
        indexer.stop()
        indexer.run()
    said = _stop_said(caplog)
    assert said.startswith("1 automatic issue merge was not recorded at stop (a responder was correcting")
    assert f"{pending.source_id} into {pending.target_id}" in said
