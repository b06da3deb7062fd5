"""Prometheus metrics of the indexer and the search API, declared once."""

from prometheus_client import Counter, Gauge, Histogram

from yuqing.observability import service_registry

# Two processes, two endpoints: the indexer's (port 9104) serves INDEXER_REGISTRY, the API's
# /metrics API_REGISTRY (yuqing.observability.service_registry).
INDEXER_REGISTRY = service_registry()
API_REGISTRY = service_registry()

DOCS_INDEXED = Counter(
    "yuqing_search_docs_indexed_total", "Documents written to Elasticsearch.", registry=INDEXER_REGISTRY,
)
DOCS_REJECTED = Counter(
    "yuqing_search_docs_rejected_total", "Documents Elasticsearch rejected (dead-lettered).",
    registry=INDEXER_REGISTRY,
)
BULK_SECONDS = Histogram(
    "yuqing_search_bulk_seconds", "Wall time of one bulk request including retries.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=INDEXER_REGISTRY,
)
BULK_RETRIES = Counter(
    "yuqing_search_bulk_retries_total", "Bulk requests retried (429/5xx).", registry=INDEXER_REGISTRY,
)
DEAD_LETTERS = Counter(
    "yuqing_search_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"],
    registry=INDEXER_REGISTRY,
)
# each reason's series from 0: one born at its first letter (1) shows no increase to rate(), so
# the first dead letters of a kind were invisible to the dead-letter alert
for _reason in ('contract', 'retention'):
    DEAD_LETTERS.labels(reason=_reason)
INDEXER_READY = Gauge(
    "yuqing_search_indexer_ready",
    "1 once the indexer reads its topics; 0 while it waits for Elasticsearch, Kafka or its topics.",
    registry=INDEXER_REGISTRY,
)


def indexer_ready() -> bool:
    """The indexer's /readyz answer: whether it reads its topics (``yuqing_search_indexer_ready``)."""
    return INDEXER_REGISTRY.get_sample_value("yuqing_search_indexer_ready") == 1


TOPIC_MISSING = Gauge(
    "yuqing_search_indexer_topic_missing", "1 for each topic the indexer needs that the cluster lacks.",
    ["topic"], registry=INDEXER_REGISTRY,
)
ISSUE_TABLE_ENTRIES = Gauge(
    "yuqing_search_issue_table_entries", "Recent fingerprints held for issue grouping.",
    registry=INDEXER_REGISTRY,
)
ISSUE_AUTO_MERGES = Counter(
    "yuqing_search_issue_auto_merges_total", "Issues merged into another by the grouping (recorded).",
    registry=INDEXER_REGISTRY,
)
QUERY_SECONDS = Histogram(
    "yuqing_search_query_seconds", "Search API request latency.", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=API_REGISTRY,
)
REQUESTS = Counter(
    "yuqing_search_requests_total", "Search API responses by endpoint and status.", ["endpoint", "status"],
    registry=API_REGISTRY,
)
AUTH_FAILURES = Counter(
    "yuqing_search_auth_failures_total", "Requests refused for credentials (401) or role/scope (403).",
    ["status"], registry=API_REGISTRY,
)
RATE_LIMITED = Counter(
    "yuqing_search_rate_limited_total", "Requests refused by the per-key rate limit.", registry=API_REGISTRY,
)
RESPONSE_ACTIONS = Counter(
    "yuqing_search_response_actions_total", "Responder actions recorded on issues.", ["action"],
    registry=API_REGISTRY,
)
