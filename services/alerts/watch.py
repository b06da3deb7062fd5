"""Windowed counts per key, detection on window close, one alert per surge (pure).

:class:`SurgeWatch` is the counting stage of the alerts worker without Kafka:
the worker hands it every post (as an :class:`Observation`) and the event time,
and publishes the alerts it returns. Its state lives in four mappings that the
worker backs with changelog-backed Faust tables (tests use dicts), so a restart
resumes from the tables instead of recounting the topic:

``windows``   key label -> :class:`~services.alerts.state.KeyWindows`: open buckets of
              that key and their :class:`WindowEvidence`, and the last source offset
              counted into the key per partition; the ``overall`` entry also keeps
              running totals
``detectors`` key label -> :class:`~services.alerts.state.DetectorEntry`: the key's
              :class:`SurgeDetector` state
``desk``      ``"desk"`` -> :class:`~services.alerts.state.Desk`: watermark, last closed
              bucket, :class:`AlertTracker` state, the open alerts and their explanations
``posts``     post id -> :class:`~services.alerts.state.SeenPost`: its bucket and source
              offset, for the posts in open buckets

Values are always replaced, never changed in place, so every change reaches
the changelog.

**Each post counts once.** Kafka delivers at least once, and a worker killed
mid-batch leaves any subset of that batch's table writes behind: each changelog
message lands or not on its own. So every key's entry carries its own offset
marks, written in the same message as its counts. A post read again (after a
restart) is counted into exactly the keys whose marks it has not passed. A post
written twice upstream (same post id, another offset: an NLP worker restarted
before it committed) is recognised by ``posts`` and counted once.

When a bucket closes, every key with posts in it, and every key with an alert
firing, gets its detection for that bucket (a firing key with no posts is fed a
zero so that it can resolve; other keys without posts catch up on the empty
buckets inside the detector the next time they have posts). The detections go
to one :class:`AlertTracker`, which fires, escalates and resolves alerts and
keeps a surge that shows at several levels of the topic hierarchy to one alert.

A surge often also shows as a surge of one *source* or one *issue* (the
``cluster`` family); such an alert is folded into the topic or topic-region
alert that holds it (:mod:`services.alerts.publish`). An issue the grouping merged
into another hands its evidence on to that one's key at each close
(:mod:`services.alerts.issue_aliases`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.alerts import outbox
from services.alerts.detector import Detection, DetectorConfig, SurgeDetector
from services.alerts.evidence import EvidenceLimits, Observation, WindowEvidence
from services.alerts.issue_aliases import aliases_in_use, follow_merges, note_merges
from services.alerts.keys import is_issue
from services.alerts.lifecycle import AlertTracker, TrackerConfig
from services.alerts.publish import Publisher
from services.alerts.state import Desk, DetectorEntry, KeyWindows, SeenPost, kept_verdicts, marked, passes
from services.alerts.windows import WindowPolicy, bucket_datetime, bucket_of
from yuqing.contracts import Alert, AlertKey

Table = MutableMapping[str, Any]
DESK = "desk"
SWEEP_EVERY_SECONDS = 3600


OVERALL = "overall"
# The order in which the worker stores a batch's tables, each one on the broker
# before the next: a kill leaves a prefix of this order (and any part of one table).
STORE_ORDER = ("detectors", "windows", "posts", "desk")


class Counted(StrEnum):
    COUNTED = "counted"
    LATE = "late"
    REPLAYED = "replayed"  # an offset already counted (read again after a restart)
    DUPLICATE = "duplicate"  # a post id already counted, under another offset


@dataclass(frozen=True)
class WatchConfig:
    window: WindowPolicy
    detector: DetectorConfig
    tracker: TrackerConfig
    evidence: EvidenceLimits = field(default_factory=EvidenceLimits)
    retention_seconds: int = 7 * 24 * 3600
    # An issue takes no post after its grouping gap (3 h) but on strong evidence: its key is
    # forgotten after this long idle, which bounds the keys to the issues active lately.
    issue_retention_seconds: int = 4 * 3600

    def detector_for(self, key: AlertKey) -> DetectorConfig:
        """An issue's key has no past to watch (before its first post it had none), so the
        absolute-rate rule judges it from its first bucket: a fast-growing issue alerts. The
        rule's ratio stays: a matter raised steadily all day (2 to 7 posts a bucket on a day of
        the demo history) never doubles its busiest 15 minutes; without the ratio 27 such issues
        alerted that day, with it none."""
        if is_issue(key):
            return replace(self.detector, new_key_watch_hours=0.0)
        return self.detector


@dataclass
class ClosedBucket:
    """What closing one bucket produced."""

    bucket: int
    alerts: list[Alert] = field(default_factory=list)
    family_max: dict[str, float] = field(default_factory=dict)


@dataclass
class Advance:
    closed_through: int | None
    closed: list[ClosedBucket] = field(default_factory=list)
    firing: dict[str, int] = field(default_factory=dict)


class SurgeWatch:
    def __init__(
        self, config: WatchConfig, *, windows: Table, detectors: Table, desk: Table, posts: Table,
    ) -> None:
        self.config = config
        self.windows, self.detectors, self._desk_table, self.posts = windows, detectors, desk, posts
        self._watermark = float("-inf")
        # The oldest bucket counted, until the first close: scanned from the tables
        # once, then kept up to date as posts are counted.
        self._oldest: int | None = None
        self._oldest_known = False
        self._forget_through: int | None = None
        self._buckets_forgotten: int | None = None  # closed buckets' evidence forgotten through
        # Live detectors, so that their state is serialised once per persist() and
        # not once per bucket; each remembers the last bucket it was stored with.
        self._live: dict[str, tuple[int, SurgeDetector]] = {}
        self._unsaved: dict[str, AlertKey] = {}
        self._verdicts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # since persist()

    # -- counting ---------------------------------------------------------

    def add(self, obs: Observation, *, partition: int, offset: int) -> Counted:
        """Count a post, read at ``offset`` of source ``partition``, into its window.

        Offsets a key has already counted are skipped (a replay after a
        restart), and so is a post id already counted in an open bucket under
        another offset (a post written twice upstream).
        """
        bucket = bucket_of(obs.event_time, self.config.window.bucket_seconds)
        closed_through = self._desk().closed_through
        late = closed_through is not None and bucket <= closed_through
        stored = self.posts.get(obs.post_id)
        first = SeenPost.from_dict(stored) if stored is not None else None
        if first is None and not late:
            self.posts[obs.post_id] = SeenPost(bucket, partition, offset).to_dict()
        if late:
            outcome = Counted.LATE
        elif first is not None and (first.partition, first.offset) != (partition, offset):
            outcome = Counted.DUPLICATE
        else:
            outcome = Counted.COUNTED
        keys = obs.keys if outcome is Counted.COUNTED else ()
        if keys and self._oldest_known and (self._oldest is None or bucket < self._oldest):
            self._oldest = bucket
        counted_any = False
        for key in keys:
            counted_any |= self._count(key, bucket, obs, partition, offset)
        if not self._tally(outcome, partition, offset) and not counted_any:
            return Counted.REPLAYED
        return outcome

    def totals(self) -> dict[str, int]:
        """Posts counted, late and duplicate since the worker first started (replays excluded)."""
        entry = self._entry(OVERALL)
        return {**_NO_TOTALS, **(entry.totals if entry else {})}

    def _tally(self, outcome: Counted, partition: int, offset: int) -> bool:
        """Add the post to the running totals (in the overall entry); False if it already was."""
        entry = self._entry(OVERALL) or KeyWindows(_dump(AlertKey(family="overall")))
        if not passes(entry.totals_through, partition, offset):
            return False
        totals = {**_NO_TOTALS, **entry.totals}
        totals[outcome.value] += 1
        self.windows[OVERALL] = replace(
            entry, totals=totals, totals_through=marked(entry.totals_through, partition, offset)).to_dict()
        return True

    def _entry(self, label: str) -> KeyWindows | None:
        stored = self.windows.get(label)
        return KeyWindows.from_dict(stored) if stored is not None else None

    def _count(self, key: AlertKey, bucket: int, obs: Observation, partition: int, offset: int) -> bool:
        label = key.label()
        entry = self._entry(label) or KeyWindows(_dump(key))
        if not passes(entry.counted_through, partition, offset):
            return False
        stored = entry.buckets.get(str(bucket))
        evidence = WindowEvidence.from_dict(stored) if stored else WindowEvidence()
        evidence.add(obs, self.config.evidence)
        self.windows[label] = replace(
            entry, buckets={**entry.buckets, str(bucket): evidence.to_dict()},
            counted_through=marked(entry.counted_through, partition, offset)).to_dict()
        return True

    def open_windows(self) -> int:
        return sum(len(entry["buckets"]) for entry in self.windows.values())

    # -- closing ----------------------------------------------------------

    def advance(self, watermark: float, *, now: datetime) -> Advance:
        """Move the watermark (never back) and close the buckets it passes."""
        desk = self._desk()
        stored = desk.watermark if desk.watermark is not None else watermark
        self._watermark = max(self._watermark, stored, watermark)
        if desk.closed_through is None:
            desk.closed_through = self._first_bucket()
            if desk.closed_through is None:
                return Advance(None)
        due = self.config.window.to_close(desk.closed_through, self._watermark)
        result = Advance(desk.closed_through)
        if not due:
            return result
        with_data = self._buckets_with_data(desk.closed_through)
        tracker = AlertTracker(self.config.tracker, desk.tracker)
        for bucket in due:
            if bucket in with_data or tracker.firing() or tracker.pending():
                closed = self._close(bucket, with_data.get(bucket, []), tracker, desk, now)
                _tally(desk.published, closed.alerts)
                result.closed.append(closed)
                tracker.prune(bucket_datetime(bucket))
                desk.tracker = tracker.to_dict()
            desk.closed_through = bucket
            self._sweep(bucket, tracker, desk)
        if result.closed:
            desk.surge_scores = dict(result.closed[-1].family_max)
        desk.watermark = self._watermark
        self._save_desk(desk)
        result.closed_through = desk.closed_through
        result.firing = _firing_by_severity(tracker, desk)
        return result

    def _first_bucket(self) -> int | None:
        """Just before the oldest bucket counted so far (within the retention): where closing starts."""
        if not self._oldest_known:
            starts = [int(b) for entry in self.windows.values() for b in entry["buckets"]]
            self._oldest, self._oldest_known = (min(starts) if starts else None), True
        if self._oldest is None:
            return None
        bucket = self.config.window.bucket_seconds
        horizon = bucket_of(self._watermark - self.config.retention_seconds, bucket)
        return max(self._oldest, horizon) - bucket

    def _buckets_with_data(self, closed_through: int) -> dict[int, list[str]]:
        buckets: dict[int, list[str]] = defaultdict(list)
        for label, stored in list(self.windows.items()):
            entry = KeyWindows.from_dict(stored)
            for b in entry.buckets:  # closed ones wait for persist() to forget them
                if int(b) > closed_through:
                    buckets[int(b)].append(label)
        return buckets

    def _close(
        self, bucket: int, labels: list[str], tracker: AlertTracker, desk: Desk, now: datetime
    ) -> ClosedBucket:
        keys = {label: AlertKey.model_validate(self.windows[label]["key"]) for label in labels}
        firing = set(tracker.firing())
        keys.update({key.label(): key for key in firing})
        evidence: dict[str, WindowEvidence] = {}
        for label in keys:
            evidence_now = self._bucket_evidence(label, bucket)
            if evidence_now is not None:
                evidence[label] = evidence_now
        follow_merges(keys, evidence, firing, desk.aliases, self.config.evidence)
        detections: dict[AlertKey, Detection] = {}
        for label, key in keys.items():
            evidence_now = evidence.get(label)
            detection = self._detect(label, key, bucket, evidence_now.count if evidence_now else 0)
            if detection is not None:
                detections[key] = detection
        relevant = {k: d for k, d in detections.items() if k in firing or self._matters(d)}
        events = tracker.process(bucket_datetime(bucket), relevant)
        evidence.update(_surge_evidence(desk, evidence, {key.label() for key in tracker.pending()}))
        alerts = Publisher(self.config.window.bucket_seconds, desk, evidence, now).publish(events)
        return ClosedBucket(bucket, alerts, _family_max(detections))

    def merged(self, merges: list[tuple[str, str]]) -> None:
        """Issues the grouping merged (issue gone, issue it went into): from now on, when a bucket
        closes, the posts counted under the one count towards the other's cluster key."""
        desk = self._desk()
        note_merges(desk, merges)
        self._save_desk(desk)

    def _matters(self, detection: Detection) -> bool:
        # What the tracker can act on: a possible onset, or a possible surging parent.
        tracker = self.config.tracker
        return detection.score >= tracker.fire_score or detection.intensity >= tracker.resolve_score

    def _bucket_evidence(self, label: str, bucket: int) -> WindowEvidence | None:
        """The bucket's evidence, kept until the close is stored (:meth:`persist` forgets it): a
        batch read again after a kill closes the bucket again, and found none left to close."""
        entry = self._entry(label)
        if entry is None or str(bucket) not in entry.buckets:
            return None
        return WindowEvidence.from_dict(entry.buckets[str(bucket)])

    def _drop_buckets(self, label: str, entry: KeyWindows, buckets: list[str]) -> None:
        remaining = entry.without(buckets)
        if remaining.buckets or label == OVERALL:  # the overall entry keeps its totals
            self.windows[label] = remaining.to_dict()
        else:
            del self.windows[label]

    def _detect(self, label: str, key: AlertKey, bucket: int, count: int) -> Detection | None:
        last, detector = self._detector(label, key, bucket)
        if last is not None and last >= bucket:  # judged before an interrupted close: that verdict
            stored = self.detectors.get(label)
            verdict = DetectorEntry.from_dict(stored).verdicts.get(str(bucket)) if stored else None
            return Detection.from_dict(verdict) if verdict is not None else None
        detection = detector.update(bucket_datetime(bucket), count)
        self._live[label] = (bucket, detector)
        self._unsaved[label] = key
        self._verdicts[label][str(bucket)] = detection.to_dict()
        return detection

    def _new_detector(self, key: AlertKey, config: DetectorConfig, bucket: int) -> SurgeDetector:
        detector = SurgeDetector(config)
        if is_issue(key):
            # an issue had no posts before its first bucket: its first alert expects none
            detector.update(bucket_datetime(bucket - self.config.window.bucket_seconds), 0)
        return detector

    def _detector(self, label: str, key: AlertKey, bucket: int) -> tuple[int | None, SurgeDetector]:
        if label in self._unsaved:
            return self._live[label]
        stored = self.detectors.get(label)
        config = self.config.detector_for(key)
        if stored is None:
            return None, self._new_detector(key, config, bucket)
        entry = DetectorEntry.from_dict(stored)
        cached = self._live.get(label)
        if cached is not None and cached[0] == entry.last_bucket:
            return cached
        return entry.last_bucket, SurgeDetector.from_dict(entry.state, config)

    def persist(self) -> int:
        """End of a batch: store the detectors changed since the last call; returns how many.

        Post ids of the buckets closed before the previous call are forgotten
        now, one batch late: the worker stores a batch's tables in the order
        detectors, windows, posts, desk, and only the previous batch is sure to
        be stored whole, the close that makes a copy of those posts late included.
        """
        closed_stored = self._forget_through
        if closed_stored is not None:
            self._forget_posts(closed_stored)
            self._forget_buckets(closed_stored)
        self._forget_through = self._desk().closed_through
        self._oldest_known = False  # the tables may have been reloaded (a rebalance)
        for label, key in self._unsaved.items():
            last, detector = self._live[label]
            verdicts = kept_verdicts(self.detectors.get(label), self._verdicts[label], closed_stored)
            self.detectors[label] = DetectorEntry(_dump(key), last, detector.to_dict(), verdicts).to_dict()
        count = len(self._unsaved)
        self._unsaved.clear()
        self._verdicts.clear()
        return count

    # -- notifications not yet delivered ----------------------------------

    def hold_notifications(self, alerts: list[Alert]) -> list[str]:
        """Keep alerts to notify in the desk, stored with the batch that published them; returns
        the notifications the outbox had no room for (:func:`services.alerts.outbox.hold`)."""
        if not alerts:
            return []  # the desk is written only when it changes (one changelog message, large)
        desk = self._desk()
        left_out = outbox.hold(desk, alerts)
        self._save_desk(desk)
        return left_out

    def due_refreshes(self, now: datetime, every: timedelta) -> list[Alert]:
        """Firing alerts to post to Alertmanager again (:func:`services.alerts.outbox.due_refreshes`)."""
        return outbox.due_refreshes(self._desk(), now, every)

    def notifications(self) -> list[Alert]:
        """The notifications held and not yet delivered, oldest first."""
        return outbox.held(self._desk())

    def notified(self, ids: list[str]) -> None:
        """Forget notifications delivered (or given up on: rejected, failed through every retry)."""
        desk = self._desk()
        if outbox.forget(desk, ids):
            self._save_desk(desk)

    def closed_through(self) -> int | None:
        """Start of the last bucket closed, as stored (None before the first close)."""
        return self._desk().closed_through

    def published(self) -> dict[str, int]:
        """Alert events published since the first start, by ``"<state>:<severity>"``, as the
        stored state holds them with the lifecycle that made them: a batch read again after a
        kill publishes its alerts again, and they are in here once."""
        return dict(self._desk().published)

    def surge_scores(self) -> dict[str, float] | None:
        """The highest intensity per key family in the last bucket closed with detections, as
        stored (None before the first); a family without a detection there is left out."""
        scores = self._desk().surge_scores
        return dict(scores) if scores is not None else None

    def firing(self) -> dict[str, int]:
        """Alerts firing now, by severity, as the stored state holds them (folded ones left out)."""
        desk = self._desk()
        return _firing_by_severity(AlertTracker(self.config.tracker, desk.tracker), desk)

    # -- bounded state ----------------------------------------------------

    def _forget_buckets(self, closed_through: int) -> None:
        """The evidence of buckets whose close is stored (a scan of the windows, once per close)."""
        if closed_through == self._buckets_forgotten:
            return
        self._buckets_forgotten = closed_through
        for label, stored in list(self.windows.items()):
            entry = KeyWindows.from_dict(stored)
            closed = [b for b in entry.buckets if int(b) <= closed_through]
            if closed:
                self._drop_buckets(label, entry, closed)

    def _forget_posts(self, closed_through: int) -> None:
        """Post ids of closed buckets: a copy of one arriving now is late anyway."""
        for post_id, seen in list(self.posts.items()):
            if seen["bucket"] <= closed_through:
                del self.posts[post_id]

    def _sweep(self, bucket: int, tracker: AlertTracker, desk: Desk) -> None:
        """Forget keys idle for longer than the retention, issues' keys sooner (hourly, in event time)."""
        if desk.swept is None:
            desk.swept = bucket
        if bucket - desk.swept < SWEEP_EVERY_SECONDS:
            return
        desk.swept = bucket
        firing = {key.label() for key in tracker.firing()}
        horizon = bucket - self.config.retention_seconds
        issue_horizon = bucket - self.config.issue_retention_seconds
        idle = [label for label, entry in list(self.detectors.items())
                if entry["last_bucket"] < (issue_horizon if entry["key"]["family"] == "cluster" else horizon)
                and label not in firing and label not in self._unsaved]
        for label in idle:
            del self.detectors[label]
            self._live.pop(label, None)
        desk.aliases = aliases_in_use(desk.aliases, self.windows, firing, bucket)

    def _desk(self) -> Desk:
        stored = self._desk_table.get(DESK)
        return Desk.from_dict(stored) if stored is not None else Desk()

    def _save_desk(self, desk: Desk) -> None:
        self._desk_table[DESK] = desk.to_dict()


def _surge_evidence(desk: Desk, evidence: dict[str, WindowEvidence], waiting: set[str]
                    ) -> dict[str, WindowEvidence]:
    """Keep the evidence of the bucket where a waiting key's surge began, and hand it back when
    the key stops waiting (it fires now, or was absorbed): by then that bucket's evidence is gone."""
    for label in waiting - desk.waiting.keys():
        if label in evidence:
            desk.waiting[label] = evidence[label].to_dict()
    done = [label for label in desk.waiting if label not in waiting]
    return {label: WindowEvidence.from_dict(desk.waiting.pop(label)) for label in done}


def _tally(published: dict[str, int], alerts: list[Alert]) -> None:
    for alert in alerts:
        kind = f"{alert.state.value}:{alert.severity.value}"
        published[kind] = published.get(kind, 0) + 1


def _family_max(detections: dict[AlertKey, Detection]) -> dict[str, float]:
    best: dict[str, float] = {}
    for key, detection in detections.items():
        best[key.family] = max(best.get(key.family, 0.0), detection.intensity)
    return best


def _firing_by_severity(tracker: AlertTracker, desk: Desk) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in tracker.to_dict()["keys"]:
        state = item["state"]
        if state["firing"] and state["alert_id"] not in desk.folded:
            counts[state["severity"]] += 1
    return dict(counts)


_NO_TOTALS = {Counted.COUNTED.value: 0, Counted.LATE.value: 0, Counted.DUPLICATE.value: 0}


def _dump(key: AlertKey) -> dict[str, Any]:
    return key.model_dump(mode="json", exclude_none=True)
