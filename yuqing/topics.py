"""Logical topic names and the registry kept beside each topic's schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from yuqing.paths import project_paths

SCHEMAS_DIR = project_paths().schemas


class LogicalTopic(StrEnum):
    POSTS_RAW = "posts.raw"
    POSTS_ENRICHED = "posts.enriched"
    ALERTS = "alerts"
    POSTS_DLQ = "posts.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: LogicalTopic
    key: str
    partitions: int
    retention_ms: int
    cleanup_policy: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    schema_version: str


@cache
def topic_spec(topic: LogicalTopic) -> TopicSpec:
    data = json.loads((SCHEMAS_DIR / topic.value / "topic.json").read_text())
    return TopicSpec(
        name=topic,
        key=data["key"],
        partitions=int(data["partitions"]),
        retention_ms=int(data["retention_ms"]),
        cleanup_policy=data.get("cleanup_policy", "delete"),
        producers=tuple(data["producers"]),
        consumers=tuple(data["consumers"]),
        schema_version=data["schema_version"],
    )
