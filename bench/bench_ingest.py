"""make bench-ingest: posts/s through POST /v1/posts vs a bare Kafka producer.

1. Throughput: C concurrent clients send batches of B posts to the ingest API
   (which waits for acks=all before answering 202). Request bodies are encoded
   before the clock starts, so the figure is the server's, not the client's.
2. Ceiling: the same posts (already validated and encoded) through a bare,
   tuned producer on this machine, acks=all and idempotent: kafka-python with
   its defaults (16 KiB batches), kafka-python with 256 KiB batches, and aiokafka
   with 256 KiB batches. The best of them is the ceiling the ratio is taken against.
3. Latency at a fixed rate: 1,000 posts/s offered as 20 requests/s of 50 posts;
   p50/p99 request latency.

Throughput is measured in rounds (API, then each bare producer, again and again);
figures are medians, and each round's ratio compares figures taken moments apart.

The ingest service, Kafka and this client share the machine; run it when the
machine is otherwise idle (the load average is recorded with the results).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python bench/bench_ingest.py` as well as `-m bench.bench_ingest`
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import ensure_infra, free_port, percentile, start_service, write_results  # noqa: E402
from services.ingest.models import PostIn  # noqa: E402
from yuqing.contracts import Channel  # noqa: E402
from yuqing.contracts.codec import encode  # noqa: E402
from yuqing.kafka import ensure_topics  # noqa: E402
from yuqing.settings import KafkaSettings  # noqa: E402
from yuqing.topics import LogicalTopic  # noqa: E402

TEXT = "城关镇幸福小区今晚又停电了，已经是这个月第三次了，冰箱里的东西都坏了，什么时候能修好？"
BATCH_BYTES = 262_144


def make_posts(n: int, tag: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [{"external_id": f"{tag}-{i}", "text": TEXT, "created_at": now, "region": "城关镇"}
            for i in range(n)]


def bodies(total: int, batch: int) -> list[bytes]:
    posts = make_posts(total, uuid.uuid4().hex[:8])
    return [orjson.dumps({"posts": posts[i:i + batch]}) for i in range(0, total, batch)]


async def api_throughput(url: str, key: str, total: int, batch: int, clients: int) -> dict[str, Any]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies(total, batch):
        queue.put_nowait(body)
    latencies: list[float] = []
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            resp = await http.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            resp.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {"posts": total, "seconds": elapsed, "posts_per_s": total / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


async def api_fixed_rate(url: str, key: str, rate: int, seconds: int, batch: int) -> dict[str, Any]:
    interval = batch / rate
    prepared = bodies(int(seconds * rate), batch)
    latencies: list[float] = []
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}

    async def one(http: httpx.AsyncClient, body: bytes) -> None:
        start = time.perf_counter()
        resp = await http.post(url, content=body, headers=headers)
        latencies.append(time.perf_counter() - start)
        resp.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as http:
        tasks, start = [], time.perf_counter()
        for i, body in enumerate(prepared):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            tasks.append(asyncio.create_task(one(http, body)))
        await asyncio.gather(*tasks)
    return {"offered_posts_per_s": rate, "requests": len(latencies),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


def encoded_posts(total: int) -> list[tuple[bytes, bytes]]:
    tag, now = uuid.uuid4().hex[:8], datetime.now(UTC)
    raws = (PostIn(**p).to_raw(source="bench", channel=Channel.INTEGRATION, now=now)
            for p in make_posts(total, tag))
    return [(r.post_id.encode(), encode(r)) for r in raws]


def bare_kafka_python(settings: KafkaSettings, total: int, batch_bytes: int) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.servers(), acks="all", enable_idempotence=True,
                             linger_ms=5, batch_size=batch_bytes, **settings.client_options())
    topic, messages = settings.topic(LogicalTopic.POSTS_RAW), encoded_posts(total)
    producer.send(topic, b"warm-up").get(timeout=30)
    start = time.perf_counter()
    futures = [producer.send(topic, key=key, value=value) for key, value in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    elapsed = time.perf_counter() - start
    producer.close()
    return total / elapsed


async def bare_aiokafka(settings: KafkaSettings, total: int, batch_bytes: int) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.servers(), acks="all",
                                enable_idempotence=True, linger_ms=5, max_batch_size=batch_bytes,
                                **settings.client_options())
    await producer.start()
    topic, messages = settings.topic(LogicalTopic.POSTS_RAW), encoded_posts(total)
    try:
        await producer.send_and_wait(topic, b"warm-up")
        start = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - start
    finally:
        await producer.stop()
    return total / elapsed


BareRun = Callable[[KafkaSettings, int], float]
BARE_PRODUCERS: dict[str, BareRun] = {
    "kafka-python, 16 KiB batches": lambda s, n: bare_kafka_python(s, n, 16_384),
    "kafka-python, 256 KiB batches": lambda s, n: bare_kafka_python(s, n, BATCH_BYTES),
    "aiokafka, 256 KiB batches": lambda s, n: asyncio.run(bare_aiokafka(s, n, BATCH_BYTES)),
}


@contextmanager
def ingest_service(settings: KafkaSettings, producer: str) -> Iterator[tuple[str, str]]:
    from services.demo.stream import demo_environment

    key, port = secrets.token_urlsafe(32), free_port()
    env = {**demo_environment(), "YUQING_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
           "YUQING_INGEST_PORT": str(port), "YUQING_DEMO_API_KEY": key,
           "YUQING_INGEST_LOG_LEVEL": "WARNING", "YUQING_INGEST_PRODUCER": producer,
           "YUQING_INGEST_POLL_FORUMS": "false", "YUQING_INGEST_RATE_LIMIT_PER_S": "100000",
           "YUQING_INGEST_RATE_LIMIT_BURST": "100000"}
    log = Path(tempfile.mkdtemp()) / "ingest.log"
    proc = start_service(["ingest", "serve"], env, f"http://127.0.0.1:{port}/healthz", log)
    try:
        yield f"http://127.0.0.1:{port}/v1/posts", key
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def run_rounds(settings: KafkaSettings, services: dict[str, tuple[str, str]],
               args: argparse.Namespace) -> dict[str, Any]:
    """API and bare producers alternate, round after round, so that both see the same machine."""
    api: dict[str, list[dict[str, Any]]] = {producer: [] for producer in services}
    bare: dict[str, list[float]] = {name: [] for name in BARE_PRODUCERS}
    for url, key in services.values():
        asyncio.run(api_throughput(url, key, 2_000, args.batch, args.clients))  # warm-up
    for _ in range(args.rounds):
        for producer, (url, key) in services.items():
            api[producer].append(asyncio.run(api_throughput(url, key, args.posts, args.batch,
                                                            args.clients)))
        for name, run in BARE_PRODUCERS.items():
            bare[name].append(run(settings, args.posts))
    return {"api": api, "bare": bare}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["posts_per_s"])
    return ordered[len(ordered) // 2]


def summarize(rounds: dict[str, Any], producer: str) -> dict[str, Any]:
    """Medians over the rounds; each ratio is taken within its round, then the median of those."""
    bare = rounds["bare"]
    python_names = [name for name in bare if name.startswith("kafka-python")]
    best = [max(figures) for figures in zip(*bare.values(), strict=True)]
    best_python = [max(figures) for figures in zip(*(bare[n] for n in python_names), strict=True)]
    api = [run["posts_per_s"] for run in rounds["api"][producer]]
    return {
        "api": median_run(rounds["api"][producer]),
        "bare_posts_per_s": {name: statistics.median(figures) for name, figures in bare.items()},
        "ratio": statistics.median(a / b for a, b in zip(api, best, strict=True)),
        "ratio_kafka_python": statistics.median(a / b for a, b in zip(api, best_python, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate-seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare-producers", action="store_true",
                        help="also measure the API with the kafka-python publisher")
    args = parser.parse_args()
    ensure_infra()
    settings = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    ensure_topics(settings)
    load_before = os.getloadavg()
    producers = ["aiokafka", "kafka-python"] if args.compare_producers else ["aiokafka"]
    with ExitStack() as stack:
        services = {p: stack.enter_context(ingest_service(settings, p)) for p in producers}
        rounds = run_rounds(settings, services, args)
        fixed = {p: asyncio.run(api_fixed_rate(*services[p], 1_000, args.rate_seconds, 50))
                 for p in producers}
    summaries = {p: summarize(rounds, p) | {"fixed_rate": fixed[p]} for p in producers}
    print_report(summaries, args)
    main_summary = summaries[producers[0]]
    path = write_results("ingest", {
        "api": main_summary["api"], "bare_producer": main_summary["bare_posts_per_s"],
        "ratio": main_summary["ratio"], "ratio_kafka_python": main_summary["ratio_kafka_python"],
        "fixed_rate": main_summary["fixed_rate"], "producer": producers[0], "runs": summaries,
        "rounds": rounds, "args": vars(args), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "cpus": os.cpu_count()})
    print(f"results: {path}")


def print_report(summaries: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    for producer, summary in summaries.items():
        api = summary["api"]
        print(f"ingest API   : {api['posts_per_s']:>9.0f} posts/s  ({args.clients} clients x "
              f"{args.batch}-post batches, {producer} publisher, median of {args.rounds}; request "
              f"p50 {api['p50_ms']:.1f} ms, p99 {api['p99_ms']:.1f} ms)")
    main_summary = next(iter(summaries.values()))
    for name, figure in main_summary["bare_posts_per_s"].items():
        print(f"bare producer: {figure:>9.0f} posts/s  ({name}, acks=all, idempotent)")
    print(f"ratio        : {main_summary['ratio']:.2f}  (API / best bare producer; goal >= 0.50)")
    print(f"ratio        : {main_summary['ratio_kafka_python']:.2f}  "
          "(API / best bare kafka-python producer)")
    for producer, summary in summaries.items():
        fixed = summary["fixed_rate"]
        print(f"at 1,000 posts/s offered ({producer} publisher): request p50 {fixed['p50_ms']:.1f} ms, "
              f"p99 {fixed['p99_ms']:.1f} ms (goal p99 < 100 ms)")


if __name__ == "__main__":
    main()
