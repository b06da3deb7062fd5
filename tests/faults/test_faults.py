"""Faults the pipeline must survive without losing or duplicating an accepted post.

Each test prints one summary line: posts sent, accepted (202), indexed, duplicates, lost.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import percentile
from tests.conftest import REPO_ROOT
from tests.faults.conftest import Pipeline, env_int, outage
from tests.integration.conftest import wait_until
from yuqing.settings import EXIT_DEAD_LETTER_CAP

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(3600)]

BATCH = 100


# -- utilities ----------------------------------------------------------------

def _posts(n: int, tag: str, start: int = 0) -> list[dict]:
    now = datetime.now(UTC)
    return [{"external_id": f"{tag}-{i}", "created_at": (now - timedelta(seconds=1)).isoformat(),
             "text": f"青山乡第{i}组今晚又停电了，冰箱里的肉都要坏了，什么时候来电？", "region": "青山乡"}
            for i in range(start, start + n)]


def _post(pipe: Pipeline, posts: list[dict], timeout: float = 30) -> httpx.Response:
    return httpx.post(pipe.url("ingest") + "/v1/posts", json={"posts": posts},
                      headers={"X-Api-Key": pipe.env["YUQING_DEMO_API_KEY"]}, timeout=timeout)


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


class Index:
    def __init__(self, pipe: Pipeline) -> None:
        self.es = Elasticsearch(pipe.env["YUQING_ES_URL"])
        self.alias = f"{pipe.env['YUQING_ES_INDEX_PREFIX']}-posts"

    def count(self) -> int:
        try:
            self.es.indices.refresh(index=self.alias, ignore_unavailable=True)
            return int(self.es.count(index=self.alias, ignore_unavailable=True)["count"])
        except Exception:
            return -1

    def ids(self) -> list[str]:
        """Every document id, duplicates across backing indices included."""
        ids: list[str] = []
        resp = self.es.search(index=self.alias, scroll="1m", size=5000, body={"_source": False})
        while resp["hits"]["hits"]:
            ids += [h["_id"] for h in resp["hits"]["hits"]]
            resp = self.es.scroll(scroll_id=resp["_scroll_id"], scroll="1m")
        return ids


def _topic(pipe: Pipeline, logical: str) -> str:
    return pipe.env["YUQING_KAFKA_TOPIC_PREFIX"] + logical


def _read_topic(pipe: Pipeline, topic: str) -> list:
    """Every message of ``topic`` from the beginning up to its end offsets now."""
    consumer = KafkaConsumer(bootstrap_servers=pipe.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"],
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not parts:
            return []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            batch = consumer.poll(timeout_ms=2000)
            if not batch:
                break
            for records in batch.values():
                out += records
        return out
    finally:
        consumer.close()


def _summary(name: str, *, sent: int, accepted: set[str], index: Index, extra: str = "") -> tuple[int, int]:
    ids = index.ids()
    dup = len(ids) - len(set(ids))
    lost = len(accepted - set(ids))
    print(f"\n[faults] {name}: sent={sent} accepted={len(accepted)} indexed={len(ids)} "
          f"duplicates={dup} lost={lost} {extra}".rstrip())
    return dup, lost


def _stream(pipe: Pipeline, total: int, rate: float, tag: str, results: dict) -> None:
    """POST ``total`` posts in batches of 100 at about ``rate`` posts/s; record the outcomes."""
    interval = BATCH / rate
    for start in range(0, total, BATCH):
        t0 = time.monotonic()
        batch = _posts(min(BATCH, total - start), tag, start)
        try:
            resp = _post(pipe, batch)
            results["codes"].append(resp.status_code)
            if resp.status_code == 202:
                results["accepted"].update(resp.json()["post_ids"])
            else:
                results["rejected"].append((batch, resp.status_code, resp.headers.get("Retry-After")))
        except httpx.HTTPError:
            results["codes"].append(0)
            results["rejected"].append((batch, 0, None))
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


def _restart_exited(pipe: Pipeline, names: tuple[str, ...], exits: list[str]) -> None:
    """Restart a worker that exited, as its supervisor would, and record it."""
    for name in names:
        proc = pipe.procs[name]
        if proc.poll() is not None:
            exits.append(f"{name}:{proc.returncode}")
            pipe.procs.pop(name)
            pipe.start(name)


def _new_results() -> dict:
    return {"codes": [], "accepted": set(), "rejected": []}


# -- 1. SIGKILL of the workers while posts stream in ---------------------------

def test_sigkill_workers_at_random_moments(pipeline: Pipeline):
    total = env_int("YUQING_FAULTS_POSTS", 2000)
    rate = env_int("YUQING_FAULTS_RATE", 200)
    kills = env_int("YUQING_FAULTS_KILLS", 4)
    seed = env_int("YUQING_FAULTS_SEED", int(time.time()))
    rng = random.Random(seed)
    # The production grace period: posts held up by a killed NLP worker are not late.
    pipeline.env["YUQING_ALERTS_GRACE_SECONDS"] = "120"
    for name in ("ingest", "nlp", "alerts", "indexer"):
        pipeline.start(name)
    index, results, killed = Index(pipeline), _new_results(), []
    errors: list[BaseException] = []

    def chaos() -> None:
        try:
            workers = ("nlp", "alerts", "indexer")
            order = rng.sample(workers, 3) + [rng.choice(workers) for _ in range(max(0, kills - 3))]
            gap = total / rate / (kills + 1)  # spread over the stream
            for name in order[:kills]:  # each worker at least once when kills >= 3
                time.sleep(rng.uniform(0.5, 1.5) * gap)
                pipeline.kill(name)
                killed.append(name)
                pipeline.start(name)
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    monkey = threading.Thread(target=chaos, daemon=True)
    monkey.start()
    _stream(pipeline, total, rate, f"kill{uuid.uuid4().hex[:6]}", results)
    monkey.join(timeout=600)
    assert not errors, errors
    accepted = results["accepted"]
    assert len(accepted) == total, f"ingest refused requests: {set(results['codes'])}"
    exits: list[str] = []  # a worker that stops itself is restarted, as its supervisor would

    def indexed_all() -> bool:
        _restart_exited(pipeline, ("nlp", "alerts", "indexer"), exits)
        return index.count() >= len(accepted)

    wait_until(indexed_all, 180 + total / 20, f"{len(accepted)} posts indexed")
    caught_up = time.monotonic() - started

    # Alerts: every message of posts.enriched counted, each post id once whatever the
    # kills and redeliveries, and a fresh SIGKILL + restart counts only what is new. The
    # worker's `overall` entry (windows table) holds the last offset it tallied per
    # partition and its running totals; compare them with a recount of the topic.
    enriched = _read_topic(pipeline, _topic(pipeline, "posts.enriched"))
    enriched_ids = [json.loads(r.value)["post_id"] for r in enriched]
    last_offset = {}
    for r in enriched:
        last_offset[str(r.partition)] = max(r.offset, last_offset.get(str(r.partition), -1))
    windows_topic = f"{pipeline.env['YUQING_ALERTS_APP_ID']}-windows-changelog"

    def overall() -> dict:
        entry: dict = {}
        for r in _read_topic(pipeline, windows_topic):
            if json.loads(r.key) == "overall" and r.value is not None:
                entry = json.loads(r.value)
        return entry

    def counted_through() -> dict:
        _restart_exited(pipeline, ("alerts",), exits)
        return overall().get("totals_through", {})

    wait_until(lambda: counted_through() == last_offset, 120, "alerts worker to count posts.enriched")
    totals = overall()["totals"]
    pipeline.kill("alerts")
    pipeline.start("alerts")
    fresh = _post(pipeline, _posts(50, f"after{uuid.uuid4().hex[:6]}"))
    assert fresh.status_code == 202
    accepted |= set(fresh.json()["post_ids"])
    alerts_url = pipeline.url("alerts")
    wait_until(lambda: _metric(alerts_url, "yuqing_alerts_posts_counted_total") >= 50, 120,
               "alerts worker to count the 50 new posts")
    wait_until(lambda: index.count() >= len(accepted), 120, "the 50 new posts indexed")
    time.sleep(3)
    counted_after = _metric(alerts_url, "yuqing_alerts_posts_counted_total")
    alert_dlq = _metric(alerts_url, "yuqing_alerts_dead_letters_total")
    redelivered = len(enriched_ids) - len(set(enriched_ids))

    dup, lost = _summary(
        "sigkill", sent=total + 50, accepted=accepted, index=index,
        extra=(f"kills={killed} seed={seed} caught_up_s={caught_up:.0f} "
               f"enriched_msgs={len(enriched_ids)} enriched_redelivered={redelivered} "
               f"alerts_totals={totals} alerts_recount={len(set(enriched_ids))} "
               f"alerts_counted_after_restart={counted_after:.0f}/50 worker_exits={exits}"))
    assert dup == 0 and lost == 0
    assert index.count() == len(accepted)
    assert totals["late"] == 0, "posts delayed by the kills arrived after their window's grace period"
    assert totals["counted"] == len(set(enriched_ids)), "alert counts differ from a recount of the topic"
    assert totals["duplicate"] == redelivered, "posts the NLP worker wrote twice were not all dropped"
    assert counted_after == 50, "the restarted alerts worker recounted posts it had already counted"
    assert alert_dlq == 0


# -- 2. Kafka down for 30 s during ingest -------------------------------------

def test_kafka_outage_answers_503_and_loses_nothing(pipeline: Pipeline):
    outage_s = env_int("YUQING_FAULTS_OUTAGE_S", 30)
    for name in ("ingest", "nlp", "alerts", "indexer"):
        pipeline.start(name)
    index, results, tag = Index(pipeline), _new_results(), f"kafka{uuid.uuid4().hex[:6]}"
    during: list[tuple[int, str | None]] = []
    sent = 0
    _stream(pipeline, 500, 200, tag, results)
    sent += 500
    with outage("kafka", outage_s) as times:
        t_end = time.monotonic() + outage_s - 5
        start = sent
        while time.monotonic() < t_end:
            batch = _posts(BATCH, tag, start)
            start += BATCH
            try:
                resp = _post(pipeline, batch, timeout=30)
                code, retry = resp.status_code, resp.headers.get("Retry-After")
                if code == 202:
                    results["accepted"].update(resp.json()["post_ids"])
                else:
                    results["rejected"].append((batch, code, retry))
            except httpx.HTTPError:
                code, retry = 0, None
                results["rejected"].append((batch, 0, None))
            during.append((code, retry))
            time.sleep(1)
        sent = start
    # A client retries what was refused after Retry-After; the retry must be accepted once.
    retried = 0
    for batch, _code, _retry in results["rejected"]:
        deadline = time.monotonic() + 120
        while True:
            resp = _post(pipeline, batch)
            if resp.status_code == 202:
                results["accepted"].update(resp.json()["post_ids"])
                retried += len(batch)
                break
            assert time.monotonic() < deadline, f"still {resp.status_code} after Kafka returned"
            time.sleep(float(resp.headers.get("Retry-After", 1)))
    after = _new_results()
    _stream(pipeline, 500, 200, tag + "b", after)
    sent += 500
    accepted = results["accepted"] | after["accepted"]
    exits: list[str] = []

    def caught_up() -> bool:
        _restart_exited(pipeline, ("nlp", "alerts", "indexer"), exits)
        return index.count() >= len(accepted)

    wait_until(caught_up, 300, f"{len(accepted)} posts indexed")
    time.sleep(3)
    _restart_exited(pipeline, ("nlp", "alerts", "indexer"), exits)
    codes = [c for c, _ in during]
    dup, lost = _summary("kafka-outage", sent=sent, accepted=accepted, index=index,
                         extra=f"during_outage={codes} retried_after_outage={retried} "
                               f"outage={ {k: round(v, 1) for k, v in times.items()} } worker_exits={exits}")
    refused = [(c, r) for c, r in during if c != 202]
    assert refused, "ingest never refused a request while Kafka was down"
    assert all(c == 503 and r for c, r in refused), f"refusals without 503 + Retry-After: {refused}"
    assert dup == 0 and lost == 0 and index.count() == len(accepted)
    assert not exits, f"workers exited during the Kafka outage instead of reconnecting: {exits}"


# -- 3. Elasticsearch down for 30 s -------------------------------------------

def test_elasticsearch_outage_indexer_catches_up(pipeline: Pipeline):
    outage_s = env_int("YUQING_FAULTS_OUTAGE_S", 30)
    for name in ("ingest", "nlp", "indexer"):
        pipeline.start(name)
    index, results, tag = Index(pipeline), _new_results(), f"es{uuid.uuid4().hex[:6]}"
    _stream(pipeline, 300, 200, tag + "a", results)
    wait_until(lambda: index.count() >= 1, 120, "first posts indexed")
    with outage("es", outage_s) as times:
        _stream(pipeline, 1000, 50, tag + "b", results)
    back = time.monotonic()
    accepted = results["accepted"]
    exits: list[str] = []

    def caught_up() -> bool:
        _restart_exited(pipeline, ("nlp", "indexer"), exits)
        return index.count() >= len(accepted)

    wait_until(caught_up, 300, f"{len(accepted)} posts indexed")
    catch_up = time.monotonic() - back
    time.sleep(3)
    indexer_dlq = _metric(pipeline.url("indexer"), "yuqing_search_dead_letters_total")
    dup, lost = _summary("es-outage", sent=1300, accepted=accepted, index=index,
                         extra=f"timings={ {k: round(v, 1) for k, v in times.items()} } "
                               f"catch_up_s={catch_up:.1f} indexer_dead_letters={indexer_dlq:.0f} "
                               f"indexer_exits={exits}")
    assert len(accepted) == 1300, f"ingest refused posts during the ES outage: {set(results['codes'])}"
    assert dup == 0 and lost == 0 and index.count() == len(accepted)
    assert indexer_dlq == 0, "posts were dead-lettered because Elasticsearch was down"
    assert not exits, (f"the indexer exited ({exits}) instead of backing off until Elasticsearch "
                       "returned (YUQING_SEARCH_BULK_MAX_RETRIES is spent before a 30 s outage ends)")


# -- 4. Poison messages --------------------------------------------------------

def _dead_letters(pipe: Pipeline) -> list[dict]:
    return [json.loads(r.value) for r in _read_topic(pipe, _topic(pipe, "posts.dlq"))]


def test_poison_messages_are_dead_lettered_and_the_cap_stops_a_worker(pipeline: Pipeline):
    for name in ("ingest", "nlp", "alerts", "indexer"):
        pipeline.start(name)
    index = Index(pipeline)
    producer = KafkaProducer(bootstrap_servers=pipeline.env["YUQING_KAFKA_BOOTSTRAP_SERVERS"])
    raw, enriched = _topic(pipeline, "posts.raw"), _topic(pipeline, "posts.enriched")
    poison = {raw: b"\xff\xfenot json at all \x00", enriched: b'{"schema_version": "v1", "garbage": true}'}
    for topic, value in poison.items():
        producer.send(topic, key=b"poison", value=value)
    producer.flush()
    good = _post(pipeline, _posts(1, f"good{uuid.uuid4().hex[:6]}"))
    assert good.status_code == 202
    wait_until(lambda: index.count() >= 1, 120, "a good post after the poison to be indexed")

    def poisoned() -> dict[tuple[str, str], dict]:
        out = {}
        for dl in _dead_letters(pipeline):
            original = base64.b64decode(dl["original_b64"])
            if original in poison.values():
                out[(dl["topic"], dl["service"])] = dl
        return out

    wait_until(lambda: len(poisoned()) >= 3, 60, "poison from posts.raw (nlp) and posts.enriched "
                                                 "(alerts and indexer) to be dead-lettered")
    letters = poisoned()
    for (topic, service), dl in letters.items():
        assert dl["error_class"] and dl["error_message"], (topic, service, dl)
    assert {t for t, _ in letters} == {raw, enriched}

    # The dead-letter rate cap: a flood of garbage must stop the NLP worker.
    proc = pipeline.procs["nlp"]
    for i in range(300):
        producer.send(raw, key=f"flood-{i}".encode(), value=b"\x00garbage" + bytes([i % 256]))
    producer.flush()
    producer.close()
    flood_started = time.monotonic()

    def stopped() -> bool:
        return proc.poll() is not None

    wait_until(stopped, 120, "the NLP worker to stop past the dead-letter rate cap")
    flood_dl = sum(1 for dl in _dead_letters(pipeline) if dl["topic"] == raw)
    pipeline.procs.pop("nlp")
    log_tail = (pipeline.logs / "nlp.log").read_text(errors="replace")[-4000:]
    dup, lost = _summary(
        "poison", sent=1, accepted=set(good.json()["post_ids"]), index=index,
        extra=(f"dead_letters={sorted(letters)} nlp_exit={proc.returncode} "
               f"stopped_after_s={time.monotonic() - flood_started:.1f} raw_dead_letters={flood_dl}/301"))
    assert dup == 0 and lost == 0
    assert proc.returncode == EXIT_DEAD_LETTER_CAP, f"NLP worker past the cap:\n{log_tail}"
    assert flood_dl < 301, "the NLP worker dead-lettered the whole flood instead of stopping"
    assert "DeadLetterRateExceeded" in log_tail or "dead-lettering" in log_tail, log_tail


# -- 5. A sustained load run ---------------------------------------------------

def _corpus_texts() -> list[str]:
    texts = []
    for path in sorted((REPO_ROOT / "data" / "corpus").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    random.Random(5).shuffle(texts)
    return texts


def test_sustained_load_end_to_end_latency(pipeline: Pipeline):
    """Posts offered at a steady rate for minutes: all indexed once; ingest -> searchable reported.

    Latency is measured on one post of every request: from the 202 to the first
    search (an ``ids`` query, so after an index refresh) that finds it.
    """
    seconds = env_int("YUQING_LOAD_SECONDS", 600)
    rate = env_int("YUQING_LOAD_RATE", 60)
    per_request = env_int("YUQING_LOAD_BATCH", 10)
    for name in ("ingest", "nlp", "alerts", "indexer"):
        pipeline.start(name)
    texts, regions = _corpus_texts(), ["城关镇", "青山乡", "河东街道", "柳林村", None]
    index, results, tag = Index(pipeline), _new_results(), f"load{uuid.uuid4().hex[:6]}"
    accepted_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:  # finds sampled posts as soon as a search does
        while not done.is_set() or len(seen_at) < len(accepted_at):
            waiting = [pid for pid in list(accepted_at) if pid not in seen_at][:1000]
            if waiting:
                try:
                    hits = index.es.search(index=index.alias, size=len(waiting), _source=False,
                                           body={"query": {"ids": {"values": waiting}}})["hits"]["hits"]
                except Exception:
                    hits = []
                now = time.monotonic()
                for hit in hits:
                    seen_at.setdefault(hit["_id"], now)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started, sent, n = time.monotonic(), 0, 0
    interval = per_request / rate
    with httpx.Client(timeout=30, headers={"X-Api-Key": pipeline.env["YUQING_DEMO_API_KEY"]}) as client:
        while time.monotonic() - started < seconds:
            t0 = time.monotonic()
            now = datetime.now(UTC).isoformat()
            batch = [{"external_id": f"{tag}-{n + i}", "created_at": now, "text": texts[(n + i) % len(texts)],
                      "region": regions[(n + i) % len(regions)]} for i in range(per_request)]
            n += per_request
            sent += len(batch)
            resp = client.post(pipeline.url("ingest") + "/v1/posts", json={"posts": batch})
            results["codes"].append(resp.status_code)
            if resp.status_code == 202:
                ids = resp.json()["post_ids"]
                results["accepted"].update(ids)
                accepted_at[ids[0]] = time.monotonic()
            time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    offered_s = time.monotonic() - started
    accepted = results["accepted"]
    wait_until(lambda: index.count() >= len(accepted), 600, f"{len(accepted)} posts indexed")
    drained_s = time.monotonic() - started - offered_s
    done.set()
    watcher.join(timeout=120)
    latencies = [seen_at[pid] - accepted_at[pid] for pid in accepted_at if pid in seen_at]
    figures = (f"rate={rate}/s offered_for={offered_s:.0f}s achieved={sent / offered_s:.1f}/s "
               f"drained_after={drained_s:.1f}s samples={len(latencies)} "
               f"e2e_p50={percentile(latencies, 50):.2f}s e2e_p95={percentile(latencies, 95):.2f}s "
               f"e2e_p99={percentile(latencies, 99):.2f}s e2e_max={max(latencies):.2f}s")
    dup, lost = _summary("load", sent=sent, accepted=accepted, index=index, extra=figures)
    assert len(accepted) == sent, f"ingest refused posts under load: {set(results['codes'])}"
    assert dup == 0 and lost == 0
    assert len(latencies) == len(accepted_at), "some sampled posts never became searchable"
