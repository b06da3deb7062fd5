"""The runbooks of docs/operations.md say what the code does when an operator follows them.

Each check reads a runbook section and holds it to the code it describes: the
supervisor's restart rule, the consumer commands, the dead-letter cap settings.
The commands a runbook shows are parsed with the real CLI by test_doc_commands.
"""

from __future__ import annotations

import re

from doc_text import REPO_ROOT

from yuqing.consumer.settings import ConsumerSettings
from yuqing.supervisor import SERVICES

OPERATIONS = REPO_ROOT / "docs" / "operations.md"


def runbook(alert: str) -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    match = re.search(rf"^### {alert}\n(.*?)(?=^### |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/operations.md has no section ### {alert}"
    return " ".join(match.group(1).split())


def exit_65_paragraph() -> str:
    section = runbook("YuqingWorkerDown")
    match = re.search(r"\*\*65\*\*:(.*?)(?= - \*\*|\Z)", section)
    assert match, "the YuqingWorkerDown runbook does not explain exit 65"
    return match.group(1)


def test_exit_65_says_that_yuqing_run_stops_every_service() -> None:
    """Any exit but 75 ends `yuqing run` (tests/test_supervisor.py): every job is down, not one."""
    paragraph = exit_65_paragraph()
    assert "stops every service" in paragraph, paragraph


def test_exit_65_shows_how_to_start_each_consumer_again() -> None:
    paragraph = exit_65_paragraph()
    consumers = [service for service in SERVICES if service.health_path == "/metrics"]
    assert {service.name for service in consumers} == {"nlp", "alerts", "indexer"}
    for service in consumers:
        assert f"`yuqing {' '.join(service.args)}`" in paragraph, f"no command to start {service.name}"
    assert "`yuqing run --no-demo`" in paragraph


def test_exit_65_says_how_to_pass_invalid_messages_still_on_the_topic() -> None:
    """Restarted with the same cap, a worker stops again at the same invalid messages."""
    paragraph = exit_65_paragraph()
    for name in ConsumerSettings.model_fields:
        if name.startswith("dlq_max"):
            assert f"YUQING_CONSUMER_{name.upper()}=" in paragraph, name
    assert "yuqing dlq tail" in paragraph


def test_a_full_disk_s_read_only_block_is_recognised_and_lifted() -> None:
    """Past the flood-stage watermark Elasticsearch answers each document 429
    cluster_block_exception (tests/search/test_pipelined_writer.py): the runbooks of the
    alerts it raises show the log line, the block and how it is lifted."""
    for alert in ("YuqingIndexerStalled", "YuqingIndexerBulkRetries"):
        section = runbook(alert)
        assert "bulk write retried" in section, alert
        assert "read_only_allow_delete" in section, alert
    # an indexer started on a full disk waits for Elasticsearch: it cannot update the mappings
    assert "read-only-allow-delete block" in runbook("YuqingIndexerNotReady")
    stalled = runbook("YuqingIndexerStalled")
    assert '{"index.blocks.read_only_allow_delete": null}' in stalled
    assert "`yuqing search retention" in stalled
