"""The responders' HTTP API (FastAPI)."""


import html
import logging
from datetime import datetime
from typing import Annotated, Any

from elasticsearch import Elasticsearch
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from yuqing.contracts import Sentiment, Topic
from yuqing.search.documents import segment
from yuqing.search.es import make_client
from yuqing.search.mappings import posts_alias
from yuqing.search.settings import SearchSettings

log = logging.getLogger(__name__)
HIGHLIGHT_PRE, HIGHLIGHT_POST = "\u0001", "\u0002"  # replaced after HTML-escaping


class PostHit(BaseModel):
    post_id: str
    score: float | None
    source: str
    channel: str
    topic: str
    sentiment: str
    region: str | None = None
    unit: str | None = None
    created_at: datetime
    text: str
    highlight: str | None = Field(None, description="HTML-escaped snippet with <em> marks")
    issue_id: str | None = None


class SearchPage(BaseModel):
    total: int
    hits: list[PostHit]
    facets: dict[str, dict[str, int]]
    next_cursor: str | None = None


def build_query(q: str | None, *, topic: Topic | None, sentiment: Sentiment | None,
                source: str | None, region: str | None, unit: str | None,
                since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """A bool query: simple_query_string (safe syntax) over bigram and word fields + filters."""
    must: list[dict[str, Any]] = []
    if q and q.strip():
        must.append({"simple_query_string": {
            "query": f"{q} {segment(q)}" if '"' not in q else q,
            "fields": ["text", "title^2", "text_words"],
            "default_operator": "or", "flags": "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE",
            "minimum_should_match": "60%",
        }})
    filters: list[dict[str, Any]] = []
    for field, value in (("topic", topic), ("sentiment", sentiment), ("source", source),
                         ("region", region), ("unit", unit)):
        if value is not None:
            filters.append({"term": {field: getattr(value, "value", value)}})
    if since or until:
        rng = {k: v.isoformat() for k, v in (("gte", since), ("lt", until)) if v}
        filters.append({"range": {"created_at": rng}})
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


def escape_highlight(fragment: str) -> str:
    return (html.escape(fragment).replace(HIGHLIGHT_PRE, "<em>").replace(HIGHLIGHT_POST, "</em>"))


def create_app(settings: SearchSettings | None = None) -> FastAPI:
    settings = settings or SearchSettings()
    app = FastAPI(title="Yuqing search API", version="1")
    client = make_client(settings.es)
    alias = posts_alias(settings.es.index_prefix)

    def es() -> Elasticsearch:
        return client

    Es = Annotated[Elasticsearch, Depends(es)]

    @app.exception_handler(Exception)
    async def unknown_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/healthz")
    def healthz(client: Es) -> dict[str, str]:
        if not client.ping():
            raise HTTPException(503, "elasticsearch unreachable")
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/posts/search", response_model=SearchPage)
    def search_posts(
        client: Es,
        q: Annotated[str | None, Query(max_length=500, examples=['停电 -演习'])] = None,
        topic: Topic | None = None, sentiment: Sentiment | None = None,
        source: str | None = None, region: str | None = None, unit: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> SearchPage:
        body = {
            "query": build_query(q, topic=topic, sentiment=sentiment, source=source,
                                 region=region, unit=unit, since=since, until=until),
            "size": size, "track_total_hits": True,
            "sort": ["_score", {"created_at": "desc"}, {"post_id": "asc"}],
            "highlight": {"fields": {"text": {}}, "pre_tags": [HIGHLIGHT_PRE],
                          "post_tags": [HIGHLIGHT_POST], "encoder": "default"},
            "aggs": {f: {"terms": {"field": f, "size": 20}}
                     for f in ("topic", "sentiment", "source", "region")},
        }
        resp = client.search(index=alias, body=body, ignore_unavailable=True,
                              allow_no_indices=True)
        hits = [_to_hit(h) for h in resp["hits"]["hits"]]
        facets = {name: {b["key"]: b["doc_count"] for b in agg["buckets"]}
                  for name, agg in resp.get("aggregations", {}).items()}
        return SearchPage(total=resp["hits"]["total"]["value"], hits=hits, facets=facets)

    @app.get("/v1/posts/{post_id}", response_model=PostHit)
    def get_post(client: Es, post_id: str) -> PostHit:
        resp = client.search(index=alias, body={"query": {"term": {"post_id": post_id}}},
                             ignore_unavailable=True, allow_no_indices=True)
        if not resp["hits"]["hits"]:
            raise HTTPException(404, f"post {post_id} not found")
        return _to_hit(resp["hits"]["hits"][0])

    return app


def _to_hit(hit: dict[str, Any]) -> PostHit:
    src = hit["_source"]
    fragments = hit.get("highlight", {}).get("text")
    return PostHit(
        post_id=src["post_id"], score=hit.get("_score"), source=src["source"],
        channel=src["channel"], topic=src["topic"], sentiment=src["sentiment"],
        region=src.get("region"), unit=src.get("unit"), created_at=src["created_at"],
        text=src["text"], issue_id=src.get("issue_id"),
        highlight=" … ".join(escape_highlight(f) for f in fragments) if fragments else None,
    )
