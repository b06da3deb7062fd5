"""Classification metrics (pure functions, no model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassStats:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Accuracy, macro-F1 (over labels present in gold or predictions) and details."""

    task: str
    n: int
    accuracy: float
    macro_f1: float
    per_class: list[ClassStats]
    labels: list[str]
    confusion: list[list[int]]  # rows = gold, columns = predicted, in ``labels`` order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def evaluate_labels(
    task: str, gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> EvalReport:
    """Compare gold and predicted labels; ``labels`` fixes the matrix order."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    order = list(labels) + sorted((set(gold) | set(predicted)) - set(labels))
    index = {label: i for i, label in enumerate(order)}
    confusion = np.zeros((len(order), len(order)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g], index[p]] += 1
    per_class = []
    for label, i in index.items():
        tp = confusion[i, i]
        precision = _ratio(tp, confusion[:, i].sum())
        recall = _ratio(tp, confusion[i, :].sum())
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_class.append(ClassStats(label, precision, recall, f1, int(confusion[i, :].sum())))
    seen = [c for c in per_class if c.support or confusion[:, index[c.label]].sum()]
    return EvalReport(
        task=task, n=len(gold), accuracy=_ratio(np.trace(confusion), len(gold)),
        macro_f1=float(np.mean([c.f1 for c in seen])) if seen else 0.0,
        per_class=per_class, labels=order, confusion=confusion.tolist(),
    )
