"""The responders' credentials made as docs/search.md shows, used on the search API and real Elasticsearch.

``yuqing search new-key …`` and ``yuqing search token …`` are taken from the
document and run as written; the printed ``[[keys]]`` entry becomes the key file
(``YUQING_SEARCH_API_KEYS_PATH``), and the key and the token must identify their
callers, with the role and scope the command gave them, on the README's search.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_text import REPO_ROOT, code_blocks, inline_code
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from services.search.api import create_app
from services.search.settings import SearchSettings
from yuqing.cli import app as cli
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration

SEARCH_DOC = REPO_ROOT / "docs" / "search.md"
JWT_SECRET = "j" * 40


def documented(command: str) -> list[str]:
    """The words after ``yuqing`` of the document's first ``yuqing search <command>`` example."""
    texts = [b.text for b in code_blocks(SEARCH_DOC)] + [s.text for s in inline_code(SEARCH_DOC)]
    line = next(line.strip() for text in texts for line in text.splitlines()
                if line.strip().startswith(f"yuqing search {command} "))
    return shlex.split(line)[1:]


def run(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def api(es_settings: ElasticsearchSettings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str, str]]:
    monkeypatch.setenv("YUQING_SEARCH_JWT_SECRET", JWT_SECRET)
    printed = run(documented("new-key"))
    key = re.search(r"yq_\S+", printed)
    assert key, printed
    key_file = tmp_path / "keys.toml"
    key_file.write_text(printed[printed.index("[[keys]]"):], encoding="utf-8")
    token = run(documented("token")).strip().splitlines()[-1]
    settings = SearchSettings(es=es_settings, api_keys_path=key_file)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, key.group(0), token


def test_the_documented_key_and_token_identify_their_callers(api: tuple[TestClient, str, str]) -> None:
    client, key, token = api
    me = client.get("/v1/me", headers={"X-Api-Key": key}).json()
    assert (me["subject"], me["role"], me["regions"], me["method"]) == (
        "hekou-desk", "responder", ["河口镇"], "api_key")
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["subject"], me["role"], me["method"]) == ("王工", "viewer", "jwt")


def test_the_readme_search_works_with_the_key_inside_its_scope(api: tuple[TestClient, str, str]) -> None:
    client, key, _ = api
    found = client.get("/v1/posts/search", params={"q": "停电"}, headers={"X-Api-Key": key})
    assert found.status_code == 200, found.text
    assert {"total", "hits", "facets", "next_cursor"} <= found.json().keys()
    outside = client.get("/v1/posts/search", params={"q": "停电", "region": "城关镇"},
                         headers={"X-Api-Key": key})
    assert outside.status_code == 403
    assert client.get("/v1/posts/search", params={"q": "停电"}).status_code == 401
