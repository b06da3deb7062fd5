"""Alert lifecycle: from per-bucket detections to firing and resolved alerts.

Pure logic, no I/O. :class:`AlertTracker` receives, for each closed bucket,
the :class:`~services.alerts.detector.Detection` of every key it follows and
returns the alert events that bucket causes:

* **Fire** when a key's onset score reaches ``fire_score`` and the key has not
  started an alert within ``realert_after_buckets`` (one surge, one alert).
* **Escalate** (a ``firing`` event with the same ``alert_id``) when the detector
  reports a markedly larger onset with a higher severity while firing.
* **Resolve** after ``resolve_after_buckets`` consecutive buckets whose
  intensity is below ``resolve_score`` (hysteresis: the bar to stay firing is
  lower than the bar to fire).
* **Dedup across levels.** Keys form a hierarchy: ``topic_region`` under
  ``topic`` under ``overall`` (``source`` and ``cluster`` under ``overall``).
  ``overall`` and ``topic`` keys wait up to ``dedup_wait_buckets`` before
  firing (coarse keys carry more posts and often cross the bar a bucket or
  two earlier). If a descendant fires or would fire meanwhile,
  only the most specific key fires; the surging ancestors are listed in
  ``parents`` and are held back for the re-alert interval, as if they had
  fired. The alert's window still starts at the first surging bucket.
  ``source`` and ``cluster`` keys, beside the hierarchy, wait as long as a
  ``topic`` key is waiting, so that they fire with it and can be folded into
  its alert (see ``services.alerts.watch``).

``alert_id`` is derived from the key and the surge's first bucket, so a replay
or a restarted service produces the same ids and sinks can upsert on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.alerts.detector import Detection
from yuqing.contracts import Alert, AlertExplanation, AlertKey, AlertState, Severity

SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
PARENT_FAMILIES = ("overall", "topic")  # families that more specific keys sit under
SIDE_FAMILIES = ("source", "cluster")  # beside the topic hierarchy; folded into topic alerts


@dataclass(frozen=True)
class TrackerConfig:
    """Hysteresis and de-duplication settings of an :class:`AlertTracker`."""

    bucket_seconds: int = 300
    fire_score: float = 0.65
    resolve_score: float = 0.3
    resolve_after_buckets: int = 6
    realert_after_buckets: int = 288
    dedup_wait_buckets: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.resolve_score <= self.fire_score <= 1.0:
            raise ValueError("need 0 <= resolve_score <= fire_score <= 1")
        if self.resolve_after_buckets < 1 or self.realert_after_buckets < 1 or self.dedup_wait_buckets < 0:
            raise ValueError("bucket counts must be positive")


@dataclass(frozen=True)
class AlertEvent:
    """One change of an alert, ready to become a :class:`yuqing.contracts.Alert`."""

    alert_id: str
    key: AlertKey
    state: AlertState
    severity: Severity
    score: float
    window_start: datetime
    window_end: datetime
    observed: float
    expected: float
    parents: tuple[AlertKey, ...] = ()
    escalation: bool = False

    def to_alert(
        self,
        *,
        emitted_at: datetime,
        sample_post_ids: list[str] | None = None,
        explanation: AlertExplanation | None = None,
    ) -> Alert:
        """The contract message; naive datetimes are taken as UTC."""
        base = explanation or AlertExplanation()
        parents = [parent.label() for parent in self.parents]
        return Alert(
            alert_id=self.alert_id,
            key=self.key,
            state=self.state,
            severity=self.severity,
            score=min(max(self.score, 0.0), 1.0),
            window_start=_aware(self.window_start),
            window_end=_aware(self.window_end),
            observed=max(self.observed, 0.0),
            expected=max(self.expected, 0.0),
            sample_post_ids=list(sample_post_ids or [])[:5],
            explanation=base.model_copy(update={"parents": parents or base.parents}),
            emitted_at=_aware(emitted_at),
        )


@dataclass
class KeyState:
    """The lifecycle state of one key (JSON-safe through ``asdict``)."""

    firing: bool = False
    pending_since: str | None = None
    alert_id: str | None = None
    window_start: str | None = None
    last_start: str | None = None
    quiet_buckets: int = 0
    severity: str | None = None
    score: float = 0.0
    observed: float = 0.0
    expected: float = 0.0
    parents: list[dict[str, Any]] = field(default_factory=list)


def make_alert_id(key: AlertKey, window_start: datetime) -> str:
    """Deterministic id of the alert that starts at ``window_start`` for ``key``."""
    text = f"{key.label()}|{window_start.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def ancestors(key: AlertKey) -> list[AlertKey]:
    """Less specific keys that contain ``key``, nearest first."""
    overall = AlertKey(family="overall")
    if key.family == "topic_region":
        return [AlertKey(family="topic", topic=key.topic), overall]
    if key.family == "overall":
        return []
    return [overall]


class AlertTracker:
    """Turns per-bucket detections of many keys into alert events."""

    def __init__(self, config: TrackerConfig | None = None, state: dict[str, Any] | None = None) -> None:
        self.config = config or TrackerConfig()
        self._keys: dict[AlertKey, KeyState] = {}
        if state is not None:
            for item in state["keys"]:
                self._keys[AlertKey.model_validate(item["key"])] = KeyState(**item["state"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state; ``AlertTracker(config, state=...)`` restores it."""
        return {
            "keys": [
                {"key": key.model_dump(mode="json"), "state": asdict(state)}
                for key, state in self._keys.items()
            ]
        }

    def firing(self) -> list[AlertKey]:
        """Keys with an alert firing now."""
        return [key for key, state in self._keys.items() if state.firing]

    def pending(self) -> list[AlertKey]:
        """Keys whose alert waits for a more specific key (see ``dedup_wait_buckets``).

        Call :meth:`process` for the next buckets while this is not empty, even
        with no detections, so that they fire or are absorbed.
        """
        return [key for key, state in self._keys.items() if state.pending_since is not None]

    def prune(self, now: datetime) -> None:
        """Forget keys that are not firing, not pending, and no longer held back."""
        hold = timedelta(seconds=self.config.bucket_seconds * self.config.realert_after_buckets)
        self._keys = {
            key: state
            for key, state in self._keys.items()
            if state.firing
            or state.pending_since is not None
            or (state.last_start is not None and now - datetime.fromisoformat(state.last_start) < hold)
        }

    def process(self, bucket_start: datetime, detections: Mapping[AlertKey, Detection]) -> list[AlertEvent]:
        """Events caused by one closed bucket, given every key's detection for it."""
        bucket_end = bucket_start + timedelta(seconds=self.config.bucket_seconds)
        events: list[AlertEvent] = []
        for key, detection in detections.items():
            state = self._keys.setdefault(key, KeyState())
            if state.firing:
                event = self._continue(key, state, detection, bucket_end)
                if event is not None:
                    events.append(event)
            elif state.pending_since is None and self._may_fire(state, detection, bucket_start):
                self._hold(state, detection, bucket_start)
        events.extend(self._fire(detections, bucket_start, bucket_end))
        return events

    # -- firing keys ------------------------------------------------------

    def _continue(
        self, key: AlertKey, state: KeyState, detection: Detection, bucket_end: datetime
    ) -> AlertEvent | None:
        config = self.config
        if detection.intensity >= config.resolve_score:
            state.quiet_buckets = 0
            if detection.observed > state.observed:
                state.observed, state.expected = detection.observed, detection.expected
            return self._escalation(key, state, detection, bucket_end)
        state.quiet_buckets += 1
        if state.quiet_buckets < config.resolve_after_buckets:
            return None
        state.firing = False
        return self._event(key, state, AlertState.RESOLVED, bucket_end)

    def _escalation(
        self, key: AlertKey, state: KeyState, detection: Detection, bucket_end: datetime
    ) -> AlertEvent | None:
        severity = detection.severity
        if severity is None or detection.score < self.config.fire_score:
            return None
        if SEVERITY_ORDER[severity] <= SEVERITY_ORDER[Severity(state.severity or Severity.INFO)]:
            return None
        state.severity, state.score = severity.value, max(state.score, detection.score)
        return self._event(key, state, AlertState.FIRING, bucket_end, escalation=True)

    # -- new alerts -------------------------------------------------------

    def _may_fire(self, state: KeyState, detection: Detection, bucket_start: datetime) -> bool:
        if detection.score < self.config.fire_score:
            return False
        if state.last_start is None:
            return True
        elapsed = bucket_start - datetime.fromisoformat(state.last_start)
        return elapsed >= timedelta(seconds=self.config.bucket_seconds * self.config.realert_after_buckets)

    def _hold(self, state: KeyState, detection: Detection, bucket_start: datetime) -> None:
        """Note a would-be alert; it fires once no more specific key can claim it."""
        state.pending_since = bucket_start.isoformat()
        state.severity = (detection.severity or Severity.INFO).value
        state.score = detection.score
        state.observed, state.expected = detection.observed, detection.expected

    def _fire(
        self, detections: Mapping[AlertKey, Detection], bucket_start: datetime, bucket_end: datetime
    ) -> list[AlertEvent]:
        pending = [key for key, state in self._keys.items() if state.pending_since is not None]
        busy = set(pending) | set(self.firing())
        covered = {parent for key in busy for parent in ancestors(key)}
        # A topic alert on its way: a source or cluster surge waits for it, so that it can be
        # folded into it (services.alerts.watch) instead of raising a second alert first.
        host_waiting = any(key.family == "topic" and key not in covered for key in pending)
        events = []
        for key in pending:
            state = self._keys[key]
            assert state.pending_since is not None
            if key in covered:
                # A more specific key reports this surge.
                state.last_start, state.pending_since = state.pending_since, None
            elif not self._may_be_claimed(key, state, bucket_start, host_waiting):
                parents = [
                    p for p in ancestors(key) if self._is_surging(p, detections, busy, bucket_start)
                ]
                events.append(self._start(key, state, parents, bucket_end))
        return events

    def _may_be_claimed(
        self, key: AlertKey, state: KeyState, bucket_start: datetime, host_waiting: bool = False,
    ) -> bool:
        """Whether a more specific key (or, for a source or cluster, a topic) could still take it over."""
        assert state.pending_since is not None
        if key.family not in PARENT_FAMILIES and not (key.family in SIDE_FAMILIES and host_waiting):
            return False
        waited = bucket_start - datetime.fromisoformat(state.pending_since)
        return waited < timedelta(seconds=self.config.bucket_seconds * self.config.dedup_wait_buckets)

    def _is_surging(
        self, key: AlertKey, detections: Mapping[AlertKey, Detection], busy: set[AlertKey],
        bucket_start: datetime,
    ) -> bool:
        """Firing, waiting, held back within the dedup wait, or strong in this bucket."""
        if key in busy:
            return True
        detection = detections.get(key)
        if detection is not None and detection.intensity >= self.config.fire_score:
            return True
        state = self._keys.get(key)
        if state is None or state.last_start is None:
            return False
        wait = timedelta(seconds=self.config.bucket_seconds * self.config.dedup_wait_buckets)
        return bucket_start - datetime.fromisoformat(state.last_start) <= wait

    def _start(
        self, key: AlertKey, state: KeyState, parents: list[AlertKey], bucket_end: datetime
    ) -> AlertEvent:
        assert state.pending_since is not None
        window_start = datetime.fromisoformat(state.pending_since)
        state.firing, state.quiet_buckets, state.pending_since = True, 0, None
        state.alert_id = make_alert_id(key, window_start)
        state.window_start = state.last_start = window_start.isoformat()
        state.parents = [parent.model_dump(mode="json") for parent in parents]
        return self._event(key, state, AlertState.FIRING, bucket_end)

    def _event(
        self, key: AlertKey, state: KeyState, kind: AlertState, bucket_end: datetime, escalation: bool = False
    ) -> AlertEvent:
        assert state.alert_id is not None and state.window_start is not None
        return AlertEvent(
            alert_id=state.alert_id,
            key=key,
            state=kind,
            severity=Severity(state.severity or Severity.INFO),
            score=state.score,
            window_start=datetime.fromisoformat(state.window_start),
            window_end=bucket_end,
            observed=state.observed,
            expected=state.expected,
            parents=tuple(AlertKey.model_validate(p) for p in state.parents),
            escalation=escalation,
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
