"""The container image recipe: hadolint-clean, pinned, non-root, nothing to build at run time.

The image itself cannot be built in the test environment (no container engine);
these tests read the Dockerfile, lint it with the pinned hadolint, and check the
commands the Kubernetes Deployments give it against the ``yuqing`` CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
BASE = REPO_ROOT / "deploy" / "k8s" / "base"
# hadolint rules switched off, each with its reason. Keep it empty unless a rule is wrong here.
HADOLINT_IGNORED: dict[str, str] = {}
BUILD_TOOLS = re.compile(r"\b(apt-get|apk|gcc|g\+\+|make|pip install|build-essential)\b")


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    result, stage = [], ""
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage = args.split(" AS ")[-1].strip() if " AS " in args else args
        result.append(Instruction(stage, keyword.upper(), args.strip()))
    return result


def build_args() -> dict[str, str]:
    return dict(arg.args.split("=", 1) for arg in instructions()
                if arg.keyword == "ARG" and "=" in arg.args)


def test_hadolint_finds_nothing(deploy_tools: Path) -> None:
    ignores = [flag for rule in HADOLINT_IGNORED for flag in ("--ignore", rule)]
    result = subprocess.run(
        [str(deploy_tools / "hadolint"), "--format", "json", "--failure-threshold", "style",
         *ignores, str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT)
    findings = json.loads(result.stdout or "[]")
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_base_image_is_an_exact_python_release_matching_the_project() -> None:
    image = build_args()["PYTHON_IMAGE"]
    name, _, tag = image.partition(":")
    assert name == "python" and tag != "latest"
    version = re.match(r"^(\d+)\.(\d+)\.(\d+)-slim-[a-z]+$", tag)
    assert version, f"{image}: pin an exact patch release and distribution"
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={version[1]}.{version[2]}" in requires
    for inst in instructions():
        if inst.keyword == "FROM":
            source = inst.args.split(" AS ")[0].strip()
            assert source in {"${PYTHON_IMAGE}", "builder"}, source


def test_runtime_stage_is_last_non_root_and_has_no_build_tools() -> None:
    runtime = [i for i in instructions() if i.stage == "runtime"]
    assert instructions()[-1].stage == "runtime", "runtime must be the default target"
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit(), "numeric USER lets runAsNonRoot verify it"
    for inst in runtime:
        if inst.keyword == "RUN":
            assert not BUILD_TOOLS.search(inst.args), inst.args
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=builder /opt/yuqing /opt/yuqing"]
    entrypoint = next(i.args for i in runtime if i.keyword == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["yuqing"]


def test_builder_installs_the_pinned_dependencies_and_builds_the_model() -> None:
    runs = " ".join(i.args for i in instructions() if i.stage == "builder" and i.keyword == "RUN")
    assert "pip install -c constraints.txt" in runs
    assert "yuqing nlp ensure-model" in runs
    assert "TORCH_INDEX_URL" in build_args(), "CPU torch must be selectable"
    env = " ".join(i.args for i in instructions() if i.keyword == "ENV")
    assert "YUQING_MODEL_HOME=/opt/yuqing/models" in env


def test_build_context_keeps_what_the_application_reads() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "allow-list: everything else stays out of the context"
    needed = {"pyproject.toml", "constraints.txt", "README.md", "yuqing/", "services/",
              "schemas/", "config/", "models/", "data/nlp/"}
    assert needed <= {p[1:] for p in patterns if p.startswith("!")}


def _resolves(group: object, args: list[str]) -> bool:
    """Whether ``args`` name a leaf command of the (click-style) command group."""
    command = group
    for word in args:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or word not in subcommands:
            return False
        command = subcommands[word]
    return getattr(command, "commands", None) is None


def test_every_container_runs_a_yuqing_command() -> None:
    from yuqing.cli import app

    cli = typer.main.get_command(app)
    commands = []
    for path in sorted(BASE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in {"Deployment", "CronJob"}:
                spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
                commands += [c["args"] for c in spec["template"]["spec"]["containers"]]
    assert len(commands) >= 6
    missing = [" ".join(args) for args in commands if not _resolves(cli, args)]
    assert not missing, f"not commands of `yuqing`: {missing}"


@pytest.mark.parametrize("variable", ["YUQING_INGEST_HOST=0.0.0.0", "YUQING_SEARCH_HOST=0.0.0.0"])
def test_image_listens_on_all_interfaces(variable: str) -> None:
    env = " ".join(i.args for i in instructions() if i.stage == "runtime" and i.keyword == "ENV")
    assert variable in env
