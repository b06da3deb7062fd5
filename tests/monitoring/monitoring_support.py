"""What the monitoring tests share: promtool and amtool, the metric catalogue, PromQL scanning.

``deploy/tools/build_promtool.sh [promtool|amtool]`` builds both from pinned Go
modules into ``$YUQING_HOME/tools/bin`` (default ``~/.cache/yuqing/tools/bin``);
``YUQING_PROMTOOL``/``YUQING_AMTOOL`` point at other binaries. A missing binary
is built once per session (minutes on a fresh machine, so building them ahead
of the test run is better).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "deploy" / "monitoring"
RULES_DIR = MONITORING / "rules"
BUILD_SCRIPT = REPO_ROOT / "deploy" / "tools" / "build_promtool.sh"
BUILD_TIMEOUT_S = 3600

# The modules that declare each service's metrics (STYLE.md: metrics declared once).
METRIC_MODULES = (
    "services.ingest.metrics", "services.nlp.metrics", "services.alerts.metrics", "services.search.metrics",
)

# danielqsj/kafka-exporter series the rules and dashboards may use.
KAFKA_EXPORTER_METRICS = frozenset({
    "kafka_brokers",
    "kafka_consumergroup_current_offset",
    "kafka_consumergroup_current_offset_sum",
    "kafka_consumergroup_lag",
    "kafka_consumergroup_lag_sum",
    "kafka_consumergroup_members",
    "kafka_topic_partition_current_offset",
    "kafka_topic_partition_oldest_offset",
    "kafka_topic_partitions",
})
# Series Prometheus itself writes.
PROMETHEUS_METRICS = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def cached_tool(name: str) -> Path:
    home = Path(os.environ.get("YUQING_HOME") or Path.home() / ".cache" / "yuqing")
    return home / "tools" / "bin" / name


def build_tool(name: str) -> Path:
    """The tool's binary, from ``YUQING_<NAME>`` or built by the script (at once when cached)."""
    configured = os.environ.get(f"YUQING_{name.upper()}")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"YUQING_{name.upper()}={configured} is not an executable file")
        return Path(configured)
    if shutil.which("go") is None and not os.access(cached_tool(name), os.X_OK):
        pytest.fail(f"{name} is missing and Go is not on PATH to build it: install Go >= 1.26.7 and run "
                    f"{BUILD_SCRIPT.relative_to(REPO_ROOT)} {name}, or set YUQING_{name.upper()}")
    result = subprocess.run(["bash", str(BUILD_SCRIPT), name], capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S, check=False)
    if result.returncode != 0:
        pytest.fail(f"building {name} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def run_tool(tool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=300, check=False,
                          cwd=REPO_ROOT)


def exposed_names(metric: MetricWrapperBase) -> set[str]:
    (described,) = metric.describe()
    return {described.name + suffix for suffix in _SUFFIXES[described.type]}


def load_rule_groups() -> list[dict]:
    groups: list[dict] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["groups"])
    return groups


def recorded_names() -> frozenset[str]:
    return frozenset(rule["record"] for group in load_rule_groups() for rule in group["rules"]
                     if "record" in rule)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACED = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                       "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"})


def series_in(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects (functions, labels and keywords left out)."""
    text = _STRING.sub('""', expr)
    text = _BRACED.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    return {name for name in _IDENT.findall(text) if name not in _KEYWORDS}
