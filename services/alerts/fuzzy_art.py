"""Dual-vigilance fuzzy ART, the category memory of ARTime's algorithm (pure, numpy).

Fuzzy ART (Carpenter, Grossberg and Rosen, 1991) keeps *categories*, each a
hyper-box of the complement-coded inputs it has learnt; dual vigilance
(Brito da Silva, Elnabarawy and Wunsch, 2019) gives it two thresholds on how
well an input matches a category. This is the variant ARTime (markNZed's NAB
detector) runs; its points:

* **Complement coding.** An input ``x`` in [0, 1]^d is presented as
  ``[x, 1 - x]``, so a category's weights ``w`` hold the lower corner of its box
  and one minus the upper corner, and ``min(x, w)`` (the fuzzy AND) is the box
  grown to take ``x`` in.
* **Match.** For each category, the *feature similarity* is
  ``|min(x, w)|_1 / |w|_1`` and the *energy similarity* the same ratio over
  two components only, the input's last feature and its complement (in ARTime
  the current, newest value); the match is ``feature³ × energy²``. Categories
  are visited in order of decreasing match.
* **Dual vigilance.** Every category whose match reaches the upper vigilance
  ``rho_ub`` resonates and learns (fast learning: its weights become
  ``min(x, w)``). If none does, but the best match reaches the lower
  vigilance ``rho_lb``, the input founds a new category of the *same*
  cluster. Otherwise it founds a new category and a new cluster: that is what
  ARTime treats as a candidate anomaly.
* **The first input** only commits an uncommitted category of all ones (its
  match with anything is 1/32 at 16 features): it is not learnt.

The best match and its energy similarity are reported for every input
(ARTime's ``A`` and ``Ae`` histories), whether or not it learnt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]

# |w|_1 of a category can only be 0 in degenerate cases; the reference divides by this then.
EMPTY_WEIGHT = 0.001


@dataclass(frozen=True)
class Resonance:
    """What one input did to the memory.

    ``new_cluster``: no category matched it even at the lower vigilance, so it
    founded a new cluster (always True for an input only read, not learnt).
    ``similarity``: the best match (0 when none is positive). ``energy``:
    that category's energy similarity.
    """

    new_cluster: bool
    similarity: float
    energy: float


class DualVigilanceArt:
    """A dual-vigilance fuzzy ART over inputs of ``features`` values in [0, 1]."""

    def __init__(self, features: int, rho_lb: float, rho_ub: float) -> None:
        if features < 1:
            raise ValueError("need at least one feature")
        self.features = features
        self.rho_lb = rho_lb
        self.rho_ub = rho_ub
        self._weights = np.empty((0, 2 * features))
        self._labels: list[int] = []
        self._clusters = 0

    @property
    def categories(self) -> int:
        return len(self._labels)

    @property
    def clusters(self) -> int:
        return self._clusters

    def set_vigilance(self, rho_lb: float, rho_ub: float) -> None:
        self.rho_lb, self.rho_ub = float(rho_lb), float(rho_ub)

    def learn(self, features: Vector, learning: bool = True) -> Resonance:
        """Present one input; with ``learning`` False the memory is only read."""
        coded = complement_code(features)
        if not self._labels:
            # The reference commits a category of all ones on the first input and skips it.
            self._add(np.ones(2 * self.features), label=1, new_cluster=True)
            return Resonance(new_cluster=False, similarity=0.0, energy=0.0)
        grown, match, energy = self.activation(coded)
        # The first of equal matches, as the reference's stable sort visits them.
        best = int(np.argmax(match))
        best_match = float(match[best])
        if best_match <= 0:
            best_match, best_energy = 0.0, 0.0
        else:
            best_energy = float(energy[best])
        resonance = Resonance(True, best_match, best_energy)
        if not learning:
            return resonance
        resonant = match >= self.rho_ub
        if resonant.any():
            self._weights[: self.categories][resonant] = grown[resonant]
            return Resonance(False, resonance.similarity, resonance.energy)
        if best_match >= self.rho_lb:
            self._add(coded, label=self._labels[best], new_cluster=False)
            return Resonance(False, resonance.similarity, resonance.energy)
        self._add(coded, label=self._clusters + 1, new_cluster=True)
        return resonance

    def activation(self, coded: Vector) -> tuple[NDArray[np.float64], Vector, Vector]:
        """Per category: the grown box ``min(x, w)``, the match and the energy similarity."""
        weights = self._weights[: self.categories]
        grown = np.minimum(weights, coded)
        size = weights.sum(axis=1)
        size[size == 0] = EMPTY_WEIGHT
        feature_similarity = grown.sum(axis=1) / size
        last, complement = self.features - 1, 2 * self.features - 1
        energy = (grown[:, last] + grown[:, complement]) / (weights[:, last] + weights[:, complement])
        return grown, feature_similarity**3 * energy**2, energy

    def _add(self, weights: Vector, label: int, new_cluster: bool) -> None:
        if self.categories == len(self._weights):
            # Grow the store by doubling so that founding categories stays cheap.
            grown = np.empty((max(8, 2 * len(self._weights)), 2 * self.features))
            grown[: self.categories] = self._weights[: self.categories]
            self._weights = grown
        self._weights[self.categories] = weights
        self._labels.append(label)
        if new_cluster:
            self._clusters += 1


def complement_code(features: Vector) -> Vector:
    """``[x, 1 - x]``: fuzzy ART's complement coding."""
    values = np.asarray(features, dtype=np.float64)
    return np.concatenate([values, 1.0 - values])
