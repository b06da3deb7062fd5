"""Prometheus metrics of the ingest service, declared once.

``channel`` is ``app``, ``wechat``, ``forum``, ``integration``, or ``none`` for
requests that name no channel (health, docs, unknown paths).
"""

from prometheus_client import Counter, Gauge, Histogram

from yuqing.observability import service_registry

# this service's endpoint serves this registry alone (yuqing.observability.service_registry)
REGISTRY = service_registry()

POSTS_ACCEPTED = Counter(
    "yuqing_ingest_posts_accepted_total", "Posts written to posts.raw.", ["channel"], registry=REGISTRY
)
POSTS_DUPLICATE = Counter(
    "yuqing_ingest_posts_duplicate_total", "Posts dropped as re-deliveries.", ["channel"], registry=REGISTRY
)
POSTS_REFUSED = Counter(
    "yuqing_ingest_posts_refused_total",
    "Posts refused before publishing (too large, event time out of window).", ["channel", "reason"],
    registry=REGISTRY,
)
REQUESTS_REJECTED = Counter(
    "yuqing_ingest_requests_rejected_total", "Requests refused, by channel and HTTP status.",
    ["channel", "status"], registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "yuqing_ingest_request_seconds", "Time to answer a request, by channel.", ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)
PUBLISH_SECONDS = Histogram(
    "yuqing_ingest_publish_seconds", "Time to get a batch acknowledged by Kafka.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5), registry=REGISTRY,
)
WECHAT_EVENTS_IGNORED = Counter(
    "yuqing_ingest_wechat_events_ignored_total",
    "WeChat events (subscribe, menu clicks...) answered but not published.", ["event"], registry=REGISTRY,
)
FORUM_POLLS = Counter(
    "yuqing_ingest_forum_polls_total", "Polls of a forum source, by outcome (ok, failed).",
    ["source", "outcome"], registry=REGISTRY,
)
FORUM_LAST_POLL = Gauge(
    "yuqing_ingest_forum_last_poll_ok_timestamp_seconds",
    "When a forum source was last polled without error (0 before its first).", ["source"],
    registry=REGISTRY,
)
