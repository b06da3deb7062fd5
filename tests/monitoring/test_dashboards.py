"""Grafana dashboards and provisioning: structure, layout, datasources and every PromQL query."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from monitoring_support import MONITORING, run_tool, series_in

pytestmark = pytest.mark.timeout(3900)  # may build promtool on a fresh machine

GRAFANA = MONITORING / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DS_VARIABLE = "DS_PROMETHEUS"
DS_REF = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
GRID_COLUMNS = 24
REQUIRED_KEYS = {"uid", "title", "schemaVersion", "panels", "templating", "time", "tags", "refresh"}
PANEL_TYPES = {"row", "timeseries", "stat", "heatmap", "bargauge", "table", "state-timeline", "gauge", "text"}
GRAFANA_VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def all_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def exprs(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query, panel targets and query variables alike."""
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            yield f"variable {variable['name']}", inner.group(1) if inner else query


def variables_of(dashboard: dict) -> set[str]:
    return {variable["name"] for variable in dashboard["templating"]["list"]}


def as_promql(expr: str) -> str:
    """The expression with Grafana's variables replaced, as Prometheus would receive it."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_VARIABLES.get(name, ".*")
    return _VARIABLE.sub(value, expr)


@pytest.fixture(scope="module", params=DASHBOARD_FILES, ids=lambda path: path.stem)
def dashboard(request: pytest.FixtureRequest) -> dict:
    return load(request.param)


def test_there_are_the_three_dashboards() -> None:
    uids = {load(path)["uid"] for path in DASHBOARD_FILES}
    assert uids == {"yuqing-pipeline", "yuqing-opinion", "yuqing-alerts"}


def test_titles_are_unique() -> None:
    titles = [load(path)["title"] for path in DASHBOARD_FILES]
    assert len(titles) == len(set(titles))


def test_required_keys(dashboard: dict) -> None:
    assert dashboard.keys() >= REQUIRED_KEYS
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert "yuqing" in dashboard["tags"]
    assert dashboard.get("id") is None, "exported dashboards must not pin a database id"


def test_panel_ids_are_unique(dashboard: dict) -> None:
    ids = [panel["id"] for panel in all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))


def test_panels_have_known_types_and_titles(dashboard: dict) -> None:
    for panel in all_panels(dashboard["panels"]):
        assert panel["type"] in PANEL_TYPES
        assert panel["title"].strip()
        if panel["type"] != "row":
            assert panel["targets"], f"{panel['title']} has no query"


def test_grid_positions_fit_and_do_not_overlap(dashboard: dict) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        x, y, w, h = grid["x"], grid["y"], grid["w"], grid["h"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1, panel["title"]
        assert x + w <= GRID_COLUMNS, f"{panel['title']} ends at column {x + w}"
        for cell in ((col, row) for col in range(x, x + w) for row in range(y, y + h)):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]
        if panel["type"] == "row":
            assert (x, w, h) == (0, GRID_COLUMNS, 1)


def test_every_query_uses_the_datasource_variable(dashboard: dict) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    source = variables[DS_VARIABLE]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DS_REF, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DS_REF, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DS_REF, variable["name"]


def test_the_datasource_variable_defaults_to_the_provisioned_datasource(dashboard: dict) -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"] if source["type"] == "prometheus"}
    source = next(v for v in dashboard["templating"]["list"] if v["name"] == DS_VARIABLE)
    assert source["current"]["value"] in uids


def test_queries_use_only_defined_variables(dashboard: dict) -> None:
    defined = variables_of(dashboard) | GRAFANA_VARIABLES.keys()
    for title, expr in exprs(dashboard):
        used = {match.group(1) or match.group(2) for match in _VARIABLE.finditer(expr)}
        assert used <= defined, f"{title}: {sorted(used - defined)}"


def test_queries_select_only_known_series(dashboard: dict, known_series: frozenset[str]) -> None:
    unknown = {title: sorted(series_in(as_promql(expr)) - known_series) for title, expr in exprs(dashboard)}
    assert {title: names for title, names in unknown.items() if names} == {}


def test_every_query_parses(promtool: Path, tmp_path: Path) -> None:
    # promtool has no bare query parser; each expression becomes a recording rule.
    rules = []
    for path in DASHBOARD_FILES:
        for index, (title, expr) in enumerate(exprs(load(path))):
            rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:q{index}",
                          "expr": as_promql(expr), "labels": {"panel": title}})
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]},
                                        allow_unicode=True), encoding="utf-8")
    result = run_tool(promtool, "check", "rules", str(rule_file))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_dashboard_provider_points_at_the_dashboards() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "yuqing.yml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"] == "${YUQING_GRAFANA_DASHBOARDS}"


K8S_OVERVIEW = MONITORING.parent / "k8s" / "components" / "monitoring" / "dashboards" / "yuqing-overview.json"


@pytest.mark.parametrize("path", [GRAFANA / "dashboards" / "pipeline-health.json", K8S_OVERVIEW],
                         ids=lambda path: path.stem)
def test_an_indexer_waiting_for_elasticsearch_or_its_topics_shows(path: Path) -> None:
    # The indexer reads nothing while it waits (YuqingIndexerNotReady); the panels say since when and
    # which topics the cluster lacks.
    shown = {name for _, expr in exprs(load(path)) for name in series_in(as_promql(expr))}
    assert {"yuqing_search_indexer_ready", "yuqing_search_indexer_topic_missing"} <= shown
