"""The documentation's examples and field lists hold against the models the services use.

Every ``json`` block of the docs is one of the known shapes (an alert of the
``alerts`` topic, the ingest answer, an alert's driving issue) and validates as
it; the integrators guide's request bodies (the ``curl`` examples), its registry
example and its field tables match the ingest models and the topic contracts.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from doc_text import DOC_FILES, REPO_ROOT, code_blocks, prose_lines
from pydantic import BaseModel

from services.ingest.app_webhook import AppFeedback, parse_feedback
from services.ingest.models import Accepted, PostBatchIn, PostIn
from services.ingest.registry import parse_registry
from services.search.models import DrivingIssue
from yuqing.contracts.models import Alert, EnrichedPost, RawPost

INTEGRATORS = REPO_ROOT / "docs" / "integrators.md"
PROJECT = {"services", "yuqing"}
# A JSON example is recognised by a key only its shape has; contracts are validated
# whole (they refuse unknown fields), answers must show exactly the model's fields.
SHAPES: dict[str, tuple[type[BaseModel], bool]] = {
    "alert_id": (Alert, True),
    "accepted": (Accepted, False),
    "issue_id": (DrivingIssue, False),
}


def json_examples() -> list[tuple[str, Any]]:
    examples = []
    for path in DOC_FILES:
        for block in code_blocks(path):
            if block.language == "json":
                examples.append((block.where, json.loads(block.text)))
    return examples


@pytest.mark.parametrize(("where", "example"), json_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_json_example_is_a_known_shape_and_valid(where: str, example: Any) -> None:
    for item in example if isinstance(example, list) else [example]:
        shape = next((SHAPES[key] for key in SHAPES if key in item), None)
        assert shape, f"{where}: an example of no known shape (keys {sorted(item)}): add it to SHAPES"
        model, is_contract = shape
        if is_contract:
            model.model_validate(item)
        else:
            assert set(item) == set(model.model_fields), f"{where}: {model.__name__} has other fields"
            model.model_validate(item)


def sh_blocks() -> list[str]:
    return [b.text for b in code_blocks(INTEGRATORS) if b.language == "sh"]


def curl_bodies() -> list[bytes]:
    bodies = []
    for text in sh_blocks():
        words = shlex.split(text.replace("\\\n", " "), comments=True)
        if words and words[0] == "curl" and "--data-binary" in words:
            body = words[words.index("--data-binary") + 1]
            if not body.startswith("$"):
                bodies.append(body.encode())
    return bodies


def test_the_post_example_is_a_valid_request() -> None:
    (body,) = curl_bodies()
    data = json.loads(body)
    (PostBatchIn if "posts" in data else PostIn).model_validate(data)


def test_the_app_example_body_is_a_valid_feedback_item() -> None:
    (block,) = [t for t in sh_blocks() if "BODY='" in t]
    body = re.search(r"BODY='([^']*)'", block)
    assert body
    feedback = parse_feedback(body.group(1).encode())
    assert feedback.feedback_id and feedback.content


def test_the_registry_example_loads() -> None:
    (block,) = [b.text for b in code_blocks(INTEGRATORS) if b.language == "toml"]
    secrets = {name: "x" * 40 for name in re.findall(r'_env = "([A-Z0-9_]+)"', block)}
    registry = parse_registry(block, secrets, origin="integrators.md")
    (source,) = registry.sources()
    assert source.config.id == "crm-95598"
    assert tomllib.loads(block)["sources"][0]["max_batch"] == 200


def table_fields(heading: str) -> set[str]:
    """The backticked names of the first column of the table under ``heading``."""
    names: set[str] = set()
    seen_heading = False
    for _, line in prose_lines(INTEGRATORS):
        if line.startswith("#"):
            if seen_heading and names:
                break
            seen_heading = line.lstrip("# ").strip() == heading
        elif seen_heading and line.startswith("| `"):
            names |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_the_contract_table_lists_the_raw_post_fields() -> None:
    assert table_fields("The contract") | {"schema_version"} == set(RawPost.model_fields)


def test_the_feedback_table_lists_the_feedback_fields() -> None:
    assert table_fields("The feedback object") == set(AppFeedback.model_fields)


def test_the_post_object_sentence_lists_the_request_fields() -> None:
    text = INTEGRATORS.read_text(encoding="utf-8")
    sentence = re.search(r"A post object carries (.*?)— the fields", text, re.S)
    assert sentence
    assert set(re.findall(r"`([a-z_]+)`", sentence.group(1))) == set(PostIn.model_fields)


def test_the_enriched_fields_are_the_raw_fields_and_those_listed() -> None:
    text = INTEGRATORS.read_text(encoding="utf-8")
    listed = re.search(r"every field of `posts.raw` as it arrived, plus (.*?)\.\n", text, re.S)
    assert listed
    added = set(EnrichedPost.model_fields) - set(RawPost.model_fields)
    assert set(re.findall(r"`([a-z_]+)`", listed.group(1))) == added


def python_examples() -> list[tuple[str, str]]:
    return [(b.where, b.text) for path in DOC_FILES for b in code_blocks(path) if b.language == "python"]


@pytest.mark.parametrize(("where", "source"), python_examples(), ids=lambda v: v if ":" in v else "")
def test_python_examples_compile_and_import_what_exists(where: str, source: str) -> None:
    tree = ast.parse(source, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PROJECT:
            module = importlib.import_module(node.module)
            missing = [a.name for a in node.names if not hasattr(module, a.name)]
            assert not missing, f"{where}: {node.module} has no {missing}"


@pytest.mark.parametrize(("where", "source"), [e for e in python_examples() if "import " in e[1]],
                         ids=lambda v: v if ":" in v else "")
def test_self_contained_python_examples_define_every_name(where: str, source: str) -> None:
    """An example that does its own imports must not lean on names it never imports."""
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--isolated", "--select", "F821", "--output-format",
                             "concise", "--stdin-filename", "example.py", "-"],
                            input=source, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{where}:\n{result.stdout}"


def test_the_topic_rule_example_loads_and_steers_the_topic(tmp_path: Path) -> None:
    from services.nlp.enrich import apply_rules, load_rules

    (block,) = [b.text for b in code_blocks(REPO_ROOT / "docs" / "nlp.md") if b.language == "toml"]
    rules_file = tmp_path / "topics.toml"
    rules_file.write_text(block, encoding="utf-8")
    (rule,) = load_rules(rules_file)
    scores = {"outage": 0.5, "rumor": 0.3}
    topic, _, hits = apply_rules("听说明天全县拉闸限电", scores, [rule])
    assert (topic, hits) == ("rumor", [rule.name])
    assert apply_rules("官方辟谣：没有拉闸限电", scores, [rule])[2] == []


def test_the_labelling_guide_defines_exactly_the_contract_labels() -> None:
    from yuqing.contracts.models import Sentiment, Topic

    text = (REPO_ROOT / "docs" / "labelling.md").read_text(encoding="utf-8")
    topics = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    assert topics == {t.value for t in Topic}
    sentiments = re.search(r"## Sentiment\s+`(\w+)`, `(\w+)` or `(\w+)`", text)
    assert sentiments and set(sentiments.groups()) == {s.value for s in Sentiment}


def test_the_fields_sources_never_send_are_those_yuqing_sets() -> None:
    text = INTEGRATORS.read_text(encoding="utf-8")
    sentence = re.search(r"Sources never send (.*?):\s+Yuqing sets them", text, re.S)
    assert sentence
    never_sent = set(RawPost.model_fields) - set(PostIn.model_fields)
    assert set(re.findall(r"`([a-z_]+)`", sentence.group(1))) == never_sent
