"""The data folders are found through settings, from anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from yuqing.paths import ProjectPaths, find_root, read_toml, utf8_lines


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


def test_a_configuration_file_not_in_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    # a places file, API key file or topic rules saved in GBK: the error named no file
    path = tmp_path / "places.toml"
    path.write_bytes('[[regions]]\nname = "河口镇"\n'.encode("gbk"))

    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: line 2: not UTF-8 text"):
        read_toml(path)


def test_jsonl_lines_split_at_line_feeds_only(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"\xef\xbb\xbf{\"a\": 1}\r\n" + '{"t": "x\u2028y\u2029z\x85w\x1cv"}\n'.encode() + b"\n")

    assert list(utf8_lines(path)) == [
        (1, '{"a": 1}\r\n'), (2, '{"t": "x\u2028y\u2029z\x85w\x1cv"}\n'), (3, "\n")]
