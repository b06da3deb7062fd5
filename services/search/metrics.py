"""Prometheus metrics of the indexer and the search API, declared once."""

from prometheus_client import Counter, Gauge, Histogram

DOCS_INDEXED = Counter("yuqing_search_docs_indexed_total", "Documents written to Elasticsearch.")
DOCS_REJECTED = Counter(
    "yuqing_search_docs_rejected_total", "Documents Elasticsearch rejected (dead-lettered)."
)
BULK_SECONDS = Histogram(
    "yuqing_search_bulk_seconds", "Wall time of one bulk request including retries.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BULK_RETRIES = Counter("yuqing_search_bulk_retries_total", "Bulk requests retried (429/5xx).")
DEAD_LETTERS = Counter(
    "yuqing_search_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"]
)
ISSUE_TABLE_ENTRIES = Gauge(
    "yuqing_search_issue_table_entries", "Recent fingerprints held for issue grouping."
)
ISSUE_AUTO_MERGES = Counter(
    "yuqing_search_issue_auto_merges_total", "Issues merged into another by the grouping (recorded)."
)
QUERY_SECONDS = Histogram(
    "yuqing_search_query_seconds", "Search API request latency.", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REQUESTS = Counter(
    "yuqing_search_requests_total", "Search API responses by endpoint and status.", ["endpoint", "status"]
)
AUTH_FAILURES = Counter(
    "yuqing_search_auth_failures_total", "Requests refused for credentials (401) or role/scope (403).",
    ["status"],
)
RATE_LIMITED = Counter("yuqing_search_rate_limited_total", "Requests refused by the per-key rate limit.")
RESPONSE_ACTIONS = Counter(
    "yuqing_search_response_actions_total", "Responder actions recorded on issues.", ["action"]
)
