"""jieba, loaded once per process for every service that segments Chinese text."""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import cast


@cache
def jieba_ready() -> ModuleType:
    """The jieba module with its dictionary loaded and its logging silenced."""
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return cast(ModuleType, jieba)  # jieba ships no type hints
