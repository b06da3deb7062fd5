"""Character n-gram linear model: TF-IDF over character 1-3-grams + logistic regression.

It is the fast half of the default classifier (see ``model_ensemble``): a few
microseconds per post, robust to typos, dialect and traditional script that
the encoder's training data rarely shows. Saved without pickles:

* ``ngram.json``         the label lists, n-gram range and vocabulary (n-gram -> column);
* ``ngram.safetensors``  ``idf`` and per task ``<task>.coef`` (labels x features, fp16)
  and ``<task>.bias``.

Scoring re-implements sklearn's ``TfidfVectorizer`` (raw counts, ``1 + log``
sublinear tf, idf weights, L2 row norm) on the stored vocabulary, so a loaded
model needs neither sklearn nor the training data, and gives the same
probabilities as the fitted pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

NGRAM_META_FILE = "ngram.json"
NGRAM_WEIGHTS_FILE = "ngram.safetensors"
NGRAM_RANGE = (1, 3)
_WHITE_SPACES = re.compile(r"\s\s+")  # sklearn's rule: runs of 2+ become one space


@dataclass(frozen=True)
class NgramConfig:
    """Hyper-parameters of the n-gram model (chosen by grouped cross-validation)."""

    ngram_range: tuple[int, int] = NGRAM_RANGE
    min_df: int = 2
    c: float = 30.0
    max_iter: int = 3000


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    """sklearn's ``analyzer="char"`` n-grams (lower-cased, whitespace runs collapsed)."""
    doc = _WHITE_SPACES.sub(" ", text.lower())
    return [doc[i:i + n] for n in range(low, high + 1) for i in range(len(doc) - n + 1)]


class NgramModel:
    """A fitted n-gram model; ``probabilities`` returns per task an (n, labels) array."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray,
                 weights: dict[str, tuple[np.ndarray, np.ndarray]],
                 labels: dict[str, list[str]], ngram_range: tuple[int, int]) -> None:
        self.vocabulary, self.idf, self.weights = vocabulary, idf, weights
        self.labels, self.ngram_range = labels, ngram_range

    def features(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text the (columns, tf-idf values) of its known n-grams, L2-normalised."""
        out = []
        low, high = self.ngram_range
        for text in texts:
            counts: dict[int, int] = {}
            for gram in char_ngrams(text, low, high):
                col = self.vocabulary.get(gram)
                if col is not None:
                    counts[col] = counts.get(col, 0) + 1
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64,
                                               count=len(counts)))) * self.idf[cols]
            norm = float(np.sqrt((values * values).sum()))
            out.append((cols, values / norm if norm else values))
        return out

    def probabilities(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        feats = self.features(texts)
        result = {}
        for task, (coef, bias) in self.weights.items():
            logits = np.stack([coef[:, cols] @ vals for cols, vals in feats]) + bias \
                if feats else np.zeros((0, len(bias)))
            result[task] = softmax(logits)
        return result

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        meta = {"labels": self.labels, "ngram_range": list(self.ngram_range),
                "vocabulary": sorted(self.vocabulary, key=self.vocabulary.__getitem__)}
        (model_dir / NGRAM_META_FILE).write_text(json.dumps(meta, ensure_ascii=False))
        tensors = {"idf": self.idf.astype(np.float32)}
        for task, (coef, bias) in self.weights.items():
            # fp16 halves the shipped size; scores move by ~1e-4, labels not at all
            tensors[f"{task}.coef"] = np.ascontiguousarray(coef, dtype=np.float16)
            tensors[f"{task}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
        save_file(tensors, str(model_dir / NGRAM_WEIGHTS_FILE))

    @classmethod
    def load(cls, model_dir: Path) -> NgramModel:
        meta = json.loads((model_dir / NGRAM_META_FILE).read_text())
        tensors = load_file(str(model_dir / NGRAM_WEIGHTS_FILE))
        vocabulary = {gram: i for i, gram in enumerate(meta["vocabulary"])}
        weights = {task: (tensors[f"{task}.coef"].astype(np.float64),
                          tensors[f"{task}.bias"].astype(np.float64))
                   for task in meta["labels"]}
        low, high = meta["ngram_range"]
        return cls(vocabulary, tensors["idf"].astype(np.float64), weights, meta["labels"],
                   (low, high))

    @staticmethod
    def exists(model_dir: Path) -> bool:
        return (model_dir / NGRAM_META_FILE).exists() and (model_dir / NGRAM_WEIGHTS_FILE).exists()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True))


def class_rows(model: Any, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A fitted logistic regression's ``(coef, intercept)``, one row per label in ``labels`` order.

    With two classes sklearn keeps a single row, the log-odds of ``classes_[1]``;
    a softmax over the rows ``[0, that row]`` gives the same probabilities.
    """
    coef, intercept = np.asarray(model.coef_), np.asarray(model.intercept_)
    if len(model.classes_) == 2:
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    order = [list(model.classes_).index(label) for label in labels]
    return coef[order], intercept[order]


def fit_ngram_model(texts_by_task: Mapping[str, tuple[Sequence[str], Sequence[str]]],
                    labels: dict[str, list[str]], cfg: NgramConfig = NgramConfig()) -> NgramModel:
    """Fit one shared TF-IDF vocabulary and one logistic regression per task.

    ``texts_by_task[task] = (texts, gold labels)``; the vocabulary and idf come
    from the union of all tasks' texts.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    all_texts = sorted({t for texts, _ in texts_by_task.values() for t in texts})
    vec = TfidfVectorizer(analyzer="char", ngram_range=cfg.ngram_range, sublinear_tf=True,
                          min_df=cfg.min_df, dtype=np.float64)
    vec.fit(all_texts)
    weights = {}
    for task, (texts, gold) in texts_by_task.items():
        model = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter)
        model.fit(vec.transform(list(texts)), list(gold))
        weights[task] = class_rows(model, labels[task])
    vocabulary = {str(k): int(v) for k, v in vec.vocabulary_.items()}
    return NgramModel(vocabulary, np.asarray(vec.idf_), weights,
                      {t: labels[t] for t in texts_by_task}, cfg.ngram_range)
