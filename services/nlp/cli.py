"""``yuqing nlp ...``: the NLP worker and the model commands (convert, train, predict, evaluate).

Nothing here imports torch at import time, so ``yuqing --help`` and the
other services' processes stay light; each command imports what it needs.
"""

from __future__ import annotations

import typer

from services.nlp.nlp_cli import model_app
from yuqing.clikit import command_group
from yuqing.faust_run import run_faust
from yuqing.observability import configure_logging, serve_metrics

nlp_cli = command_group("NLP worker and the topic/sentiment model.")


@nlp_cli.command("worker")
def worker() -> None:
    """Run the NLP worker: posts.raw -> posts.enriched."""
    import torch

    from services.nlp import metrics
    from services.nlp.settings import NlpSettings
    from services.nlp.worker import create_app, load_configured_classifier
    from yuqing.kafka import require_replicas, require_room, require_topics
    from yuqing.topics import LogicalTopic

    settings = NlpSettings()
    configure_logging(settings.log_level)
    require_topics(settings.kafka,
                   [LogicalTopic.POSTS_RAW, LogicalTopic.POSTS_ENRICHED, LogicalTopic.POSTS_DLQ])
    require_room(settings.kafka, [LogicalTopic.POSTS_ENRICHED, LogicalTopic.POSTS_DLQ])
    require_replicas(settings.kafka)
    torch.set_num_threads(settings.torch_threads)
    classifier = load_configured_classifier(settings)
    serve_metrics(settings.metrics_port, metrics.REGISTRY)
    run_faust(create_app(settings, classifier), settings.log_level)


@nlp_cli.command("ensure-model")
def ensure_model() -> None:
    """Build the default model into the cache if it is missing (convert + shipped weights)."""
    from services.nlp.classifier import ensure_default_model

    typer.echo(str(ensure_default_model()))


nlp_cli.registered_commands.extend(model_app.registered_commands)
