"""Reading the user documentation: its files, code blocks and inline code.

The tests beside this module hold ``README.md`` and ``docs/*.md`` to the product:
settings names, commands, HTTP examples and module names they mention.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = (REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")))

_FENCE = re.compile(r"^```(\w*)\s*$")
_INLINE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class Snippet:
    """A piece of documentation text and where it stands (``file:line``)."""

    where: str
    language: str
    text: str


def code_blocks(path: Path) -> Iterator[Snippet]:
    """The fenced code blocks of a Markdown file, with their language tag."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start, language, body = 0, "", list[str]()
    inside = False
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line.strip())
        if fence and not inside:
            inside, start, language, body = True, number, fence.group(1), []
        elif line.strip() == "```" and inside:
            inside = False
            yield Snippet(f"{path.name}:{start}", language, "\n".join(body))
        elif inside:
            body.append(line)


def prose_lines(path: Path) -> Iterator[tuple[str, str]]:
    """``(file:line, line)`` for every line outside fenced code blocks."""
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip().startswith("```"):
            inside = not inside
        elif not inside:
            yield f"{path.name}:{number}", line


def inline_code(path: Path) -> Iterator[Snippet]:
    """Every inline code span outside fenced blocks."""
    for where, line in prose_lines(path):
        for match in _INLINE.finditer(line):
            yield Snippet(where, "", match.group(1))
