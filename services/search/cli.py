"""``yuqing search ...``: the indexer, the API, back-fill, retention and credentials."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import typer

from services.search.settings import SearchSettings
from yuqing.clikit import command_group
from yuqing.observability import configure_logging, serve_metrics
from yuqing.settings import ElasticsearchSettings

search_cli = command_group("Indexer, search API, back-fill, retention and API keys.")


def _settings(index_prefix: str | None = None) -> SearchSettings:
    settings = SearchSettings()
    if index_prefix:
        # validated as YUQING_ES_INDEX_PREFIX is: a copy took any prefix, and Elasticsearch
        # refused the first template in its own words, after the progress bar had started
        es = ElasticsearchSettings.model_validate({**settings.es.model_dump(), "index_prefix": index_prefix})
        settings = settings.model_copy(update={"es": es})
    return settings


@search_cli.command("serve")
def serve() -> None:
    """Run the responders' search API."""
    import uvicorn

    from services.search.api import create_app

    settings = _settings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


@search_cli.command("indexer")
def indexer() -> None:
    """Run the indexer: posts.enriched and alerts -> Elasticsearch."""
    import signal

    from services.search import metrics
    from services.search.indexer import Indexer

    settings = _settings()
    configure_logging(settings.log_level)
    # /readyz answers 503 while the indexer waits for Elasticsearch or its topics (the readiness probe)
    serve_metrics(settings.indexer_metrics_port, metrics.INDEXER_REGISTRY, ready=metrics.indexer_ready)
    worker = Indexer(settings)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()


@search_cli.command("reindex")
def reindex(
    from_offset: int | None = typer.Option(None, min=0, help="start at this offset in every partition"),
    from_time: datetime | None = typer.Option(None, help="start at the first record at/after this time"),
    index_prefix: str | None = typer.Option(None, help="build under another prefix (blue/green)"),
    alerts: bool = typer.Option(True, help="also rebuild the alerts index"),
) -> None:
    """Rebuild the indices from Kafka (posts.enriched, alerts) up to the current end offsets."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from services.search.reindex import reindex as run_reindex

    if from_offset is not None and from_time is not None:
        raise typer.BadParameter("give --from-offset or --from-time, not both")
    settings = _settings(index_prefix)
    configure_logging(settings.log_level, json_logs=False)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as progress:
        task = progress.add_task(f"re-indexing into {settings.es.index_prefix}", total=None)
        report = run_reindex(settings, from_offset=from_offset, from_time=from_time, include_alerts=alerts,
                             on_progress=lambda done, total: progress.update(task, completed=done,
                                                                            total=total))
    typer.echo(f"read {report.read}, indexed {report.indexed}, rejected {report.rejected_count}")
    for topic, partition, offset, why in report.rejected[:20]:
        typer.echo(f"  {topic}[{partition}]@{offset}: {why}", err=True)


@search_cli.command("retention")
def retention(
    keep_months: int | None = typer.Option(None, help="default: YUQING_SEARCH_RETENTION_MONTHS (13 or more)"),
    dry_run: bool = typer.Option(False, help="only list what would be deleted"),
) -> None:
    """Delete monthly post indices older than the retention period."""
    from services.search.es import apply_retention, make_client
    from services.search.mappings import check_retention_months

    settings = _settings()
    months = (settings.retention_months if keep_months is None
              else check_retention_months(keep_months, "--keep-months"))
    deleted = apply_retention(make_client(settings.es), settings.es.index_prefix, keep_months=months,
                              dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb}: {', '.join(deleted) or 'nothing'} (keeping {months} months)")


@search_cli.command("templates")
def install_templates(
    update_similarity: bool = typer.Option(
        False, "--update-similarity",
        help="give the posts indices made before the template's similarity changed the new one "
             "(each is closed and opened again: unsearchable for a moment)"),
) -> None:
    """Install or update the index templates and create the small indices."""
    from services.search import es

    settings = _settings()
    client = es.make_client(settings.es)
    es.ensure_templates(client, settings.es, settings.refresh_interval)
    typer.echo(f"templates installed for prefix {settings.es.index_prefix}")
    if update_similarity:  # without it, ensure_templates logs the indices it would update
        updated = es.update_similarity(client, settings.es.index_prefix)
        typer.echo(f"similarity updated: {', '.join(updated) or 'nothing'}")


@search_cli.command("new-key")
def new_key(
    key_id: str = typer.Option(..., "--id", help="lowercase letters, digits and dashes"),
    role: str = typer.Option(..., help="viewer | responder | admin"),
    region: list[str] = typer.Option([], help="restrict to this region (repeatable)"),
    unit: list[str] = typer.Option([], help="restrict to this unit (repeatable)"),
) -> None:
    """Make an API key: prints the key once and its entry for the key file."""
    from services.search.auth import hash_key
    from services.search.auth import new_key as make_key
    from services.search.models import KeyCreate

    # The rules of POST /v1/admin/keys: an id a header and the key file can carry, no blank scope.
    made = KeyCreate.model_validate({"key_id": key_id, "role": role, "regions": region or None,
                                   "units": unit or None})
    key = make_key(made.key_id)
    entry = [f'id = "{made.key_id}"', f'role = "{made.role.value}"', f'sha256 = "{hash_key(key)}"']
    if made.regions:
        entry.append(f"regions = {json.dumps(made.regions, ensure_ascii=False)}")
    if made.units:
        entry.append(f"units = {json.dumps(made.units, ensure_ascii=False)}")
    typer.echo(f"key (shown once): {key}\n\n[[keys]]\n" + "\n".join(entry))


@search_cli.command("token")
def token(
    subject: str = typer.Option(..., "--sub"), role: str = typer.Option(...),
    ttl_s: int = typer.Option(3600, min=60), region: list[str] = typer.Option([]),
    unit: list[str] = typer.Option([]),
) -> None:
    """Mint an HS256 bearer token with YUQING_SEARCH_JWT_SECRET."""
    from services.search.auth import Role, sign_jwt

    settings = _settings()
    if settings.jwt_secret is None:  # a setting, not an option: one line and 1 (clikit)
        raise ValueError("YUQING_SEARCH_JWT_SECRET is not set: the search API takes no bearer tokens")
    # the search API refuses a token with a blank subject, region or unit (401)
    for hint, values in (("--sub", [subject]), ("--region", region), ("--unit", unit)):
        if any(not value.strip() for value in values):
            raise typer.BadParameter("must not be blank", param_hint=hint)
    claims: dict[str, object] = {"sub": subject, "role": Role(role).value, "aud": settings.jwt_audience,
                                 "iat": int(time.time()), "exp": int(time.time()) + ttl_s}
    if region:
        claims["regions"] = region
    if unit:
        claims["units"] = unit
    typer.echo(sign_jwt(claims, settings.jwt_secret.get_secret_value()))


issues_cli = typer.Typer(help="Issues: posts grouped by meaning, place and time.", no_args_is_help=True)


@issues_cli.command("group")
def group_issues(
    input_path: Path = typer.Option(..., "--input", exists=True, dir_okay=False,
                                    help='JSON lines {"id", "text", "created_at", "region"?, "topic"?}'),
    output_path: Path = typer.Option(..., "--output", dir_okay=False, help='JSON lines {"id", "issue_id"}'),
    utc_offset_hours: float = typer.Option(8.0, "--utc-offset-hours", min=-14, max=14,
                                           help="the local time of created_at values without a zone"),
) -> None:
    """Group a file of posts into issues with the indexer's algorithm (topic absent: the model's)."""
    from services.search.issue_offline import group_rows, read_posts, write_assignments

    rows = read_posts(input_path, utc_offset_hours)
    written = write_assignments(output_path, rows, group_rows(rows))
    typer.echo(f"{written} posts -> {output_path}", err=True)
