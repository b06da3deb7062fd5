"""Every ``YUQING_*`` variable the documentation names is read somewhere, with the default it states.

A name is read by a settings class (its env prefix plus a field name), or by one
of the few readers listed in ``OTHER_READERS`` (the local-server launcher, the
model cache, the test session), or it is a secret that a source registry names.
Defaults are checked where the docs state them plainly: the settings tables
(``| name | default | meaning |``) and a name followed by ``(number``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from doc_text import DOC_FILES, REPO_ROOT, prose_lines
from pydantic_settings import BaseSettings

SETTINGS_MODULES = (
    "yuqing.settings", "yuqing.paths", "yuqing.consumer.settings", "services.ingest.settings",
    "services.nlp.settings", "services.alerts.settings", "services.search.settings",
)
# Read outside the settings classes: name -> a file that reads it.
OTHER_READERS = {
    "YUQING_HOME": "yuqing/settings.py",
    "YUQING_DEBUG": "yuqing/clikit.py",
    "YUQING_MODEL_HOME": "services/nlp/model_paths.py",
    "YUQING_KAFKA_PORT": "deploy/local/infra.py",
    "YUQING_KAFKA_CONTROLLER_PORT": "deploy/local/infra.py",
    "YUQING_KAFKA_HEAP": "deploy/local/infra.py",
    "YUQING_ES_PORT": "deploy/local/infra.py",
    "YUQING_ES_HEAP": "deploy/local/infra.py",
    "YUQING_INFRA_TIMEOUT": "deploy/local/infra.py",
    "YUQING_KEEP_INFRA": "tests/conftest.py",
    "YUQING_LOAD_RATE": "tests/faults/conftest.py",
    "YUQING_GRAFANA_DASHBOARDS": "deploy/monitoring/grafana/provisioning/dashboards/yuqing.yml",
}
# Secrets a source registry names by its ``*_env`` keys.
REGISTRIES = ("config/sources.example.toml", "deploy/k8s/base/sources.toml")
# A setting whose default is an alias the code resolves: name -> (alias, what the docs state).
RESOLVED_DEFAULTS = {"YUQING_NLP_MODEL_VARIANT": ("default", "onnx-int8")}

_NAME = re.compile(r"(?<![A-Z0-9_])YUQING_[A-Z0-9_]*[A-Z0-9]")
_ABBREVIATED = re.compile(r"…_([A-Z0-9_]*[A-Z0-9])")
# A prefix, not a name: `YUQING_CONSUMER_DLQ_*`, `YUQING_ALERTS_…`, env prefix `YUQING_NLP_`.
_PREFIX_ONLY = re.compile(r"YUQING_[A-Z0-9_]*_(?:\*|…|(?![A-Z0-9]))")
_LITERAL = re.compile(r"`[^`]*`|—")
_NUMBER_AFTER = re.compile(r"`(YUQING_[A-Z0-9_]*[A-Z0-9])` \((\d[\d,.]*)[;)\s]")


def settings_defaults() -> dict[str, Any]:
    """Every variable a settings class reads, with its default."""
    known: dict[str, Any] = {}
    for module in SETTINGS_MODULES:
        for value in vars(importlib.import_module(module)).values():
            if (isinstance(value, type) and issubclass(value, BaseSettings)
                    and value.__module__ == module):
                prefix = value.model_config.get("env_prefix", "")
                for field, info in value.model_fields.items():
                    default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
                    known[(prefix + field).upper()] = default
    return known


KNOWN = settings_defaults()


def expand(cell: str) -> list[str]:
    """The names of a table cell, ``…_SUFFIX`` read against the name before it."""
    names: list[str] = []
    for match in re.finditer(f"{_NAME.pattern}|{_ABBREVIATED.pattern}", cell):
        if match.group(0).startswith("YUQING_"):
            names.append(match.group(0))
            continue
        parts = names[-1].split("_")
        candidates = ["_".join([*parts[:cut], match.group(1)]) for cut in range(len(parts) - 1, 1, -1)]
        names.append(next((c for c in candidates if c in KNOWN), candidates[-1]))
    return names


def documented_names() -> dict[str, str]:
    """Every variable the docs name, with the first place it is named."""
    found: dict[str, str] = {}
    for path in DOC_FILES:
        for where, line in numbered_lines(path):
            line = _PREFIX_ONLY.sub("", line)
            names = [*_NAME.findall(line)]
            if "…_" in line:
                names += expand(line)
            for name in names:
                found.setdefault(name, where)
    return found


def numbered_lines(path: Path) -> list[tuple[str, str]]:
    return [(f"{path.name}:{n}", line)
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]


def registry_secrets() -> set[str]:
    names: set[str] = set()
    for registry in REGISTRIES:
        names |= set(_NAME.findall((REPO_ROOT / registry).read_text(encoding="utf-8")))
    return names


def test_every_documented_variable_is_read_somewhere() -> None:
    secrets = registry_secrets()
    unread = {name: where for name, where in documented_names().items()
              if name not in KNOWN and name not in OTHER_READERS and name not in secrets}
    assert not unread, f"documented but read by nothing: {unread}"


@pytest.mark.parametrize("name", sorted(OTHER_READERS))
def test_the_other_readers_really_read_their_variable(name: str) -> None:
    assert name not in KNOWN, f"{name} is a setting now: drop it from OTHER_READERS"
    assert name in (REPO_ROOT / OTHER_READERS[name]).read_text(encoding="utf-8")


def stated_defaults() -> list[tuple[str, str, str]]:
    """``(where, name, stated default)`` from the settings tables and ``NAME` (number`` prose."""
    stated: list[tuple[str, str, str]] = []
    for path in DOC_FILES:
        for where, line in prose_lines(path):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and len(cells) >= 3 and cells[0].startswith("`YUQING_"):
                names, values = expand(cells[0]), _LITERAL.findall(cells[1])
                if len(names) == len(values) and not _LITERAL.sub("", cells[1]).strip(" ,/"):
                    stated += [(where, n, v.strip("`")) for n, v in zip(names, values, strict=True)
                               if n in KNOWN]
            stated += [(where, n, v) for n, v in _NUMBER_AFTER.findall(line) if n in KNOWN]
    return stated


def same(stated: str, default: Any) -> bool:
    if stated == "—":
        return default is None
    if "<" in stated or "$" in stated:  # a placeholder, not a value
        return True
    if isinstance(default, bool):
        return stated.lower() == str(default).lower()
    if isinstance(default, int | float):
        return float(stated.replace(",", "")) == float(default)
    if isinstance(default, Path):
        return Path(stated).expanduser() == default.expanduser()
    return stated == str(default)


def test_stated_defaults_are_the_settings_defaults() -> None:
    stated = stated_defaults()
    assert len(stated) > 40, "the settings tables were not found"
    wrong = []
    for where, name, value in stated:
        default = KNOWN[name]
        alias = RESOLVED_DEFAULTS.get(name)
        if alias and default == alias[0]:
            default = alias[1]
        if not same(value, default):
            wrong.append(f"{where}: {name} documented {value!r}, the code says {default!r}")
    assert not wrong, "\n".join(wrong)


def test_the_resolved_alias_is_what_the_docs_state() -> None:
    from services.nlp.classifier import DEFAULT_VARIANT

    assert RESOLVED_DEFAULTS["YUQING_NLP_MODEL_VARIANT"][1] == DEFAULT_VARIANT


_SECTION_PREFIX = re.compile(r"^#+ .*`(YUQING_[A-Z]+_)…`")
_BARE_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def prefixed_table_rows() -> list[tuple[str, list[str], list[str]]]:
    """Rows of a table under a ``## Settings (`YUQING_SEARCH_…`)`` heading, which name settings
    without their prefix: ``(where, full names, stated defaults)``."""
    rows: list[tuple[str, list[str], list[str]]] = []
    for path in DOC_FILES:
        prefix = ""
        for where, line in prose_lines(path):
            if line.startswith("#"):
                heading = _SECTION_PREFIX.match(line)
                prefix = heading.group(1) if heading else ""
            elif prefix and line.startswith("| `"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                names = [prefix + name for name in _BARE_NAME.findall(cells[0])]
                values = [v.strip().strip("`") for v in cells[1].split(",")]
                rows.append((where, names, values))
    return rows


def test_settings_named_without_their_prefix_exist_with_the_stated_defaults() -> None:
    rows = prefixed_table_rows()
    assert len(rows) >= 8, "the search settings table was not found"
    wrong = []
    for where, names, values in rows:
        wrong += [f"{where}: {name} is read by no settings class" for name in names if name not in KNOWN]
        if len(names) != len(values):
            wrong.append(f"{where}: {len(names)} names, {len(values)} defaults")
            continue
        wrong += [f"{where}: {name} documented {value!r}, the code says {KNOWN[name]!r}"
                  for name, value in zip(names, values, strict=True)
                  if name in KNOWN and not same(value, KNOWN[name])]
    assert not wrong, "\n".join(wrong)


# Settings no user needs to set, left out of the docs on purpose.
UNDOCUMENTED = {"YUQING_KAFKA_PARTITIONS_OVERRIDE"}  # tests force partition counts with it


def test_every_setting_is_documented() -> None:
    documented = set(documented_names()) | {n for _, names, _ in prefixed_table_rows() for n in names}
    nested = {name for name, default in KNOWN.items() if isinstance(default, BaseSettings)}
    missing = sorted(set(KNOWN) - documented - nested - UNDOCUMENTED)
    assert not missing, f"settings no document names: {missing}"
