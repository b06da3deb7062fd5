"""The NLP stage end to end, and the default model on posts it has never seen.

    python bench/bench_nlp.py [--posts 2000] [--passes 3] [--variants default,fp32]
                              [--skip-worker] [--skip-ood]

* **worker**: the real NLP worker (``yuqing nlp worker``, 2 threads) in a
  subprocess on the real Kafka, with topics of its own (a unique prefix), one
  worker per model variant. Each pass produces ``--posts`` raw posts (the
  out-of-distribution texts, cycled: posts the model has not seen) as fast as
  the producer can, and times from the first send to the last enriched post
  read back; posts/s is the median pass. The variants' passes alternate
  (A/B/A/B), so load from other processes on the host falls on each alike; the
  first variant is reported, the others as ``baselines`` with the median of
  the pass-by-pass speed ratios. Peak memory is the worker's high-water RSS
  (``VmHWM``) after the last pass.
* **ood**, **ood2**: the default classifier (first variant) on each
  out-of-distribution set (``data/ood/ood.jsonl``, ``data/ood/ood2.jsonl``:
  posts written apart from the training corpus, never trained on, never used
  to choose anything), through ``predict`` as the worker calls it, beside the
  character 1-3-gram TF-IDF + logistic-regression baseline trained on
  ``data/corpus/``, the other variants' scores and the most frequent topic
  confusions. ``--skip-worker`` runs only this part (about a minute per
  variant).

Writes ``bench/results/nlp.json``:
``{"worker": {"posts_per_s_median", "peak_rss_mb", "baselines", ...},
"ood": {"topic_accuracy", "topic_macro_f1", "sentiment_accuracy", "tfidf_topic_accuracy", ...},
"ood2": {the same fields}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import free_port, write_results  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from services.nlp.classifier import TextClassifier
    from services.nlp.model_metrics import EvalReport
    from services.nlp.training import Example

CORPUS = REPO / "data" / "corpus"
OOD_DIR = REPO / "data" / "ood"
# results key -> file; "ood" feeds the worker passes too (the first set, so that
# throughput stays comparable with earlier runs)
OOD_SETS = {"ood": OOD_DIR / "ood.jsonl", "ood2": OOD_DIR / "ood2.jsonl"}
TOP_CONFUSIONS = 8
THREADS = 2
READY_TIMEOUT_S = 300.0
PASS_TIMEOUT_S = 600.0


def ood_scores(variants: list[str]) -> dict[str, dict[str, Any]]:
    """Per out-of-distribution set: the first variant of the default model, the others,
    and the TF-IDF baseline. Each variant is loaded once for all sets."""
    import torch

    from services.nlp.classifier import load_classifier
    from services.nlp.training import read_examples

    torch.set_num_threads(THREADS)
    sets = {name: read_examples(path) for name, path in OOD_SETS.items() if path.exists()}
    train = read_examples(CORPUS)
    classifiers = {v: load_classifier(torch_threads=THREADS, variant=v) for v in variants}
    baselines = tfidf_reports(train, sets)
    return {name: _set_scores(classifiers, baselines[name], test) | {"corpus_n": len(train)}
            for name, test in sets.items()}


def tfidf_reports(train: Sequence[Example], sets: Mapping[str, Sequence[Example]],
                  ) -> dict[str, dict[str, EvalReport]]:
    """``training.tfidf_baseline`` for several test sets, each task's model fitted once.

    Fitting is most of the baseline's cost (the logistic regression over the
    corpus's n-grams); a test checks that the reports equal ``tfidf_baseline``'s.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from services.nlp.classifier import TASKS
    from services.nlp.model_metrics import evaluate_labels
    from services.nlp.training import KNOWN_LABELS

    reports: dict[str, dict[str, EvalReport]] = {name: {} for name in sets}
    for task in TASKS:
        labelled = [ex for ex in train if ex.label(task)]
        if not labelled:
            continue
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
        model = LogisticRegression(C=10.0, max_iter=2000)
        model.fit(vec.fit_transform([ex.text for ex in labelled]),
                  [ex.label(task) for ex in labelled])
        for name, test in sets.items():
            scored = [ex for ex in test if ex.label(task)]
            if scored:
                pred = model.predict(vec.transform([ex.text for ex in scored]))
                reports[name][task] = evaluate_labels(
                    task, [str(ex.label(task)) for ex in scored], [str(p) for p in pred],
                    KNOWN_LABELS[task])
    return reports


def _set_scores(classifiers: dict[str, TextClassifier], baseline: dict[str, EvalReport],
                test: list[Example]) -> dict[str, Any]:
    from services.nlp.training import evaluate_classifier

    (_, clf), *others = classifiers.items()
    reports = evaluate_classifier(clf, test)
    variants = {v: evaluate_classifier(c, test) for v, c in others}
    flagged = sum(p.low_confidence for p in clf.predict([ex.text for ex in test]))
    return {
        "model": clf.version, "n": len(test),
        "topic_accuracy": reports["topic"].accuracy, "topic_macro_f1": reports["topic"].macro_f1,
        "sentiment_accuracy": reports["sentiment"].accuracy,
        "sentiment_macro_f1": reports["sentiment"].macro_f1,
        "tfidf_topic_accuracy": baseline["topic"].accuracy,
        "tfidf_topic_macro_f1": baseline["topic"].macro_f1,
        "tfidf_sentiment_accuracy": baseline["sentiment"].accuracy,
        "low_confidence_share": flagged / max(1, len(test)),
        "topic_f1": {c.label: c.f1 for c in reports["topic"].per_class},
        "tfidf_topic_f1": {c.label: c.f1 for c in baseline["topic"].per_class},
        "topic_confusions": top_confusions(reports["topic"], TOP_CONFUSIONS),
        "variants": {v: {"topic_accuracy": r["topic"].accuracy, "topic_macro_f1": r["topic"].macro_f1,
                         "sentiment_accuracy": r["sentiment"].accuracy} for v, r in variants.items()},
    }


def top_confusions(report: EvalReport, k: int) -> list[dict[str, Any]]:
    """The ``k`` most frequent (gold, predicted) pairs with gold != predicted, most first
    (ties in label order)."""
    pairs = [(count, g, p) for g, row in enumerate(report.confusion)
             for p, count in enumerate(row) if g != p and count]
    pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
    return [{"gold": report.labels[g], "predicted": report.labels[p], "count": count}
            for count, g, p in pairs[:k]]


def ood_summary(name: str, block: dict[str, Any]) -> str:
    """One line per set for the console: model vs baseline, and the weakest topics."""
    weakest = sorted(block["topic_f1"].items(), key=lambda kv: kv[1])[:3]
    return (f"{name} ({block['n']} posts): topic acc {block['topic_accuracy']:.3f} "
            f"(TF-IDF {block['tfidf_topic_accuracy']:.3f}), macro-F1 "
            f"{block['topic_macro_f1']:.3f}, sentiment acc {block['sentiment_accuracy']:.3f}; "
            "weakest F1: " + ", ".join(f"{label} {f1:.2f}" for label, f1 in weakest))


def raw_posts(n: int, run: str) -> list[tuple[bytes, bytes]]:
    """``n`` encoded raw posts (key, value), unique ids per run.

    The texts are the out-of-distribution posts, cycled: the n-gram model has
    memorised its own training corpus and would settle nearly every corpus
    post without the encoder, which flatters the cascade.
    """
    from services.nlp.training import read_examples
    from yuqing.contracts import Channel, RawPost
    from yuqing.contracts.codec import encode
    from yuqing.contracts.models import make_post_id

    texts = [ex.text for ex in read_examples(OOD_SETS["ood"])]
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        external = f"{run}-{i}"
        post = RawPost(post_id=make_post_id("bench", external), source="bench",
                       channel=Channel.APP, external_id=external, text=texts[i % len(texts)],
                       created_at=now, received_at=now)
        out.append((post.post_id.encode(), encode(post)))
    return out


class WorkerRun:
    """A worker subprocess on topics of its own, and the clients that drive it."""

    def __init__(self, log: Path, variant: str) -> None:
        from yuqing.kafka import ensure_topics
        from yuqing.settings import KafkaSettings

        self.prefix = f"bench-nlp-{uuid.uuid4().hex[:8]}-"
        self.kafka = KafkaSettings(topic_prefix=self.prefix)
        ensure_topics(self.kafka)
        env = {**os.environ, "PYTHONPATH": str(REPO), "YUQING_KAFKA_TOPIC_PREFIX": self.prefix,
               "YUQING_NLP_APP_ID": f"{self.prefix}nlp",
               "YUQING_NLP_TORCH_THREADS": str(THREADS), "YUQING_NLP_MODEL_VARIANT": variant,
               "YUQING_NLP_METRICS_PORT": str(free_port()),
               "YUQING_NLP_STATE_DIR": tempfile.mkdtemp(prefix="bench-nlp-"),
               "YUQING_NLP_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "nlp", "worker"],
                                     env=env, cwd=REPO, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT)
        self.producer = self._producer()
        self.consumer = self._consumer()

    def _producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(bootstrap_servers=self.kafka.servers(), acks="all",
                             linger_ms=20, batch_size=256 * 1024)

    def _consumer(self) -> Any:
        from yuqing.kafka import make_consumer
        from yuqing.topics import LogicalTopic

        return make_consumer(self.kafka, group_id=f"{self.prefix}reader",
                             topics=[LogicalTopic.POSTS_ENRICHED], client_id="bench-nlp")

    def drive(self, posts: list[tuple[bytes, bytes]], timeout: float) -> float:
        """Send ``posts``, read until as many enriched posts came back; seconds taken."""
        from yuqing.topics import LogicalTopic

        topic = self.kafka.topic(LogicalTopic.POSTS_RAW)
        started = time.perf_counter()
        for key, value in posts:
            self.producer.send(topic, key=key, value=value)
        self.producer.flush()
        seen, deadline = 0, time.monotonic() + timeout
        while seen < len(posts):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{seen}/{len(posts)} enriched posts after {timeout:.0f} s")
            for records in self.consumer.poll(timeout_ms=200).values():
                seen += len(records)
        return time.perf_counter() - started

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.producer.close()
        self.consumer.close()


def worker_throughput(n_posts: int, passes: int, variants: list[str]) -> dict[str, Any]:
    """Passes of every variant's worker in turn (A/B/A/B), so load from other processes
    falls on all of them alike; the first variant is the reported one."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = {v: WorkerRun(Path(tmp) / f"worker-{v}.log", v) for v in variants}
        rates: dict[str, list[float]] = {v: [] for v in variants}
        try:
            for run in runs.values():
                run.drive(raw_posts(64, "warm-up"), READY_TIMEOUT_S)  # model load, group join
            for k in range(passes):
                for variant, run in runs.items():
                    posts = raw_posts(n_posts, f"pass{k}-{uuid.uuid4().hex[:6]}")
                    rates[variant].append(len(posts) / run.drive(posts, PASS_TIMEOUT_S))
                    print(f"pass {k + 1} {variant}: {rates[variant][-1]:.0f} posts/s", flush=True)
            peaks = {v: run.peak_rss_mb() for v, run in runs.items()}
        except Exception:
            for log in Path(tmp).glob("worker-*.log"):
                print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for run in runs.values():
                run.close()
    return _throughput_report(rates, peaks, n_posts)


def _throughput_report(rates: dict[str, list[float]], peaks: dict[str, float],
                       n_posts: int) -> dict[str, Any]:
    main, *others = rates
    report: dict[str, Any] = {
        "variant": main, "posts_per_s_median": statistics.median(rates[main]),
        "passes_posts_per_s": rates[main], "posts_per_pass": n_posts,
        "peak_rss_mb": peaks[main], "threads": THREADS, "load_average": os.getloadavg()[0]}
    for other in others:
        # pass by pass: the two passes of a pair ran seconds apart, under the same load
        paired = [a / b for a, b in zip(rates[main], rates[other], strict=True)]
        report.setdefault("baselines", {})[other] = {
            "posts_per_s_median": statistics.median(rates[other]),
            "passes_posts_per_s": rates[other], "peak_rss_mb": peaks[other],
            "speedup_median": statistics.median(paired)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--skip-worker", action="store_true")
    parser.add_argument("--skip-ood", action="store_true")
    parser.add_argument("--variants", default="default,fp32",
                        help="model variants, comma-separated; the first is reported, the "
                             "others run interleaved with it as baselines")
    args = parser.parse_args()
    from services.nlp.classifier import resolve_variant

    variants = [resolve_variant(v) for v in args.variants.split(",")]
    results: dict[str, Any] = {}
    if not args.skip_ood:
        results.update(ood_scores(variants))
    if not args.skip_worker:
        results["worker"] = worker_throughput(args.posts, args.passes, variants)
    path = write_results("nlp", results)
    print(json.dumps(results, ensure_ascii=False, indent=2))
    for name in OOD_SETS:
        if name in results:
            print(ood_summary(name, results[name]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
