"""The counting stage's stored state, with names (pure).

Each class is the value type of one changelog-backed table of
:class:`services.alerts.watch.SurgeWatch` (tests use dicts). Tables hold the
``to_dict()`` form, JSON-safe, and values are always replaced, never changed
in place, so every change reaches the changelog.

``OffsetMarks`` map a source partition (as text: JSON object keys) to the last
offset of that partition already counted, so a post read again after a restart
is skipped exactly where it was counted before.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

OffsetMarks = dict[str, int]


def passes(marks: OffsetMarks, partition: int, offset: int) -> bool:
    """Whether ``offset`` of ``partition`` is past the marks (not counted yet)."""
    done = marks.get(str(partition))
    return done is None or offset > done


def marked(marks: OffsetMarks, partition: int, offset: int) -> OffsetMarks:
    return {**marks, str(partition): offset}


@dataclass(frozen=True)
class KeyWindows:
    """``windows`` table: one key's open buckets and what has been counted into them.

    ``buckets`` maps a bucket start (epoch seconds, as text) to that bucket's
    :class:`~services.alerts.evidence.WindowEvidence` in ``to_dict`` form,
    kept serialised so that counting a post decodes only its own bucket.
    The ``overall`` entry also keeps the running totals of posts counted,
    late and duplicate, with their own offset marks.
    """

    key: dict[str, Any]
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    counted_through: OffsetMarks = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    totals_through: OffsetMarks = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "buckets": self.buckets, "counted_through": self.counted_through,
                "totals": self.totals, "totals_through": self.totals_through}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyWindows:
        return cls(key=data["key"], buckets=data["buckets"], counted_through=data["counted_through"],
                   totals=data.get("totals", {}), totals_through=data.get("totals_through", {}))

    def without(self, buckets: list[str]) -> KeyWindows:
        return replace(self, buckets={b: v for b, v in self.buckets.items() if b not in buckets})


@dataclass(frozen=True)
class DetectorEntry:
    """``detectors`` table: one key's detector state and the last bucket it judged.

    ``verdicts`` are the :class:`~services.alerts.detector.Detection` (``to_dict`` form) of the
    buckets it judged whose close may not be stored yet, by bucket start (as text): the
    detectors are stored before the desk, and a batch read again after a kill between the two
    closes those buckets again with the verdicts given then (the state has moved past them).
    """

    key: dict[str, Any]
    last_bucket: int
    state: dict[str, Any]
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        stored = {"key": self.key, "last_bucket": self.last_bucket, "state": self.state}
        return {**stored, "verdicts": self.verdicts} if self.verdicts else stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorEntry:
        return cls(key=data["key"], last_bucket=int(data["last_bucket"]), state=data["state"],
                   verdicts=dict(data.get("verdicts", {})))


def kept_verdicts(stored: dict[str, Any] | None, new: dict[str, dict[str, Any]],
                  closed_stored: int | None) -> dict[str, dict[str, Any]]:
    """A key's verdicts to store: those of its stored entry and the ``new`` ones, but for the
    buckets whose close is stored (``closed_stored``; None: not known, all kept)."""
    verdicts = {**(stored.get("verdicts", {}) if stored else {}), **new}
    if closed_stored is None:
        return verdicts
    return {bucket: v for bucket, v in verdicts.items() if int(bucket) > closed_stored}


@dataclass(frozen=True)
class SeenPost:
    """``posts`` table: where a post in an open bucket was first counted."""

    bucket: int
    partition: int
    offset: int

    def to_dict(self) -> dict[str, int]:
        return {"bucket": self.bucket, "partition": self.partition, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeenPost:
        return cls(int(data["bucket"]), int(data["partition"]), int(data["offset"]))


@dataclass(frozen=True)
class OpenAlert:
    """An alert firing now, as the desk remembers it to explain its later events."""

    key: str
    bucket: float  # end of the bucket its explanation comes from (epoch seconds)
    explanation: dict[str, Any] | None = None
    samples: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)  # folded source/cluster keys
    issues: list[str] = field(default_factory=list)  # the issues most of its posts belonged to
    notified: dict[str, Any] | None = None  # its last firing message notified (refreshed in time)

    def to_dict(self) -> dict[str, Any]:
        stored = {"key": self.key, "bucket": self.bucket, "explanation": self.explanation,
                  "samples": self.samples, "related": self.related}
        if self.issues:
            stored["issues"] = self.issues
        return {**stored, "notified": self.notified} if self.notified else stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenAlert:
        return cls(key=data["key"], bucket=float(data["bucket"]), explanation=data.get("explanation"),
                   samples=list(data.get("samples", [])), related=list(data.get("related", [])),
                   issues=list(data.get("issues", [])), notified=data.get("notified"))


@dataclass
class Desk:
    """``desk`` table, one value: the stream's progress and the alert lifecycle.

    ``closed_through`` is the last bucket closed (None before the first close),
    ``watermark`` the event time reached, ``tracker`` the
    :class:`~services.alerts.lifecycle.AlertTracker` state, ``open`` the open
    alerts by id, ``folded`` the source/cluster alert ids folded into a host
    alert (id -> host id), ``swept`` the bucket of the last idle-key sweep, and
    ``waiting`` the evidence of the bucket where each waiting key's surge began
    (by key label; a ``topic`` or ``overall`` alert waits for a more specific
    key, and explains itself from that bucket when it fires); ``aliases`` the
    issues merged into another (issue id -> the issue it went into), whose
    posts count towards that issue's cluster key when a bucket closes; ``outbox`` the
    notifications not yet delivered (by :func:`~services.alerts.watch.transition_id`, the
    alert message's JSON), stored with the batch that published them, so that a restart
    sends those its predecessor did not; ``published`` the alert events published since the
    first start, by ``"<state>:<severity>"``, stored in the same message as the lifecycle that
    made them (``yuqing_alerts_alerts_total`` counts what a stored batch added to it);
    ``surge_scores`` the highest intensity per key family in the last bucket closed with
    detections (``yuqing_alerts_surge_score``, set again from here when a worker restarts).
    """

    closed_through: int | None = None
    watermark: float | None = None
    tracker: dict[str, Any] | None = None
    open: dict[str, OpenAlert] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)
    swept: int | None = None
    waiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    outbox: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)
    surge_scores: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"closed_through": self.closed_through, "watermark": self.watermark, "tracker": self.tracker,
                "open": {alert_id: opened.to_dict() for alert_id, opened in self.open.items()},
                "folded": dict(self.folded), "swept": self.swept, "waiting": dict(self.waiting),
                "aliases": dict(self.aliases), "outbox": dict(self.outbox),
                "published": dict(self.published), "surge_scores": self.surge_scores}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Desk:
        return cls(closed_through=data["closed_through"], watermark=data["watermark"],
                   tracker=data["tracker"],
                   open={alert_id: OpenAlert.from_dict(o) for alert_id, o in data["open"].items()},
                   folded=dict(data["folded"]), swept=data.get("swept"),
                   waiting=dict(data.get("waiting", {})), aliases=dict(data.get("aliases", {})),
                   outbox=dict(data.get("outbox", {})), published=dict(data.get("published", {})),
                   surge_scores=data.get("surge_scores"))
