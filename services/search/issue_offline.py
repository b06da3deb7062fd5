"""``yuqing issues group``: the live grouping run over a file of posts.

Input lines ``{"id", "text", "created_at", "region"?, "channel"?, "topic"?,
"topic_scores"?, "inferred_region"?}`` (``created_at`` ISO 8601; without a zone it is
local time, UTC+8 unless told otherwise); output lines ``{"id", "issue_id"}`` in input order. Posts
are fed to the same ``IssueGrouper`` the indexer uses, in the order the indexer
would see them (by ``created_at``, ties in input order). A post without a topic
is classified by the default model and the topic rules, as the NLP worker would
(its topic scores give the grouping the classifier's second choice);
a post without a region and without ``inferred_region`` is placed by the NLP
worker's gazetteer (``config/places.toml``) and the townships the file's
regions name, as the indexer places it (``issue_towns.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.open_issues import runner_up
from yuqing.contracts import Topic
from yuqing.paths import utf8_lines
from yuqing.places import Gazetteer

# a text's topic and the topic scores it was chosen from (as on ``posts.enriched``)
Classified = tuple[str, Mapping[str, float]]
Classify = Callable[[Sequence[str]], list[Classified]]
DEFAULT_UTC_OFFSET_HOURS = 8.0  # the deployment's local time (the alerts' ``utc_offset_hours``)
TOPICS = frozenset(topic.value for topic in Topic)


def read_posts(path: Path, utc_offset_hours: float = DEFAULT_UTC_OFFSET_HOURS) -> list[dict[str, Any]]:
    """The file's rows, ``created_at`` read and written back as an aware ISO time (a time without a
    zone is local time, ``utc_offset_hours`` east of UTC); a bad line raises ValueError naming the
    file and the line's number.

    A byte order mark (editors on Windows write one) and CRLF line ends are read as well.
    """
    rows = []
    for number, line in utf8_lines(path):
        if line.strip():
            try:
                rows.append(_row(line, utc_offset_hours))
            except ValueError as exc:
                raise ValueError(f"{path}: line {number}: {exc}") from None
    return rows


_STRING_FIELDS = ("text", "created_at", "region", "channel", "topic", "inferred_region")


def _row(line: str, utc_offset_hours: float) -> dict[str, Any]:
    # Checked here: grouping took a null text as the word "None", and a number as a time failed
    # deep inside with a traceback.
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object ({exc})") from None
    if not isinstance(row, dict) or not {"id", "text", "created_at"} <= row.keys():
        raise ValueError("needs id, text and created_at")
    if isinstance(row["id"], bool) or not isinstance(row["id"], str | int):
        raise ValueError(f"id must be a string or a whole number, not {json.dumps(row['id'])}")
    for name in _STRING_FIELDS:
        optional = name not in ("text", "created_at")
        if name == "created_at" and _is_number(row[name]):
            continue  # seconds or milliseconds since the epoch (parse_time)
        if not isinstance(row.get(name), str) and not (optional and row.get(name) is None):
            raise ValueError(f"{name} must be a string, not {json.dumps(row[name])}")
    row["created_at"] = parse_time(row["created_at"], utc_offset_hours).isoformat()
    if row.get("topic") is not None:
        # "Billing" or " outage" was a topic of its own: an issue id "Billing-…", compatible with
        # no topic, never the same as the model's "billing"
        topic = row["topic"].strip().lower()
        if topic and topic not in TOPICS:
            raise ValueError(f"topic {row['topic']!r} is none of {', '.join(sorted(TOPICS))} "
                             "(leave it out and the model classifies the post)")
        row["topic"] = topic or None
    return row


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# 2026/3/2 8:15 (a spreadsheet's export): year/month/day and an hour of one digit
_SLASHED = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})(?:([ T])(\d{1,2})(?=:))?")
EPOCH_MILLISECONDS = 1e11  # a number at least this large counts milliseconds (1e11 s is year 5138)


def parse_time(value: object, utc_offset_hours: float = DEFAULT_UTC_OFFSET_HOURS) -> datetime:
    """An ISO 8601 time (``T`` or a space between date and time, ``/`` or ``-`` between year,
    month and day; ``Z`` for UTC); one without a zone is local time, ``utc_offset_hours`` east of
    UTC, as a county's own export would write it. A number is seconds since the epoch, or
    milliseconds from ``EPOCH_MILLISECONDS`` on, as a database export writes it."""
    if _is_number(value):
        assert isinstance(value, int | float)
        seconds = value / 1000 if abs(value) >= EPOCH_MILLISECONDS else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"created_at {value!r} is no time since the epoch") from None
    if not isinstance(value, str):
        raise ValueError(f"created_at must be an ISO 8601 time, got {value!r}")
    text = value.strip().replace("Z", "+00:00")
    # 2026/03/02 08:15 (a spreadsheet's export): the slashes of the date read as hyphens
    text = _SLASHED.sub(lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}{m[4] or ''}"
                        + (f"{int(m[5]):02d}" if m[5] else ""), text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"created_at is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(timedelta(hours=utc_offset_hours)))
    return moment


def model_topics(texts: Sequence[str]) -> list[Classified]:
    """Topics and topic scores from the default model and the topic rules, as the NLP worker
    assigns them."""
    from services.nlp.classifier import load_classifier
    from services.nlp.enrich import apply_rules, load_rules, normalize
    from services.nlp.settings import NlpSettings

    rules = load_rules(NlpSettings().rules_path)
    classifier = load_classifier()
    predictions = classifier.predict([normalize(t) for t in texts])
    return [apply_rules(normalize(text), p.topic_scores, rules)[:2]
            for text, p in zip(texts, predictions, strict=True)]


@cache
def configured_places() -> Gazetteer:
    """The NLP worker's gazetteer: the regions it infers for posts that carry none."""
    from services.nlp.settings import NlpSettings

    return NlpSettings().gazetteer()


def with_topics(rows: list[dict[str, Any]], classify: Classify | None) -> list[Classified | None]:
    """Each row's topic and topic scores: given (``topic``, ``topic_scores``?), else classified
    (all missing ones in one call)."""
    topics: list[Classified | None] = [(row["topic"], row.get("topic_scores") or {}) if row.get("topic")
                                       else None for row in rows]
    missing = [i for i, topic in enumerate(topics) if not topic]
    if missing and classify is not None:
        for i, found in zip(missing, classify([rows[i]["text"] for i in missing]), strict=True):
            topics[i] = found
    return topics


def post_of(row: dict[str, Any], classified: Classified | None) -> PostSignal:
    topic, scores = classified or (None, {})
    second, gap = runner_up(topic, scores)
    return PostSignal(post_id=str(row["id"]), text=str(row["text"]),
                      created_at=parse_time(row["created_at"]), region=row.get("region") or None,
                      topic=topic, inferred_region=row.get("inferred_region") or None,
                      second_topic=second, second_gap=gap,
                      topic_share=max(scores.values()) if scores else None)


def group_rows(rows: list[dict[str, Any]], *, classify: Classify | None = model_topics,
               params: GroupingParams | None = None, places: Gazetteer | None = None) -> list[str]:
    """The issue id of each row, in input order; ``places``: the gazetteer a post without a
    region is placed by (default: the NLP worker's)."""
    signals = [post_of(row, found) for row, found in zip(rows, with_topics(rows, classify), strict=True)]
    order = sorted(range(len(signals)), key=lambda i: (signals[i].created_at, i))
    grouper = IssueGrouper(params, configured_places() if places is None else places)
    issues: dict[int, str] = {}
    for i in order:
        issues[i] = grouper.assign(signals[i]).issue_id
    # a later merge may have renamed an issue that earlier posts joined
    return [grouper.resolve(issues[i]) for i in range(len(signals))]


def write_assignments(path: Path, rows: Iterable[dict[str, Any]], issue_ids: Iterable[str]) -> int:
    lines = [json.dumps({"id": row["id"], "issue_id": issue}, ensure_ascii=False)
             for row, issue in zip(rows, issue_ids, strict=True)]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)
