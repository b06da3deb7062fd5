"""Kubernetes manifests: every kustomization renders, validates offline, and keeps its promises.

Each target is rendered with the pinned kustomize and validated with kubeconform
``-strict`` against the schemas bundled in ``deploy/k8s/schemas`` (no network).
The assertions below then check what a schema cannot: probes, resources and a
non-root, read-only container for every workload; no secret values; a network
policy for every workload; autoscalers and disruption budgets that point at
something; topics that match ``schemas/*/topic.json``; settings that exist.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

REPO_ROOT = Path(__file__).resolve().parents[2]

K8S = REPO_ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
KUBERNETES_VERSION = "1.34.0"
TARGETS = ("base", "overlays/dev", "overlays/prod")
WORKLOAD_KINDS = ("Deployment", "CronJob")
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|AES_KEY|SALT|CREDENTIAL)", re.I)
SETTINGS_CLASSES = (
    ("yuqing.settings", "KafkaSettings"), ("yuqing.settings", "ElasticsearchSettings"),
    ("services.ingest.settings", "IngestSettings"), ("services.nlp.settings", "NlpSettings"),
    ("services.alerts.settings", "AlertsSettings"), ("services.search.settings", "SearchSettings"),
)
# Read by the runtime or its libraries, not by a settings class.
OTHER_ENV = {"YUQING_HOME", "YUQING_MODEL_HOME", "ELASTIC_CLIENT_APIVERSIONING"}

Resource = dict[str, Any]


def render(tools: Path, target: str) -> str:
    result = subprocess.run([str(tools / "kustomize"), "build", str(K8S / target)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest, deploy_tools: Path) -> tuple[str, str]:
    return request.param, render(deploy_tools, request.param)


@pytest.fixture(scope="module")
def resources(rendered: tuple[str, str]) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(rendered[1]) if doc]


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def pod_spec(workload: Resource) -> Resource:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_labels(workload: Resource) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"]["labels"]


def workloads(resources: list[Resource]) -> Iterator[Resource]:
    for kind in WORKLOAD_KINDS:
        yield from of_kind(resources, kind)


def selects(selector: Resource, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and the usual operators)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {"Exists": present, "DoesNotExist": not present,
              "In": value in expr.get("values", []),
              "NotIn": value not in expr.get("values", [])}[expr["operator"]]
        if not ok:
            return False
    return True


def test_every_target_validates_against_the_bundled_schemas(
    rendered: tuple[str, str], deploy_tools: Path,
) -> None:
    target, text = rendered
    count = sum(1 for doc in yaml.safe_load_all(text) if doc)
    result = subprocess.run(
        [str(deploy_tools / "kubeconform"), "-strict", "-summary", "-output", "json",
         "-kubernetes-version", KUBERNETES_VERSION,
         "-schema-location",
         str(SCHEMAS / "kubernetes" / f"v{KUBERNETES_VERSION}")
         + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
         "-schema-location",
         str(SCHEMAS / "crds") + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
         "-"],
        input=text, capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(result.stdout)
    problems = [f"{r['kind']}/{r['name']}: {r['status']} {r.get('msg', '')}"
                for r in report.get("resources", []) if r["status"] != "statusValid"]
    assert result.returncode == 0 and not problems, f"{target}:\n" + "\n".join(problems)
    assert report["summary"] == {"valid": count, "invalid": 0, "errors": 0, "skipped": 0}


def test_workloads_have_probes_resources_and_run_hardened(resources: list[Resource]) -> None:
    found = list(workloads(resources))
    assert {w["metadata"]["name"] for w in found} >= {
        "yuqing-ingest", "yuqing-forum-poller", "yuqing-nlp", "yuqing-alerts",
        "yuqing-indexer", "yuqing-search"}
    for workload in found:
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False, name
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] > 0, name
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", name
        writable = {v["name"] for v in spec.get("volumes", [])
                    if "emptyDir" in v or "persistentVolumeClaim" in v}
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= requests.keys() and "memory" in limits, where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in writable and mounts.get("/var/lib/yuqing") in writable, where
            if workload["kind"] == "Deployment":
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert container[probe]["httpGet"]["path"] in {"/healthz", "/metrics", "/readyz"}, where


def test_probes_use_the_endpoints_of_each_service(resources: list[Resource]) -> None:
    expected = {"yuqing-ingest": (8001, "/healthz"), "yuqing-forum-poller": (8001, "/healthz"),
                "yuqing-search": (8003, "/healthz"), "yuqing-nlp": (9102, "/metrics"),
                "yuqing-alerts": (9103, "/metrics"), "yuqing-indexer": (9104, "/readyz")}
    for deployment in of_kind(resources, "Deployment"):
        port, path = expected[deployment["metadata"]["name"]]
        container = pod_spec(deployment)["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probe = container["readinessProbe"]["httpGet"]
        assert (ports[probe["port"]], probe["path"]) == (port, path), deployment["metadata"]["name"]


def test_no_secret_values_in_the_manifests(resources: list[Resource]) -> None:
    assert not of_kind(resources, "Secret"), "Secrets are created by the operator, not committed"
    for workload in workloads(resources):
        for container in pod_spec(workload)["containers"]:
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]
    for config_map in of_kind(resources, "ConfigMap"):
        for key in config_map.get("data", {}):
            assert not SECRET_NAME.search(key), f"{config_map['metadata']['name']}: {key}"


def test_the_source_registry_names_secrets_but_holds_none() -> None:
    from services.ingest.registry import MissingSecretError, parse_registry

    text = (K8S / "base" / "sources.toml").read_text(encoding="utf-8")
    for source in tomllib.loads(text)["sources"]:
        for key in source:
            assert key.endswith("_env") or not SECRET_NAME.search(key), key
    with pytest.raises(MissingSecretError):
        parse_registry(text, {})
    names = [v for s in tomllib.loads(text)["sources"] for k, v in s.items() if k.endswith("_env")]
    registry = parse_registry(text, {name: "x" * 40 for name in names})
    assert len(registry) == len(tomllib.loads(text)["sources"])


def test_every_workload_is_covered_by_network_policies(resources: list[Resource]) -> None:
    policies = of_kind(resources, "NetworkPolicy")
    for workload in workloads(resources):
        labels, name = pod_labels(workload), workload["metadata"]["name"]
        mine = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        types = {t for p in mine for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, f"{name}: not default-deny in both directions"
        egress_ports = {port["port"] for p in mine for rule in p["spec"].get("egress", [])
                        for port in rule.get("ports", [])}
        assert 53 in egress_ports, f"{name}: no DNS"
        if labels.get("yuqing.io/kafka-client") == "true":
            assert 9092 in egress_ports, f"{name}: cannot reach Kafka"
        if labels.get("yuqing.io/elasticsearch-client") == "true":
            assert 9200 in egress_ports, f"{name}: cannot reach Elasticsearch"
        if workload["kind"] == "Deployment":
            container_ports = {p["containerPort"] for p in pod_spec(workload)["containers"][0]["ports"]}
            ingress_ports = {port["port"] for p in mine for rule in p["spec"].get("ingress", [])
                             for port in rule.get("ports", [])}
            assert container_ports <= ingress_ports, f"{name}: Prometheus cannot scrape it"


def test_autoscalers_and_disruption_budgets_point_at_deployments(resources: list[Resource]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(resources, "Deployment")}
    autoscaled = set()
    for hpa in of_kind(resources, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns replicas"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        autoscaled.add(target["name"])
    assert autoscaled == {"yuqing-ingest", "yuqing-nlp"}
    raw_partitions = json.loads((REPO_ROOT / "schemas" / "posts.raw" / "topic.json").read_text())
    nlp = next(h for h in of_kind(resources, "HorizontalPodAutoscaler")
               if h["spec"]["scaleTargetRef"]["name"] == "yuqing-nlp")
    assert nlp["spec"]["maxReplicas"] <= raw_partitions["partitions"], "idle consumers"
    budgeted = set()
    for pdb in of_kind(resources, "PodDisruptionBudget"):
        matched = [name for name, d in deployments.items()
                   if selects(pdb["spec"]["selector"], pod_labels(d))]
        assert len(matched) == 1, pdb["metadata"]["name"]
        budgeted.add(matched[0])
    assert budgeted == deployments.keys(), "every Deployment has a PodDisruptionBudget"


def test_services_select_one_deployment_and_name_their_ports(resources: list[Resource]) -> None:
    deployments = of_kind(resources, "Deployment")
    for service in of_kind(resources, "Service"):
        matched = [d for d in deployments
                   if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(d))]
        assert len(matched) == 1, service["metadata"]["name"]
        container_ports = {p["name"] for p in pod_spec(matched[0])["containers"][0]["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports


def test_scraped_services_are_named_after_the_prometheus_jobs(resources: list[Resource]) -> None:
    scraped = {s["metadata"]["name"] for s in of_kind(resources, "Service")
               if s["metadata"].get("labels", {}).get("yuqing.io/scrape") == "true"}
    assert scraped >= {"yuqing-ingest", "yuqing-nlp", "yuqing-alerts", "yuqing-indexer",
                       "yuqing-search"}
    local_config = REPO_ROOT / "deploy" / "monitoring" / "prometheus.yml"
    if local_config.exists():
        jobs = {j["job_name"] for j in yaml.safe_load(local_config.read_text())["scrape_configs"]}
        assert {job for job in jobs if job.startswith("yuqing-")} <= scraped


def test_configured_environment_variables_exist(resources: list[Resource]) -> None:
    known = set(OTHER_ENV)
    for module, name in SETTINGS_CLASSES:
        settings = getattr(importlib.import_module(module), name)
        prefix = settings.model_config["env_prefix"]
        known |= {prefix + field.upper() for field in settings.model_fields}
    configured = {key for cm in of_kind(resources, "ConfigMap")
                  if cm["metadata"]["name"].startswith("yuqing-config") for key in cm["data"]}
    for workload in workloads(resources):
        for container in pod_spec(workload)["containers"]:
            configured |= {env["name"] for env in container.get("env", [])}
    assert configured, "no environment rendered"
    assert not configured - known, f"not read by any settings class: {configured - known}"


def test_images_are_pinned(resources: list[Resource]) -> None:
    for workload in workloads(resources):
        for container in pod_spec(workload)["containers"]:
            _, _, tag = container["image"].rpartition(":")
            assert tag and "/" not in tag and tag != "latest", container["image"]


def test_kafka_topics_follow_the_topic_contracts(rendered: tuple[str, str],
                                                 resources: list[Resource]) -> None:
    topics = {t["spec"]["topicName"]: t for t in of_kind(resources, "KafkaTopic")}
    if rendered[0] == "base":
        assert not topics, "the base runs against any Kafka"
        return
    contracts = {json.loads(p.read_text())["topic"]: json.loads(p.read_text())
                 for p in (REPO_ROOT / "schemas").glob("*/topic.json")}
    # A worker's internal topics (named after its app id) are created by that worker itself.
    contracts = {name: c for name, c in contracts.items() if not name.startswith("<app_id>")}
    assert topics.keys() == contracts.keys()
    replicas = 1 if rendered[0] == "overlays/dev" else 3
    for name, contract in contracts.items():
        spec = topics[name]["spec"]
        assert spec["partitions"] == contract["partitions"], name
        assert spec["replicas"] == replicas, name
        assert spec["config"]["retention.ms"] == contract["retention_ms"], name
        assert spec["config"]["cleanup.policy"] == contract["cleanup_policy"], name
        assert spec["config"]["min.insync.replicas"] < max(replicas, 2), name


def test_managed_infra_is_wired_to_the_services(rendered: tuple[str, str],
                                                resources: list[Resource]) -> None:
    if rendered[0] == "base":
        return
    config = next(cm["data"] for cm in of_kind(resources, "ConfigMap")
                  if cm["metadata"]["name"].startswith("yuqing-config"))
    kafka = of_kind(resources, "Kafka")[0]["metadata"]["name"]
    es = of_kind(resources, "Elasticsearch")[0]
    assert config["YUQING_KAFKA_BOOTSTRAP_SERVERS"] == f"{kafka}-kafka-bootstrap:9092"
    assert config["YUQING_ES_URL"] == f"http://{es['metadata']['name']}-es-http:9200"
    if es["spec"]["version"].startswith("8."):
        assert config["ELASTIC_CLIENT_APIVERSIONING"] == "1"
    pools = of_kind(resources, "KafkaNodePool")
    assert {"controller", "broker"} <= {role for p in pools for role in p["spec"]["roles"]}
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    assert int(config["YUQING_KAFKA_REPLICATION_FACTOR"]) <= brokers


def test_prometheus_rules_use_series_the_services_expose(rendered: tuple[str, str],
                                                         resources: list[Resource]) -> None:
    rules = [rule for pr in of_kind(resources, "PrometheusRule")
             for group in pr["spec"]["groups"] for rule in group["rules"]]
    if rendered[0] != "overlays/prod":
        return
    names = {rule["alert"] for rule in rules if "alert" in rule}
    rule_files = sorted((K8S.parent / "monitoring" / "rules").glob("*.yml"))
    shipped = {rule["alert"] for path in rule_files for group in yaml.safe_load(path.read_text())["groups"]
               for rule in group["rules"] if "alert" in rule}
    assert {"YuqingWorkerDown", "YuqingConsumerLagHigh", "YuqingIndexerNotReady"} <= shipped <= names
    exposed: set[str] = set()
    for module in ("services.nlp.metrics", "services.alerts.metrics", "services.search.metrics"):
        exposed |= {next(iter(m.describe())).name for m in vars(importlib.import_module(module)).values()
                    if isinstance(m, MetricWrapperBase)}
    for service in ("nlp", "alerts", "search"):
        assert f"yuqing_{service}_dead_letters" in exposed


def test_prometheus_rules_pass_promtool(deploy_tools: Path, tmp_path: Path) -> None:
    """promtool is built by deploy/tools/build_promtool.sh for the monitoring tests."""
    promtool = deploy_tools / "promtool"
    if not promtool.exists():
        pytest.skip("promtool not built (deploy/tools/build_promtool.sh)")
    docs = yaml.safe_load_all((K8S / "components" / "monitoring" / "prometheusrule.yaml").read_text())
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [g for d in docs for g in d["spec"]["groups"]]}))
    result = subprocess.run([str(promtool), "check", "rules", str(rules)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def routed(ingress: Resource, host: str, path: str) -> bool:
    """Whether the Ingress sends ``path`` on ``host`` anywhere (Prefix matches whole path elements)."""
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") != host:
            continue
        for entry in rule["http"]["paths"]:
            prefix = entry["path"].rstrip("/")
            if entry["pathType"] == "Exact" and path == entry["path"]:
                return True
            if entry["pathType"] != "Exact" and (path == prefix or path.startswith(prefix + "/")):
                return True
    return False


def test_the_ingress_serves_the_apis_but_not_their_metrics(rendered: tuple[str, str],
                                                           resources: list[Resource]) -> None:
    # the paths were "/": /metrics (request counts per source, channel and endpoint) and /healthz
    # (a ping of Elasticsearch per call) of both APIs were public on the Internet
    if rendered[0] != "overlays/prod":
        return
    (ingress,) = of_kind(resources, "Ingress")
    hosts = {rule["http"]["paths"][0]["backend"]["service"]["name"]: rule["host"]
             for rule in ingress["spec"]["rules"]}
    api = {"yuqing-ingest": ["/v1/posts", "/v1/app/main", "/v1/wechat/service"],
           "yuqing-search": ["/v1/posts/search", "/v1/issues/abc/merge", "/v1/me"]}
    for service, paths in api.items():
        host = hosts[service]
        for path in [*paths, "/docs", "/openapi.json"]:
            assert routed(ingress, host, path), f"{host}{path} is not served"
        for path in ["/metrics", "/healthz", "/"]:
            assert not routed(ingress, host, path), f"{host}{path} is public"
