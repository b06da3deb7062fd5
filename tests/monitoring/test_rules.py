"""Prometheus configuration, alerting and recording rules, and their promtool unit tests.

The promtool checks run the real binary (see conftest.py); the others read the
YAML files and hold them to the conventions docs/operations.md describes.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_support import MONITORING, REPO_ROOT, RULES_DIR, load_rule_groups, run_tool, series_in

from services.alerts.notify import alertmanager_payload
from yuqing.contracts import Alert, AlertExplanation, AlertKey, AlertState, Severity, Topic

# A fresh machine builds promtool inside the first test that needs it.
pytestmark = pytest.mark.timeout(3900)

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
UNIT_TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yml"))
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning", "info"}
TEAMS = {"platform", "opinion"}
SERVICES = {"ingest", "nlp", "alerts", "indexer", "search", "kafka-exporter"}


def alerting_rules() -> list[dict]:
    return [rule for group in load_rule_groups() for rule in group["rules"] if "alert" in rule]


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def describe(result) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


# -- promtool ----------------------------------------------------------------------------------


def test_rule_files_pass_promtool_check(promtool: Path) -> None:
    result = run_tool(promtool, "check", "rules", "--lint=all", "--lint-fatal",
                          *map(str, RULE_FILES))
    assert result.returncode == 0, describe(result)


def test_prometheus_config_passes_promtool_check(promtool: Path) -> None:
    result = run_tool(promtool, "check", "config", "--lint=all", "--lint-fatal",
                          str(MONITORING / "prometheus.yml"))
    assert result.returncode == 0, describe(result)
    for rule_file in RULE_FILES:
        assert rule_file.name in result.stdout, f"prometheus.yml does not load {rule_file.name}"


@pytest.mark.parametrize("test_file", UNIT_TEST_FILES, ids=lambda path: path.stem)
def test_rule_unit_tests_pass(promtool: Path, test_file: Path) -> None:
    result = run_tool(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, describe(result)


# -- the unit tests cover every alert ----------------------------------------------------------


def alert_cases() -> tuple[set[str], set[str]]:
    """Alert names with a test expecting them to fire, and with one expecting silence."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TEST_FILES:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    return firing, quiet


def test_every_alert_is_tested_firing_and_quiet() -> None:
    names = {rule["alert"] for rule in alerting_rules()}
    firing, quiet = alert_cases()
    assert names - firing == set(), "alerts no unit test sees firing"
    assert names - quiet == set(), "alerts no unit test sees quiet"
    assert (firing | quiet) - names == set(), "unit tests name alerts that do not exist"


@pytest.mark.parametrize("test_file", UNIT_TEST_FILES, ids=lambda path: path.stem)
def test_unit_tests_fix_the_evaluation_order_of_every_group(test_file: Path) -> None:
    # Without group_eval_order promtool evaluates groups in random order, and an
    # alert may or may not see the recorded series of the same step.
    order = load_yaml(test_file).get("group_eval_order", [])
    groups = [group["name"] for group in load_rule_groups()]
    assert sorted(order) == sorted(groups)
    recording = [group["name"] for group in load_rule_groups()
                 if all("record" in rule for rule in group["rules"])]
    assert order[: len(recording)] == [name for name in order if name in recording]


# -- conventions ---------------------------------------------------------------------------------


def test_group_names_are_unique() -> None:
    names = [group["name"] for group in load_rule_groups()]
    assert len(names) == len(set(names))


def test_rules_select_only_known_series(known_series: frozenset[str]) -> None:
    unknown = {}
    for group in load_rule_groups():
        for rule in group["rules"]:
            missing = series_in(rule["expr"]) - known_series
            if missing:
                unknown[rule.get("record") or rule["alert"]] = sorted(missing)
    assert unknown == {}, "rules select series no service, exporter or recording rule provides"


def test_recording_rule_names_follow_level_metric_operations() -> None:
    pattern = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
    records = [rule["record"] for group in load_rule_groups() for rule in group["rules"] if "record" in rule]
    assert [name for name in records if not pattern.match(name)] == []


def anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings of a Markdown text."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def rule_id(rule: dict) -> str:
    return f"{rule['alert']}-{rule['labels'].get('severity', 'from-series')}"


@pytest.mark.parametrize("rule", alerting_rules(), ids=rule_id)
def test_alert_labels_and_annotations(rule: dict) -> None:
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    if "severity" in labels:
        assert labels["severity"] in SEVERITIES
    else:  # the severity comes from the series, which must be filtered to known values
        assert 'severity=~"warning|critical"' in rule["expr"]
    assert labels.get("team") in TEAMS
    service_from_series = '"service"' in rule["expr"] or rule["expr"].startswith("service:")
    assert labels.get("service") in SERVICES or service_from_series, "no service label for inhibition"
    assert {"summary", "description", "runbook"} <= annotations.keys()
    doc, _, anchor = annotations["runbook"].partition("#")
    assert doc == "docs/operations.md" and anchor == rule["alert"].lower()
    assert anchor in anchors(OPERATIONS_DOC.read_text(encoding="utf-8")), "runbook section missing"


def test_every_pipeline_job_is_scraped_and_documented() -> None:
    config = load_yaml(MONITORING / "prometheus.yml")
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    pipeline = {"yuqing-ingest", "yuqing-nlp", "yuqing-alerts", "yuqing-indexer", "yuqing-search",
                "kafka-exporter"}
    assert pipeline <= jobs
    doc = OPERATIONS_DOC.read_text(encoding="utf-8")
    assert [job for job in sorted(pipeline) if f"`{job}`" not in doc] == []


# -- Alertmanager ----------------------------------------------------------------------------

ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yml"
# Labels of a notification -> the receivers it must reach.
ROUTES = [
    ({"alertname": "YuqingPublicOpinionSurge", "team": "opinion", "severity": "warning"}, "opinion-duty"),
    ({"alertname": "YuqingPublicOpinionSurge", "team": "opinion", "severity": "critical"},
     "opinion-duty-critical"),
    ({"alertname": "YuqingNegativeShareSpike", "team": "opinion", "severity": "warning"}, "opinion-duty"),
    ({"alertname": "YuqingWorkerDown", "team": "platform", "severity": "critical"}, "platform-oncall"),
    ({"alertname": "YuqingNlpSlow", "team": "platform", "severity": "warning"}, "platform-chat"),
    ({"alertname": "YuqingNlpConfidenceLow", "team": "platform", "severity": "info"}, "digest"),
    ({"alertname": "Watchdog"}, "platform-chat"),
]


def test_alertmanager_config_passes_amtool_check(amtool: Path) -> None:
    result = run_tool(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=lambda value: str(value))
def test_alertmanager_routes_alerts_to_their_receivers(amtool: Path, labels: dict, receiver: str) -> None:
    result = run_tool(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                      f"--verify.receivers={receiver}", *(f"{key}={value}" for key, value in labels.items()))
    assert result.returncode == 0, describe(result)


RECEIVER_BY_TEAM_AND_SEVERITY = {
    ("opinion", "warning"): "opinion-duty", ("opinion", "critical"): "opinion-duty-critical",
    ("platform", "info"): "digest", ("platform", "warning"): "platform-chat",
    ("platform", "critical"): "platform-oncall",
}


def test_every_alert_reaches_its_team(amtool: Path) -> None:
    for rule in alerting_rules():
        labels = rule["labels"]
        team = labels["team"]
        for severity in [labels["severity"]] if "severity" in labels else ["warning", "critical"]:
            receiver = RECEIVER_BY_TEAM_AND_SEVERITY[team, severity]
            result = run_tool(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                              f"--verify.receivers={receiver}", f"alertname={rule['alert']}", f"team={team}",
                              f"severity={severity}")
            assert result.returncode == 0, f"{rule['alert']} ({severity}): {describe(result)}"


def _surge(severity: Severity, **key: Any) -> dict[str, str]:
    """The labels the alerts worker posts to Alertmanager for one surge alert."""
    at = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    alert = Alert(alert_id=uuid.uuid4().hex, key=AlertKey(**key), state=AlertState.FIRING, severity=severity,
                  score=0.9, window_start=at, window_end=at + timedelta(minutes=15), observed=40,
                  expected=2.0, explanation=AlertExplanation(), emitted_at=at + timedelta(minutes=16))
    [posted] = alertmanager_payload(alert)
    return dict(posted["labels"])


@pytest.mark.parametrize(("severity", "receiver"), [
    (Severity.INFO, "digest"), (Severity.WARNING, "opinion-duty"),
    (Severity.CRITICAL, "opinion-duty-critical")])
def test_the_alerts_workers_own_surge_notifications_reach_the_duty_desk(
        amtool: Path, severity: Severity, receiver: str) -> None:
    # they carried no team label, and every surge went to the platform's chat group
    labels = _surge(severity, family="topic_region", topic=Topic.OUTAGE, region="河口镇")
    result = run_tool(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                      f"--verify.receivers={receiver}", *(f"{key}={value}" for key, value in labels.items()))
    assert result.returncode == 0, describe(result)


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for matcher in matchers:
        name, op, value = re.fullmatch(r'(\w+)\s*(!=|=)\s*"([^"]*)"', matcher).groups()  # type: ignore[union-attr]
        if (labels.get(name, "") == value) != (op == "="):
            return False
    return True


def test_a_critical_surge_silences_only_the_warning_of_its_own_key() -> None:
    # a critical outage surge in one township silenced the warning outage surges of every other
    # township (and a critical overall surge every warning of a source): they differed on no label
    # the inhibition compared
    critical = _surge(Severity.CRITICAL, family="topic_region", topic=Topic.OUTAGE, region="河口镇")
    others = [_surge(Severity.WARNING, family="topic_region", topic=Topic.OUTAGE, region="石门镇"),
              _surge(Severity.WARNING, family="topic", topic=Topic.OUTAGE),
              _surge(Severity.WARNING, family="source", source="app-main")]
    overall = _surge(Severity.CRITICAL, family="overall")
    for rule in load_yaml(ALERTMANAGER_CONFIG)["inhibit_rules"]:
        for source, target in [(critical, other) for other in others] + [(overall, others[2])]:
            if _matches(rule["source_matchers"], source) and _matches(rule["target_matchers"], target):
                assert any(source.get(name) != target.get(name) for name in rule["equal"]), (rule, target)


def _inhibits(source: dict[str, str], target: dict[str, str]) -> bool:
    return any(_matches(rule["source_matchers"], source) and _matches(rule["target_matchers"], target)
               and all(source.get(name, "") == target.get(name, "") for name in rule["equal"])
               for rule in load_yaml(ALERTMANAGER_CONFIG)["inhibit_rules"])


@pytest.mark.parametrize("severity", [Severity.WARNING, Severity.CRITICAL])
def test_a_surge_the_worker_notified_pages_the_duty_desk_once(severity: Severity) -> None:
    # The worker posts each surge to Alertmanager (YuqingSurge, with its key and samples) and
    # Prometheus raises YuqingPublicOpinionSurge from the firing gauge: both reached the duty desk,
    # in two groups, so every surge paged twice. The aggregate stays for a surge the worker's
    # notification did not reach Alertmanager with (no webhook, a chat robot, a rejection).
    surge = _surge(severity, family="topic_region", topic=Topic.OUTAGE, region="河口镇")
    [rule] = [r for r in alerting_rules() if r["alert"] == "YuqingPublicOpinionSurge"]
    aggregate = {"alertname": rule["alert"], "severity": severity.value, **rule["labels"]}
    assert _inhibits(surge, aggregate)
    other = "critical" if severity is Severity.WARNING else "warning"
    assert not _inhibits(surge, {**aggregate, "severity": other})
    assert not _inhibits(aggregate, surge)


def test_every_dead_letter_reason_is_exported_from_zero_before_the_first_letter() -> None:
    # a series born at its first letter (1) shows no increase to rate(): the first dead letters
    # of a kind were invisible to YuqingDeadLetters
    from services.alerts import metrics as alerts_metrics
    from services.nlp import metrics as nlp_metrics
    from services.search import metrics as search_metrics

    for registry, name, reasons in (
            (nlp_metrics.REGISTRY, "yuqing_nlp_dead_letters_total", ("contract", "processing")),
            (alerts_metrics.REGISTRY, "yuqing_alerts_dead_letters_total", ("contract", "processing")),
            (search_metrics.INDEXER_REGISTRY, "yuqing_search_dead_letters_total", ("contract", "retention"))):
        for reason in reasons:
            assert registry.get_sample_value(name, {"reason": reason}) is not None, (name, reason)
