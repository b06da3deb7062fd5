"""Prometheus metrics of the alerts worker, declared once."""

from prometheus_client import Counter, Gauge

from yuqing.observability import service_registry

# this service's endpoint serves this registry alone (yuqing.observability.service_registry)
REGISTRY = service_registry()

POSTS_COUNTED = Counter(
    "yuqing_alerts_posts_counted_total", "Enriched posts counted into windows.",
    ["topic", "sentiment"], registry=REGISTRY,
)
VOLUME = Counter(
    "yuqing_alerts_volume_total",
    "Posts counted per key (region and source capped; rarer values are 'other').",
    ["family", "topic", "region", "source"], registry=REGISTRY,
)
POSTS_LATE = Counter(
    "yuqing_alerts_posts_late_total",
    "Posts that arrived after their window closed; left out of detection.", registry=REGISTRY,
)
POSTS_REPLAYED = Counter(
    "yuqing_alerts_posts_replayed_total",
    "Posts read again after a restart or rebalance and skipped (already counted).", registry=REGISTRY,
)
POSTS_DUPLICATE = Counter(
    "yuqing_alerts_posts_duplicate_total",
    "Posts written twice upstream (same post id, another offset) and counted once.", registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "yuqing_alerts_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"],
    registry=REGISTRY,
)
# each reason's series from 0: one born at its first letter (1) shows no increase to rate(), so
# the first dead letters of a kind were invisible to the dead-letter alert
for _reason in ('contract', 'processing'):
    DEAD_LETTERS.labels(reason=_reason)
LAG_SECONDS = Gauge(
    "yuqing_alerts_event_lag_seconds",
    "Highest arrival minus event time of a source's posts in the last one to two minutes it sent any"
    " (source capped; rarer sources are 'other'; a source silent for 3 hours is dropped).",
    ["source"], registry=REGISTRY,
)
SURGE_SCORE = Gauge(
    "yuqing_alerts_surge_score",
    "Highest surge intensity (0-1) among a family's keys in the last closed window.", ["family"],
    registry=REGISTRY,
)
FIRING = Gauge("yuqing_alerts_firing", "Alerts firing now.", ["severity"], registry=REGISTRY)
WINDOW_KEYS = Gauge("yuqing_alerts_window_keys", "Open (key, window) pairs being counted.", registry=REGISTRY)
CLOSED_BUCKET = Gauge(
    "yuqing_alerts_closed_bucket_timestamp_seconds", "Start (event time) of the last closed window.",
    registry=REGISTRY,
)
ALERTS = Counter(
    "yuqing_alerts_alerts_total",
    "Alert events published, counted once the batch that published them is stored.",
    ["state", "severity"], registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "yuqing_alerts_notifications_total", "Webhook notifications by outcome.", ["outcome"], registry=REGISTRY
)
