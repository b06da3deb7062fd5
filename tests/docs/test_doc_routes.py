"""Every HTTP route the documentation names is served by the ingest or the search API.

``GET /v1/issues/{id}`` in the docs must be a ``GET`` route of one of the two
apps (parameter names aside); a path written without a method must be some route.
The apps are built as the services build them; nothing is started.
"""

from __future__ import annotations

import re

import pytest
from doc_text import DOC_FILES, REPO_ROOT

from services.ingest.api import create_app as create_ingest_app
from services.search.api import create_app as create_search_app

_WITH_METHOD = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/v1/[\w{}/.-]*\w}?)")
_BARE = re.compile(r"`(/v1/[\w{}/.-]*\w}?)(?:\?[^`]*)?`")
_PARAMETER = re.compile(r"\{[^}]*\}")
# Served outside the OpenAPI document of each app.
UNDOCUMENTED_ROUTES = {("GET", "/metrics"), ("GET", "/docs"), ("GET", "/openapi.json")}


def shape(path: str) -> str:
    return _PARAMETER.sub("{}", path)


def served_routes() -> set[tuple[str, str]]:
    routes = set(UNDOCUMENTED_ROUTES)
    for app in (create_ingest_app(), create_search_app()):
        for path, operations in app.openapi()["paths"].items():
            routes |= {(method.upper(), shape(path)) for method in operations}
    return routes


SERVED = served_routes()


def documented_routes() -> dict[tuple[str | None, str], str]:
    found: dict[tuple[str | None, str], str] = {}
    for path in DOC_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for method, route in _WITH_METHOD.findall(line):
                found.setdefault((method, shape(route)), f"{path.name}:{number}")
            for route in _BARE.findall(line):
                found.setdefault((None, shape(route)), f"{path.name}:{number}")
    return found


DOCUMENTED = documented_routes()


def test_the_docs_name_routes_of_both_apps() -> None:
    assert ("POST", "/v1/posts") in DOCUMENTED
    assert ("GET", "/v1/posts/search") in DOCUMENTED or (None, "/v1/posts/search") in DOCUMENTED


@pytest.mark.parametrize("route", sorted(DOCUMENTED, key=str), ids=lambda r: f"{r[0]} {r[1]}")
def test_documented_route_is_served(route: tuple[str | None, str]) -> None:
    method, path = route
    served = {m for m, p in SERVED if p == path}
    assert served, f"{DOCUMENTED[route]}: no app serves {path}"
    assert method is None or method in served, f"{DOCUMENTED[route]}: {path} takes {served}, not {method}"


def test_the_documented_search_filters_are_the_query_parameters() -> None:
    text = (REPO_ROOT / "docs" / "search.md").read_text(encoding="utf-8")
    sentence = re.search(r"^Filters: (.*?)\. ", text, re.MULTILINE | re.DOTALL)
    assert sentence
    filters = set(re.findall(r"`(\w+)`", sentence.group(1)))
    operation = create_search_app().openapi()["paths"]["/v1/posts/search"]["get"]
    parameters = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert filters == parameters - {"q", "sort", "limit", "size", "cursor"}


def test_the_documented_issue_actions_are_the_action_kinds() -> None:
    from services.search.models import CORRECTIONS, ActionKind

    text = (REPO_ROOT / "docs" / "search.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `POST /v1/issues/\{id\}/actions` \| act \| (.*)$", text, re.MULTILINE)
    assert row
    listed = set(re.findall(r"`([a-z]+)`", row.group(1))) - {"assignee"}
    assert listed == {kind.value for kind in ActionKind if kind not in CORRECTIONS}
