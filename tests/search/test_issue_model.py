"""The grouping's join model: its compiled trees, its file, and what the shipped one decides."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.search.grouping import GroupingParams, IssueGrouper, PostSignal
from services.search.issue_model import (
    FEATURES,
    MODEL_FILE,
    MODEL_VERSION,
    check_model,
    compile_trees,
    load_join_model,
)

T0 = datetime(2026, 4, 10, 19, 0, tzinfo=timezone(timedelta(hours=8)))


def test_a_compiled_tree_goes_left_at_its_threshold_and_adds_its_leaves() -> None:
    # root: feature 1 <= 0.5 ? (feature 0 <= 2 ? 1.0 : 2.0) : 3.0; a second tree adds 0.25 or -0.25
    trees = [[[1, 0.5, 1, 4, 0.0], [0, 2.0, 2, 3, 0.0], [-1, 0.0, 0, 0, 1.0], [-1, 0.0, 0, 0, 2.0],
              [-1, 0.0, 0, 0, 3.0]],
             [[0, 0.0, 1, 2, 0.0], [-1, 0.0, 0, 0, 0.25], [-1, 0.0, 0, 0, -0.25]]]
    raw = compile_trees(-1.0, trees, width=2)
    assert raw([2.0, 0.5]) == pytest.approx(-1.0 + 1.0 - 0.25)
    assert raw([2.5, 0.5]) == pytest.approx(-1.0 + 2.0 - 0.25)
    assert raw([0.0, 0.6]) == pytest.approx(-1.0 + 3.0 + 0.25)
    assert compile_trees(0.7, [], width=1)([1.0]) == pytest.approx(0.7)


def test_the_shipped_model_is_read_over_the_grouping_features() -> None:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    check_model(data, MODEL_FILE)
    model = load_join_model()
    assert 0.0 < model.threshold < 1.0
    assert len(data["trees"]) > 0
    row = [0.0] * len(FEATURES)
    assert 0.0 < model.probability(row) < 1.0
    assert "eval" not in data["trained_on"]  # the evaluation set stays out of training


def test_a_model_file_of_other_features_or_broken_trees_is_refused(tmp_path: Path) -> None:
    good = {"version": MODEL_VERSION, "features": list(FEATURES), "threshold": 0.5, "baseline": 0.0,
            "trees": [[[0, 0.5, 1, 2, 0.0], [-1, 0, 0, 0, 1.0], [-1, 0, 0, 0, -1.0]]]}
    check_model(good, tmp_path / "m.json")
    with pytest.raises(ValueError, match="not the grouping's"):
        check_model({**good, "features": list(FEATURES)[:-1]}, tmp_path / "m.json")
    with pytest.raises(ValueError, match="version"):
        check_model({**good, "version": MODEL_VERSION + 1}, tmp_path / "m.json")
    with pytest.raises(ValueError, match="outside"):
        check_model({**good, "trees": [[[0, 0.5, 1, 7, 0.0], [-1, 0, 0, 0, 1.0]]]}, tmp_path / "m.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read the join model"):
        load_join_model(broken)


def _post(i: int, text: str, minutes: float, region: str | None = "河口镇",
          topic: str = "outage") -> PostSignal:
    return PostSignal(post_id=f"p{i}", text=text, created_at=T0 + timedelta(minutes=minutes),
                      region=region, topic=topic)


LEARNED = GroupingParams(learned=True)


def test_the_learned_score_joins_paraphrases_and_keeps_another_townships_complaint_apart() -> None:
    grouper = IssueGrouper(LEARNED)
    texts = ["河口镇停电了，什么时候来电？", "河口镇停电了，啥时候来电啊", "河口停电+1",
             "新街整条街都没电了，冰箱里的东西都要坏了", "我家也停了，蜡烛都点上了"]
    issues = {grouper.assign(_post(i, t, 4 * i)).issue_id for i, t in enumerate(texts)}
    assert len(issues) == 1
    other = grouper.assign(_post(9, "石龙镇停电了，什么时候来电？", 25, region="石龙镇")).issue_id
    assert other not in issues
    later = grouper.assign(_post(10, "河口镇停电了，什么时候来电？", 60 * 50)).issue_id
    assert later not in issues  # the same complaint two days later is another matter


def test_the_rules_alone_are_the_default() -> None:
    grouper = IssueGrouper()
    assert grouper._model is None and IssueGrouper(LEARNED)._model is not None
    first = grouper.assign(_post(1, "河口镇停电了，什么时候来电？", 0)).issue_id
    assert grouper.assign(_post(2, "河口镇停电了，啥时候来电啊", 3)).issue_id == first


def test_a_probability_is_the_logistic_of_the_trees_sum() -> None:
    model = load_join_model()
    row = [0.0] * len(FEATURES)
    assert model.probability(row) == pytest.approx(1 / (1 + math.exp(-model.raw(row))))
