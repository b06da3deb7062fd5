"""Replay the bundled demo stream into a running ingest service."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

DEMO_STREAM = Path(__file__).resolve().parent.parent / "data" / "demo" / "stream.jsonl"


@dataclass(frozen=True)
class DemoPost:
    channel: str
    text: str
    region: str | None
    unit: str | None
    offset_s: float
    title: str | None = None


def load_demo(path: Path = DEMO_STREAM) -> list[DemoPost]:
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            posts.append(DemoPost(row["channel"], row["text"], row.get("region"),
                                  row.get("unit"), float(row["offset_s"]), row.get("title")))
    return posts


def to_integration_post(post: DemoPost, index: int, start: datetime) -> dict[str, Any]:
    return {
        "external_id": f"demo-{start:%Y%m%d%H%M}-{index:04d}",
        "text": post.text, "title": post.title,
        "created_at": (start + timedelta(seconds=post.offset_s)).isoformat(),
        "region": post.region, "unit": post.unit,
        "attributes": {"demo_channel": post.channel},
    }


def replay_via_api(base_url: str, api_key: str, *, path: Path = DEMO_STREAM) -> int:
    """Send the demo posts (timestamps spread over the last ten minutes) in one batch."""
    posts = load_demo(path)
    start = datetime.now(UTC) - timedelta(seconds=max(p.offset_s for p in posts) + 1)
    body = {"posts": [to_integration_post(p, i, start) for i, p in enumerate(posts)]}
    resp = httpx.post(f"{base_url}/v1/posts", json=body, headers={"X-Api-Key": api_key},
                      timeout=30)
    resp.raise_for_status()
    return int(resp.json()["accepted"])
