"""Where the project's data files are: ``schemas/``, ``config/``, ``models/``, ``deploy/local/``.

They ship beside the code (a checkout, or the container's working directory,
see the Dockerfile), not inside a Python package, so one settings class says
where they are. ``YUQING_ROOT`` names the folder that holds them, and each
folder can be set on its own (``YUQING_SCHEMAS_DIR``, ``YUQING_CONFIG_DIR``,
``YUQING_MODELS_DIR``). Without ``YUQING_ROOT`` the root is the nearest folder,
from the current directory up, holding ``schemas/`` and ``config/``; failing
that, the folder the ``yuqing`` package was loaded from sits in (a checkout).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _is_root(folder: Path) -> bool:
    return (folder / "schemas").is_dir() and (folder / "config").is_dir()


def find_root(start: Path | None = None) -> Path:
    """The project root seen from ``start`` (the current directory by default)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_root(folder):
            return folder
    package = Path(str(resources.files("yuqing")))
    return package.parent


class ProjectPaths(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUQING_", extra="ignore")

    root: Path = Field(default_factory=find_root, description="the folder holding schemas/, config/")
    schemas_dir: Path | None = Field(None, description="topic contracts; default <root>/schemas")
    config_dir: Path | None = Field(None, description="editable configuration; default <root>/config")
    models_dir: Path | None = Field(None, description="shipped model files; default <root>/models")

    @property
    def schemas(self) -> Path:
        return self.schemas_dir or self.root / "schemas"

    @property
    def config(self) -> Path:
        return self.config_dir or self.root / "config"

    @property
    def models(self) -> Path:
        return self.models_dir or self.root / "models"

    @property
    def infra_script(self) -> Path:
        """The local Kafka and Elasticsearch launcher."""
        return self.root / "deploy" / "local" / "infra.py"


@cache
def project_paths() -> ProjectPaths:
    return ProjectPaths()


def read_utf8(path: Path) -> str:
    """The text of a file operations staff write; one not in UTF-8 (GBK, as editors on Chinese
    Windows save it) is a ValueError naming it and the line, where the decoder named neither."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, data.count(b"\n", 0, error.start) + 1) from None


def utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of a JSONL file (a byte order mark skipped) with their numbers, split at line
    feeds only: ``str.splitlines`` also split at U+2028 and U+2029, which JSON keeps unescaped
    inside a string (a post's text), and cut such a record in two."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise _not_utf8(path, number) from None


def _not_utf8(path: Path, line: int) -> ValueError:
    return ValueError(f"{path}: line {line}: not UTF-8 text (save the file as UTF-8)")


def read_toml(path: Path) -> dict[str, Any]:
    """A configuration file operations staff edit (topic rules, places, API keys), read; a file
    that is not TOML, or not UTF-8, is a ValueError naming it."""
    try:
        return tomllib.loads(read_utf8(path))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not a TOML file ({error})") from None


def is_word_list(value: object) -> TypeGuard[list[str]]:
    """Whether a configuration value is a list of words. A bare string is not: read as a list, it
    was its characters (``places = "下坝村"`` placed every post holding 村)."""
    return isinstance(value, list) and all(isinstance(word, str) and word for word in value)
