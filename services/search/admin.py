"""Administration: API keys kept (hashed) in Elasticsearch, and the sources seen in the posts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from services.search.auth import KeyRecord, Principal, hash_key, new_key, record_from
from services.search.mappings import posts_alias, small_alias, small_index
from services.search.models import KeyCreate, KeyCreated, KeyRead, SourceRead
from services.search.posts import search
from services.search.query import scope_filters


class KeyExists(Exception):
    pass


def lookup_key(client: Elasticsearch, prefix: str, key_id: str) -> KeyRecord | None:
    found = client.get(index=small_index(prefix, "api-keys"), id=key_id, ignore=404)
    return record_from(found["_source"]) if found.get("found") else None


def _within(scope: frozenset[str] | None, wanted: list[str] | None) -> bool:
    return scope is None or (wanted is not None and set(wanted) <= scope)


def create_key(client: Elasticsearch, *, prefix: str, request: KeyCreate, creator: Principal,
               reserved: set[str]) -> KeyCreated:
    """Store a new key's hash; the key itself is returned once and kept nowhere. An admin scoped to
    regions or units makes keys within them only (PermissionError): it made itself one for all."""
    if not (_within(creator.regions, request.regions) and _within(creator.units, request.units)):
        raise PermissionError("a key restricted to regions or units may only make keys within them")
    created_by = creator.subject
    if request.key_id in reserved:
        raise KeyExists(request.key_id)
    key = new_key(request.key_id)
    doc = {**request.model_dump(), "sha256": hash_key(key), "created_at": datetime.now(UTC).isoformat(),
           "created_by": created_by, "revoked": False}
    result = client.index(index=small_index(prefix, "api-keys"), id=request.key_id, document=doc,
                          op_type="create", refresh="wait_for", ignore=409)
    if result.get("status") == 409:
        raise KeyExists(request.key_id)
    return KeyCreated(**_read(doc).model_dump(), key=key)


# Every key, as many as one search answers (the endpoint has no pages; it listed the first 100).
KEYS_LISTED = 10_000


def _manages(admin: Principal, key: dict[str, Any]) -> bool:
    """Whether an admin may see and revoke a key: one within its own scope."""
    return _within(admin.regions, key.get("regions")) and _within(admin.units, key.get("units"))


def list_keys(client: Elasticsearch, *, prefix: str, principal: Principal,
              limit: int = KEYS_LISTED) -> list[KeyRead]:
    """The keys the caller manages (a scoped admin: those within its scope)."""
    resp = search(client, small_alias(prefix, "api-keys"), {"size": limit, "sort": [{"key_id": "asc"}]})
    return [_read(h["_source"]) for h in resp["hits"]["hits"] if _manages(principal, h["_source"])]


def revoke_key(client: Elasticsearch, *, prefix: str, key_id: str, principal: Principal) -> KeyRead | None:
    """The key revoked, or None when there is none the caller manages."""
    index = small_index(prefix, "api-keys")
    found = client.get(index=index, id=key_id, ignore=404)
    if not found.get("found") or not _manages(principal, found["_source"]):
        return None
    client.update(index=index, id=key_id, body={"doc": {"revoked": True}}, refresh="wait_for")
    return _read({**found["_source"], "revoked": True})


def list_sources(client: Elasticsearch, *, prefix: str, principal: Principal) -> list[SourceRead]:
    """The sources of the posts the caller may see."""
    aggs = {"sources": {"terms": {"field": "source", "size": 500},
                        "aggs": {"channels": {"terms": {"field": "channel", "size": 10}},
                                 "last": {"max": {"field": "created_at"}}}}}
    query = {"bool": {"filter": scope_filters(principal)}}
    resp = search(client, posts_alias(prefix), {"size": 0, "query": query, "aggs": aggs})
    buckets = ((resp.get("aggregations") or {}).get("sources") or {}).get("buckets", [])
    return [SourceRead(source=b["key"], channels=[c["key"] for c in b["channels"]["buckets"]],
                       posts=b["doc_count"], last_seen=b["last"].get("value_as_string"))
            for b in buckets]


def _read(doc: dict[str, Any]) -> KeyRead:
    return KeyRead(key_id=doc["key_id"], role=doc["role"], regions=doc.get("regions"),
                   units=doc.get("units"), description=doc.get("description", ""),
                   created_at=doc.get("created_at"), created_by=doc.get("created_by"),
                   revoked=bool(doc.get("revoked")))
