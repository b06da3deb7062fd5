"""Merge a file of new labelled posts into ``data/corpus/`` by the corpus-merge rule.

    python bench/corpus_add.py NEW.jsonl [--write]

``corpus_merge.select_new`` against the corpus and the texts of the test sets
(``data/ood/``, ``data/issues/``), then near-duplicates within the new posts
(the later of a close pair goes). Prints counts and the dropped NEW posts
only: the test sets' texts never reach the console, so writers of training
posts stay blind to them. ``--write`` appends the kept posts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from services.nlp.corpus_merge import FIELDS, append_to_corpus, read_rows, select_new
from services.nlp.model_cv import NEAR_DUPLICATE_COSINE, near_duplicate_groups
from services.nlp.training import KNOWN_LABELS
from yuqing.paths import project_paths

CHANNELS = ("app", "wechat", "forum")
TEST_DIRS = ("ood", "issues")


def _texts(obj: Any) -> Iterator[str]:
    """Every ``text`` string in a JSON value, however the test file nests its posts."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _texts(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _texts(value)


def held_out_texts(data: Path) -> list[str]:
    rows = read_rows(sorted(p for d in TEST_DIRS for p in (data / d).glob("*.jsonl")))
    return [text for row in rows for text in _texts(row)]


def check_labels(rows: Sequence[dict[str, Any]]) -> None:
    for i, row in enumerate(rows):
        if (row.get("topic") not in KNOWN_LABELS["topic"]
                or row.get("sentiment") not in KNOWN_LABELS["sentiment"]
                or row.get("channel") not in CHANNELS):
            raise SystemExit(f"line {i + 1}: unknown label in {row}")


def drop_within(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first post of each near-duplicate group among ``rows``."""
    if not rows:
        return []
    groups = near_duplicate_groups([r["text"] for r in rows], NEAR_DUPLICATE_COSINE)
    seen: set[int] = set()
    kept = []
    for row, group in zip(rows, groups, strict=True):
        if group not in seen:
            seen.add(group)
            kept.append(row)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    data = project_paths().root / "data"
    new = read_rows([args.new])
    check_labels(new)
    corpus = [r["text"] for r in read_rows(sorted((data / "corpus").glob("*.jsonl")))]
    report = select_new(new, corpus, held_out_texts(data))
    kept = drop_within(report.kept)
    print(json.dumps(report.summary() | {"near_duplicates_within": len(report.kept) - len(kept),
                                         "final": len(kept)}, ensure_ascii=False))
    kept_lines = {json.dumps(r, ensure_ascii=False) for r in kept}
    for row in new:
        line = json.dumps({k: row[k] for k in FIELDS if k in row}, ensure_ascii=False)
        if line not in kept_lines:
            print("dropped", line)
    if args.write:
        append_to_corpus(kept, data / "corpus")
        print(f"appended {len(kept)} posts to {data / 'corpus'}")


if __name__ == "__main__":
    main()
