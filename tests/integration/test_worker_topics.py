"""The workers refuse to start without their topics (real Kafka, the real commands)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, unique

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
