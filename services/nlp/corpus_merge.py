"""Merging new labelled posts into the corpus without duplicates or test-set leaks.

A new post is dropped when, after ``normalize`` (NFKC, one space), it equals
a post already kept, or when its character-bigram TF-IDF cosine with a
corpus post or a test-set post reaches ``NEAR_DUPLICATE_COSINE`` (a
paraphrase of a test post in training would inflate the test score).
Kept posts are appended to ``<corpus>/<topic>.jsonl``; files stay sorted
by nothing but arrival, so a diff shows exactly what a merge added.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.nlp.enrich import normalize
from services.nlp.model_cv import NEAR_DUPLICATE_COSINE, near_duplicates_across

FIELDS = ("text", "topic", "sentiment", "channel")


@dataclass
class MergeReport:
    kept: list[dict[str, Any]] = field(default_factory=list)
    exact_duplicates: int = 0
    near_corpus: int = 0
    near_test: int = 0

    def summary(self) -> dict[str, object]:
        return {"kept": len(self.kept), "exact_duplicates": self.exact_duplicates,
                "near_duplicates_of_corpus": self.near_corpus,
                "near_duplicates_of_test": self.near_test,
                "kept_by_topic": dict(Counter(r.get("topic") for r in self.kept))}


def read_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def select_new(new: Sequence[dict[str, Any]], corpus: Sequence[str], test: Sequence[str],
               threshold: float = NEAR_DUPLICATE_COSINE) -> MergeReport:
    """The new rows to keep, in order, and why the others were dropped."""
    report = MergeReport()
    seen = {normalize(t) for t in corpus}
    unique = []
    for row in new:
        key = normalize(row["text"])
        if not key or key in seen:
            report.exact_duplicates += 1
            continue
        seen.add(key)
        unique.append(row)
    texts = [r["text"] for r in unique]
    near_test = {i for i, _, _ in near_duplicates_across(texts, test, threshold)} if test else set()
    near_corpus = {i for i, _, _ in near_duplicates_across(texts, corpus, threshold)} \
        if corpus else set()
    for i, row in enumerate(unique):
        if i in near_test:
            report.near_test += 1
        elif i in near_corpus:
            report.near_corpus += 1
        else:
            report.kept.append({k: row[k] for k in FIELDS if k in row})
    return report


def append_to_corpus(rows: Iterable[dict[str, Any]], corpus_dir: Path) -> None:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_topic.setdefault(row["topic"], []).append(row)
    for topic, items in by_topic.items():
        with (corpus_dir / f"{topic}.jsonl").open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in items)
