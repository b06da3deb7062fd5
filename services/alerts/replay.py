"""Backtests: run past data through the detectors the service and the benchmark use.

* :func:`replay_counts_csv` scores one series (``timestamp,value``) with a
  single-series detector (``DETECTORS``: by default ``resonance_gated``,
  :class:`~services.alerts.resonance_gated.ResonanceGatedDetector`: ARTime's
  algorithm decides which rows are detections, and each scores the larger of
  ARTime's confidence and the gated detector's evidence over ARTime's window,
  a close repeat only when it scores more) and writes NAB's detector-output format
  (``timestamp,value,anomaly_score``). ``resonance_gated`` and ``resonance``
  (ARTime's algorithm alone) read the file's minimum, maximum and length
  first, as NAB hands every detector the file's range; each score then comes
  from the rows at or before it. ``gated``, ``combined``, ``context`` and
  ``novelty`` read nothing ahead: each score is computed from the rows at or
  before it, exactly as a stream would see them.
* :func:`replay_posts_jsonl` buckets past ``posts.enriched`` records per alert
  key (overall, topic, topic in a region), runs one detector per key and the
  :class:`~services.alerts.lifecycle.AlertTracker` over them, and returns the
  alert events that would have been emitted, in order.

**What a series may hold.** Any cadence: the row is the unit, so regular,
irregular and hourly series are all read as they are, several rows may
share a timestamp and a timestamp may even step back: rows are scored in file order. Values may be any finite
numbers, negative and fractional included: ARTime's algorithm levels them
over the file's range, the gated detector ranks its distances and its
context detector levels over the observed range, so no transform is applied
or needed. What cannot be used (a missing
column, a value that is not a finite number, values whose span is not one, a timestamp
that is not a date or mixes zones and no zones, fewer than two rows) raises one :class:`SeriesError` whose
message names the file and line.
"""

from __future__ import annotations

import csv
import json
import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.alerts.context_detector import ContextConfig, ContextDetector
from services.alerts.detector import DetectorConfig, SurgeDetector
from services.alerts.gated import GatedConfig, GatedDetector
from services.alerts.lifecycle import AlertEvent, AlertTracker, TrackerConfig
from services.alerts.novelty import NoveltyConfig, NoveltyScorer
from services.alerts.resonance import resonance_scores
from services.alerts.resonance_gated import resonance_gated_scores
from services.alerts.windows import event_time
from yuqing.contracts import AlertKey, Topic
from yuqing.paths import utf8_lines

SCORE_DECIMALS = 6


class SeriesError(ValueError):
    """A series that cannot be scored; the message is one line for the user."""


@dataclass(frozen=True)
class CountRow:
    """One row of a series, with its timestamp and value text kept as read."""

    text: str
    moment: datetime
    value: str
    number: float


def read_counts_csv(path: Path) -> list[CountRow]:
    """Rows of a ``timestamp,value`` file (extra columns are ignored)."""
    try:
        # utf-8-sig: a spreadsheet's export starts with a byte order mark, which hid the first column
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
                raise SeriesError(f"{path}: expected the columns timestamp,value")
            rows = [_row(path, line, record) for line, record in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SeriesError(f"{path}: cannot read ({error})") from error
    if len(rows) < 2:
        raise SeriesError(f"{path}: need at least two rows")
    low, high = min(row.number for row in rows), max(row.number for row in rows)
    if not math.isfinite(high - low):  # the detectors level values over their span
        raise SeriesError(f"{path}: the values span {low:g} to {high:g}, more than a number can hold")
    return rows


def _row(path: Path, line: int, record: dict[str, str]) -> CountRow:
    text, value = (record.get("timestamp") or "").strip(), (record.get("value") or "").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SeriesError(f"{path}:{line}: timestamp {text!r} is not a date and time") from None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise SeriesError(f"{path}:{line}: value {value!r} is not a finite number")
    return CountRow(text, moment, value, number)


def check_order(path: Path, rows: list[CountRow]) -> None:
    """Timestamps may repeat, be irregular and even step back (NAB has such a file): rows are
    scored in file order. Only a mix of zoned and naive timestamps is refused."""
    aware = [row.moment.tzinfo is not None for row in rows]
    if any(aware) and not all(aware):
        raise SeriesError(f"{path}: some timestamps have a time zone and some do not")


# The single-series detectors of ``replay --input`` (docs/alerts.md compares them).
DETECTORS = ("resonance_gated", "resonance", "gated", "combined", "context", "novelty")
DEFAULT_DETECTOR = "resonance_gated"


def score_counts(
    rows: list[CountRow],
    config: NoveltyConfig | None = None,
    detector: str = DEFAULT_DETECTOR,
    context_config: ContextConfig | None = None,
    gated_config: GatedConfig | None = None,
) -> list[float]:
    """One anomaly score per row: ``gated`` (:class:`GatedDetector`), ``resonance`` (ARTime's
    algorithm, :mod:`services.alerts.resonance`: it reads the file's range and length first,
    as NAB allows, then scores each row from the rows up to it), ``novelty``
    (:class:`NoveltyScorer`), ``context`` (:class:`ContextDetector`) or ``combined`` (the
    larger of the last two on each row)."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if detector == "resonance":
        return resonance_scores([row.number for row in rows])
    if detector == "resonance_gated":
        return resonance_gated_scores([row.number for row in rows], gated_config=gated_config)
    if detector == "gated":
        gated = GatedDetector(gated_config)
        return [round(gated.update(row.number), SCORE_DECIMALS) for row in rows]
    novelty = NoveltyScorer(config) if detector != "context" else None
    context = ContextDetector(context_config) if detector != "novelty" else None
    scores = []
    for row in rows:
        score = novelty.update(row.number) if novelty is not None else 0.0
        if context is not None:
            score = max(score, context.update(row.number))
        scores.append(round(score, SCORE_DECIMALS))
    return scores


def replay_counts_csv(
    input_path: Path | str,
    output_path: Path | str,
    config: NoveltyConfig | None = None,
    detector: str = DEFAULT_DETECTOR,
) -> int:
    """Score a ``timestamp,value`` series and write ``timestamp,value,anomaly_score``; returns the rows.

    Raises :class:`SeriesError` (one line) for a series it cannot use.
    """
    path = Path(input_path)
    rows = read_counts_csv(path)
    check_order(path, rows)
    scores = score_counts(rows, config, detector)
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for row, score in zip(rows, scores, strict=True):
            writer.writerow([row.text, row.value, score])
    return len(rows)


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


def read_post_counts(path: Path, bucket_seconds: int, *, max_future_seconds: float = 300.0,
                     now: float | None = None) -> Counter[tuple[datetime, AlertKey]]:
    """Posts per (bucket, key) in a JSONL file of ``posts.enriched`` records, each post once
    (a dump of the topic holds a post as often as it was written; the worker counts it once).

    A post counts when the worker counts it (:func:`~services.alerts.windows.event_time`): at most
    ``max_future_seconds`` after its ``received_at`` (when the record has one), and its arrival at
    most ``now``; one dated and received "9999" made the replay step every bucket to then."""
    now = time.time() if now is None else now
    counts: Counter[tuple[datetime, AlertKey]] = Counter()
    seen: set[str] = set()
    for number, line in utf8_lines(Path(path)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            moment = _aware(datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")))
            received = record.get("received_at")
            arrival = (_aware(datetime.fromisoformat(received.replace("Z", "+00:00"))) if received
                       else datetime.fromtimestamp(now, tz=UTC))
            keys = keys_of(Topic(record["topic"]), record.get("region"))
            post_id = record.get("post_id")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}:{number}: not an enriched post ({error})") from error
        if isinstance(post_id, str):
            if post_id in seen:
                continue
            seen.add(post_id)
        counted = event_time(moment, arrival, max_future_seconds, now=now)
        bucket = bucket_start_of(datetime.fromtimestamp(counted, tz=UTC), bucket_seconds)
        for key in keys:
            counts[(bucket, key)] += 1
    return counts


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _judged(buckets: list[datetime], tracker: AlertTracker, bucket_seconds: int) -> Iterator[datetime]:
    """The buckets to judge, in order: each with posts, and each after one while an alert fires or
    waits (it may resolve or fire). The others are judged as the worker judges them: each key
    steps through them inside its detector when it next has posts, and forgets its recent history
    instead over a gap longer than ``max_gap_hours``; stepping every key through every bucket
    between the dump's first post and its last took minutes per key over years."""
    step = timedelta(seconds=bucket_seconds)
    moment = buckets[0]
    while moment <= buckets[-1]:
        yield moment
        moment += step
        if not (tracker.firing() or tracker.pending()):
            moment = max(moment, buckets[min(bisect_left(buckets, moment), len(buckets) - 1)])
def replay_posts_jsonl(
    input_path: Path | str,
    config: DetectorConfig | None = None,
    tracker_config: TrackerConfig | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[AlertEvent]:
    """Alert events that past enriched posts would have caused, in order.

    Every key seen in the file is followed from the file's first bucket to its
    last, empty buckets included (a gap longer than ``max_gap_hours`` is forgotten, as the
    worker forgets it). ``echo``, when given, receives one line per event (see
    :func:`format_event`).
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
    for bucket in _judged(buckets, tracker, config.bucket_seconds):
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
