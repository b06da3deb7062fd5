"""A single-series detector: a shape rarity and a context, one gate, one rest (pure).

:class:`GatedDetector` is ``yuqing alerts replay --detector gated`` (the
default before ``resonance_gated``, which scores ARTime's detections with
this detector's :meth:`~GatedDetector.evidence`). It reads each row two ways,
each judged from the rows before it only:

1. **The shape** (``view="shape"``, the default): the last ``blocks`` means
   of ``block_rows`` rows, and its distance to the nearest earlier window
   that does not overlap it (:class:`~services.alerts.shapes.PastShapes`),
   through a :class:`~services.alerts.novelty.NoveltyScorer`, which turns the
   distance into a *rarity* (how rare it is among the series' recent
   distances, in log odds; the same scale on every series). The previous
   default (``view="values"``) took instead the larger rarity of **the value**
   and of **its short mean** (the last ``smooth_rows`` rows).
2. **The context** (:class:`~services.alerts.context_detector.ContextDetector`,
   contexts up to ``context_rows`` rows long): the share of the known recent
   patterns that did not foresee the row; 1 for a value beyond the range seen
   so far.

**Gate and rest.** A row is an event when its rarity reaches
``rarity_threshold`` or its context score reaches ``context_threshold``; it
scores ``r / (r + 1)`` for the rarity ``r`` (or the context score, whichever
is larger) and starts a rest of ``rest_rows`` rows that score 0, whatever
they hold. Other rows score 0. So each event is reported once, at its
start: NAB rewards the first detection in a window and charges every later
one outside it, and an operator wants one alert per event, not one per row.
The price: a weak event hides a strong one that starts within its rest.
Letting a larger score, or a value beyond the range, break the rest was
measured and lost on NAB (docs/alerts.md), so the rest is strict.

The rarity threshold and the shape's block length are the knobs the folds of
leave-one-series-out choose; the other settings were fixed by the trials in
docs/alerts.md and are the same for every series.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from services.alerts.context_detector import ContextConfig, ContextDetector
from services.alerts.novelty import NoveltyConfig, NoveltyScorer
from services.alerts.shapes import PastShapes


@dataclass(frozen=True)
class GatedConfig:
    """The settings of a :class:`GatedDetector` (docs/alerts.md has how they were chosen)."""

    rarity_threshold: float = 4.0
    context_threshold: float = 0.75
    view: Literal["shape", "values"] = "shape"
    block_rows: int = 4
    blocks: int = 8
    shape_memory: int = 3000
    smooth_rows: int = 6
    context_rows: int = 7
    history_rows: int = 20000
    rest_rows: int = 100

    def __post_init__(self) -> None:
        if self.rarity_threshold <= 0 or not 0 < self.context_threshold <= 1:
            raise ValueError("need rarity_threshold > 0 and 0 < context_threshold <= 1")
        if self.smooth_rows < 2 or self.rest_rows < 0:
            raise ValueError("need smooth_rows >= 2 and rest_rows >= 0")
        if self.view not in ("shape", "values"):
            raise ValueError(f"view must be 'shape' or 'values', got {self.view!r}")


# The previous default (docs/alerts.md compares them): the rarities of the value and its short mean.
VALUES_DEFAULT = GatedConfig(view="values", rarity_threshold=6.0)


class GatedDetector:
    """Causal event scores for one series, one row at a time."""

    def __init__(self, config: GatedConfig | None = None) -> None:
        self.config = config or GatedConfig()
        novelty = NoveltyConfig(history_rows=self.config.history_rows)
        self._value = NoveltyScorer(novelty)
        self._mean = NoveltyScorer(novelty)
        self._shape = NoveltyScorer(novelty)
        config = self.config
        self._shapes = PastShapes(config.block_rows, config.blocks, config.shape_memory)
        self._context = ContextDetector(ContextConfig(max_order=self.config.context_rows))
        self._recent: deque[float] = deque(maxlen=self.config.smooth_rows)
        self._rest = 0

    def update(self, value: float) -> float:
        """The score in [0, 1] of the row holding ``value``: positive only at the start of an event."""
        rarity, context = self.evidence(value)
        if self._rest > 0:
            self._rest -= 1
            return 0.0
        config = self.config
        score = rarity / (rarity + 1.0) if rarity >= config.rarity_threshold else 0.0
        if context >= config.context_threshold:
            score = max(score, context)
        if score > 0.0:
            self._rest = config.rest_rows
        return score

    def evidence(self, value: float) -> tuple[float, float]:
        """The row's rarity (log odds, at least 0) and context score, before the gate and the rest.

        Learns the row: call either this or :meth:`update` once per row, not both.
        """
        return self._rarity(value), self._context.raw_score(value)

    def _rarity(self, value: float) -> float:
        if self.config.view == "values":
            self._recent.append(value)
            return max(self._value.rarity(value), self._mean.rarity(sum(self._recent) / len(self._recent)))
        distance = self._shapes.update(value)
        # A window that repeats a past one exactly is no news; it is not ranked among the distances.
        return self._shape.rarity(distance) if distance else 0.0
