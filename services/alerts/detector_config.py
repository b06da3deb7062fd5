"""Settings of the live per-key surge detector (:class:`services.alerts.detector.SurgeDetector`),
shared by every key, and the CUSUM budget that follows from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

HOURS_PER_DAY = 24
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of a :class:`SurgeDetector`, shared by every key.

    Durations are in hours so the settings keep their meaning for any bucket
    size that divides an hour.
    """

    bucket_seconds: int = 300
    utc_offset_hours: float = 8.0
    short_window_minutes: tuple[int, ...] = (5, 15)
    long_window_hours: float = 12.0
    level_half_life_hours: float = 96.0
    hour_profile_half_life_days: float = 7.0
    day_factor_half_life_days: float = 28.0
    spread_half_life_days: float = 7.0
    spread_quantile: float = 0.99
    spread_clip: float = 1.25
    pseudo_count: float = 2.0
    winsor_z: float = 2.5
    min_count: float = 5.0
    min_excess: float = 4.0
    min_history_hours: float = 48.0
    onset_half_life_hours: float = 12.0
    onset_margin: float = 0.5
    score_half: float = 2.5
    fire_score: float = 0.65
    warning_score: float = 0.75
    critical_score: float = 0.9
    max_gap_hours: float = 168.0
    cusum_ratio: float = 2.0
    cusum_jump_ratio: float = 4.0
    false_alerts_per_month: float = 1.0
    cusum_floor: float = 0.05
    new_key_posts: float = 8.0
    new_key_ratio: float = 2.0
    new_key_watch_hours: float = 1.0

    def __post_init__(self) -> None:
        if self.bucket_seconds <= 0 or SECONDS_PER_HOUR % self.bucket_seconds:
            raise ValueError("bucket_seconds must divide an hour")
        if not 0.5 < self.spread_quantile < 1.0:
            raise ValueError("spread_quantile must be in (0.5, 1)")
        if not 0.0 < self.fire_score <= self.warning_score <= self.critical_score <= 1.0:
            raise ValueError("need 0 < fire_score <= warning_score <= critical_score <= 1")
        if not 0.0 < self.false_alerts_per_month < self.buckets(30 * HOURS_PER_DAY):
            raise ValueError("false_alerts_per_month must be positive and below one per bucket")

    @cached_property
    def cusum_run_length(self) -> float:
        """Buckets between false alerts that each Poisson CUSUM must keep on a steady stream.

        The budget is ``false_alerts_per_month`` per key, shared equally by
        the key's three rules that can fire on their own: the surprise ``u``
        and the two CUSUMs (a doubling and a burst). Each CUSUM may raise a
        false alert at most once every ``3 * buckets per month / budget``
        buckets (25,920 for one a month in 5-minute buckets); the third share
        is the surprise's. The thresholds that keep it follow from
        :func:`services.alerts.cusum_calibration.threshold_for`.
        """
        rules = len(self.cusum_ratios) + 1
        return rules * self.buckets(30 * HOURS_PER_DAY) / self.false_alerts_per_month

    @property
    def cusum_ratios(self) -> tuple[float, float]:
        """The rises the key's CUSUMs look for: a doubling and a sudden burst."""
        return self.cusum_ratio, self.cusum_jump_ratio

    @cached_property
    def cusum_climb_posts(self) -> tuple[float, ...]:
        """For each CUSUM, about how many expected posts a false alert builds up over.

        The threshold (about ``ln(run length)``) over the information per
        expected post of a rise to ``r``, ``r ln r - r + 1``: 26 for a
        doubling, 4 for a burst to 4x.
        """
        return tuple(math.log(self.cusum_run_length) / (r * math.log(r) - r + 1.0) for r in self.cusum_ratios)

    def buckets(self, hours: float) -> int:
        """A duration in hours as a whole number of buckets (at least one)."""
        return max(1, round(hours * SECONDS_PER_HOUR / self.bucket_seconds))
