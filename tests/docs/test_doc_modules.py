"""``docs/architecture.md`` names every module of ``services/`` and ``yuqing/``, and only modules that exist.

Its *Module index* lists each folder's modules under a ``### `folder/``` heading;
every other ``path/to/module.py`` or ``module.py`` the document mentions must be a
file of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

from doc_text import REPO_ROOT, prose_lines

ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
PACKAGES = ("services", "yuqing")
_FOLDER_HEADING = re.compile(r"^### `([\w/]+)/`")
_MODULE_CELL = re.compile(r"^\| `(\w+\.py)` \|")
_MENTION = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*\w+\.py)\b")


def code_modules() -> set[str]:
    return {p.relative_to(REPO_ROOT).as_posix() for package in PACKAGES
            for p in (REPO_ROOT / package).rglob("*.py") if p.name != "__init__.py"}


def indexed_modules() -> set[str]:
    modules: set[str] = set()
    folder: str | None = None
    inside = False
    for _, line in prose_lines(ARCHITECTURE):
        if line.startswith("## "):
            inside = line.strip() == "## Module index"
        heading = _FOLDER_HEADING.match(line) if inside else None
        if heading:
            folder = heading.group(1)
        cell = _MODULE_CELL.match(line) if inside and folder else None
        if cell:
            modules.add(f"{folder}/{cell.group(1)}")
    return modules


def test_the_module_index_lists_every_module_and_no_other() -> None:
    indexed, actual = indexed_modules(), code_modules()
    assert len(actual) > 100
    assert not actual - indexed, f"modules missing from the index: {sorted(actual - indexed)}"
    assert not indexed - actual, f"indexed modules that do not exist: {sorted(indexed - actual)}"


def repository_files() -> tuple[set[str], set[str]]:
    paths = {p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.rglob("*.py")
             if ".venv" not in p.parts and "node_modules" not in p.parts}
    return paths, {Path(p).name for p in paths}


def test_every_module_the_document_mentions_exists() -> None:
    paths, names = repository_files()
    missing = []
    for where, line in prose_lines(ARCHITECTURE):
        for mention in _MENTION.findall(line):
            exists = mention in paths if "/" in mention else mention in names
            if not exists:
                missing.append(f"{where}: {mention}")
    assert not missing, "\n".join(missing)


def test_the_topic_registries_name_the_alerts_worker_stages_that_exist() -> None:
    worker = (REPO_ROOT / "services" / "alerts" / "worker.py").read_text(encoding="utf-8")
    named = []
    for registry in (REPO_ROOT / "schemas").glob("*/topic.json"):
        named += re.findall(r"\(stage \d: (\w+)\)", registry.read_text(encoding="utf-8"))
    assert named
    missing = [stage for stage in named if f"async def {stage}(" not in worker]
    assert not missing, f"no such stage of the alerts worker: {missing}"
