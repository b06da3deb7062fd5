"""The workers refuse to start without their topics, or with topics that cannot take what they
produce (real Kafka, the real commands)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from tests.conftest import REPO_ROOT, drop_topics, unique
from tests.integration.conftest import wait_until
from yuqing.settings import ElasticsearchSettings, KafkaSettings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("command", "first_missing"), [("nlp", "posts.raw"), ("alerts", "posts.enriched")])
def test_a_worker_without_its_topics_says_so_in_one_line(infra: None, tmp_path, command: str,
                                                         first_missing: str) -> None:
    # Started before its topics existed, a worker ran on without reading anything, even once they
    # were created (Faust dropped the missing topic from its subscription), and looked healthy.
    prefix = unique("none") + "."
    name = f"YUQING_{command.upper()}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "YUQING_HOME": str(tmp_path),
           "YUQING_KAFKA_TOPIC_PREFIX": prefix, f"{name}_APP_ID": unique(command),
           f"{name}_METRICS_PORT": "0", f"{name}_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "yuqing.cli", command, "worker"], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: topic {prefix}{first_missing} does not exist: create the topics (yuqing topics) "
        "or check YUQING_KAFKA_TOPIC_PREFIX")


@pytest.mark.parametrize(("command", "topic"), [(("nlp", "worker"), "posts.enriched"),
                                                (("alerts", "worker"), "alerts"),
                                                (("search", "indexer"), "posts.dlq")])
def test_a_topic_that_cannot_take_the_message_size_stops_the_worker_at_start(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, tmp_path: Path,
        command: tuple[str, str], topic: str) -> None:
    # the worker ran until the first message over the topic's limit, which the broker refused: it
    # stopped uncommitted on it after every restart, holding back the posts behind it
    name = kafka_settings.topic_prefix + topic
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.servers())
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": "500000"})])
    finally:
        admin.close()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "YUQING_HOME": str(tmp_path),
           "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
           "YUQING_ES_INDEX_PREFIX": es_settings.index_prefix,
           "YUQING_NLP_APP_ID": unique("nlp"), "YUQING_ALERTS_APP_ID": unique("alerts"),
           "YUQING_SEARCH_INDEXER_GROUP_ID": unique("indexer"), "YUQING_NLP_METRICS_PORT": "0",
           "YUQING_ALERTS_METRICS_PORT": "0", "YUQING_SEARCH_INDEXER_METRICS_PORT": "0",
           "YUQING_NLP_CLASSIFIER": "placeholder"}
    done = subprocess.run([sys.executable, "-m", "yuqing.cli", *command], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: YUQING_KAFKA_MAX_MESSAGE_BYTES=1000000 does not fit topic {name}, whose "
        "max.message.bytes is 500000: set it to at most 498976 or raise the topic's")


def _worker_env(kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings,
                home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "YUQING_HOME": str(home),
            "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
            "YUQING_ES_INDEX_PREFIX": es_settings.index_prefix, "YUQING_NLP_CLASSIFIER": "placeholder",
            "YUQING_NLP_APP_ID": unique("nlp"), "YUQING_ALERTS_APP_ID": unique("alerts"),
            "YUQING_NLP_METRICS_PORT": "0", "YUQING_ALERTS_METRICS_PORT": "0"}


@pytest.mark.parametrize("command", ["nlp", "alerts"])
def test_a_worker_starts_under_a_yuqing_home_that_does_not_exist_yet(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, tmp_path: Path,
        command: str) -> None:
    # Faust creates its state folder, not the folders above it: the worker ended in a
    # FileNotFoundError traceback on a machine where nothing had made YUQING_HOME yet
    home = tmp_path / "fresh" / "home"
    log = tmp_path / "worker.log"
    env = _worker_env(kafka_settings, es_settings, home)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", command, "worker"], cwd=REPO_ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is not None or any((home / "state").glob("*/*")), 120,
                   "Faust to make its tables' folder in the state folder")
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        drop_topics(kafka_settings, [env["YUQING_NLP_APP_ID"], env["YUQING_ALERTS_APP_ID"]])


@pytest.mark.parametrize(("command", "setting"), [("nlp", "YUQING_NLP_STATE_DIR"),
                                                  ("alerts", "YUQING_ALERTS_STATE_DIR")])
def test_a_state_folder_that_cannot_be_made_is_one_line_naming_it(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, tmp_path: Path,
        command: str, setting: str) -> None:
    (tmp_path / "a-file").write_text("")
    state = tmp_path / "a-file" / "state"
    env = {**_worker_env(kafka_settings, es_settings, tmp_path), setting: str(state)}
    done = subprocess.run([sys.executable, "-m", "yuqing.cli", command, "worker"], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {setting}='{state}': cannot create the worker's state folder (Not a directory)")


@pytest.mark.parametrize("command", ["nlp", "alerts"])
def test_more_replicas_than_brokers_stops_the_worker_at_start_in_one_line(
        kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings, tmp_path: Path,
        command: str) -> None:
    # Faust created its own topics with that many replicas: InvalidReplicationFactorError traceback
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.servers())
    try:
        brokers = len(admin.describe_cluster()["brokers"])
    finally:
        admin.close()
    env = {**_worker_env(kafka_settings, es_settings, tmp_path),
           "YUQING_KAFKA_REPLICATION_FACTOR": str(brokers + 1)}
    done = subprocess.run([sys.executable, "-m", "yuqing.cli", command, "worker"], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=180, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: YUQING_KAFKA_REPLICATION_FACTOR={brokers + 1} is more than the {brokers} broker(s) of "
        "the cluster: a worker's own topics could not be created")
