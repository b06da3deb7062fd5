"""Every repository path and relative link in the documentation leads to something that exists.

Paths are read from inline code (``config/places.toml``, ``services/search/views.py``,
``tests/nlp/test_worker_kafka.py``) and from Markdown links; placeholders
(``schemas/<topic>/``, ``*.yml``) and the benchmarks' output files, which a run
writes, are left out.
"""

from __future__ import annotations

import re

from doc_text import DOC_FILES, REPO_ROOT, inline_code, prose_lines

TOP_LEVEL = ("services/", "yuqing/", "deploy/", "docs/", "schemas/", "config/", "data/", "bench/",
             "tests/", "models/")
WRITTEN_BY_A_RUN = ("bench/results/",)
# Named in the docs but not files of the repository, on purpose.
NOT_FILES = {
    "config/topics.toml",  # the optional topic rules' default path; none are shipped
    "deploy/yuqing-indexer",  # a kubectl resource (`kubectl exec deploy/yuqing-indexer`)
}
_PLACEHOLDER = re.compile(r"[<{*…\[$]")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def documented_paths() -> list[tuple[str, str]]:
    found = []
    for path in DOC_FILES:
        for span in inline_code(path):
            for word in re.split(r"[\s,()]+", span.text):
                word = word.rstrip(".:;").split("::")[0]
                if word.startswith(TOP_LEVEL) and not _PLACEHOLDER.search(word) \
                        and not word.startswith(WRITTEN_BY_A_RUN):
                    found.append((span.where, word))
    return found


def test_documented_repository_paths_exist() -> None:
    paths = documented_paths()
    assert len(paths) > 100
    missing = [f"{where}: {path}" for where, path in paths
               if not (REPO_ROOT / path).exists() and path not in NOT_FILES]
    assert not missing, "\n".join(missing)


def test_relative_links_resolve() -> None:
    missing = []
    for path in DOC_FILES:
        for where, line in prose_lines(path):
            for target in _LINK.findall(line):
                if "://" not in target and not (path.parent / target).exists():
                    missing.append(f"{where}: {target}")
    assert not missing, "\n".join(missing)


_HEADING = re.compile(r"^#+ (.*)")
_ANCHORED_LINK = re.compile(r"\]\(([^)#\s]*)#([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_a_section_find_its_heading() -> None:
    anchors = {path.name: {slug(m.group(1)) for _, line in prose_lines(path)
                           if (m := _HEADING.match(line))} for path in DOC_FILES}
    assert "which-region-a-post-counts-under" in anchors["alerts.md"]
    broken = []
    for path in DOC_FILES:
        for where, line in prose_lines(path):
            for target, anchor in _ANCHORED_LINK.findall(line):
                name = (path.parent / target).name if target else path.name
                if name in anchors and anchor not in anchors[name]:
                    broken.append(f"{where}: {target}#{anchor}")
    assert not broken, "\n".join(broken)
