"""What the repository tracks: the project's own files, nothing of one machine.

A link committed from a checkout (an environment linked in, ``.venv -> /…``) replaces, on the next
checkout or merge, the folder a developer has there: git treats an ignored folder as expendable.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (REPO_ROOT / ".git").exists(),
                                reason="not a git checkout")


def _tracked() -> list[tuple[str, str]]:
    """(mode, path) of every tracked file."""
    out = subprocess.run(["git", "ls-files", "-s"], cwd=REPO_ROOT, check=True, capture_output=True,
                         text=True).stdout
    return [(line.split()[0], line.split("\t", 1)[1]) for line in out.splitlines()]


def test_no_symbolic_link_is_tracked():
    links = [path for mode, path in _tracked() if mode == "120000"]
    assert links == [], f"tracked symbolic links: {links}"


def test_no_environment_or_build_output_is_tracked():
    bad = [path for _, path in _tracked()
           if path.split("/")[0] in {".venv", "venv", "build", "dist"} or path.endswith((".whl", ".pyc"))]
    assert bad == [], f"tracked environment or build output: {bad}"
