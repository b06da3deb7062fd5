"""The default classifier: a fine-tuned encoder and a character n-gram model, combined.

Per task the two probability vectors are mixed in log space,

    p  ∝  exp(w · log p_ngram + (1 − w) · log p_encoder),

with ``w`` per task chosen by grouped cross-validation on the corpus
(``docs/nlp.md``). The encoder generalises over wording, the n-grams over
typos, dialect, traditional script and rare words; together they beat either
alone on posts written by other people.

Cascade: where the n-gram model alone is confident on both tasks (top
probability at least ``cascade_confidence``), its probabilities are the
answer and the encoder does not run for that post. The rule depends only on
the post itself, so a post's result never depends on its batch mates; on the
held-out folds it cost no accuracy and skips the encoder for most posts.

A post whose final top topic probability is below ``low_confidence`` is
flagged (``Prediction.low_confidence``): the worker counts these as a drift
signal for operations.

Settings live in ``classifier.json`` under ``extra["ensemble"]``; the n-gram
weights in ``ngram.json`` / ``ngram.safetensors`` beside the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from services.nlp.model_ngram import NgramModel, softmax

ENSEMBLE_KEY = "ensemble"


@dataclass(frozen=True)
class EnsembleConfig:
    """How the two models combine (chosen by grouped cross-validation)."""

    ngram_weight: dict[str, float] = field(
        default_factory=lambda: {"topic": 0.7, "sentiment": 0.6})
    cascade_confidence: float | None = 0.8
    low_confidence: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleConfig:
        return cls(**data)


def combine(ngram: np.ndarray, encoder: np.ndarray, weight: float) -> np.ndarray:
    """Weighted geometric mean of two (n, labels) probability arrays, renormalised."""
    logits = weight * np.log(np.clip(ngram, 1e-9, 1.0)) \
        + (1.0 - weight) * np.log(np.clip(encoder, 1e-9, 1.0))
    return softmax(logits)


def cascade_mask(ngram: dict[str, np.ndarray], threshold: float | None) -> np.ndarray:
    """True where the n-gram model is confident enough on every task to skip the encoder."""
    n = len(next(iter(ngram.values())))
    if threshold is None:
        return np.zeros(n, dtype=bool)
    mask = np.ones(n, dtype=bool)
    for proba in ngram.values():
        mask &= proba.max(axis=1) >= threshold
    return mask


def reorder(proba: np.ndarray, source: list[str], target: list[str]) -> np.ndarray:
    """Columns of ``proba`` (labelled ``source``) in ``target`` order."""
    if source == target:
        return proba
    index = {label: i for i, label in enumerate(source)}
    return proba[:, [index[label] for label in target]]


class EnsembleProbabilities:
    """Mixes n-gram and encoder probabilities; the encoder is any ``probabilities`` callable."""

    def __init__(self, ngram: NgramModel, labels: dict[str, list[str]],
                 cfg: EnsembleConfig) -> None:
        self.ngram, self.labels, self.cfg = ngram, labels, cfg

    def mix(self, texts: Sequence[str], encoder_proba: Any) -> dict[str, np.ndarray]:
        """Per task (n, labels) probabilities in ``self.labels`` order.

        ``encoder_proba(texts)`` returns the encoder's per-task probabilities
        in the same label order; it is called only for the posts the cascade
        does not settle.
        """
        ngram = {t: reorder(p, self.ngram.labels[t], self.labels[t])
                 for t, p in self.ngram.probabilities(texts).items() if t in self.labels}
        if not texts:
            return {t: np.zeros((0, len(ls))) for t, ls in self.labels.items()}
        # the cascade needs an n-gram opinion on every task (a model retrained on one
        # task keeps the other's encoder head and has no n-grams for it)
        skip = cascade_mask(ngram, self.cfg.cascade_confidence) \
            if set(ngram) == set(self.labels) else np.zeros(len(texts), dtype=bool)
        out = {t: np.zeros((len(texts), len(ls))) for t, ls in self.labels.items()}
        for task, proba in ngram.items():
            out[task][skip] = proba[skip]
        rest = np.flatnonzero(~skip)
        if len(rest):
            enc = encoder_proba([texts[i] for i in rest.tolist()])
            for task, proba in out.items():
                proba[rest] = combine(ngram[task][rest], enc[task],
                                      self.cfg.ngram_weight.get(task, 0.5)) \
                    if task in ngram else enc[task]
        return out
