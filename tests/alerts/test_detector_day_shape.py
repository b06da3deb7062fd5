"""The detector's day shape follows a rhythm within the hour, not only from hour to hour."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from services.alerts.detector import DetectorConfig, SurgeDetector

START = datetime(2024, 3, 4)  # a Monday, naive: local time
STEP = timedelta(minutes=5)
BUCKETS_PER_DAY = 288


def rising_morning(moment: datetime) -> float:
    """Posts per bucket: 2 at night, rising steadily from 6 a.m. to 30 at noon, flat afterwards."""
    hour = moment.hour + (moment.minute + 2.5) / 60  # the bucket's middle
    return 2.0 + 28.0 * min(max(hour - 6.0, 0.0), 6.0) / 6.0


def learnt_detector(days: int = 21) -> SurgeDetector:
    """A detector fed the exact rate (no noise) of every bucket for ``days`` days."""
    detector = SurgeDetector(DetectorConfig())
    for i in range(days * BUCKETS_PER_DAY):
        moment = START + i * STEP
        detector.update(moment, rising_morning(moment))
    return detector


@pytest.fixture(scope="module")
def detector() -> SurgeDetector:
    return learnt_detector()


@pytest.mark.parametrize("minute", [0, 25, 55])
def test_the_baseline_rises_within_a_morning_hour(detector: SurgeDetector, minute: int) -> None:
    # Read as a step, every bucket of 8 to 9 a.m. expected the hour's mean (about 13.7): 10% low at
    # 8:55 and 11% high at 8:00, and the CUSUMs took the late buckets of each rising hour for a surge.
    moment = START + timedelta(days=21, hours=8, minutes=minute)
    assert detector.expected(moment) == pytest.approx(rising_morning(moment), rel=0.03)


def test_the_baseline_between_hours_lies_between_their_means(detector: SurgeDetector) -> None:
    day = START + timedelta(days=21)
    early, late = detector.expected(day + timedelta(hours=7, minutes=55)), detector.expected(
        day + timedelta(hours=8, minutes=0))
    assert early < late
    assert late - early == pytest.approx(28.0 / 6.0 / 12.0, rel=0.2)  # one bucket's rise, not an hour's


def test_a_flat_day_is_read_flat(detector: SurgeDetector) -> None:
    # The afternoon is flat: a line between equal hour means stays at their value.
    day = START + timedelta(days=21)
    values = [detector.expected(day + timedelta(hours=14, minutes=m)) for m in range(0, 60, 5)]
    assert max(values) - min(values) < 0.01 * max(values)
    assert math.isclose(values[0], 30.0, rel_tol=0.03)
