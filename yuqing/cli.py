"""The ``yuqing`` command: one sub-command group per service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from yuqing.observability import configure_logging, serve_metrics

REPO_ROOT = Path(__file__).resolve().parent.parent

app = typer.Typer(help="Yuqing: public-opinion pipeline for power-supply companies.",
                  no_args_is_help=True)
infra_app = typer.Typer(help="Local Kafka and Elasticsearch (from Maven Central).",
                        no_args_is_help=True)
schemas_app = typer.Typer(help="Topic contracts.", no_args_is_help=True)
ingest_app = typer.Typer(help="Ingest service.", no_args_is_help=True)
nlp_app = typer.Typer(help="NLP worker and model.", no_args_is_help=True)
alerts_app = typer.Typer(help="Surge detection.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters (posts.dlq).", no_args_is_help=True)
for sub, name in ((infra_app, "infra"), (schemas_app, "schemas"), (ingest_app, "ingest"),
                  (nlp_app, "nlp"), (alerts_app, "alerts"), (dlq_app, "dlq")):
    app.add_typer(sub, name=name)


def _infra(action: str, which: str) -> None:
    script = REPO_ROOT / "deploy" / "local" / "infra.py"
    raise typer.Exit(subprocess.call([sys.executable, str(script), action, which]))


@infra_app.command("up")
def infra_up(which: str = typer.Argument("all", help="all|kafka|es")) -> None:
    """Fetch (once) and start Kafka and Elasticsearch; idempotent."""
    _infra("up", which)


@infra_app.command("down")
def infra_down(which: str = typer.Argument("all")) -> None:
    _infra("down", which)


@infra_app.command("status")
def infra_status() -> None:
    _infra("status", "all")


@app.command("topics")
def create_topics() -> None:
    """Create the project's topics (from schemas/*/topic.json) if missing."""
    from yuqing.kafka import ensure_topics
    from yuqing.settings import KafkaSettings

    created = ensure_topics(KafkaSettings())
    typer.echo(f"created: {', '.join(created) or 'none (all present)'}")


@schemas_app.command("export")
def schemas_export() -> None:
    """Regenerate schemas/*/v1.schema.json from the pydantic models."""
    from yuqing.contracts.export import export_all

    for path in export_all():
        typer.echo(str(path.relative_to(REPO_ROOT)))


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail if a committed schema differs from its model."""
    from yuqing.contracts.export import stale_schemas

    stale = stale_schemas()
    if stale:
        typer.echo(f"stale schemas: {', '.join(stale)} (run `yuqing schemas export`)", err=True)
        raise typer.Exit(1)
    typer.echo("schemas up to date")


@ingest_app.command("serve")
def ingest_serve() -> None:
    """Run the ingest HTTP API."""
    import uvicorn

    from services.ingest.api import create_app
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="warning")


@ingest_app.command("poll")
def ingest_poll() -> None:
    """Poll the forum sources without serving HTTP (with YUQING_INGEST_POLL_FORUMS=false on the API)."""
    import asyncio

    from services.ingest.pollers import run_pollers
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    configure_logging(settings.log_level)
    asyncio.run(run_pollers(settings))


@dlq_app.command("tail")
def dlq_tail(
    lines: int = typer.Option(20, "--lines", "-n", min=0, help="dead letters per partition to show"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep showing new ones (Ctrl-C stops)"),
    source: str | None = typer.Option(None, "--source", help="only this source's posts"),
) -> None:
    """The latest dead letters: when, which service, where, whose post, why."""
    from services.ingest.dlq import tail
    from yuqing.settings import KafkaSettings

    try:
        tail(KafkaSettings(), lines=lines, follow=follow, source=source, emit=typer.echo)
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        pass


def _run_faust(faust_app: object, log_level: str) -> None:
    from faust.worker import Worker

    Worker(faust_app, loglevel=log_level.lower(), quiet=True).execute_from_commandline()


@nlp_app.command("worker")
def nlp_worker() -> None:
    """Run the NLP worker: posts.raw -> posts.enriched."""
    import torch

    from services.nlp.settings import NlpSettings
    from services.nlp.worker import create_app, load_configured_classifier

    settings = NlpSettings()
    configure_logging(settings.log_level)
    torch.set_num_threads(settings.torch_threads)
    classifier = load_configured_classifier(settings)
    serve_metrics(settings.metrics_port)
    _run_faust(create_app(settings, classifier), settings.log_level)


def _mount_search_commands() -> None:
    from services.search.cli import search_cli

    app.add_typer(search_cli, name="search")


_mount_search_commands()


def _mount_model_commands() -> None:
    """`yuqing nlp convert|train|predict|evaluate` come from the model package."""
    from services.nlp.nlp_cli import model_app

    nlp_app.registered_commands.extend(model_app.registered_commands)


# The model commands import torch (seconds, hundreds of MB): only for `yuqing nlp ...`,
# so the ingest and search processes stay light.
if len(sys.argv) > 1 and sys.argv[1] == "nlp":
    _mount_model_commands()


@nlp_app.command("ensure-model")
def nlp_ensure_model() -> None:
    """Build the default model into the cache if it is missing (convert + shipped weights)."""
    from services.nlp.classifier import ensure_default_model

    typer.echo(str(ensure_default_model()))


@alerts_app.command("worker")
def alerts_worker() -> None:
    """Run the alerts worker: windowed volumes and surge detection."""
    from services.alerts.settings import AlertsSettings
    from services.alerts.worker import create_app

    settings = AlertsSettings()
    configure_logging(settings.log_level)
    serve_metrics(settings.metrics_port)
    _run_faust(create_app(settings), settings.log_level)


@alerts_app.command("replay")
def alerts_replay(
    input_csv: Path | None = typer.Option(None, "--input", exists=True, dir_okay=False,
                                          help="timestamp,value rows (one series, any cadence)"),
    output_csv: Path | None = typer.Option(None, "--output", help="timestamp,value,anomaly_score"),
    posts: Path | None = typer.Option(None, "--posts", exists=True, dir_okay=False,
                                      help="JSONL of past posts.enriched records"),
) -> None:
    """Backtest the detector: score a counts CSV, or list what past posts would have fired."""
    from services.alerts.replay import replay_counts_csv, replay_posts_jsonl

    if (input_csv is None and posts is None) or (input_csv is not None and output_csv is None):
        raise typer.BadParameter("give --input and --output, or --posts")
    try:
        if posts is not None:
            events = replay_posts_jsonl(posts, echo=typer.echo)
            typer.echo(f"{len(events)} alert events")
            return
        assert input_csv is not None and output_csv is not None
        rows = replay_counts_csv(input_csv, output_csv)
    except ValueError as exc:  # bad input: one line, not a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{rows} rows scored, written to {output_csv}")


@alerts_app.command("warm")
def alerts_warm(
    since: str = typer.Option("14d", "--since", help="how far back: 14d, 36h, 90m"),
    posts: Path | None = typer.Option(None, "--posts", exists=True, dir_okay=False,
                                      help="JSONL of posts.enriched (default: the search index)"),
) -> None:
    """Rebuild detector baselines from stored posts; run while the alerts worker is stopped."""
    from services.alerts.warm import run_warm

    try:
        written, topic = run_warm(since=since, posts=posts)
    except (ValueError, OSError) as exc:  # bad input or an unreachable store: one line
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{written} detectors warmed, written to {topic}")


@app.command("publish")
def publish(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL, one post per line"),
    source: str = typer.Option(..., "--source", help="source id from the registry"),
    batch_size: int = typer.Option(500, min=1, max=10_000),
    show_rejected: int = typer.Option(20, help="how many rejected lines to print"),
) -> None:
    """Back-fill posts from a JSONL file straight into posts.raw (validated line by line)."""
    import os

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from services.ingest.backfill import backfill
    from services.ingest.publisher import KafkaPublisher, PublishError
    from services.ingest.registry import RegistryError, load_registry
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    console = Console(stderr=True)
    try:
        registered = load_registry(settings.sources_path, os.environ).get(source)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.publish_timeout_s)
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(path.name, total=path.stat().st_size)
            report = backfill(path, source=registered, publisher=publisher, batch_size=batch_size,
                              on_progress=lambda n: progress.advance(task, n))
    except PublishError as exc:
        console.print(f"[red]{exc}[/red] — lines before the failing batch were published; "
                      "re-running is safe (post ids are deterministic)")
        raise typer.Exit(1) from exc
    finally:
        publisher.close()
    for number, reason in report.rejected[:show_rejected]:
        console.print(f"line {number}: {reason}")
    console.print(f"{report.lines} lines: [green]{report.accepted} accepted[/green], "
                  f"[red]{len(report.rejected)} rejected[/red]")
    raise typer.Exit(0 if not report.rejected else 3)


@app.command("run")
def run_pipeline(
    demo: bool = typer.Option(True, help="replay the bundled demo stream once everything is up"),
) -> None:
    """Start Kafka, Elasticsearch and every service; replay the demo; Ctrl-C stops all."""
    from yuqing.supervisor import run

    raise typer.Exit(run(demo=demo))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
