"""Each rendered workload is wired for what its command's settings read.

A workload runs ``yuqing <group> <command>``; each command talks to some of the
clusters (its settings class holds their settings: ``es``, ``kafka``) and serves
one port (a field of that class). The pod must carry the label the
NetworkPolicies open each of its clusters to, and no other; get the
Elasticsearch credentials when it talks to Elasticsearch; and expose the port
the code listens on.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

from services.alerts.settings import AlertsSettings
from services.ingest.settings import IngestSettings
from services.nlp.settings import NlpSettings
from services.search.settings import SearchSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/dev", "overlays/prod")
# command -> (its settings class, the field holding the port it serves or None, its clusters).
# The alerts worker reads the posts index for its issue keys (services/alerts/issues.py).
COMMANDS: dict[tuple[str, ...], tuple[type[BaseSettings], str | None, frozenset[str]]] = {
    ("ingest", "serve"): (IngestSettings, "port", frozenset({"kafka"})),
    ("nlp", "worker"): (NlpSettings, "metrics_port", frozenset({"kafka"})),
    ("alerts", "worker"): (AlertsSettings, "metrics_port", frozenset({"kafka", "es"})),
    ("search", "indexer"): (SearchSettings, "indexer_metrics_port", frozenset({"kafka", "es"})),
    ("search", "serve"): (SearchSettings, "port", frozenset({"es"})),
    ("search", "retention"): (SearchSettings, None, frozenset({"es"})),
}
ES_LABEL, KAFKA_LABEL = "yuqing.io/elasticsearch-client", "yuqing.io/kafka-client"

Resource = dict[str, Any]


# A consumer's replicas beyond its input's partitions sit idle (docs/scaling.md).
CONSUMED = {("nlp", "worker"): "posts.raw", ("alerts", "worker"): "posts.enriched",
            ("search", "indexer"): "posts.enriched"}


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest, deploy_tools: Path) -> list[Resource]:
    result = subprocess.run([str(deploy_tools / "kustomize"), "build", str(K8S / request.param)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def workloads(rendered: list[Resource]) -> list[Resource]:
    return [d for d in rendered if d["kind"] in ("Deployment", "CronJob")]


def template(workload: Resource) -> Resource:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"])


def has_es_credentials(container: Resource) -> bool:
    from_secret = any(source.get("secretRef", {}).get("name") == "yuqing-elasticsearch"
                      for source in container.get("envFrom", []))
    return from_secret or any(env["name"] == "YUQING_ES_PASSWORD" for env in container.get("env", []))


def test_every_workload_runs_a_known_command(workloads: list[Resource]) -> None:
    assert len(workloads) >= 7
    for workload in workloads:
        for container in template(workload)["spec"]["containers"]:
            assert tuple(container["args"]) in COMMANDS, workload["metadata"]["name"]


def test_pods_are_opened_to_exactly_the_clusters_their_settings_read(workloads: list[Resource]) -> None:
    for workload in workloads:
        name, pod = workload["metadata"]["name"], template(workload)
        labels = pod["metadata"]["labels"]
        for container in pod["spec"]["containers"]:
            settings, _, clusters = COMMANDS[tuple(container["args"])]
            assert clusters <= settings.model_fields.keys(), f"{settings.__name__} reads no {clusters}"
            assert (labels.get(ES_LABEL) == "true") == ("es" in clusters), f"{name}: {ES_LABEL}"
            assert (labels.get(KAFKA_LABEL) == "true") == ("kafka" in clusters), f"{name}: {KAFKA_LABEL}"
            if "es" in clusters:
                assert has_es_credentials(container), f"{name} gets no Elasticsearch credentials"


def test_containers_expose_the_port_their_settings_serve(workloads: list[Resource]) -> None:
    for workload in workloads:
        for container in template(workload)["spec"]["containers"]:
            settings, field, _ = COMMANDS[tuple(container["args"])]
            ports = [p["containerPort"] for p in container.get("ports", [])]
            if field is None:
                assert not ports, workload["metadata"]["name"]
                continue
            overridden = {e["name"] for e in container.get("env", [])} & {
                f"{settings.model_config['env_prefix']}{field}".upper()}
            assert not overridden, f"{workload['metadata']['name']}: set the port in one place"
            assert ports == [settings.model_fields[field].default], workload["metadata"]["name"]


def test_consumers_never_scale_past_their_input_partitions(rendered: list[Resource]) -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    limits = {name: d["spec"].get("replicas", 1) for name, d in deployments.items()}
    for hpa in (d for d in rendered if d["kind"] == "HorizontalPodAutoscaler"):
        limits[hpa["spec"]["scaleTargetRef"]["name"]] = hpa["spec"]["maxReplicas"]
    checked = 0
    for name, deployment in deployments.items():
        command = tuple(template(deployment)["spec"]["containers"][0]["args"])
        if command in CONSUMED:
            topic = json.loads((REPO_ROOT / "schemas" / CONSUMED[command] / "topic.json").read_text())
            assert limits[name] <= topic["partitions"], f"{name}: {limits[name]} replicas"
            checked += 1
    assert checked == 3


def test_the_shipped_source_registry_loads() -> None:
    from services.ingest.registry import parse_registry

    text = (K8S / "base" / "sources.toml").read_text(encoding="utf-8")
    secrets = {name: "k" * 40 for name in re.findall(r'_env\s*=\s*"([A-Z0-9_]+)"', text)}
    assert secrets, "the registry names no secret variable"
    registry = parse_registry(text, secrets, origin="deploy/k8s/base/sources.toml")
    assert len(registry) >= 1
