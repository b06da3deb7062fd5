"""Request bodies of the responders' API sent as another type than JSON get a 415.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; the answer was a 422
saying "Input should be a valid dictionary or object to extract fields from".
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import AdminSearch

pytestmark = pytest.mark.integration
ISSUE = "outage-0123456789abcdef"
POST = "a" * 32


def send(admin_search: AdminSearch, path: str, content: bytes, content_type: str | None,
         ) -> httpx.Response:
    http, key = admin_search.http, admin_search.key
    headers = {"X-Api-Key": key} | ({"Content-Type": content_type} if content_type else {})
    response: httpx.Response = http.post(path, content=content, headers=headers)
    return response


@pytest.mark.parametrize("path", [f"/v1/issues/{ISSUE}/actions", f"/v1/issues/{ISSUE}/merge",
                                  f"/v1/issues/{ISSUE}/posts/{POST}/move", "/v1/admin/keys"])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_of_another_type_is_a_415(admin_search: AdminSearch, path: str,
                                             content_type: str | None) -> None:
    resp = send(admin_search, path, b'{"action": "acknowledge"}', content_type)
    assert resp.status_code == 415, resp.text
    assert resp.json()["detail"] == "Content-Type must be application/json"


def test_a_json_body_is_still_read(admin_search: AdminSearch) -> None:
    resp = send(admin_search, f"/v1/issues/{ISSUE}/actions", b'{"action": "acknowledge"}',
                "application/json; charset=utf-8")
    assert resp.status_code == 404, resp.text  # read, validated, and the issue looked up
    resp = send(admin_search, f"/v1/issues/{ISSUE}/actions", b"", None)  # no body: the field list says so
    assert resp.status_code == 422, resp.text
