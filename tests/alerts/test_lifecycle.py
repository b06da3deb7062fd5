"""Alert lifecycle: hysteresis, re-alert interval, de-duplication across levels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.alerts.detector import Detection
from services.alerts.lifecycle import AlertTracker, TrackerConfig, ancestors, make_alert_id
from yuqing.contracts import Alert, AlertKey, AlertState, Severity, Topic

T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
OVERALL = AlertKey(family="overall")
OUTAGE = AlertKey(family="topic", topic=Topic.OUTAGE)
OUTAGE_EAST = AlertKey(family="topic_region", topic=Topic.OUTAGE, region="城东")
OUTAGE_WEST = AlertKey(family="topic_region", topic=Topic.OUTAGE, region="城西")
CONFIG = TrackerConfig(fire_score=0.65, resolve_score=0.3, resolve_after_buckets=3, realert_after_buckets=12)


def onset(score: float = 0.8, severity: Severity = Severity.WARNING) -> Detection:
    return Detection(score, severity, observed=40, expected=5, is_surge=True, intensity=score)


def ongoing(intensity: float = 0.7) -> Detection:
    return Detection(0.0, None, observed=30, expected=5, is_surge=False, intensity=intensity)


def quiet() -> Detection:
    return Detection(0.0, None, observed=5, expected=5, is_surge=False, intensity=0.0)


def feed(tracker: AlertTracker, steps: list[dict[AlertKey, Detection]], start: int = 0):
    return [
        (i, event)
        for i, detections in enumerate(steps, start=start)
        for event in tracker.process(T0 + i * STEP, detections)
    ]


def test_fires_once_stays_firing_and_resolves_after_quiet_buckets() -> None:
    tracker = AlertTracker(CONFIG)
    key = OUTAGE_EAST
    steps = [{key: onset()}, {key: ongoing()}, {key: ongoing(0.2)}, {key: ongoing()}]
    steps += [{key: quiet()}] * 3
    events = feed(tracker, steps)
    assert [(i, e.state) for i, e in events] == [(0, AlertState.FIRING), (6, AlertState.RESOLVED)]
    fired, resolved = events[0][1], events[1][1]
    assert fired.alert_id == resolved.alert_id == make_alert_id(key, T0)
    assert resolved.window_start == T0 and resolved.window_end == T0 + 7 * STEP
    assert tracker.firing() == []


def test_one_surge_one_alert_within_the_realert_interval() -> None:
    tracker = AlertTracker(CONFIG)
    key = OUTAGE_EAST
    steps = [{key: onset()}] + [{key: quiet()}] * 3 + [{key: onset()}]
    steps += [{key: quiet()}] * 7 + [{key: onset()}]
    events = feed(tracker, steps)
    fired = [i for i, e in events if e.state is AlertState.FIRING]
    assert fired == [0, 12]
    assert len({e.alert_id for _, e in events}) == 2


def test_low_scores_do_not_fire() -> None:
    events = feed(AlertTracker(CONFIG), [{OUTAGE_EAST: onset(score=0.5, severity=Severity.INFO)}])
    assert events == []


def test_a_parent_key_waits_for_its_children_then_fires_from_its_first_bucket() -> None:
    tracker = AlertTracker(CONFIG)
    events = feed(tracker, [{OUTAGE: onset()}, {OUTAGE: ongoing()}, {}])
    assert [i for i, _ in events] == [2]
    assert events[0][1].window_start == T0
    assert tracker.pending() == []


def test_a_child_firing_during_the_wait_takes_over() -> None:
    tracker = AlertTracker(CONFIG)
    steps = [{OVERALL: onset(), OUTAGE: onset()}, {OUTAGE_EAST: onset(), OUTAGE: ongoing(0.9)}, {}, {}]
    events = feed(tracker, steps)
    assert [(i, e.key, e.parents) for i, e in events] == [(1, OUTAGE_EAST, (OUTAGE, OVERALL))]


def test_prune_keeps_firing_pending_and_held_back_keys_only() -> None:
    tracker = AlertTracker(CONFIG)
    feed(tracker, [{OUTAGE_EAST: onset(), OUTAGE_WEST: quiet(), OVERALL: onset()}])
    tracker.prune(T0 + STEP)
    kept = {AlertKey.model_validate(item["key"]) for item in tracker.to_dict()["keys"]}
    assert kept == {OUTAGE_EAST, OVERALL}


def test_most_specific_key_fires_and_lists_surging_parents() -> None:
    tracker = AlertTracker(CONFIG)
    events = feed(tracker, [{OVERALL: onset(), OUTAGE: onset(), OUTAGE_EAST: onset(), OUTAGE_WEST: quiet()}])
    assert len(events) == 1
    event = events[0][1]
    assert event.key == OUTAGE_EAST
    assert event.parents == (OUTAGE, OVERALL)


def test_parents_surging_without_an_onset_are_listed() -> None:
    events = feed(AlertTracker(CONFIG), [{OVERALL: ongoing(0.9), OUTAGE: quiet(), OUTAGE_EAST: onset()}])
    assert events[0][1].parents == (OVERALL,)


def test_parent_is_held_back_while_a_child_fires() -> None:
    tracker = AlertTracker(CONFIG)
    steps = [{OUTAGE: quiet(), OUTAGE_EAST: onset()}, {OUTAGE: onset(), OUTAGE_EAST: ongoing()}]
    events = feed(tracker, steps + [{}] * 3)
    assert [e.key for _, e in events] == [OUTAGE_EAST]


def test_two_regions_surging_together_fire_separately() -> None:
    tracker = AlertTracker(CONFIG)
    events = feed(tracker, [{OUTAGE: onset(), OUTAGE_EAST: onset(), OUTAGE_WEST: onset()}])
    assert sorted(e.key.region for _, e in events) == ["城东", "城西"]
    assert all(e.parents == (OUTAGE,) for _, e in events)


def test_escalation_keeps_the_alert_id() -> None:
    tracker = AlertTracker(CONFIG)
    key = OUTAGE_EAST
    steps = [{key: onset(0.7, Severity.INFO)}, {key: onset(0.95, Severity.CRITICAL)}]
    events = [e for _, e in feed(tracker, steps)]
    assert [(e.state, e.severity, e.escalation) for e in events] == [
        (AlertState.FIRING, Severity.INFO, False),
        (AlertState.FIRING, Severity.CRITICAL, True),
    ]
    assert events[0].alert_id == events[1].alert_id


def test_state_round_trips_through_json() -> None:
    tracker = AlertTracker(CONFIG)
    feed(tracker, [{OUTAGE_EAST: onset()}])
    restored = AlertTracker(CONFIG, state=json.loads(json.dumps(tracker.to_dict())))
    steps = [{OUTAGE_EAST: quiet()}] * 3
    assert feed(restored, steps, start=1) == feed(tracker, steps, start=1)


def test_event_becomes_a_valid_alert_contract() -> None:
    tracker = AlertTracker(CONFIG)
    event = feed(tracker, [{OUTAGE: onset(), OUTAGE_EAST: onset()}])[0][1]
    alert = event.to_alert(emitted_at=T0 + STEP, sample_post_ids=["0" * 32])
    assert isinstance(alert, Alert)
    assert alert.explanation.parents == ["topic|topic=outage"]
    assert Alert.model_validate_json(alert.model_dump_json()) == alert


def test_hierarchy() -> None:
    assert ancestors(OUTAGE_EAST) == [OUTAGE, OVERALL]
    assert ancestors(OUTAGE) == [OVERALL]
    assert ancestors(OVERALL) == []
