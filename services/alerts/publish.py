"""Alert messages from the tracker's events: explanations, and folding side surges (pure).

A surge often also shows as a surge of one *source* (most complaints come
through one channel) or of one *issue* (the ``cluster`` family: the posts of
one matter). Those families sit beside the topic hierarchy, so the tracker
would raise a second alert for the same event; instead, a new source or issue
alert is *folded* into a firing topic or topic-region alert that holds it: one
whose posts in the same bucket account for at least half of its excess over
expectation, or, for an issue, one that fired on that issue's posts. It is then
listed among that alert's related keys (``explanation.parents``) and sends no
events of its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.alerts.evidence import WindowEvidence
from services.alerts.explain import explain
from services.alerts.keys import band_of, is_band
from services.alerts.lifecycle import AlertEvent
from services.alerts.state import Desk, OpenAlert
from yuqing.contracts import Alert, AlertExplanation, AlertKey, AlertState

HOST_FAMILIES = ("topic_region", "topic")
FOLDABLE_FAMILIES = ("source", "cluster")
FOLD_SHARE = 0.5
# A host alert remembers the issues that held at least this many of its posts when it fired
# (at most HOST_ISSUES of them): an issue surge that comes later folds into it.
HOST_ISSUES, HOST_ISSUE_POSTS = 5, 2


class Publisher:
    """Turns tracker events into alert messages, with explanations and folding."""

    def __init__(self, bucket_seconds: int, desk: Desk, evidence: dict[str, WindowEvidence],
                 now: datetime) -> None:
        self.bucket_seconds, self.desk, self.evidence, self.now = bucket_seconds, desk, evidence, now
        self._started: list[AlertEvent] = []  # host alerts that start in this bucket

    def publish(self, events: list[AlertEvent]) -> list[Alert]:
        # Hosts first, so that a source or cluster surge can fold into them, and
        # messages last, so that a host lists what folded into it in this bucket.
        ordered = sorted(events, key=lambda e: e.key.family in FOLDABLE_FAMILIES)
        kept = [event for event in ordered if not self._folds(event)]
        for event in kept:
            if event.state is AlertState.FIRING:
                self._remember(event)
        return [self._alert(event) for event in kept]

    def _folds(self, event: AlertEvent) -> bool:
        """Whether the event belongs to a surge folded into another alert (recording new folds)."""
        folded = self.desk.folded
        if event.alert_id in folded:
            if event.state is AlertState.RESOLVED:
                del folded[event.alert_id]
            return True
        if event.state is AlertState.RESOLVED or event.escalation:
            return False
        if event.key.family not in FOLDABLE_FAMILIES:
            self._remember(event)  # a possible host
            if event.key.family in HOST_FAMILIES:
                self._started.append(event)
            return False
        host = self._fold_host(event)
        if host is None:
            return False
        folded[event.alert_id] = host
        opened = self.desk.open[host]
        self.desk.open[host] = replace(opened, related=[*opened.related, event.key.label()])
        return True

    def _remember(self, event: AlertEvent) -> None:
        """Explain a firing or escalating alert from this bucket's evidence."""
        stored = self.desk.open.get(event.alert_id)
        evidence = self.evidence.get(event.key.label())
        if stored is not None and (evidence is None or stored.bucket == event.window_end.timestamp()):
            return
        explained = explain(event.key, evidence, observed=event.observed, expected=event.expected,
                            bucket_seconds=self.bucket_seconds)
        issues = evidence.top_issues(HOST_ISSUES, at_least=HOST_ISSUE_POSTS) if evidence else []
        self.desk.open[event.alert_id] = OpenAlert(
            key=event.key.label(), bucket=event.window_end.timestamp(),
            explanation=explained.explanation.model_dump(mode="json"),
            samples=explained.sample_post_ids, related=stored.related if stored else [],
            issues=issues or (stored.issues if stored else []))

    def _alert(self, event: AlertEvent) -> Alert:
        if event.state is AlertState.RESOLVED:
            opened = self.desk.open.pop(event.alert_id, None)
        else:
            opened = self.desk.open.get(event.alert_id)
        opened = opened or OpenAlert(key=event.key.label(), bucket=event.window_end.timestamp())
        explanation = AlertExplanation.model_validate(opened.explanation or {})
        alert = event.to_alert(emitted_at=self.now, sample_post_ids=opened.samples,
                               explanation=explanation)
        if not opened.related:
            return alert
        parents = [*alert.explanation.parents, *opened.related]
        explanation = alert.explanation.model_copy(update={"parents": parents})
        return alert.model_copy(update={"explanation": explanation})

    def _fold_host(self, event: AlertEvent) -> str | None:
        """The open topic alert that explains most of this source or cluster surge, if any."""
        if event.key.family not in FOLDABLE_FAMILIES:
            return None
        held = self._issue_host(event.key)
        if held is not None:
            return held
        excess = max(event.observed - event.expected, 1.0)
        best, best_overlap = None, 0.0
        for alert_id, opened in self.desk.open.items():
            host_evidence = self.evidence.get(opened.key)
            if not opened.key.startswith(HOST_FAMILIES) or host_evidence is None:
                continue
            overlap = _overlap(event.key, host_evidence)
            if overlap >= FOLD_SHARE * excess and overlap > best_overlap:
                best, best_overlap = alert_id, overlap
        return best or self._same_surge(event, excess)

    def _same_surge(self, event: AlertEvent, excess: float) -> str | None:
        """A topic alert that starts now from the same bucket, big enough to hold this surge.

        A source or cluster that waited for a topic (see the tracker) fires with
        it, when this bucket's evidence no longer shows their overlap; the
        shared onset and the host's larger excess stand for it.
        """
        hosts = [h for h in self._started if h.window_start == event.window_start
                 and h.observed - h.expected >= FOLD_SHARE * excess and _may_hold(h.key, event.key)]
        best = max(hosts, key=lambda h: h.observed - h.expected, default=None)
        return best.alert_id if best is not None else None

    def _issue_host(self, key: AlertKey) -> str | None:
        """The open alert, the most specific first, that fired on this issue's posts."""
        if key.family != "cluster" or is_band(key):
            return None
        hosts = [(opened.key.startswith("topic_region"), alert_id)
                 for alert_id, opened in self.desk.open.items()
                 if opened.key.startswith(HOST_FAMILIES) and key.cluster in opened.issues]
        return max(hosts)[1] if hosts else None


def _may_hold(host: AlertKey, key: AlertKey) -> bool:
    """Whether a host's topic fits a surge beside it: an issue id names its founding post's topic
    (``outage-…``), so an outage issue never folds into a rumour alert that starts with it."""
    if key.family != "cluster" or is_band(key) or host.topic is None or not key.cluster:
        return True
    return key.cluster.split("-", 1)[0] == host.topic.value


def _overlap(key: AlertKey, host: WindowEvidence) -> float:
    """How many of the host's posts in the bucket also belong to ``key`` (estimated)."""
    if key.family == "source":
        return float(host.sources.get(key.source or "", 0))
    if not is_band(key):
        return float(host.issues.get(key.cluster or "", 0))
    if not host.samples:
        return 0.0
    same = sum(1 for _, _, fp in host.samples if band_of(fp) == key.cluster)
    return host.count * same / len(host.samples)
