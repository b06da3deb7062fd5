"""The ``yuqing`` command: mounts each service's own command group.

Every group lives beside the code it runs (``services/<name>/cli.py``,
``yuqing/core_cli.py``) and imports its heavy dependencies inside its
commands, so the tree is the same however the command is invoked and
``yuqing --help`` stays fast. Bad input ends in one line (:mod:`yuqing.clikit`).
"""

from __future__ import annotations

from services.alerts.cli import alerts_cli
from services.ingest.cli import dlq_cli, ingest_cli, publish
from services.nlp.cli import nlp_cli
from services.search.cli import issues_cli, search_cli
from yuqing.clikit import command_group
from yuqing.core_cli import create_topics, infra_cli, kafka_cli, run_pipeline, schemas_cli

app = command_group("Yuqing: public-opinion pipeline for power-supply companies.")
app.add_typer(infra_cli, name="infra")
app.command("topics")(create_topics)
app.add_typer(schemas_cli, name="schemas")
app.add_typer(ingest_cli, name="ingest")
app.command("publish")(publish)
app.add_typer(dlq_cli, name="dlq")
app.add_typer(nlp_cli, name="nlp")
app.add_typer(alerts_cli, name="alerts")
app.add_typer(search_cli, name="search")
app.add_typer(issues_cli, name="issues")
app.add_typer(kafka_cli, name="kafka")
app.command("run")(run_pipeline)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
