"""Backtests: run past data through the same detector and lifecycle as the service.

* :func:`replay_counts_csv` scores one count series (``timestamp,value``) and
  writes NAB's detector-output format (``timestamp,value,anomaly_score``).
  Each score is computed from the rows at or before it, exactly as the
  streaming service would have computed it.
* :func:`replay_posts_jsonl` buckets past ``posts.enriched`` records per alert
  key (overall, topic, topic in a region), runs one detector per key and the
  :class:`~services.alerts.lifecycle.AlertTracker` over them, and returns the
  alert events that would have been emitted, in order.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.alerts.detector import DetectorConfig, SurgeDetector
from services.alerts.lifecycle import AlertEvent, AlertTracker, TrackerConfig
from yuqing.contracts import AlertKey, Topic

SCORE_DECIMALS = 6


@dataclass(frozen=True)
class CountRow:
    """One row of a count series, with its timestamp text kept as read."""

    text: str
    moment: datetime
    value: str


def read_counts_csv(path: Path) -> list[CountRow]:
    """Rows of a ``timestamp,value`` file (extra columns are ignored)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected the columns timestamp,value")
        return [
            CountRow(record["timestamp"], datetime.fromisoformat(record["timestamp"]), record["value"])
            for record in reader
        ]


def bucket_seconds_of(rows: list[CountRow]) -> int:
    """The spacing of a series: the smallest positive step between its rows."""
    steps = {int((b.moment - a.moment).total_seconds()) for a, b in itertools.pairwise(rows)}
    positive = [step for step in steps if step > 0]
    if not positive:
        raise ValueError("need at least two rows with increasing timestamps")
    return min(positive)


def score_counts(rows: list[CountRow], config: DetectorConfig) -> list[float]:
    """One causal anomaly score per row, through one :class:`SurgeDetector`."""
    detector = SurgeDetector(config)
    return [round(detector.update(row.moment, float(row.value)).score, SCORE_DECIMALS) for row in rows]


def replay_counts_csv(
    input_path: Path | str, output_path: Path | str, config: DetectorConfig | None = None
) -> None:
    """Score a ``timestamp,value`` series and write ``timestamp,value,anomaly_score``.

    Without ``config`` the default settings are used with the bucket size read
    from the file; a ``config`` whose ``bucket_seconds`` disagrees with the
    file is an error.
    """
    rows = read_counts_csv(Path(input_path))
    spacing = bucket_seconds_of(rows)
    if config is None:
        config = DetectorConfig(bucket_seconds=spacing)
    elif config.bucket_seconds != spacing:
        raise ValueError(f"rows are {spacing} s apart but bucket_seconds is {config.bucket_seconds}")
    scores = score_counts(rows, config)
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for row, score in zip(rows, scores, strict=True):
            writer.writerow([row.text, row.value, score])


# -- posts ------------------------------------------------------------------


def keys_of(topic: Topic, region: str | None) -> list[AlertKey]:
    """The alert keys one post counts towards."""
    keys = [AlertKey(family="overall"), AlertKey(family="topic", topic=topic)]
    if region:
        keys.append(AlertKey(family="topic_region", topic=topic, region=region))
    return keys


def bucket_start_of(moment: datetime, bucket_seconds: int) -> datetime:
    """The UTC start of the bucket holding ``moment`` (naive moments are UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    epoch = int(aware.timestamp())
    return datetime.fromtimestamp(epoch - epoch % bucket_seconds, tz=UTC)


def read_post_counts(path: Path, bucket_seconds: int) -> Counter[tuple[datetime, AlertKey]]:
    """Posts per (bucket, key) in a JSONL file of ``posts.enriched`` records."""
    counts: Counter[tuple[datetime, AlertKey]] = Counter()
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                moment = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
                topic = Topic(record["topic"])
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise ValueError(f"{path}:{number}: not an enriched post ({error})") from error
            bucket = bucket_start_of(moment, bucket_seconds)
            for key in keys_of(topic, record.get("region")):
                counts[(bucket, key)] += 1
    return counts


def _buckets(first: datetime, last: datetime, bucket_seconds: int) -> Iterator[datetime]:
    step = timedelta(seconds=bucket_seconds)
    moment = first
    while moment <= last:
        yield moment
        moment += step


def replay_posts_jsonl(
    input_path: Path | str,
    config: DetectorConfig | None = None,
    tracker_config: TrackerConfig | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[AlertEvent]:
    """Alert events that past enriched posts would have caused, in order.

    Every key seen in the file is followed from the file's first bucket to its
    last, empty buckets included. ``echo``, when given, receives one line per
    event (see :func:`format_event`).
    """
    config = config or DetectorConfig()
    tracker_config = tracker_config or TrackerConfig(bucket_seconds=config.bucket_seconds)
    counts = read_post_counts(Path(input_path), config.bucket_seconds)
    if not counts:
        return []
    keys = sorted({key for _, key in counts}, key=lambda k: k.label())
    buckets = sorted({bucket for bucket, _ in counts})
    detectors = {key: SurgeDetector(config) for key in keys}
    tracker = AlertTracker(tracker_config)
    events: list[AlertEvent] = []
    for bucket in _buckets(buckets[0], buckets[-1], config.bucket_seconds):
        detections = {key: detectors[key].update(bucket, counts.get((bucket, key), 0)) for key in keys}
        for event in tracker.process(bucket, detections):
            events.append(event)
            if echo is not None:
                echo(format_event(event))
    return events


def format_event(event: AlertEvent) -> str:
    """A one-line, human-readable description of an alert event."""
    change = "escalated" if event.escalation else event.state.value
    parents = f" (also: {', '.join(p.label() for p in event.parents)})" if event.parents else ""
    return (
        f"{event.window_end.isoformat()} {change:<9} {event.severity.value:<8} "
        f"{event.key.label()} observed={event.observed:g} expected={event.expected:.1f} "
        f"score={event.score:.2f} since={event.window_start.isoformat()}{parents}"
    )


def events_to_jsonl(events: Iterable[AlertEvent], emitted_at: datetime | None = None) -> list[str]:
    """The events as ``alerts`` contract messages, one JSON line each."""
    lines = []
    for event in events:
        alert = event.to_alert(emitted_at=emitted_at or event.window_end)
        lines.append(alert.model_dump_json())
    return lines
