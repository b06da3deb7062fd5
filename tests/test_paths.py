"""The data folders are found through settings, from anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from yuqing.paths import ProjectPaths, find_root


def test_the_root_is_found_from_a_folder_inside_it():
    assert find_root(REPO_ROOT / "services" / "nlp") == REPO_ROOT
    assert ProjectPaths().schemas == REPO_ROOT / "schemas"
    assert (ProjectPaths().models / "default").is_dir()


def test_outside_any_checkout_the_package_location_decides(tmp_path: Path):
    assert find_root(tmp_path) == REPO_ROOT


def test_settings_override_the_root_and_each_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("YUQING_ROOT", str(tmp_path))
    monkeypatch.setenv("YUQING_MODELS_DIR", str(tmp_path / "elsewhere"))
    paths = ProjectPaths()
    assert paths.schemas == tmp_path / "schemas" and paths.config == tmp_path / "config"
    assert paths.models == tmp_path / "elsewhere"
    assert paths.infra_script == tmp_path / "deploy" / "local" / "infra.py"
