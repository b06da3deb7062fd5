"""make bench-ingest: posts/s through POST /v1/posts vs a bare Kafka producer.

1. Throughput: C concurrent clients send batches of B posts to the ingest API
   (which waits for acks=all before answering 202); the ceiling is the same
   posts through a bare kafka-python producer (acks=all, idempotent) on this
   machine.
2. Latency at a fixed rate: 1,000 posts/s offered as 20 requests/s of 50 posts;
   p50/p99 request latency.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import ensure_infra, free_port, percentile, start_service, write_results
from yuqing.contracts import Channel, make_post_id
from yuqing.contracts.codec import encode
from yuqing.ingest.models import PostIn
from yuqing.kafka import ensure_topics, make_producer
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

TEXT = "城关镇幸福小区今晚又停电了，已经是这个月第三次了，冰箱里的东西都坏了，什么时候能修好？"


def make_posts(n: int, tag: str) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [{"external_id": f"{tag}-{i}", "text": TEXT, "created_at": now, "region": "城关镇"}
            for i in range(n)]


async def api_throughput(url: str, key: str, total: int, batch: int, clients: int) -> dict:
    posts = make_posts(total, uuid.uuid4().hex[:8])
    batches = [posts[i:i + batch] for i in range(0, total, batch)]
    latencies: list[float] = []
    queue: asyncio.Queue[list[dict]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = {"posts": queue.get_nowait()}
            start = time.perf_counter()
            resp = await http.post(url, json=body, headers={"X-Api-Key": key})
            latencies.append(time.perf_counter() - start)
            resp.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {"posts": total, "seconds": elapsed, "posts_per_s": total / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


async def api_fixed_rate(url: str, key: str, rate: int, seconds: int, batch: int) -> dict:
    tag = uuid.uuid4().hex[:8]
    interval = batch / rate
    latencies: list[float] = []

    async def one(http: httpx.AsyncClient, i: int) -> None:
        start = time.perf_counter()
        resp = await http.post(url, json={"posts": make_posts(batch, f"{tag}-{i}")},
                               headers={"X-Api-Key": key})
        latencies.append(time.perf_counter() - start)
        resp.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as http:
        tasks, start = [], time.perf_counter()
        for i in range(int(seconds * rate / batch)):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            tasks.append(asyncio.create_task(one(http, i)))
        await asyncio.gather(*tasks)
    return {"offered_posts_per_s": rate, "requests": len(latencies),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


def bare_producer(settings: KafkaSettings, total: int) -> dict:
    producer = make_producer(settings, client_id="bench-bare")
    topic = settings.topic(LogicalTopic.POSTS_RAW)
    tag = uuid.uuid4().hex[:8]
    source = "bench"
    now = datetime.now(UTC)
    raws = [PostIn(**p).to_raw(source=source, channel=Channel.INTEGRATION, now=now)
            for p in make_posts(total, tag)]
    start = time.perf_counter()
    futures = [producer.send(topic, key=make_post_id(source, r.external_id).encode(), value=encode(r))
               for r in raws]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    elapsed = time.perf_counter() - start
    producer.close()
    return {"posts": total, "seconds": elapsed, "posts_per_s": total / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate-seconds", type=int, default=20)
    args = parser.parse_args()
    ensure_infra()
    settings = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    ensure_topics(settings)
    key, port = secrets.token_urlsafe(32), free_port()
    env = {"YUQING_KAFKA_TOPIC_PREFIX": settings.topic_prefix, "YUQING_INGEST_PORT": str(port),
           "YUQING_DEMO_API_KEY": key, "YUQING_INGEST_LOG_LEVEL": "WARNING"}
    log = Path(tempfile.mkdtemp()) / "ingest.log"
    proc = start_service(["ingest", "serve"], env, f"http://127.0.0.1:{port}/healthz", log)
    url = f"http://127.0.0.1:{port}/v1/posts"
    try:
        asyncio.run(api_throughput(url, key, 2_000, args.batch, args.clients))  # warm-up
        api = asyncio.run(api_throughput(url, key, args.posts, args.batch, args.clients))
        fixed = asyncio.run(api_fixed_rate(url, key, 1_000, args.rate_seconds, 50))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    bare = bare_producer(settings, args.posts)
    ratio = api["posts_per_s"] / bare["posts_per_s"]
    print(f"ingest API   : {api['posts_per_s']:>9.0f} posts/s  ({args.clients} clients x "
          f"{args.batch}-post batches; request p50 {api['p50_ms']:.1f} ms, p99 {api['p99_ms']:.1f} ms)")
    print(f"bare producer: {bare['posts_per_s']:>9.0f} posts/s  (kafka-python, acks=all)")
    print(f"ratio        : {ratio:.2f}  (goal >= 0.50)")
    print(f"at 1,000 posts/s offered: request p50 {fixed['p50_ms']:.1f} ms, "
          f"p99 {fixed['p99_ms']:.1f} ms (goal p99 < 100 ms)")
    path = write_results("ingest", {"api": api, "bare_producer": bare, "ratio": ratio,
                                    "fixed_rate": fixed, "args": vars(args)})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
