#!/usr/bin/env python3
"""Regenerate the JSON schemas under deploy/k8s/schemas/ (run when a pin below changes).

The manifests are validated offline by kubeconform against this bundle, so the
bundle holds only the kinds the manifests use, with descriptions removed:

* Kubernetes kinds: the strict schemas shipped in the ``kubernetes-validate``
  wheel (PyPI), one standalone file per kind with the definitions it reaches
  embedded under ``$defs``.
* ECK ``Elasticsearch`` and the prometheus-operator kinds: the CRDs carried by
  their Go modules (Go module proxy), converted like kubeconform's
  ``openapi2jsonschema`` does with strict mode (objects that declare
  properties reject unknown ones).
* Strimzi kinds are not generated: see deploy/k8s/schemas/README.md.

Needs network access to PyPI and the Go module proxy, ``go`` and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "v1.34.0"
KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0"
KUBERNETES_KINDS = [
    # file name in the wheel (kubeconform's {{ .ResourceKind }}{{ .KindSuffix }})
    "namespace-v1", "serviceaccount-v1", "configmap-v1", "service-v1",
    "persistentvolumeclaim-v1", "deployment-apps-v1", "cronjob-batch-v1",
    "horizontalpodautoscaler-autoscaling-v2",
    "poddisruptionbudget-policy-v1", "networkpolicy-networking-v1",
    "ingress-networking-v1",
]
CRD_MODULES = {
    "github.com/elastic/cloud-on-k8s/v3@v3.5.0": {
        "config/crds/v1/all-crds.yaml": {("Elasticsearch", "v1")},
    },
    "github.com/prometheus-operator/prometheus-operator@v0.85.0": {
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml":
            {("ServiceMonitor", "v1")},
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml":
            {("PodMonitor", "v1")},
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml":
            {("PrometheusRule", "v1")},
    },
}
DROP_KEYS = {"description", "x-kubernetes-group-version-kind", "x-kubernetes-patch-strategy",
             "x-kubernetes-patch-merge-key", "x-kubernetes-list-map-keys",
             "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-unions"}


def strip(node: Any) -> Any:
    """Drop documentation-only keys (the bundle is for validation, not for reading)."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _local_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("#/$defs/" + v.rsplit("/", 1)[-1] if k == "$ref" else _local_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_local_refs(v) for v in node]
    return node


def kubernetes_schemas(wheel: Path, out_dir: Path) -> list[Path]:
    prefix = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES_VERSION}-local-strict/"
    with zipfile.ZipFile(wheel) as zf:
        defs = json.loads(zf.read(prefix + "_definitions.json"))["$defs"]
        written = []
        for kind in KUBERNETES_KINDS:
            schema = json.loads(zf.read(f"{prefix}{kind}.json"))
            schema.pop("$id", None)
            needed: set[str] = set()
            todo = _refs(schema)
            while todo:
                name = todo.pop()
                if name not in needed:
                    needed.add(name)
                    todo |= _refs(defs[name])
            schema["$defs"] = {name: defs[name] for name in sorted(needed)}
            written.append(_write(out_dir / f"{kind}.json", _local_refs(strip(schema))))
    return written


def strict(node: Any, root: bool = True) -> Any:
    """kubeconform's openapi2jsonschema rules: deny unknown properties below the root."""
    if isinstance(node, dict):
        node = {k: strict(v, root=False) for k, v in node.items()}
        if ("properties" in node and not root and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        if node.get("format") == "int-or-string":
            node = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    elif isinstance(node, list):
        node = [strict(v, root=False) for v in node]
    return node


def crd_schemas(module_dir: Path, files: dict[str, set[tuple[str, str]]],
                out_dir: Path) -> list[Path]:
    written = []
    for rel, wanted in files.items():
        for doc in yaml.safe_load_all((module_dir / rel).read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                key = (spec["names"]["kind"], version["name"])
                if key not in wanted:
                    continue
                schema = strict(strip(version["schema"]["openAPIV3Schema"]))
                name = f"{key[0].lower()}_{key[1]}.json"
                written.append(_write(out_dir / spec["group"] / name, schema))
    return written


def _write(path: Path, schema: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "k8s" / "schemas")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--dest", tmp, KUBERNETES_VALIDATE], check=True)
        wheel = next(Path(tmp).glob("kubernetes_validate-*.whl"))
        written = kubernetes_schemas(wheel, args.out / "kubernetes" / KUBERNETES_VERSION)
    for module, files in CRD_MODULES.items():
        info = json.loads(subprocess.run(["go", "mod", "download", "-json", module], check=True,
                                         capture_output=True, text=True).stdout)
        written += crd_schemas(Path(info["Dir"]), files, args.out / "crds")
    for path in written:
        print(f"{path.stat().st_size:>9}  {path.relative_to(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
