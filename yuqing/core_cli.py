"""The commands of the shared core: local servers, topics, group offsets, contracts and ``yuqing run``."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import typer

from yuqing.clikit import command_group
from yuqing.paths import project_paths

infra_cli = command_group("Local Kafka and Elasticsearch (from Maven Central).")
schemas_cli = command_group("Topic contracts.")


def _infra(action: str, which: str) -> None:
    raise typer.Exit(subprocess.call([sys.executable, str(project_paths().infra_script), action, which]))


@infra_cli.command("up")
def infra_up(which: str = typer.Argument("all", help="all|kafka|es")) -> None:
    """Fetch (once) and start Kafka and Elasticsearch; idempotent."""
    _infra("up", which)


@infra_cli.command("down")
def infra_down(which: str = typer.Argument("all", help="all|kafka|es")) -> None:
    """Stop the local Kafka and Elasticsearch."""
    _infra("down", which)


@infra_cli.command("status")
def infra_status() -> None:
    """Whether the local servers answer."""
    _infra("status", "all")


def create_topics() -> None:
    """Create the project's topics (from schemas/*/topic.json) if missing; say how existing ones
    differ from their contract (retention, cleanup policy, partitions)."""
    from yuqing.kafka import ensure_topics, topic_drift
    from yuqing.settings import KafkaSettings

    settings = KafkaSettings()
    created = ensure_topics(settings)
    typer.echo(f"created: {', '.join(created) or 'none (all present)'}")
    for line in topic_drift(settings):
        typer.echo(f"differs from its contract (schemas/*/topic.json): {line}", err=True)


@schemas_cli.command("export")
def schemas_export() -> None:
    """Regenerate schemas/*/v1.schema.json from the pydantic models."""
    from yuqing.contracts.export import export_all

    root = project_paths().root
    for path in export_all():
        typer.echo(str(path.relative_to(root) if path.is_relative_to(root) else path))


@schemas_cli.command("check")
def schemas_check() -> None:
    """Fail if a committed schema differs from its model."""
    from yuqing.contracts.export import stale_schemas

    stale = stale_schemas()
    if stale:
        typer.echo(f"stale schemas: {', '.join(stale)} (run `yuqing schemas export`)", err=True)
        raise typer.Exit(1)
    typer.echo("schemas up to date")


def run_pipeline(
    demo: bool = typer.Option(True, help="replay the bundled demo stream once everything is up"),
    logs: Path | None = typer.Option(None, file_okay=False, help="the services' logs; default "
                                     "<YUQING_HOME>/run/logs"),
) -> None:
    """Start Kafka, Elasticsearch and every service; replay the demo; Ctrl-C stops all."""
    from yuqing.supervisor import run

    raise typer.Exit(run(demo=demo, logs=logs))


kafka_cli = command_group("Kafka consumer groups.")


@kafka_cli.command("offsets")
def kafka_offsets(
    group: str = typer.Option(..., help="consumer group id, e.g. yuqing-nlp"),
    topic: str = typer.Option(..., help="topic name as on the broker, e.g. posts.raw"),
    to_latest: bool = typer.Option(False, "--to-latest", help="skip to the end of the topic"),
    to_datetime: datetime | None = typer.Option(
        None, formats=["%Y-%m-%dT%H:%M:%S%z"],
        help="to the first message written at or after this time (ISO 8601 with offset)"),
    shift: int | None = typer.Option(None, help="move by N messages (negative: read again)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the moves, change nothing"),
) -> None:
    """Move a stopped consumer group's committed offsets on one topic; refused while it has
    active members."""
    from yuqing.group_offsets import Target, move_offsets
    from yuqing.settings import KafkaSettings

    target = Target(to_latest=to_latest, to_datetime=to_datetime, shift=shift)
    moves = move_offsets(KafkaSettings(), group=group, topic=topic, target=target, dry_run=dry_run)
    for move in moves:
        current = "none" if move.current is None else move.current
        typer.echo(f"{topic}[{move.partition}]: {current} -> {move.new}")
    typer.echo(f"{'would move' if dry_run else 'moved'} {len(moves)} partition(s) of group {group}")
