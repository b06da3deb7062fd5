"""Cold start: rebuild the detectors' state from posts already stored.

``yuqing alerts warm --since 14d`` reads the posts of the last days (from the
Elasticsearch posts index, or from a JSONL of ``posts.enriched`` messages),
counts them per key and bucket, runs every key's :class:`SurgeDetector` over
those buckets (empty ones included), and writes the detectors' state to the
``detectors`` table's changelog, so that the worker starts with baselines
instead of two blind days. Run it while the alerts worker is stopped (Faust
restores its tables from the changelog when it starts).

**Borrowed rhythm.** A key with less than one post an hour since its first
post (a quiet or a new township) cannot learn the shape of a day from its own posts. It
starts from its parent's shape instead (``overall`` -> ``topic`` ->
``topic x region``; ``source`` and ``cluster`` under ``overall``), scaled to
its own volume by its own level, and its own posts then adjust that shape.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.alerts.detector import DetectorConfig, SurgeDetector
from services.alerts.keys import keys_for
from services.alerts.state import DetectorEntry
from services.alerts.windows import bucket_datetime, bucket_of, event_time
from yuqing.contracts import AlertKey, EnrichedPost, Topic
from yuqing.paths import utf8_lines
from yuqing.places import NO_PLACES, Gazetteer
from yuqing.settings import KafkaSettings

FAMILY_ORDER = ("overall", "topic", "topic_region", "source", "cluster")  # parents first
DEFAULT_MAX_FUTURE_S = 300.0  # YUQING_ALERTS_MAX_FUTURE_SECONDS' default


@dataclass(frozen=True)
class PastPost:
    """What warming needs of a stored post."""

    created_at: datetime
    topic: Topic
    region: str | None
    source: str
    fingerprint: str
    redacted_text: str = ""  # where a post without a region says it is (keys.region_of)
    # the region above is final (the sender's or the NLP worker's inference); False for a post
    # from before the inference existed, which is placed from its text when keyed
    region_inferred_upstream: bool = False

    @property
    def effective_region(self) -> str | None:
        return self.region

    @classmethod
    def of(cls, post: EnrichedPost, *, max_future_seconds: float | None = None,
           now: float | None = None) -> PastPost:
        """With ``max_future_seconds``, the post counts when the worker counts it
        (:func:`~services.alerts.windows.event_time`: its date trusted only so far after its
        arrival, its arrival only up to ``now``)."""
        created = post.created_at
        if max_future_seconds is not None:
            bounded = event_time(post.created_at, post.received_at, max_future_seconds, now=now)
            created = min(created, datetime.fromtimestamp(bounded, tz=UTC))
        return cls(created, post.topic, post.effective_region, post.source, post.fingerprint,
                   post.redacted_text, post.region_inferred_upstream)

    @classmethod
    def of_document(cls, doc: dict[str, Any]) -> PastPost:
        """From a document of the search index (see ``services.search.documents``): its
        ``region`` is the inferred one where ``region_source`` says so."""
        return cls(datetime.fromisoformat(doc["created_at"]), Topic(doc["topic"]), doc.get("region"),
                   doc["source"], doc.get("fingerprint") or "00", doc.get("text") or "",
                   "region_source" in doc)


def parent_of(key: AlertKey) -> AlertKey | None:
    if key.family == "topic_region":
        return AlertKey(family="topic", topic=key.topic)
    return None if key.family == "overall" else AlertKey(family="overall")


def warm_detectors(posts: Iterable[PastPost], config: DetectorConfig, *, until: datetime | None,
                   places: Gazetteer = NO_PLACES) -> dict[str, DetectorEntry]:
    """Each key's detector run over the buckets of ``posts`` before ``until`` (empty ones included).

    With ``until`` None, through the bucket of the last post: a dump of posts
    ends where it ends, and the worker counts the posts after it.
    """
    counts: dict[AlertKey, Counter[int]] = defaultdict(Counter)
    size = config.bucket_seconds
    # the last bucket closed at ``until``
    last = bucket_of(until.timestamp(), size) - size if until is not None else None
    for post in posts:
        bucket = bucket_of(post.created_at.timestamp(), size)
        if last is None or bucket <= last:
            for key in keys_for(post, places):
                counts[key][bucket] += 1
    if not counts:
        return {}
    if last is None:
        last = max(max(c) for c in counts.values())
    first = min(min(c) for c in counts.values())
    detectors: dict[AlertKey, SurgeDetector] = {}
    for key in sorted(counts, key=lambda k: (FAMILY_ORDER.index(k.family), k.label())):
        detector = SurgeDetector(config)
        parent = parent_of(key)
        own_hours = max((last - min(counts[key])) / 3600, 1.0)
        if parent is not None and parent in detectors and sum(counts[key].values()) < own_hours:
            detector.borrow_rhythm(detectors[parent])
        for bucket in range(first, last + size, size):
            detector.update(bucket_datetime(bucket), counts[key].get(bucket, 0))
        detectors[key] = detector
    dump = {key: key.model_dump(mode="json", exclude_none=True) for key in detectors}
    return {key.label(): DetectorEntry(dump[key], last, detector.to_dict())
            for key, detector in detectors.items()}


# -- where the posts come from, where the state goes -------------------------


def posts_from_jsonl(path: Path, since: datetime, *, max_future_seconds: float = DEFAULT_MAX_FUTURE_S,
                     now: float | None = None) -> Iterator[PastPost]:
    """Posts of a JSONL of ``posts.enriched`` messages created at or after ``since``, each once.

    A dump of the topic holds a post as often as it was written (the NLP worker enriches a
    batch again after a restart, a dead letter replayed); the worker counts it once. A post
    counts when the worker counts it (``max_future_seconds`` after its arrival at most, its
    arrival at most ``now``): one dated "9999" made the warm-up step every bucket to then, and
    one a month ahead left the warmed detectors a month ahead, where the worker judged none of
    their keys' buckets until that month had passed.
    """
    now = time.time() if now is None else now
    seen: set[str] = set()
    for number, line in utf8_lines(Path(path)):
        if not line.strip():
            continue
        try:
            enriched = EnrichedPost.model_validate_json(line)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: not an enriched post ({error})") from error
        post = PastPost.of(enriched, max_future_seconds=max_future_seconds, now=now)
        if _aware(post.created_at) >= since and enriched.post_id not in seen:
            seen.add(enriched.post_id)
            yield post


def posts_from_elasticsearch(since: datetime) -> Iterator[PastPost]:
    """Posts of the search index created at or after ``since``."""
    from elasticsearch import helpers

    from services.search.es import make_client
    from services.search.mappings import posts_alias
    from yuqing.settings import ElasticsearchSettings

    settings = ElasticsearchSettings()
    client = make_client(settings)
    index = posts_alias(settings.index_prefix)
    if not client.indices.exists_alias(name=index) and not client.indices.exists(index=index):
        # it ended in Elasticsearch's words (index_not_found_exception), naming neither setting
        raise ValueError(f"no posts index {index} at {settings.url}: nothing to warm from (check "
                         "YUQING_ES_INDEX_PREFIX, or give a dump with --posts)")
    query = {"query": {"range": {"created_at": {"gte": since.isoformat()}}},
             "_source": ["created_at", "topic", "region", "region_source", "source", "fingerprint", "text"]}
    for hit in helpers.scan(client, index=index, query=query, size=2000, preserve_order=False):
        yield PastPost.of_document(hit["_source"])


def changelog_topic(app_id: str, table: str = "detectors") -> str:
    """The Kafka topic a Faust table of the alerts worker is restored from."""
    return f"{app_id}-{table}-changelog"


def changelog_records(entries: dict[str, DetectorEntry]) -> Iterator[tuple[bytes, bytes]]:
    """Key and value bytes as the worker's table writes them (JSON both)."""
    for label, entry in entries.items():
        yield json.dumps(label).encode(), json.dumps(entry.to_dict()).encode()


def parse_since(text: str) -> timedelta:
    """``14d``, ``36h`` or ``90m``."""
    units = {"d": 86_400, "h": 3600, "m": 60}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) == 0:
        raise ValueError(f"--since {text!r}: give a positive number of days, hours or minutes (14d, 36h)")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def since_start(text: str, until: datetime) -> datetime:
    """Where ``--since`` begins, counted back from ``until``; one clear error if before the year 1
    (a mistyped number of days ended in an OverflowError and a traceback)."""
    try:
        return until - parse_since(text)
    except OverflowError:
        raise ValueError(f"--since {text!r}: reaches back before the year 1") from None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def run_warm(*, since: str, posts: Path | None, now: datetime | None = None) -> tuple[int, str]:
    """The ``yuqing alerts warm`` command: returns the detectors written and the topic."""
    from services.alerts.settings import AlertsSettings
    from services.alerts.worker import watch_config
    from yuqing.kafka import make_producer

    settings = AlertsSettings()
    until = now or datetime.now(UTC)
    start = since_start(since, until)
    stored = (posts_from_jsonl(posts, start, max_future_seconds=settings.max_future_seconds,
                               now=until.timestamp())
              if posts is not None else posts_from_elasticsearch(start))
    # A dump ends where it ends: the worker counts what comes after it (with the index, now).
    entries = warm_detectors(stored, watch_config(settings).detector,
                             until=until if posts is None else None, places=settings.gazetteer())
    topic = changelog_topic(settings.app_id)
    ensure_changelog(settings.kafka, topic)
    producer = make_producer(settings.kafka, client_id=f"{settings.app_id}-warm")
    try:
        for key, value in changelog_records(entries):
            producer.send(topic, key=key, value=value, partition=0)
        producer.flush()
    finally:
        producer.close()
    return len(entries), topic


def ensure_changelog(kafka: KafkaSettings, topic: str) -> None:
    """Create the table's changelog as Faust would (one partition, compacted, with the worker's
    ``YUQING_KAFKA_REPLICATION_FACTOR``) if the worker never ran."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=kafka.servers(), client_id="yuqing-alerts-warm",
                             **kafka.client_options())
    try:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, num_partitions=1,
                                          replication_factor=kafka.replication_factor,
                                          topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
