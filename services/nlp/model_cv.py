"""Grouped cross-validation on the corpus: how models are chosen.

The md5 dev split puts paraphrases of one post on both sides (the same author
wrote "又停电了" in five ways), so it rewards memory. Here texts are first
clustered into near-duplicate groups (character-bigram TF-IDF cosine at or
above ``NEAR_DUPLICATE_COSINE``, joined transitively), and folds are drawn by
group, stratified by topic: a paraphrase never sits on both sides of a fold.

Also used to keep the out-of-distribution test set apart from the training
data (``near_duplicates_across``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from services.nlp.training import Example

NEAR_DUPLICATE_COSINE = 0.6
FOLDS = 5
SEED = 13

# (train examples, test texts) -> per task an (n_test, labels) probability array
ProbaFn = Callable[[Sequence[Example], Sequence[str]], dict[str, np.ndarray]]


def _bigram_matrix(texts: Sequence[str], fit_on: Sequence[str] | None = None):  # type: ignore[no-untyped-def]
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 2), sublinear_tf=True)
    vec.fit(list(fit_on if fit_on is not None else texts))
    return vec, vec.transform(list(texts))


def near_duplicate_groups(texts: Sequence[str],
                          threshold: float = NEAR_DUPLICATE_COSINE) -> list[int]:
    """A group id per text: texts joined (transitively) by cosine >= ``threshold``."""
    _, x = _bigram_matrix(texts)
    sims = (x @ x.T).tocoo()
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, v in zip(sims.row, sims.col, sims.data, strict=True):
        if i < j and v >= threshold:
            parent[find(int(i))] = find(int(j))
    roots: dict[int, int] = {}
    return [roots.setdefault(find(i), len(roots)) for i in range(len(texts))]


def near_duplicates_across(texts: Sequence[str], others: Sequence[str],
                           threshold: float = NEAR_DUPLICATE_COSINE) -> list[tuple[int, int, float]]:
    """``(i, j, cosine)`` for each text ``i`` whose nearest text ``j`` in ``others`` is close."""
    vec, x = _bigram_matrix(texts, fit_on=[*texts, *others])
    y = vec.transform(list(others))
    out = []
    for start in range(0, x.shape[0], 512):
        sims = (x[start:start + 512] @ y.T).toarray()
        best = sims.argmax(axis=1) if sims.shape[1] else np.zeros(len(sims), dtype=int)
        for row, j in enumerate(best):
            if sims.shape[1] and sims[row, j] >= threshold:
                out.append((start + row, int(j), float(sims[row, j])))
    return out


def grouped_folds(examples: Sequence[Example], folds: int = FOLDS,
                  seed: int = SEED) -> list[np.ndarray]:
    """Per fold the test indices: near-duplicate groups kept whole, stratified by topic."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = near_duplicate_groups([ex.text for ex in examples])
    strata = [ex.topic or ex.sentiment or "" for ex in examples]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(examples)), strata, groups)]


@dataclass
class OutOfFold:
    """Out-of-fold probabilities per task (rows in corpus order) and the gold labels."""

    labels: dict[str, list[str]]
    proba: dict[str, np.ndarray]
    gold: dict[str, list[str | None]]

    def accuracy(self, task: str, proba: np.ndarray | None = None) -> float:
        p = self.proba[task] if proba is None else proba
        pred = p.argmax(axis=1)
        pairs = [(g, self.labels[task][k]) for g, k in zip(self.gold[task], pred, strict=True)
                 if g is not None]
        return float(sum(g == k for g, k in pairs) / max(1, len(pairs)))


def out_of_fold(examples: Sequence[Example], proba_fn: ProbaFn,
                labels: dict[str, list[str]], folds: Sequence[np.ndarray]) -> OutOfFold:
    """Train ``proba_fn`` on all folds but one, predict that one, for every fold."""
    proba = {t: np.zeros((len(examples), len(ls))) for t, ls in labels.items()}
    for test in folds:
        test_set = set(test.tolist())
        train = [ex for i, ex in enumerate(examples) if i not in test_set]
        fold_proba = proba_fn(train, [examples[i].text for i in test])
        for task in labels:
            proba[task][test] = fold_proba[task]
    gold = {t: [ex.label(t) for ex in examples] for t in labels}
    return OutOfFold(dict(labels), proba, gold)
