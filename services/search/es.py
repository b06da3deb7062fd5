"""Elasticsearch client and index setup."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from yuqing.search.mappings import posts_template
from yuqing.settings import ElasticsearchSettings


def make_client(settings: ElasticsearchSettings) -> Elasticsearch:
    auth: dict[str, object] = {}
    if settings.api_key:
        auth["api_key"] = settings.api_key.get_secret_value()
    elif settings.username and settings.password:
        auth["http_auth"] = (settings.username, settings.password.get_secret_value())
    return Elasticsearch(settings.url, timeout=settings.request_timeout_s, **auth)


def ensure_templates(client: Elasticsearch, settings: ElasticsearchSettings) -> None:
    """Install (or update) the composable index templates; idempotent."""
    client.indices.put_index_template(
        name=f"{settings.index_prefix}-posts", body=posts_template(settings.index_prefix)
    )
