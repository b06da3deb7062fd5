"""Preparing the public sentiment corpus for the benchmark: dedupe, split, scoring join."""

from __future__ import annotations

import pytest

from bench.sentiment_corpus import (
    NEGATIVE,
    POSITIVE,
    LabelledText,
    dedupe,
    gold_and_predicted,
    label_counts,
    normalise,
    stratified_split,
)


def test_normalise_collapses_every_kind_of_whitespace():
    assert normalise("  质量\t不错 \u3000 物流快\r\n") == "质量 不错 物流快"
    assert normalise(" \t ") == ""


def test_dedupe_keeps_one_copy_and_drops_texts_under_both_labels():
    result = dedupe({
        NEGATIVE: ["太差了", "太差了 ", "一般般", "", "退货了"],
        POSITIVE: ["很好", "一般般", "很  好", "一般般"],
    })
    assert [(ex.text, ex.sentiment) for ex in result.examples] == [
        ("太差了", NEGATIVE), ("退货了", NEGATIVE), ("很好", POSITIVE), ("很 好", POSITIVE)]
    assert (result.raw_lines, result.empty, result.duplicates, result.conflicting) == (9, 1, 3, 1)


def _examples(n_neg: int, n_pos: int) -> list[LabelledText]:
    return ([LabelledText(f"差评{i}", NEGATIVE) for i in range(n_neg)]
            + [LabelledText(f"好评{i}", POSITIVE) for i in range(n_pos)])


def test_split_is_stratified_disjoint_and_independent_of_order():
    examples = _examples(500, 300)
    train, test = stratified_split(examples)
    assert label_counts(test) == {NEGATIVE: 100, POSITIVE: 60}
    assert label_counts(train) == {NEGATIVE: 400, POSITIVE: 240}
    assert not {ex.text for ex in train} & {ex.text for ex in test}
    again_train, again_test = stratified_split(list(reversed(examples)))
    assert set(again_test) == set(test) and set(again_train) == set(train)


def test_split_membership_follows_the_text_hash_not_its_neighbours():
    # a text's side depends on where its hash ranks, so most texts keep their side
    # when a few others are added
    base = _examples(500, 0)
    _, test = stratified_split(base)
    _, grown = stratified_split(base + [LabelledText(f"新增{i}", NEGATIVE) for i in range(10)])
    assert len({ex.text for ex in test} & {ex.text for ex in grown}) >= 95


def test_split_rejects_a_share_outside_zero_and_one():
    with pytest.raises(ValueError):
        stratified_split(_examples(5, 5), test_share=1.0)


def test_rows_are_sentiment_only_with_an_optional_id():
    ex = LabelledText("很好", POSITIVE)
    assert ex.to_row() == {"text": "很好", "sentiment": POSITIVE}
    assert ex.to_row("7") == {"id": "7", "text": "很好", "sentiment": POSITIVE}


def test_predictions_join_on_id_in_any_order():
    test = [LabelledText("a", NEGATIVE), LabelledText("b", POSITIVE)]
    rows = [{"id": "1", "sentiment": NEGATIVE}, {"id": "0", "sentiment": NEGATIVE}]
    assert gold_and_predicted(test, rows) == ([NEGATIVE, POSITIVE], [NEGATIVE, NEGATIVE])


@pytest.mark.parametrize("rows", [
    [{"id": "0", "sentiment": NEGATIVE}],
    [{"id": "0", "sentiment": NEGATIVE}, {"id": "0", "sentiment": POSITIVE}],
    [{"id": "0", "sentiment": NEGATIVE}, {"id": "2", "sentiment": POSITIVE}],
])
def test_a_missing_repeated_or_unknown_prediction_is_an_error(rows):
    test = [LabelledText("a", NEGATIVE), LabelledText("b", POSITIVE)]
    with pytest.raises(ValueError):
        gold_and_predicted(test, rows)


def test_progress_lines_announce_each_phase_as_it_starts():
    from services.nlp.progress import ProgressLines

    lines: list[str] = []
    now = [0.0]
    progress = ProgressLines(lines.append, interval=20, clock=lambda: now[0])
    progress(64, 1000, "encoding")
    now[0] = 5.0
    progress(1000, 1000, "encoding")
    now[0] = 6.0
    progress(0, 2, "fitting the sentiment head")  # a silent minute follows: say what it is
    now[0] = 9.0
    progress(1, 2, "fitting the n-gram model")  # same phase, within the interval: quiet
    now[0] = 70.0
    progress(2, 2, "heads and n-gram model fitted")
    assert [line.split(":")[0] for line in lines] == [
        "encoding", "encoding", "fitting the sentiment head", "heads and n-gram model fitted"]
