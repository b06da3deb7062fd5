"""The replay's default series detector: ARTime's detections, scored with the gated evidence too (pure).

:class:`ResonanceGatedDetector` runs two detectors over the same rows:

* **where**: ARTime's algorithm (:class:`~services.alerts.resonance.ResonanceDetector`)
  decides which rows are detections (a window of the downsampled series that
  founds a new cluster of its fuzzy ART, outside its masking); every other
  row scores 0, whatever the second detector says;
* **how strong**: a detection scores the larger of ARTime's confidence and
  the gated detector's evidence (:meth:`~services.alerts.gated.GatedDetector.evidence`:
  the shape rarity ``r`` as ``r / (r + 1)``, or the context score, before its
  gate and rest) at its strongest over the rows that ARTime's window covers
  (``window × step`` rows: 8 downsampled values, each standing for ``step``
  rows).

So a weak ARTime detection on a window that the shape and context views
also find rare scores high, and one they find ordinary keeps its own
confidence.

**A repeat must be stronger** (:class:`RepeatRule`): a detection within
ARTime's mask (12 downsampled values, ``mask × step`` rows) of the previous
detection scores 0 unless it scores more than that one. ARTime's own masking
lets a new cluster through when its match is well below the last anomaly's;
this asks the same of the combined score, so one event is reported again
only when the evidence for it grows. The gated detector never adds a detection of its own: offered
that (the larger of the two scores per row, or its events after ARTime has
been silent a while), leave-one-series-out never beat ARTime alone on the
corpus by more than 0.1 point, and lost 6 to 9 points there wherever it
gained on the tweets (docs/alerts.md). Nothing here was fitted beyond the choice of these rules: the
evidence's span is ARTime's own window, the repeat rule's ARTime's own mask,
and both detectors run at their shipped settings.

Like ARTime, it reads the file's range and length first (NAB's protocol hands
every detector ``inputMin``/``inputMax`` and the file); each score then comes
from the rows at or before it.
"""

from __future__ import annotations

from collections import deque

from services.alerts.gated import GatedConfig, GatedDetector
from services.alerts.resonance import SCORE_DECIMALS, ResonanceConfig, ResonanceDetector


def evidence_score(rarity: float, context: float) -> float:
    """The gated detector's evidence on one row, on its score scale: ``r / (r + 1)`` or the context."""
    return max(rarity / (rarity + 1.0) if rarity > 0 else 0.0, context)


class RepeatRule:
    """Silences a detection that follows the previous one closely without scoring more.

    ``admit(row, score)`` returns ``score``, or 0 when the previous detection
    (reported or not) lies at most ``span_rows`` rows before ``row`` and scored
    at least as much. Rows must come in increasing order.
    """

    def __init__(self, span_rows: int) -> None:
        self.span_rows = span_rows
        self._last: tuple[int, float] | None = None

    def admit(self, row: int, score: float) -> float:
        last, self._last = self._last, (row, score)
        if last is not None and row - last[0] <= self.span_rows and score <= last[1]:
            return 0.0
        return score


class ResonanceGatedDetector:
    """ARTime's detections, each scored the larger of its confidence and the gated evidence,
    a close repeat only when it scores more (:class:`RepeatRule`)."""

    def __init__(self, minimum: float, maximum: float, length: int,
                 config: ResonanceConfig | None = None, gated_config: GatedConfig | None = None) -> None:
        self.resonance = ResonanceDetector(minimum, maximum, length, config)
        self.gated = GatedDetector(gated_config)
        plan = self.resonance.plan
        self._recent: deque[float] = deque(maxlen=self.resonance.config.window * plan.step)
        self._repeat = RepeatRule(plan.mask * plan.step)
        self._row = 0

    def update(self, value: float) -> float:
        """The score of the row holding ``value``: positive only where ARTime detects."""
        self._recent.append(evidence_score(*self.gated.evidence(value)))
        confidence = self.resonance.update(value)
        self._row += 1
        if confidence <= 0:
            return 0.0
        return self._repeat.admit(self._row, round(max(confidence, max(self._recent)), SCORE_DECIMALS))


def resonance_gated_scores(values: list[float], config: ResonanceConfig | None = None,
                           gated_config: GatedConfig | None = None) -> list[float]:
    """The default detector's scores for a whole file (its range and length read from ``values``)."""
    if not values:
        return []
    detector = ResonanceGatedDetector(min(values), max(values), len(values), config, gated_config)
    return [detector.update(value) for value in values]
