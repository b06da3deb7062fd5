"""The grouping's learned join score: how likely a post belongs to a candidate issue (pure).

The rules of ``grouping.py`` weigh their evidence (words, place, topic, hours, township, a burst,
the township's one matter, a kind of slow matter) with hand-set weights and gates. The join model
reads the same evidence as ``FEATURES`` (``IssueGrouper._features``), the rules' own score among it,
and answers the probability that the post is about the issue's matter. It is a gradient-boosted
ensemble of small regression trees trained on the development sets by
``bench/train_issue_model.py`` (scikit-learn's ``HistGradientBoostingClassifier``) and shipped as
``issue_model.json``: numbers only, compiled here once into one Python expression per tree, so a
candidate costs a few dozen comparisons and the grouping stays deterministic on replay.
docs/search.md (*The learned join score*) says how it was trained and what it scores held out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

MODEL_FILE = Path(__file__).with_name("issue_model.json")
MODEL_VERSION = 1

# the evidence of one (post, candidate issue) pair, in the order of ``IssueGrouper._features``
FEATURES: tuple[str, ...] = (
    "rules_score",  # the rules' score (``IssueGrouper._score``), 0 where a gate refused the issue
    "rules_gated",  # 1 where a gate refused it (too late, another place the next day, a lone post)
    "centroid",  # cosine of the post's words to the centroid
    "nearest",  # ... to the nearest of its latest members
    "lexical",  # the two blended (``nearest_weight``)
    "said",  # how much the post says (0..1, ``low_info_mass``)
    "said_lexical",
    "topic",  # topic agreement (-1..1, the classifier's distributions)
    "topic_for",
    "topic_against",
    "place_shared",
    "place_conflict",
    "place_open",
    "hours_near",  # hours since the last post, up to ``gap``, over ``gap``
    "late",  # more than ``gap`` after it
    "log_hours",
    "log_hours_since_first",
    "late_lexical",
    "log_size",
    "lone",  # the issue has one post
    "same_town",
    "other_town",  # the post and the issue are of two different townships
    "post_unplaced",
    "issue_unplaced",
    "kind",  # a kind of slow matter or a county-wide kind both name
    "hall_apart",
    "sole",  # the issue is the township's one matter of the hours
    "busy",
    "relays_answer",
    "other_town_lexical",
    "late_place_shared",
    "unsaid_same_town",
    "unsaid_busy",
)

Predict = Callable[[Sequence[float]], float]


@dataclass(frozen=True)
class JoinModel:
    """The trained ensemble and the probability at which a post joins (``threshold``)."""

    threshold: float
    raw: Predict  # the ensemble's log-odds for one row of ``FEATURES``

    def probability(self, row: Sequence[float]) -> float:
        return 1.0 / (1.0 + math.exp(-self.raw(row)))


def _expression(tree: list[list[float]], node: int = 0) -> str:
    """One tree as a nested conditional expression over ``x``."""
    feature, threshold, left, right, value = tree[node]
    if feature < 0:
        return repr(float(value))
    return (f"({_expression(tree, int(left))} if x{int(feature)} <= {float(threshold)!r} "
            f"else {_expression(tree, int(right))})")


def compile_trees(baseline: float, trees: list[list[list[float]]], width: int = len(FEATURES)) -> Predict:
    """The ensemble's log-odds as one function of a row of ``width`` features: ``baseline`` plus
    each tree's leaf for the row.

    A tree is a list of nodes ``[feature, threshold, left, right, value]`` (node 0 the root; a leaf
    has feature -1 and its value; a row goes left when its feature is at most the threshold). The
    row is unpacked into local names first: a third faster than indexing it at every node."""
    terms = " + ".join(_expression(tree) for tree in trees) or "0.0"
    names = ", ".join(f"x{i}" for i in range(width))
    source = f"def raw(row):\n    {names}, = row\n    return {float(baseline)!r} + {terms}\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, str(MODEL_FILE), "exec"), namespace)  # numbers and comparisons only
    function: Predict = namespace["raw"]
    return function


def check_model(data: Any, source: Path) -> None:
    """A model file of this version over these features, or ValueError naming the file."""
    if not isinstance(data, dict) or data.get("version") != MODEL_VERSION:
        raise ValueError(f"{source}: not a join model of version {MODEL_VERSION}")
    if tuple(data.get("features", ())) != FEATURES:
        raise ValueError(f"{source}: its features are not the grouping's (retrain it)")
    for tree in data.get("trees", []):
        for feature, _, left, right, _ in tree:
            inside = 0 < left < len(tree) and 0 < right < len(tree)
            if feature >= len(FEATURES) or (feature >= 0 and not inside):
                raise ValueError(f"{source}: a tree node points outside its tree or the features")


@cache
def load_join_model(path: Path = MODEL_FILE) -> JoinModel:
    """The join model in ``path`` (the shipped one by default), compiled once per process."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the join model ({exc})") from None
    check_model(data, path)
    return JoinModel(threshold=float(data["threshold"]),
                     raw=compile_trees(float(data["baseline"]), data["trees"]))
