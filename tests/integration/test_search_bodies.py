"""Request bodies of the responders' API sent as another type than JSON get a 415.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; the answer was a 422
saying "Input should be a valid dictionary or object to extract fields from".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.search.api import create_app
from services.search.auth import hash_key, new_key
from services.search.es import ensure_templates, make_client
from services.search.settings import SearchSettings
from yuqing.settings import ElasticsearchSettings

pytestmark = pytest.mark.integration
ISSUE = "outage-0123456789abcdef"
POST = "a" * 32


@pytest.fixture
def api(es_settings: ElasticsearchSettings, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    key = new_key("admin")
    (tmp_path / "keys.toml").write_text(
        f'[[keys]]\nid = "admin"\nrole = "admin"\nsha256 = "{hash_key(key)}"\n', encoding="utf-8")
    settings = SearchSettings(es=es_settings, api_keys_path=tmp_path / "keys.toml",
                              jwt_secret=SecretStr("bodies-test-secret-0123456789abcdef"),
                              rate_limit_per_minute=0)
    es = make_client(es_settings)
    ensure_templates(es, es_settings)
    with TestClient(create_app(settings, client=es), raise_server_exceptions=False) as http:
        yield http, key


def send(api: tuple[TestClient, str], path: str, content: bytes, content_type: str | None,
         ) -> httpx.Response:
    http, key = api
    headers = {"X-Api-Key": key} | ({"Content-Type": content_type} if content_type else {})
    response: httpx.Response = http.post(path, content=content, headers=headers)
    return response


@pytest.mark.parametrize("path", [f"/v1/issues/{ISSUE}/actions", f"/v1/issues/{ISSUE}/merge",
                                  f"/v1/issues/{ISSUE}/posts/{POST}/move", "/v1/admin/keys"])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_of_another_type_is_a_415(api: tuple[TestClient, str], path: str,
                                             content_type: str | None) -> None:
    resp = send(api, path, b'{"action": "acknowledge"}', content_type)
    assert resp.status_code == 415, resp.text
    assert resp.json()["detail"] == "Content-Type must be application/json"


def test_a_json_body_is_still_read(api: tuple[TestClient, str]) -> None:
    resp = send(api, f"/v1/issues/{ISSUE}/actions", b'{"action": "acknowledge"}',
                "application/json; charset=utf-8")
    assert resp.status_code == 404, resp.text  # read, validated, and the issue looked up
    resp = send(api, f"/v1/issues/{ISSUE}/actions", b"", None)  # no body: the field list says so
    assert resp.status_code == 422, resp.text
