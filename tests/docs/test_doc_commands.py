"""Every ``yuqing …`` command and ``make`` target the documentation shows exists, with its options.

Commands are read from shell lines in code blocks and from inline code; the
command path is resolved in the real command tree (``yuqing.cli.app``) and
every ``--option`` written after it must be one that command takes. Usage
notation is understood: ``[--model DIR]``, ``a | b`` and ``# comments``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from doc_text import DOC_FILES, REPO_ROOT, code_blocks, inline_code

from yuqing.cli import app

_SHELL_LINE = re.compile(r"^(?:\$ )?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(yuqing\s+[a-z].*)$")
_DESCRIPTION = re.compile(r"\s{2,}(?![-\[|]).*$")  # a usage table's explanation column
_MAKE = re.compile(r"`make ([a-z][a-z0-9-]*)`|make ([a-z][a-z0-9-]*(?: \| [a-z][a-z0-9-]*)+)")


def documented_commands() -> Iterator[tuple[str, str]]:
    """``(file:line, command)`` for every ``yuqing`` command line of the docs."""
    for path in DOC_FILES:
        for block in code_blocks(path):
            for line in block.text.replace("\\\n", " ").splitlines():
                match = _SHELL_LINE.match(line.strip())
                if match:
                    yield block.where, match.group(1)
        for span in inline_code(path):
            if span.text.startswith("yuqing "):
                yield span.where, span.text


def tokens_of(command: str) -> list[str]:
    command = _DESCRIPTION.sub("", command.split(" #")[0])
    command = re.sub(r"[\[\]|]", " ", command)
    return command.split()[1:]


def resolve(tokens: list[str]) -> tuple[Any, list[str], list[str]]:
    """The command the leading words name, the path to it and the words after it."""
    node: Any = typer.main.get_command(app)
    path = ["yuqing"]
    rest = list(tokens)
    while hasattr(node, "commands") and rest and not rest[0].startswith("-"):
        word = rest.pop(0)
        if word == "/":  # "convert / train / predict": alternatives, each checked
            continue
        if word in ("…", "..."):
            break
        assert word in node.commands, f"no command `{' '.join(path)} {word}`"
        node = node.commands[word]
        path.append(word)
    return node, path, rest


COMMANDS = list(documented_commands())


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 60


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w} {c[:60]}" for w, c in COMMANDS])
def test_documented_command_exists_with_its_options(where: str, command: str) -> None:
    tokens = tokens_of(command)
    if "/" in tokens:  # alternatives: every one is a command of the group before them
        group, path, rest = resolve(tokens[:tokens.index("/") - 1])
        for word in (w for w in tokens[len(path) - 1:] if w != "/"):
            assert word in group.commands, f"{where}: no command `{' '.join(path)} {word}`"
        return
    node, path, rest = resolve(tokens)
    options = {"--help"}
    for param in node.params:
        options |= set(param.opts) | set(getattr(param, "secondary_opts", []))
    unknown = [t.split("=")[0] for t in rest if t.startswith("-") and t.split("=")[0] not in options]
    assert not unknown, f"{where}: `{' '.join(path)}` has no option {unknown}"


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE))


def test_documented_make_targets_exist() -> None:
    targets = makefile_targets()
    documented: dict[str, str] = {}
    for path in DOC_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for single, alternatives in _MAKE.findall(line):
                for name in [single] if single else alternatives.split(" | "):
                    documented.setdefault(name, f"{path.name}:{number}")
    assert {"run", "test"} <= documented.keys()
    missing = {name: where for name, where in documented.items() if name not in targets}
    assert not missing, f"documented make targets missing from the Makefile: {missing}"


def command_paths(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if hasattr(node, "commands"):
        for name, sub in node.commands.items():
            yield from command_paths(sub, (*path, name))
    else:
        yield path


def test_every_command_is_documented() -> None:
    """``yuqing infra up|down|status`` documents three commands: siblings written after one count."""
    documented: set[tuple[str, ...]] = set()
    for _, command in COMMANDS:
        tokens = [t for t in tokens_of(command) if t != "/"]
        _, path, rest = resolve(tokens)
        parent, _, _ = resolve(path[1:-1])
        documented.add(tuple(path[1:]))
        documented |= {(*path[1:-1], word) for word in rest if word in getattr(parent, "commands", {})}
    every = set(command_paths(typer.main.get_command(app)))
    missing = sorted(" ".join(p) for p in every - documented)
    assert not missing, f"commands no document shows: {missing}"
