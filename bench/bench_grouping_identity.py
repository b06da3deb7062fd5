"""The digest of every grouping assignment: a change meant only to make grouping cheaper must leave it
as it was.

Runs the live grouping (``IssueGrouper``, as ``issue_offline.group_rows`` feeds it) over every
``data/issues/*.jsonl`` set, once with the default model's topics and once with the labelled ones,
and over 10,000 synthetic ``posts.enriched`` posts (bench_search, at a fixed time), and prints a
SHA-256 digest per run and of them all. Each digest covers, per post in input order, the issue id
it was assigned and its distance, the id it resolves to at the end, and every automatic merge
(``take_merges``: source, target, score). The model's topics are computed once and kept in
``bench/results/model_topics.json`` (keyed by the text's hash; delete it when the model changes).

    python bench/bench_grouping_identity.py            # print the digests
    python bench/bench_grouping_identity.py --expect HEX   # exit 1 unless the overall digest is HEX
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.search.grouping import IssueGrouper, PostSignal  # noqa: E402
from services.search.issue_offline import (  # noqa: E402
    Classified,
    configured_places,
    model_topics,
    post_of,
    read_posts,
    with_topics,
)
from services.search.issue_text import forget_views, idf_table  # noqa: E402

DATA = ROOT / "data" / "issues"
TOPICS_CACHE = ROOT / "bench" / "results" / "model_topics.json"
SYNTHETIC_POSTS = 10_000
SYNTHETIC_END = datetime(2026, 11, 30, 12, tzinfo=UTC)  # fixed: the synthetic posts depend on the hour


def cached_model_topics(texts: list[str]) -> list[Classified]:
    """``issue_offline.model_topics``, each text classified once across runs (``TOPICS_CACHE``)."""
    cache: dict[str, Any] = json.loads(TOPICS_CACHE.read_text("utf-8")) if TOPICS_CACHE.exists() else {}
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    if missing:
        for (key, _), found in zip(missing, model_topics([t for _, t in missing]), strict=True):
            cache[key] = [found[0], dict(found[1])]
        TOPICS_CACHE.parent.mkdir(parents=True, exist_ok=True)
        TOPICS_CACHE.write_text(json.dumps(cache, ensure_ascii=False), "utf-8")
    return [(cache[k][0], cache[k][1]) for k in keys]


def grouped_lines(signals: list[PostSignal], grouper: IssueGrouper) -> list[str]:
    """The grouping's record of a run: each post's assignment (input order), then the merges."""
    order = sorted(range(len(signals)), key=lambda i: (signals[i].created_at, i))
    assigned: dict[int, tuple[str, int]] = {}
    merges: list[str] = []
    for i in order:
        found = grouper.assign(signals[i])
        assigned[i] = (found.issue_id, found.distance)
        merges.extend(f"merge {m.source_id} {m.target_id} {m.score!r}" for m in grouper.take_merges())
    return [f"{signals[i].post_id} {assigned[i][0]} {assigned[i][1]} {grouper.resolve(assigned[i][0])}"
            for i in range(len(signals))] + merges


def digest(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def data_set_runs() -> dict[str, list[PostSignal]]:
    """Each labelled set's posts, with the default model's topics and with the labelled ones."""
    runs = {}
    for path in sorted(DATA.glob("*.jsonl")):
        rows = read_posts(path)
        modelled = cached_model_topics([r["text"] for r in rows])
        runs[f"{path.stem}/model"] = [post_of(r, t) for r, t in zip(rows, modelled, strict=True)]
        runs[f"{path.stem}/labelled"] = [post_of(r, t) for r, t in
                                         zip(rows, with_topics(rows, None), strict=True)]
    return runs


def synthetic_signals(posts: int = SYNTHETIC_POSTS) -> list[PostSignal]:
    """The indexer's synthetic posts (bench_search), as the indexer's grouping reads them."""
    from bench.bench_search import synthesize
    from services.search.issue_live import post_signal
    from yuqing.contracts import EnrichedPost
    from yuqing.contracts.codec import decode

    return [post_signal(decode(EnrichedPost, v)) for v in synthesize(posts, end=SYNTHETIC_END)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", help="the overall digest recorded before the change")
    parser.add_argument("--no-synthetic", action="store_true", help="the labelled sets only")
    args = parser.parse_args()
    runs = data_set_runs()
    if not args.no_synthetic:
        runs["synthetic"] = synthetic_signals()
    digests = {}
    idf_table(), configured_places()  # built once per process: not a post's cost
    for name, signals in runs.items():
        forget_views()  # each run reads its posts' texts afresh
        places = configured_places() if name != "synthetic" else None
        started = time.process_time()
        lines = grouped_lines(signals, IssueGrouper(places=places) if places else IssueGrouper())
        elapsed = (time.process_time() - started) / len(signals) * 1e6
        digests[name] = digest(lines)
        print(f"{name:<16} {len(signals):>6} posts {elapsed:>6.0f} µs/post  {digests[name][:16]}", flush=True)
    overall = digest(f"{name} {value}" for name, value in digests.items())
    print(f"overall {overall}")
    if args.expect and args.expect != overall:
        print(f"DIFFERENT: expected {args.expect}")
        sys.exit(1)


if __name__ == "__main__":
    main()
