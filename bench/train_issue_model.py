"""Train the grouping's join model (``services/search/issue_model.py``) on the development sets.

Every post of a development set (``data/issues/dev*.jsonl``, never the evaluation set), fed to the
grouping in time order with the default model's topics, is compared with its candidate issues
(``IssueGrouper.join_candidates``); each pair is labelled 1 when the issue's matter (the event most
of its posts belong to) is the post's. The pairs are collected twice: along the rules' groupings,
then along the first model's own (what it meets when it groups: its mistakes' issues too), and a
gradient-boosted tree ensemble (scikit-learn's ``HistGradientBoostingClassifier``, fixed settings,
no early stopping, seeded: the same data gives the same trees) is fitted to both. The probability at
which a post joins is chosen among ``THRESHOLDS`` by the mean B-cubed F1 on the sets written apart
(``WRITTEN_APART``). Writes ``services/search/issue_model.json``.

``--loo`` scores the method held out instead: for each set written apart, the model and its
threshold are chosen on every other set and the one left out is scored (docs/search.md, *The
learned join score*).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_issues import WRITTEN_APART, dev_sets, score, totals, with_model_topics  # noqa: E402
from services.search.grouping import GroupingParams, IssueGrouper  # noqa: E402
from services.search.issue_model import (  # noqa: E402
    FEATURES,
    MODEL_FILE,
    MODEL_VERSION,
    JoinModel,
    compile_trees,
)
from services.search.issue_offline import configured_places, post_of, read_posts, with_topics  # noqa: E402
from services.search.open_issues import Member  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
# fewer rounds, larger steps: a candidate costs the grouping one comparison per tree level
TREES, LEARNING_RATE = 200, 0.05
Rows = list[dict[str, Any]]


class Recorder(IssueGrouper):
    """The grouping, recording each post's candidates with their features and labels."""

    def __init__(self, params: GroupingParams, model: JoinModel | None, events: dict[str, str],
                 record: list[tuple[list[float], int]] | None) -> None:
        super().__init__(replace(params, learned=False), configured_places())
        self._model = model
        self.events, self.record = events, record

    def _ranked(self, member: Member) -> list[tuple[float, str]]:
        if self.record is not None:
            event = self.events[member.post_id]
            for issue_id, row in self.join_candidates(member):
                members = Counter(self.events[m.post_id] for m in self._issues[issue_id].members)
                self.record.append((row, int(members.most_common(1)[0][0] == event)))
        return super()._ranked(member)


def grouped(rows: Rows, model: JoinModel | None,
            record: list[tuple[list[float], int]] | None = None) -> list[str]:
    signals = [post_of(row, found) for row, found in zip(rows, with_topics(rows, None), strict=True)]
    order = sorted(range(len(signals)), key=lambda i: (signals[i].created_at, i))
    grouper = Recorder(GroupingParams(), model, {str(r["id"]): r["event"] for r in rows}, record)
    issues = {i: grouper.assign(signals[i]).issue_id for i in order}
    return [grouper.resolve(issues[i]) for i in range(len(rows))]


def fitted(sets: dict[str, Rows], trees: int = TREES, learning_rate: float = LEARNING_RATE) -> dict[str, Any]:
    """The ensemble fitted on ``sets`` (the rules' groupings, then its own), as the model file's
    ``baseline`` and ``trees``."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    record: list[tuple[list[float], int]] = []
    model: JoinModel | None = None
    exported: dict[str, Any] = {}
    for _ in range(2):
        for rows in sets.values():
            grouped(rows, model, record)
        features = np.array([r[0] for r in record])
        labels = np.array([r[1] for r in record])
        estimator = HistGradientBoostingClassifier(
            max_iter=trees, learning_rate=learning_rate, max_leaf_nodes=15, min_samples_leaf=40,
            l2_regularization=1.0, early_stopping=False, random_state=0).fit(features, labels)
        exported = export(estimator)
        model = JoinModel(0.5, compile_trees(exported["baseline"], exported["trees"]))
    return exported


def export(estimator: Any) -> dict[str, Any]:
    trees = []
    for (predictor,) in estimator._predictors:
        trees.append([[-1 if node["is_leaf"] else int(node["feature_idx"]),
                       round(float(node["num_threshold"]), 9), int(node["left"]), int(node["right"]),
                       round(float(node["value"]), 9)]
                      for node in predictor.nodes])
    return {"baseline": float(estimator._baseline_prediction.ravel()[0]), "trees": trees}


def threshold_for(exported: dict[str, Any], sets: dict[str, Rows]) -> tuple[float, float]:
    """The threshold of ``THRESHOLDS`` with the best mean F1 on ``sets``, and that F1."""
    raw = compile_trees(exported["baseline"], exported["trees"])
    found = []
    for threshold in THRESHOLDS:
        model = JoinModel(threshold, raw)
        mean = sum(score(rows, grouped(rows, model))["bcubed_f1"] for rows in sets.values()) / len(sets)
        found.append((mean, -threshold))
    mean, negated = max(found)
    return -negated, mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loo", action="store_true", help="score each set written apart left out")
    parser.add_argument("--output", type=Path, default=MODEL_FILE)
    parser.add_argument("--trees", type=int, default=TREES, help="boosting rounds (default %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    args = parser.parse_args()
    sets = {path.stem: with_model_topics(read_posts(path)) for path in dev_sets()}
    apart = [name for name in sets if name in WRITTEN_APART]
    if args.loo:
        held = []
        for out in apart:
            train = {n: rows for n, rows in sets.items() if n != out}
            exported = fitted(train, args.trees, args.learning_rate)
            threshold, mean = threshold_for(exported, {n: sets[n] for n in apart if n != out})
            found = score(sets[out], grouped(sets[out], JoinModel(
                threshold, compile_trees(exported["baseline"], exported["trees"]))))
            held.append(found)
            print(f"{out} left out: threshold {threshold} (mean F1 {mean:.4f} on the other sets written "
                  f"apart), F1 {found['bcubed_f1']:.4f}, big events {found['big_events']}", flush=True)
        mean, recovered, large = totals(held)
        print(f"left out: mean F1 {mean:.4f}, big events {recovered}/{large}")
        return
    exported = fitted(sets, args.trees, args.learning_rate)
    threshold, mean = threshold_for(exported, {n: sets[n] for n in apart})
    model = {"version": MODEL_VERSION, "features": list(FEATURES), "threshold": threshold,
             "trained_on": sorted(sets, key=lambda n: (len(n), n)), **exported}
    args.output.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(exported['trees'])} trees, threshold {threshold} "
          f"(mean F1 {mean:.4f} on the sets written apart, in-sample)")


if __name__ == "__main__":
    main()
