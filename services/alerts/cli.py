"""``yuqing alerts ...``: the alerts worker and the detector's backtest."""

from __future__ import annotations

from pathlib import Path

import typer

from yuqing.clikit import command_group
from yuqing.faust_run import run_faust
from yuqing.observability import configure_logging, serve_metrics

alerts_cli = command_group("Surge detection: the alerts worker and its backtest.")
# services.alerts.replay.DETECTORS, spelt here so that the command tree does not import numpy.
SERIES_DETECTORS = ("resonance_gated", "resonance", "gated", "combined", "context", "novelty")


@alerts_cli.command("worker")
def worker() -> None:
    """Run the alerts worker: windowed volumes and surge detection."""
    from services.alerts import metrics
    from services.alerts.settings import AlertsSettings
    from services.alerts.worker import create_app
    from yuqing.kafka import require_replicas, require_room, require_topics
    from yuqing.topics import LogicalTopic

    settings = AlertsSettings()
    configure_logging(settings.log_level)
    serve_metrics(settings.metrics_port, metrics.REGISTRY)
    require_topics(settings.kafka, [LogicalTopic.POSTS_ENRICHED, LogicalTopic.ALERTS, LogicalTopic.POSTS_DLQ])
    require_room(settings.kafka, [LogicalTopic.ALERTS, LogicalTopic.POSTS_DLQ])
    require_replicas(settings.kafka)
    run_faust(create_app(settings), settings.log_level)


@alerts_cli.command("replay")
def replay(
    input_csv: Path | None = typer.Option(None, "--input", exists=True, dir_okay=False,
                                          help="timestamp,value rows (one series, any cadence)"),
    output_csv: Path | None = typer.Option(None, "--output", help="timestamp,value,anomaly_score"),
    posts: Path | None = typer.Option(None, "--posts", exists=True, dir_okay=False,
                                      help="JSONL of past posts.enriched records"),
    detector: str = typer.Option(
        "resonance_gated", "--detector",
        help="series detector: resonance_gated (ARTime's detections scored with the gated evidence, "
             "a close repeat only when stronger; reads the file's range and length), "
             "resonance (ARTime's algorithm alone), gated, combined, context or novelty"),
) -> None:
    """Backtest: score one series of any cadence, or list what past posts would have fired."""
    from services.alerts.replay import replay_counts_csv, replay_posts_jsonl

    if posts is not None:
        events = replay_posts_jsonl(posts, echo=typer.echo)
        typer.echo(f"{len(events)} alert events")
        return
    if input_csv is None or output_csv is None:
        raise typer.BadParameter("give --input and --output, or --posts")
    if detector not in SERIES_DETECTORS:
        raise typer.BadParameter(f"--detector must be one of {', '.join(SERIES_DETECTORS)}")
    # A series it cannot use raises one line (SeriesError).
    rows = replay_counts_csv(input_csv, output_csv, detector=detector)
    typer.echo(f"{rows} rows scored, written to {output_csv}")


@alerts_cli.command("warm")
def warm(
    since: str = typer.Option("14d", "--since", help="how far back: 14d, 36h, 90m"),
    posts: Path | None = typer.Option(None, "--posts", exists=True, dir_okay=False,
                                      help="JSONL of posts.enriched (default: the search index)"),
) -> None:
    """Rebuild detector baselines from stored posts; run while the alerts worker is stopped."""
    from services.alerts.warm import run_warm

    written, topic = run_warm(since=since, posts=posts)
    typer.echo(f"{written} detectors warmed, written to {topic}")
