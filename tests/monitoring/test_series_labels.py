"""Every PromQL expression shipped, local or on Kubernetes, selects series and labels that exist.

The expressions are the rule files of ``deploy/monitoring/rules/``, the
PrometheusRule and the Grafana dashboard of ``deploy/k8s/components/monitoring/``,
and the local Grafana dashboards. A series must be one the services declare in
their ``metrics.py``, the Kafka exporter's, Prometheus' own or a recorded one; a
label matcher on a declared series must name one of its labels (or a label the
scrape adds); a ``by``/``without`` clause over declared series alone must name a
label one of them carries.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from monitoring_support import (
    KAFKA_EXPORTER_METRICS,
    METRIC_MODULES,
    MONITORING,
    PROMETHEUS_METRICS,
    REPO_ROOT,
    RULES_DIR,
    recorded_names,
    series_in,
)
from prometheus_client.metrics import MetricWrapperBase

K8S_MONITORING = REPO_ROOT / "deploy" / "k8s" / "components" / "monitoring"
DASHBOARDS = (*sorted((REPO_ROOT / "deploy" / "monitoring" / "grafana" / "dashboards").glob("*.json")),
              *sorted((K8S_MONITORING / "dashboards").glob("*.json")))
# Labels the scrape (Prometheus, or the prometheus-operator's ServiceMonitor) adds to every series.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "endpoint"})
KAFKA_EXPORTER_LABELS = frozenset({"consumergroup", "topic", "partition"})
# kube-state-metrics series the Kubernetes rules use, with their labels.
KUBE_STATE_METRICS = {
    "kube_pod_container_status_restarts_total": frozenset({"container", "pod", "namespace"}),
    "kube_cronjob_status_last_successful_time": frozenset({"cronjob", "namespace"}),
}
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{\w+(?::\w+)?\}|\w+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^()]*)\)")


def declared_labels() -> dict[str, frozenset[str]]:
    """Every exposed series name of the services, with the labels it carries."""
    labels: dict[str, frozenset[str]] = {}
    for module in METRIC_MODULES:
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, MetricWrapperBase):
                (described,) = value.describe()
                own = frozenset(value._labelnames)
                for suffix in ("", "_total", "_created", "_count", "_sum"):
                    labels[described.name + suffix] = own
                labels[described.name + "_bucket"] = own | {"le"}
    labels.update(dict.fromkeys(KAFKA_EXPORTER_METRICS, KAFKA_EXPORTER_LABELS))
    labels.update(KUBE_STATE_METRICS)
    labels["up"] = frozenset()
    return labels


DECLARED = declared_labels()
KNOWN_SERIES = frozenset(DECLARED) | KAFKA_EXPORTER_METRICS | PROMETHEUS_METRICS | recorded_names()


def rule_expressions() -> Iterator[tuple[str, str]]:
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                yield f"{path.name} {rule.get('alert') or rule['record']}", rule["expr"]
    for document in yaml.safe_load_all((K8S_MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8")):
        for group in document["spec"]["groups"]:
            for rule in group["rules"]:
                yield f"prometheusrule.yaml {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        stack = list(json.loads(path.read_text(encoding="utf-8"))["panels"])
        while stack:
            panel = stack.pop()
            stack.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                yield f"{path.name} {panel['title']}", _GRAFANA_VARIABLE.sub("5m", target["expr"])


EXPRESSIONS = [*rule_expressions(), *dashboard_expressions()]


def test_the_kubernetes_rules_and_dashboard_are_read() -> None:
    places = {where.split()[0] for where, _ in EXPRESSIONS}
    assert {"prometheusrule.yaml", "yuqing-overview.json", "alerts.yml", "recording.yml"} <= places


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_expression_selects_known_series(where: str, expr: str) -> None:
    assert not series_in(expr) - KNOWN_SERIES, f"{where}: unknown series {series_in(expr) - KNOWN_SERIES}"


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_expression_uses_labels_its_series_carry(where: str, expr: str) -> None:
    text = _STRING.sub('""', expr)
    for name, matchers in _SELECTOR.findall(text):
        if name in DECLARED:
            unknown = set(_MATCHER_LABEL.findall(matchers)) - DECLARED[name] - TARGET_LABELS
            assert not unknown, f"{where}: {name} has no label {sorted(unknown)}"
    selected = series_in(expr)
    if selected and selected <= DECLARED.keys() and "label_replace" not in expr:
        carried = TARGET_LABELS.union(*(DECLARED[name] for name in selected))
        for clause in _GROUPING.findall(text):
            unknown = {label.strip() for label in clause.split(",") if label.strip()} - carried
            assert not unknown, f"{where}: no series of {sorted(selected)} carries {sorted(unknown)}"


def test_the_label_check_catches_a_wrong_label() -> None:
    with pytest.raises(AssertionError, match="has no label"):
        test_expression_uses_labels_its_series_carry(
            "example", 'sum(rate(yuqing_ingest_posts_accepted_total{region="x"}[5m]))')
    with pytest.raises(AssertionError, match="carries"):
        test_expression_uses_labels_its_series_carry(
            "example", "sum by (region) (rate(yuqing_ingest_posts_accepted_total[5m]))")


def test_selectors_are_found_in_a_multi_line_rule() -> None:
    assert Path(__file__).name == "test_series_labels.py"
    assert _SELECTOR.findall('rate(x_total{a="1",\n b=~"2"}[5m])') == [("x_total", 'a="1",\n b=~"2"')]


def deployment_containers() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document and document["kind"] == "Deployment":
                names |= {c["name"] for c in document["spec"]["template"]["spec"]["containers"]}
    return names


def test_the_restart_alert_watches_every_long_running_container() -> None:
    (expr,) = [e for where, e in EXPRESSIONS if where == "prometheusrule.yaml YuqingPodRestarting"]
    watched = re.search(r'container=~"([^"]+)"', expr)
    assert watched
    assert set(watched.group(1).split("|")) == deployment_containers()


def test_local_scrape_targets_are_the_ports_the_services_listen_on() -> None:
    from services.alerts.settings import AlertsSettings
    from services.ingest.settings import IngestSettings
    from services.nlp.settings import NlpSettings
    from services.search.settings import SearchSettings

    search = SearchSettings.model_fields
    expected = {
        "yuqing-ingest": IngestSettings.model_fields["port"].default,
        "yuqing-nlp": NlpSettings.model_fields["metrics_port"].default,
        "yuqing-alerts": AlertsSettings.model_fields["metrics_port"].default,
        "yuqing-indexer": search["indexer_metrics_port"].default,
        "yuqing-search": search["port"].default,
    }
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = {job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]]
               for job in config["scrape_configs"] if job["job_name"] in expected}
    assert scraped == {job: [f"127.0.0.1:{port}"] for job, port in expected.items()}


_LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\)")


def variable_queries() -> Iterator[tuple[str, str, str]]:
    """(where, selector, label) of every ``label_values`` query variable of the dashboards."""
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text(encoding="utf-8"))["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                match = _LABEL_VALUES.fullmatch(text)
                assert match, f"{path.name} {variable['name']}: {text}"
                yield f"{path.name} {variable['name']}", match.group(1), match.group(2)


def test_dashboard_variables_list_labels_their_series_carry() -> None:
    queries = list(variable_queries())
    assert queries
    for where, selector, label in queries:
        (name,) = series_in(selector)
        assert label in DECLARED[name], f"{where}: {name} has no label {label}"
        test_expression_uses_labels_its_series_carry(where, selector)


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str]:
    """The prometheus-operator's metricRelabelings applied to one series (replace and labeldrop)."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        regex = re.compile(config.get("regex", "(.*)"))
        if action == "labeldrop":
            labels = {name: value for name, value in labels.items() if not regex.fullmatch(name)}
            continue
        assert action == "replace", action
        value = config.get("separator", ";").join(labels.get(s, "") for s in config.get("sourceLabels", []))
        match = regex.fullmatch(value)
        if match:
            replaced = match.expand(config.get("replacement", "$1").replace("$", "\\"))
            if replaced:
                labels[config["targetLabel"]] = replaced
            else:
                labels.pop(config["targetLabel"], None)
    return labels


def test_a_label_the_scrape_also_sets_keeps_the_services_value_on_kubernetes() -> None:
    # A ServiceMonitor target carries `endpoint` (the port's name): Prometheus renamed the search
    # API's own `endpoint` label to `exported_endpoint`, and the p99 per endpoint (YuqingSearchSlow,
    # the dashboards) was one series, endpoint="http"
    service_labels = {label for name, labels in DECLARED.items() if name not in KUBE_STATE_METRICS
                      for label in labels}
    clashing = service_labels & TARGET_LABELS
    assert "endpoint" in clashing
    (monitor,) = yaml.safe_load_all((K8S_MONITORING / "servicemonitor.yaml").read_text(encoding="utf-8"))
    for endpoint in monitor["spec"]["endpoints"]:
        configs = endpoint.get("metricRelabelings", [])
        for label in clashing:
            scraped = {label: endpoint["port"], f"exported_{label}": "/v1/posts", "job": "yuqing-search"}
            assert relabel(scraped, configs) == {label: "/v1/posts", "job": "yuqing-search"}, endpoint["port"]
            unclashed = {label: endpoint["port"], "job": "yuqing-search"}
            assert relabel(unclashed, configs) == unclashed, endpoint["port"]


_INPUT_SERIES = re.compile(r"^([A-Za-z_:][\w:]*)\s*(?:\{(.*)\})?$")


def unit_test_input_series() -> Iterator[tuple[str, str, frozenset[str]]]:
    """``(file test, series name, its labels)`` of every input series of the rule unit tests."""
    for path in sorted((RULES_DIR / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for series in test.get("input_series", []):
                match = _INPUT_SERIES.match(series["series"].strip())
                assert match, f"{path.name}: cannot read {series['series']}"
                labels = frozenset(re.findall(r"(\w+)\s*=", match.group(2) or ""))
                yield f"{path.name} {test.get('name', '')}", match.group(1), labels


def test_the_rule_unit_tests_feed_the_series_the_services_export() -> None:
    """An alert seen firing on a series no service exports, or on one without the labels a
    service's series carry, is not seen firing on what Prometheus scrapes."""
    wrong = []
    for where, name, labels in unit_test_input_series():
        if name not in KNOWN_SERIES:
            wrong.append(f"{where}: {name} is not exported")
        elif name in DECLARED:
            missing = DECLARED[name] - labels - {"le"}
            unknown = labels - DECLARED[name] - TARGET_LABELS - {"le"}
            if missing or unknown:
                wrong.append(f"{where}: {name} lacks {sorted(missing)}, has unknown {sorted(unknown)}")
    assert not wrong, "\n".join(wrong)
