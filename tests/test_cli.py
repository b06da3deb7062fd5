"""The ``yuqing`` command tree: the same however invoked, light to load, one line on bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from yuqing.cli import app

MODEL_COMMANDS = ("worker", "ensure-model", "convert", "train", "predict", "evaluate")


def _yuqing(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yuqing.cli", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "120", **(env or {})})


def test_nlp_help_lists_the_model_commands_however_it_is_invoked():
    in_process = CliRunner().invoke(app, ["nlp", "--help"], env={"COLUMNS": "120"})
    as_command = _yuqing("nlp", "--help")
    assert in_process.exit_code == 0 and as_command.returncode == 0
    for name in MODEL_COMMANDS:
        assert f" {name} " in in_process.output and f" {name} " in as_command.stdout
    assert _body(in_process.output) == _body(as_command.stdout)


def _body(help_text: str) -> list[str]:
    """The help without its usage line (which names the program) and padding."""
    return [" ".join(line.split()) for line in help_text.splitlines() if "Usage:" not in line]


def test_loading_the_command_tree_imports_neither_torch_nor_faust():
    probe = ("import sys, yuqing.cli; heavy = {'torch', 'faust', 'transformers'} & set(sys.modules);"
             "print(sorted(heavy))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path: Path):
    counts = tmp_path / "counts.csv"
    counts.write_text("timestamp,value\n2024-01-01T00:00:00,1\n2024-01-01T00:10:00,lots\n"
                      "2024-01-01T00:20:00,2\n")
    replay = _yuqing("alerts", "replay", "--input", str(counts), "--output", str(tmp_path / "o.csv"))
    assert replay.returncode == 1
    assert replay.stderr.strip().splitlines() == [f"error: {counts}:3: value 'lots' is not a finite number"]

    missing = _yuqing("nlp", "predict", "--input", str(tmp_path / "none.jsonl"), "--output", "x")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"error: No such file or directory: {tmp_path / 'none.jsonl'}"

    settings = _yuqing("topics", env={"YUQING_KAFKA_REPLICATION_FACTOR": "zero"})
    assert settings.returncode == 1 and len(settings.stderr.strip().splitlines()) == 1
    assert settings.stderr.startswith("error: KafkaSettings: replication_factor: Input should be")


def test_debug_shows_the_traceback(tmp_path: Path):
    shown = _yuqing("nlp", "predict", "--input", str(tmp_path / "none.jsonl"), "--output", "x",
                    env={"YUQING_DEBUG": "1"})
    assert shown.returncode != 0 and "Traceback" in shown.stderr


def test_a_metrics_port_out_of_range_is_one_line(tmp_path: Path):
    # Refused by the settings, before the worker binds or reaches Kafka (it was an OverflowError).
    for command, settings in (("nlp", "NlpSettings"), ("alerts", "AlertsSettings")):
        done = _yuqing(command, "worker", env={f"YUQING_{command.upper()}_METRICS_PORT": "99999",
                                               "YUQING_HOME": str(tmp_path)})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: {settings}: metrics_port: Input should be less than or equal to 65535"]


def test_a_metrics_port_in_use_is_named(tmp_path: Path):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _yuqing("alerts", "worker", env={"YUQING_ALERTS_METRICS_PORT": str(port),
                                                "YUQING_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: Address already in use: metrics port {port}"]


def test_a_topic_prefix_kafka_cannot_name_a_topic_with_is_one_line(tmp_path: Path):
    # the ingest started, said it was healthy and answered every post 503 "message broker
    # unavailable"; the workers and `yuqing topics` failed on Kafka's own long error
    for command in (("ingest", "serve"), ("topics",)):
        done = _yuqing(*command, env={"YUQING_KAFKA_TOPIC_PREFIX": "staging posts/",
                                      "YUQING_HOME": str(tmp_path), "YUQING_INGEST_PORT": "0"})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            "error: KafkaSettings: topic_prefix: Value error, YUQING_KAFKA_TOPIC_PREFIX='staging posts/': "
            "a topic name holds ASCII letters, digits, '.', '_' and '-' only"]


def test_a_worker_app_id_kafka_cannot_name_a_topic_with_is_one_line(tmp_path: Path):
    # Faust names the app's own topics after it: the worker ended in a Faust traceback
    for command, settings in (("nlp", "NlpSettings"), ("alerts", "AlertsSettings")):
        setting = f"YUQING_{command.upper()}_APP_ID"
        done = _yuqing(command, "worker", env={setting: "yuqing alerts", "YUQING_HOME": str(tmp_path)})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: {settings}: app_id: Value error, {setting}='yuqing alerts': a topic name holds ASCII "
            "letters, digits, '.', '_' and '-' only"]


def test_a_misspelt_kafka_security_protocol_is_one_line(tmp_path: Path):
    # kafka-python took PLAINTXT for PLAINTEXT: `yuqing topics` connected in the clear and
    # answered "created: none (all present)"
    # a prefix of its own: without the check, the command reaches the test's Kafka
    done = _yuqing("topics", env={"YUQING_KAFKA_SECURITY_PROTOCOL": "SASL-SSL", "YUQING_HOME": str(tmp_path),
                                  "YUQING_KAFKA_TOPIC_PREFIX": f"{tmp_path.name}.".replace("_", "-")})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: KafkaSettings: security_protocol: Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' "
        "or 'SASL_SSL'"]


def test_a_log_level_logging_does_not_know_is_one_line_naming_the_setting(tmp_path: Path):
    # it ended in "error: Unknown level: 'VERBOSE'", naming none of the four settings
    done = _yuqing("search", "serve", env={"YUQING_SEARCH_LOG_LEVEL": "verbose",
                                           "YUQING_HOME": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: SearchSettings: log_level: Value error, YUQING_SEARCH_LOG_LEVEL='verbose': a log level is "
        "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"]
    from services.alerts.settings import AlertsSettings
    from services.ingest.settings import IngestSettings
    from services.nlp.settings import NlpSettings

    for settings_class in (AlertsSettings, IngestSettings, NlpSettings):
        assert settings_class(log_level="warning").log_level == "warning"
        with pytest.raises(ValueError, match="_LOG_LEVEL='loud'"):
            settings_class(log_level="loud")


def test_a_reindex_prefix_elasticsearch_cannot_name_an_index_with_is_one_line(tmp_path: Path):
    # the option skipped the check YUQING_ES_INDEX_PREFIX has: Elasticsearch refused the first
    # template in its own words, after a warning and the progress bar
    done = _yuqing("search", "reindex", "--index-prefix", "Yuqing/2", "--no-alerts",
                   env={"YUQING_HOME": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: ElasticsearchSettings: index_prefix: String should match pattern '^[a-z0-9][a-z0-9_.-]*$'"]


def test_an_api_port_out_of_range_is_one_line(tmp_path: Path):
    # refused by the settings, before the server starts (it was uvicorn's OverflowError traceback)
    for command, settings in (("ingest", "IngestSettings"), ("search", "SearchSettings")):
        done = _yuqing(command, "serve", env={f"YUQING_{command.upper()}_PORT": "99999",
                                              "YUQING_HOME": str(tmp_path)})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: {settings}: port: Input should be less than or equal to 65535"]


def test_an_elasticsearch_timeout_of_zero_is_one_line_naming_it(tmp_path: Path):
    # urllib3 refused it on every request: the search API failed its start-up in a traceback,
    # and the commands said "Attempted to set connect timeout to 0.0", naming no setting
    done = _yuqing("search", "retention", "--dry-run",
                   env={"YUQING_ES_REQUEST_TIMEOUT_S": "0", "YUQING_HOME": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: ElasticsearchSettings: request_timeout_s: Input should be greater than 0"]


def test_a_bootstrap_server_list_kafka_cannot_read_is_one_line_naming_it(tmp_path: Path):
    # "" was "IndexError: Cannot choose from an empty sequence", a port that is no number
    # "invalid literal for int() with base 10: 'abc'"
    for value in ("", "127.0.0.1:abc", "kafka://127.0.0.1:19092"):
        done = _yuqing("topics", env={"YUQING_KAFKA_BOOTSTRAP_SERVERS": value, "YUQING_HOME": str(tmp_path),
                                      "YUQING_KAFKA_TOPIC_PREFIX": f"{tmp_path.name}.".replace("_", "-")})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            "error: KafkaSettings: bootstrap_servers: Value error, "
            f"YUQING_KAFKA_BOOTSTRAP_SERVERS={value!r}: brokers as host:port, separated by commas "
            "(no scheme)"]


def test_an_empty_worker_app_id_or_indexer_group_is_one_line(tmp_path: Path) -> None:
    # Faust ended in "ImproperlyConfigured: App requires an id!", and the indexer, after warming its
    # issues, in "error: Kafka: [Error 24] InvalidGroupIdError"; neither named the setting
    cases = ((("nlp", "worker"), "NlpSettings", "app_id", "YUQING_NLP_APP_ID",
              "it names the consumer group and the app's own topics"),
             (("alerts", "worker"), "AlertsSettings", "app_id", "YUQING_ALERTS_APP_ID",
              "it names the consumer group and the app's own topics"),
             (("search", "indexer"), "SearchSettings", "indexer_group_id", "YUQING_SEARCH_INDEXER_GROUP_ID",
              "it names the indexers' consumer group"))
    for command, settings, field, setting, why in cases:
        done = _yuqing(*command, env={setting: "", "YUQING_HOME": str(tmp_path)})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: {settings}: {field}: Value error, {setting} is empty: {why}"]


def test_an_infinite_wait_or_timeout_is_one_line_naming_it(tmp_path: Path) -> None:
    # the indexer's first poll ended in "OverflowError: cannot convert float infinity to integer", an
    # infinite ack timeout overflowed the wait for the first acknowledgement not yet in, the commands
    # said "ConnectionError(timestamp out of range for platform time_t)", and the NLP worker held a
    # partial batch until enough posts came to fill it
    cases = ((("search", "indexer"), "YUQING_SEARCH_BULK_MAX_WAIT_S", "SearchSettings: bulk_max_wait_s"),
             (("search", "indexer"), "YUQING_CONSUMER_ACK_TIMEOUT_S", "ConsumerSettings: ack_timeout_s"),
             (("search", "retention", "--dry-run"), "YUQING_ES_REQUEST_TIMEOUT_S",
              "ElasticsearchSettings: request_timeout_s"),
             (("nlp", "worker"), "YUQING_NLP_BATCH_MAX_WAIT_S", "NlpSettings: batch_max_wait_s"))
    for command, setting, field in cases:
        done = _yuqing(*command, env={setting: "inf", "YUQING_HOME": str(tmp_path)})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [f"error: {field}: Input should be a finite number"]
