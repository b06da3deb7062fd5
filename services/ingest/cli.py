"""``yuqing ingest ...``, ``yuqing publish`` and ``yuqing dlq ...``: the ingest service's commands."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from yuqing.clikit import EXIT_BAD_INPUT, command_group, one_line
from yuqing.observability import configure_logging

if TYPE_CHECKING:  # imported by the commands that run: the command tree stays light
    from services.ingest.registry import SourceRegistry
    from services.ingest.settings import IngestSettings

ingest_cli = command_group("Ingest service: HTTP API and forum pollers.")
dlq_cli = command_group("Dead letters (posts.dlq).")


@ingest_cli.command("serve")
def serve() -> None:
    """Run the ingest HTTP API."""
    import uvicorn

    from services.ingest.api import create_app
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    registry = _registry(settings)
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings, registry=registry), host=settings.host, port=settings.port,
                log_level="warning")


@ingest_cli.command("poll")
def poll() -> None:
    """Poll the forum sources without serving HTTP (with YUQING_INGEST_POLL_FORUMS=false on the API)."""
    import asyncio

    from services.ingest import metrics
    from services.ingest.pollers import run_pollers
    from services.ingest.settings import IngestSettings
    from yuqing.observability import serve_metrics

    settings = IngestSettings()
    registry = _registry(settings)
    configure_logging(settings.log_level)
    # the pollers' families (posts accepted, duplicate and refused per channel, publish latency)
    # were counted here and served nowhere: the API's /metrics is another process
    serve_metrics(settings.poll_metrics_port, metrics.REGISTRY)
    asyncio.run(run_pollers(settings, registry=registry))


def _registry(settings: IngestSettings) -> SourceRegistry:
    """The registry, read before anything starts: a bad file or a missing secret is one line
    (read during the server's startup, it was a traceback)."""
    from services.ingest.registry import RegistryError, load_registry

    try:
        return load_registry(settings.sources_path, os.environ)
    except RegistryError as exc:
        raise ValueError(str(exc)) from None


@dlq_cli.command("tail")
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
    except LookupError as exc:  # no posts.dlq: one line and 1, as every command's bad input (clikit)
        raise ValueError(str(exc)) from None
    except KeyboardInterrupt:
        pass


@dlq_cli.command("replay")
def dlq_replay(
    service: str | None = typer.Option(None, "--service", help="only letters of this service (nlp, alerts, "
                                       "search-indexer; indexer, as its alerts name it, is search-indexer)"),
    source: str | None = typer.Option(None, "--source", help="only this source's posts"),
    post_id: str | None = typer.Option(None, "--post-id", help="only this post"),
    since: datetime | None = typer.Option(None, "--since", formats=["%Y-%m-%dT%H:%M:%S%z"],
                                          help="only letters written at or after this time"),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what would be replayed, publish nothing"),
) -> None:
    """Publish dead letters' originals again to the topic they came from, once the cause is fixed."""
    from services.ingest.dlq_replay import ReplayFilter, replay
    from yuqing.settings import KafkaSettings

    wanted = ReplayFilter(service=service, source=source, post_id=post_id, since=since)
    try:
        report = replay(KafkaSettings(), wanted, dry_run=dry_run, emit=typer.echo)
    except LookupError as exc:  # no posts.dlq: one line and 1, as every command's bad input (clikit)
        raise ValueError(str(exc)) from None
    verb = "would be replayed" if dry_run else "replayed"
    repeats = f", {len(report.repeats)} the same as one replayed" if report.repeats else ""
    tombstones = f", {len(report.tombstones)} tombstones skipped (no value)" if report.tombstones else ""
    typer.echo(f"{len(report.replayed)} {verb}, {len(report.missing)} no longer on their topic"
               f"{repeats}{tombstones}")
    raise typer.Exit(3 if report.missing else 0)


def publish(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL, one post per line"),
    source: str = typer.Option(..., "--source", help="source id from the registry"),
    batch_size: int = typer.Option(500, min=1, max=10_000),
    show_rejected: int = typer.Option(20, min=0, help="how many rejected lines to print"),
) -> None:
    """Back-fill posts from a JSONL file straight into posts.raw (validated line by line)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from services.ingest.backfill import backfill
    from services.ingest.publisher import KafkaPublisher, PublishError
    from services.ingest.registry import RegistryError, load_registry
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    console = Console(stderr=True)
    try:
        # this source's secrets alone: another's unset stopped a back-fill that needs none of them
        registered = load_registry(settings.sources_path, os.environ, only=source).get(source)
    except RegistryError as exc:  # one line and 1, as every command's bad input (clikit)
        typer.echo(f"error: {one_line(exc)}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.publish_timeout_s)
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(path.name, total=path.stat().st_size)
            report = backfill(path, source=registered, publisher=publisher, batch_size=batch_size,
                              on_progress=lambda n: progress.advance(task, n),
                              max_line_bytes=settings.max_body_bytes, keep_rejected=show_rejected)
    except PublishError as exc:
        console.print(f"[red]{exc}[/red] — lines before the failing batch were published; "
                      "re-running is safe (post ids are deterministic)")
        raise typer.Exit(1) from exc
    finally:
        publisher.close()
    for number, reason in report.rejected[:show_rejected]:
        console.print(f"line {number}: {reason}")
    console.print(f"{report.lines} lines: [green]{report.accepted} accepted[/green], "
                  f"[red]{report.rejected_lines} rejected[/red]")
    raise typer.Exit(0 if not report.rejected_lines else 3)
