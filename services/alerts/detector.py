"""Streaming surge detection over per-key bucket counts.

One :class:`SurgeDetector` follows one alert key (overall, a topic, a topic in
a region, ...). It is fed the number of posts in each closed bucket, in time
order, and says at once whether that bucket starts a surge. It only uses the
past and the current bucket. Its whole state is a JSON-safe dict
(:meth:`SurgeDetector.to_dict`), so the service keeps it in a changelog-backed
table and resumes exactly where it stopped after a restart.

The method, in four steps (docs/alerts.md has the reasoning and the numbers):

1. **Baseline.** ``expected = level * hour_profile[hour] * day_factor[day_type]``:
   a slow level (half-life four days), the shape of the day (hourly means, read
   on a line between hour middles), and a weekday/weekend factor, all
   exponentially weighted. They learn from a
   *winsorised* count, clipped a little above the baseline, so a surge does not
   teach the baseline that surges are normal.
2. **Surprise.** For short windows (the last 5 and 15 minutes) and a long one
   (the last twelve hours), the log ratio ``log((observed + c) / (expected + c))``
   is standardised by that key's own spread: its median and 99th percentile
   over the past days, read from a histogram that is refreshed once a day, so
   a surge in progress does not widen its own yardstick.
3. **Evidence.** ``u = (1 + z_short) * (1 + z_long) - 1``, where ``z_short``
   is the larger of the 5- and 15-minute surprises: a sharp rise
   counts for more when the last hours were already above normal. A bucket
   below ``min_count`` posts, or less than ``min_excess`` above expectation,
   gives no evidence, so tiny volumes never alert. Beside ``u``, two Poisson
   CUSUMs against the baseline watch quiet keys; they fire at a threshold that
   follows from the false-alert budget (``false_alerts_per_month``) and
   restart after a report.
4. **Onset.** A surge is reported when it starts: ``u`` is emitted only when it
   beats the last emitted value (decaying with a 12-hour half-life) by
   ``onset_margin``, so a surge is reported at its start and again only if it
   grows markedly; other buckets score 0.
   ``Detection.intensity`` keeps the undamped value for callers that follow
   how long a surge lasts.

Scores are ``u / (u + score_half)``, in [0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from services.alerts.cusum_calibration import threshold_for
from services.alerts.detector_config import HOURS_PER_DAY, SECONDS_PER_HOUR, DetectorConfig
from services.alerts.detector_spread import Spread, observe
from services.alerts.detector_state import STATE_VERSION, DetectorState, load_state, plain
from yuqing.contracts import Severity

__all__ = ["HOURS_PER_DAY", "SECONDS_PER_HOUR", "Detection", "DetectorConfig", "SurgeDetector"]

CUSUM_CAP = 2.0



@dataclass(frozen=True)
class Detection:
    """The verdict on one bucket.

    ``score`` is in [0, 1) and is non-zero only at the onset of a surge (or
    when it grows markedly); ``intensity`` is the same measure for every
    bucket, without that suppression. ``expected`` is the baseline for this
    bucket, learnt before it was seen.
    """

    score: float
    severity: Severity | None
    observed: float
    expected: float
    is_surge: bool
    intensity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "severity": self.severity.value if self.severity else None,
                "observed": self.observed, "expected": self.expected, "is_surge": self.is_surge,
                "intensity": self.intensity}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Detection:
        severity = data["severity"]
        return cls(score=float(data["score"]), severity=Severity(severity) if severity else None,
                   observed=float(data["observed"]), expected=float(data["expected"]),
                   is_surge=bool(data["is_surge"]), intensity=float(data["intensity"]))


class SurgeDetector:
    """A causal, per-key surge detector with serialisable state."""

    def __init__(self, config: DetectorConfig | None = None, state: dict[str, Any] | None = None) -> None:
        self.config = config or DetectorConfig()
        self._state = load_state(state) if state is not None else DetectorState()

    def update(self, bucket_start: datetime, count: float) -> Detection:
        """Take the count of one closed bucket and judge it.

        Buckets must come in increasing order of ``bucket_start``. Buckets
        missing since the previous call count as empty (a gap longer than
        ``max_gap_hours`` only forgets the recent history instead).
        """
        if not count >= 0:
            raise ValueError(f"count must be a non-negative number, got {count!r}")
        self._fill_gap(bucket_start)
        detection = self._step(bucket_start, float(count))
        self._state.last_bucket = bucket_start.isoformat()
        return detection

    def expected(self, bucket_start: datetime) -> float:
        """The baseline count for a bucket, from what has been learnt so far."""
        state = self._state
        if state.level is None:
            return 0.0
        return state.level * self._shape_at(bucket_start)

    def _shape_at(self, bucket_start: datetime) -> float:
        """The shape at a bucket's middle, on a line between the middles of the two hours around it.

        Each hour's shape is the mean of its buckets; a day rhythm rises and
        falls within the hour. Read as a step, the buckets late in a morning
        hour sat above their baseline and early ones below, and the CUSUMs
        took that for evidence: on surge-free streams at 10 to 50 posts per
        bucket most false alerts came at the morning rise and the evening fall.
        """
        local = self._local(bucket_start)
        seconds = local.minute * 60 + local.second + self.config.bucket_seconds / 2
        position = local.hour + seconds / SECONDS_PER_HOUR - 0.5  # hour h's mean is its value at h + 0.5
        before = math.floor(position)
        share = position - before
        day_type = _day_type(local)
        return ((1.0 - share) * self._shape(before % HOURS_PER_DAY, day_type)
                + share * self._shape((before + 1) % HOURS_PER_DAY, day_type))

    def _shape(self, hour: int, day_type: int) -> float:
        """The day-and-week shape of a bucket, its hour shrunk towards a flat day by the posts behind it.

        An hour learnt from a handful of posts is mostly noise: on a key with a
        post or two a day, most hours had none and read 0, so the CUSUM took any
        post there for a surge. Each hour's shape counts as the posts it was
        learnt from (its buckets, up to the profile's memory, at the key's
        level) against ``pseudo_count`` posts of a flat day; on a busy key the
        shrinkage is negligible.
        """
        config, state = self.config, self._state
        posts = self._hour_posts(hour)
        profile = (posts * state.hour_profile[hour] + config.pseudo_count) / (posts + config.pseudo_count)
        return profile * state.day_factor[day_type]

    def _hour_posts(self, hour: int) -> float:
        """About how many posts an hour's shape was learnt from: its buckets (to its memory) at the level."""
        state = self._state
        own = (state.level or 0.0) * min(state.hour_updates[hour], self._memory())
        return max(own, state.borrowed_posts)

    def _memory(self) -> float:
        """How many buckets an hour's shape remembers (the effective size of its running average)."""
        config = self.config
        return 2.0 * config.hour_profile_half_life_days * config.buckets(1.0) / math.log(2.0)

    def borrow_rhythm(self, parent: SurgeDetector, days: float = 28.0) -> None:
        """Start from ``parent``'s shape of the day and week, weighted as ``days`` of history.

        Only the shape is taken: the level (how many posts) stays this key's
        own, so the parent's rhythm comes scaled to this key's volume.
        """
        state, theirs = self._state, parent._state
        state.hour_profile, state.day_factor = list(theirs.hour_profile), list(theirs.day_factor)
        hour_weight = round(days * self.config.buckets(1.0))
        state.hour_updates = [max(n, hour_weight) for n in state.hour_updates]
        state.day_updates = [max(n, round(days * self.config.buckets(HOURS_PER_DAY) * _day_type_share(t)))
                             for t, n in enumerate(state.day_updates)]
        # The shape rests on the parent's posts, not on this key's few: not shrunk towards a flat day.
        parent_posts = (theirs.level or 0.0) * min(hour_weight, self._memory())
        state.borrowed_posts = max(state.borrowed_posts, parent_posts)

    def to_dict(self) -> dict[str, Any]:
        """The state as a JSON-safe dict; :meth:`from_dict` restores it."""
        return {"version": STATE_VERSION, **plain(self._state)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: DetectorConfig | None = None) -> SurgeDetector:
        """Rebuild a detector from :meth:`to_dict` output."""
        return cls(config, state=data)

    # -- one bucket -------------------------------------------------------

    def _step(self, bucket_start: datetime, count: float) -> Detection:
        state = self._state
        hour, day_type, day = self._local_time(bucket_start)
        if state.level is None:
            state.level = count
        shape = self._shape_at(bucket_start)  # read once: the shape changes only as the baseline learns
        expected = max(state.level * shape, 0.0)
        self._remember(count, expected)
        surprises = [self._surprise(spread, size, day) for spread, size in self._spreads()]
        self._learn_baseline(hour, day_type, count, expected, shape)
        state.buckets_seen += 1
        evidence = 0.0
        history = self._has_history()
        if history and self._is_material(count, expected):
            short, long = max(surprises[:-1]), surprises[-1]
            evidence = (1.0 + max(short, 0.0)) * (1.0 + max(long, 0.0)) - 1.0
        cusum = self._cusum(count, expected, hour) if history else 0.0
        if not history or self._hour_posts(hour) < self.config.pseudo_count:
            # No baseline to trust: the key is young, or this hour of its day rests on fewer posts
            # than the prior it is shrunk to (a key with a post or two a day).
            cusum = self._absolute()
        return self._judge(count, expected, max(evidence, cusum))

    def _fire_evidence(self) -> float:
        """The evidence whose score is exactly ``fire_score``."""
        config = self.config
        return config.fire_score * config.score_half / (1.0 - config.fire_score)

    def _absolute(self) -> float:
        """Evidence for a key without ``min_history_hours`` of history: an absolute-rate rule.

        Once the key has been followed for ``new_key_watch_hours``, the posts of
        its longest short window fire at ``new_key_posts`` if they are also
        ``new_key_ratio`` times the busiest such window seen before (a young
        hour-of-day profile is too noisy to compare with, and a day rhythm rises
        gradually, so it never doubles its own busiest window at once).
        """
        config, state = self.config, self._state
        size = max(1, round(max(config.short_window_minutes) * 60 / config.bucket_seconds))
        observed = sum(state.recent_observed[-size:])
        busiest, state.busiest_window = state.busiest_window, max(state.busiest_window, observed)
        if state.buckets_seen < config.buckets(config.new_key_watch_hours):
            return 0.0
        if observed < config.new_key_posts or observed < config.new_key_ratio * busiest:
            return 0.0
        return self._fire_evidence() * observed / config.new_key_posts

    def _cusum(self, count: float, expected: float, hour: int) -> float:
        """Evidence from Poisson CUSUMs against the learnt baseline (what the low volumes need).

        The log-likelihood ratio of a rise to ``cusum_ratio`` times the baseline
        (and, for sudden bursts, to ``cusum_jump_ratio`` times), summed and
        floored at 0, in units of a dispersion learnt from the key's own spread
        (1 for Poisson counts, more for burstier keys). Each fires at the
        threshold that keeps its share of the false-alert budget at this rate
        (:meth:`_thresholds`), where it gives exactly the evidence that fires;
        it only counts on a bucket above its expectation, so a surge fires on a post.
        """
        config, state = self.config, self._state
        rate = max(expected, config.cusum_floor)
        thresholds = self._thresholds(rate, hour)
        sums = [state.cusum, state.cusum_jump]
        for i, ratio in enumerate(config.cusum_ratios):
            step = (count * math.log(ratio) - rate * (ratio - 1.0)) / state.dispersion
            # Capped so that a surge's evidence fades soon after it.
            sums[i] = min(max(0.0, sums[i] + step), CUSUM_CAP * thresholds[i])
        state.cusum, state.cusum_jump = sums
        learn = _rate(config.spread_half_life_days * config.buckets(HOURS_PER_DAY), state.buckets_seen)
        # Clipped at winsor_z of the key's own spread, as the baseline's counts are: a surge must not
        # teach the key that it is bursty (that blunts the next surge); the old clip at 25 let one
        # surge's buckets double the dispersion of a busy key.
        squared = min((count - rate) ** 2 / rate, config.winsor_z**2 * state.dispersion)
        state.dispersion = max(1.0, state.dispersion + learn * (squared - state.dispersion))
        if count <= expected:
            return 0.0
        return self._fire_evidence() * max(s / h for s, h in zip(sums, thresholds, strict=True))

    def _thresholds(self, rate: float, hour: int) -> list[float]:
        """Where each CUSUM fires: its share of the false-alert budget, kept at this rate.

        The run length of a CUSUM on a steady stream (Brook and Evans' Markov
        chain) depends on the rate per bucket, the key's dispersion and how
        well the baseline is known (:meth:`_baseline_variance`).
        """
        config, state = self.config, self._state
        return [threshold_for(rate, ratio, config.cusum_run_length, dispersion=state.dispersion,
                              variance=state.dispersion + self._baseline_variance(rate, posts, hour))
                for ratio, posts in zip(config.cusum_ratios, config.cusum_climb_posts, strict=True)]

    def _baseline_variance(self, rate: float, posts: float, hour: int) -> float:
        """The counts' extra variance, over their mean, that an approximate baseline adds for a CUSUM.

        A false alert builds up over about ``posts`` expected posts
        (``DetectorConfig.cusum_climb_posts``). An error ``e`` of the baseline
        shifts the CUSUM by that many posts times ``e``, as an extra variance
        of ``posts * e**2`` per post would. The
        baseline's relative variance is one over the posts it rests on: this
        hour's (``rate`` times the buckets it remembers, times the hours the
        climb spans, as their errors are independent) and the level's.
        """
        config, state = self.config, self._state
        hours = min(max(posts / rate / config.buckets(1.0), 1.0), float(HOURS_PER_DAY))
        hour_posts = rate * min(state.hour_updates[hour], self._memory()) * hours
        level_posts = (state.level or rate) * min(state.buckets_seen, self._level_memory())
        floor = config.pseudo_count
        return posts * (1.0 / max(hour_posts, floor) + 1.0 / max(level_posts, floor))

    def _level_memory(self) -> float:
        """How many buckets the level remembers (the effective size of its running average)."""
        return 2.0 * self.config.buckets(self.config.level_half_life_hours) / math.log(2.0)

    def _spreads(self) -> list[tuple[Spread, int]]:
        """Each window's size in buckets with its yardstick: the short ones, then the long one."""
        config = self.config
        sizes = [max(1, round(m * 60 / config.bucket_seconds)) for m in config.short_window_minutes]
        sizes.append(config.buckets(config.long_window_hours))
        if len(self._state.spreads) != len(sizes):
            self._state.spreads = [Spread() for _ in sizes]
        return list(zip(self._state.spreads, sizes, strict=True))

    def _surprise(self, spread: Spread, size: int, day: str) -> float:
        """Standardised log ratio of the last ``size`` buckets; 0 when immaterial."""
        observed = sum(self._state.recent_observed[-size:])
        expected = sum(self._state.recent_expected[-size:])
        z = observe(spread, day, self._log_ratio(observed, expected), self.config)
        return z if self._is_material(observed, expected) else 0.0

    def _judge(self, count: float, expected: float, evidence: float) -> Detection:
        config = self.config
        intensity = evidence / (evidence + config.score_half)
        score = intensity if self._is_onset(evidence) else 0.0
        if score > 0.0:
            # A reported surge restarts the CUSUMs (as a CUSUM does after an alarm): evidence left
            # over from it, which drains slowly on a quiet key, must not fire again hours later.
            self._state.cusum = self._state.cusum_jump = 0.0
        severity = self._severity(score)
        return Detection(score, severity, count, expected, severity is not None, intensity)

    def _is_onset(self, evidence: float) -> bool:
        """Whether this bucket starts a surge, or makes the current one markedly larger.

        The bar is the last reported evidence, decaying with
        ``onset_half_life_hours``, raised by ``onset_margin``: repeats of a
        surge just reported stay quiet, a clearly larger one is reported, and
        the memory fades within a day.
        """
        config, state = self.config, self._state
        state.onset_reference *= 0.5 ** (1.0 / config.buckets(config.onset_half_life_hours))
        # Only a report raises the bar: evidence building up below it (a CUSUM climbing through a
        # surge's first buckets, a near miss hours before) must not hold back the report it leads to.
        bar = max(self._fire_evidence(), state.onset_reference * (1.0 + config.onset_margin))
        if evidence >= bar and evidence > 0.0:
            state.onset_reference = evidence
            return True
        return False

    def _severity(self, score: float) -> Severity | None:
        config = self.config
        if score >= config.critical_score:
            return Severity.CRITICAL
        if score >= config.warning_score:
            return Severity.WARNING
        if score >= config.fire_score:
            return Severity.INFO
        return None

    def _is_material(self, observed: float, expected: float) -> bool:
        return observed >= self.config.min_count and observed - expected >= self.config.min_excess

    def _has_history(self) -> bool:
        spreads = self._state.spreads
        needed = self.config.buckets(self.config.min_history_hours)
        return all(s.scale is not None and s.weight >= needed for s in spreads)

    def _log_ratio(self, observed: float, expected: float) -> float:
        c = self.config.pseudo_count
        return math.log((observed + c) / (expected + c))

    def _remember(self, count: float, expected: float) -> None:
        keep = max(size for _, size in self._spreads())
        state = self._state
        state.recent_observed.append(count)
        state.recent_expected.append(expected)
        del state.recent_observed[:-keep]
        del state.recent_expected[:-keep]

    # -- baseline ---------------------------------------------------------

    def _learn_baseline(self, hour: int, day_type: int, count: float, expected: float, shape: float) -> None:
        state = self._state
        learnt = self._winsorise(count, expected, self._log_ratio(count, expected))
        level = state.level if state.level is not None else learnt
        if shape > 0.0:
            level = self._learn_level(level, learnt, shape)
        state.level = level
        # The shape is learnt against the level, and the level means nothing before a whole day
        # (at 6 a.m. it is the night's rate): shapes learnt from the first hours, weighted as much
        # as any later day's, made the baseline 20-30% low for a week.
        if level > 0.0 and state.buckets_seen >= self.config.buckets(HOURS_PER_DAY):
            self._learn_shape(hour, day_type, learnt, level)

    def _learn_shape(self, hour: int, day_type: int, learnt: float, level: float) -> None:
        config, state = self.config, self._state
        profile, factor = state.hour_profile[hour], state.day_factor[day_type]
        if factor > 0.0:
            half_life = config.hour_profile_half_life_days * config.buckets(1.0)
            rate = _rate(half_life, state.hour_updates[hour])
            state.hour_profile[hour] = profile + rate * (learnt / (level * factor) - profile)
        state.hour_updates[hour] += 1
        if state.hour_profile[hour] > 0.0:
            half_life = config.day_factor_half_life_days * config.buckets(HOURS_PER_DAY)
            share = _day_type_share(day_type)
            # A week of "no weekly rhythm" to start from: a first weekend, learnt against a level
            # still settling, made weekdays look 20-30% quieter than they were.
            prior = round(config.buckets(7 * HOURS_PER_DAY) * share)
            rate = _rate(half_life * share, state.day_updates[day_type] + prior)
            target = learnt / (level * state.hour_profile[hour])
            state.day_factor[day_type] = factor + rate * (target - factor)
        state.day_updates[day_type] += 1
        state.hour_profile = _normalised(state.hour_profile)
        state.day_factor = _normalised(state.day_factor)

    def _learn_level(self, level: float, learnt: float, shape: float) -> float:
        """The level as a ratio of weighted sums, posts over shape (the Poisson estimate).

        Averaging ``posts / shape`` instead would overrate a quiet key: its
        night-time shape is learnt from a handful of posts, and dividing by a
        noisy small number errs upwards (14% at half a post per bucket).
        """
        state = self._state
        if state.level_shape <= 0.0:  # a state stored before the sums were kept
            state.level_posts, state.level_shape = level, 1.0
        rate = _rate(self.config.buckets(self.config.level_half_life_hours), state.buckets_seen)
        state.level_posts += rate * (learnt - state.level_posts)
        state.level_shape += rate * (shape - state.level_shape)
        return state.level_posts / state.level_shape

    def _winsorise(self, count: float, expected: float, ratio: float) -> float:
        """Clip a count far above the baseline before it is learnt."""
        config, state = self.config, self._state
        deviation, scale = ratio - state.residual_center, state.residual_scale
        if scale > 0.0:
            deviation = min(max(deviation, -config.winsor_z * scale), config.winsor_z * scale)
        rate = _rate(config.spread_half_life_days * config.buckets(HOURS_PER_DAY), state.buckets_seen)
        state.residual_center += rate * deviation
        # 1.25 * mean absolute deviation estimates a normal standard deviation.
        state.residual_scale += rate * (1.25 * abs(deviation) - scale)
        if scale <= 0.0:
            return count
        c = config.pseudo_count
        ceiling = (expected + c) * math.exp(state.residual_center + config.winsor_z * scale) - c
        # Never below what a Poisson count of that mean reaches by chance: on a key with a post
        # every hour or so, the log residuals barely spread, and clipping every single post
        # would pull the level far under the true rate (the CUSUM then fires on one post).
        poisson = expected + config.winsor_z * math.sqrt(max(expected, 1.0))
        return min(count, max(ceiling, poisson))

    # -- time -------------------------------------------------------------

    def _local_time(self, bucket_start: datetime) -> tuple[int, int, str]:
        local = self._local(bucket_start)
        return local.hour, _day_type(local), local.date().isoformat()

    def _local(self, bucket_start: datetime) -> datetime:
        if bucket_start.tzinfo is None:
            return bucket_start
        return bucket_start.astimezone(timezone(timedelta(hours=self.config.utc_offset_hours)))

    def _fill_gap(self, bucket_start: datetime) -> None:
        if self._state.last_bucket is None:
            return
        last = datetime.fromisoformat(self._state.last_bucket)
        step = timedelta(seconds=self.config.bucket_seconds)
        missing = round((bucket_start - last) / step) - 1
        if missing < 0:
            raise ValueError(f"bucket {bucket_start.isoformat()} is not after {last.isoformat()}")
        if missing > self.config.buckets(self.config.max_gap_hours):
            self._state.recent_observed.clear()
            self._state.recent_expected.clear()
            return
        for k in range(1, missing + 1):
            self._step(last + k * step, 0.0)


# -- small utilities ------------------------------------------------------


def _rate(half_life: float, seen: int) -> float:
    """Learning rate: a running mean at first, then an exponential average."""
    return max(1.0 - float(0.5 ** (1.0 / half_life)), 1.0 / (seen + 1))


def _normalised(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v / mean for v in values] if mean > 0.0 else values


def _day_type(local: datetime) -> int:
    return 1 if local.weekday() >= 5 else 0


def _day_type_share(day_type: int) -> float:
    return 5 / 7 if day_type == 0 else 2 / 7
