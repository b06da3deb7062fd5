"""Prometheus metrics of the alerts worker, declared once."""

from prometheus_client import Counter, Gauge

POSTS_COUNTED = Counter(
    "yuqing_alerts_posts_counted_total", "Enriched posts counted into windows.",
    ["topic", "sentiment"],
)
VOLUME = Counter(
    "yuqing_alerts_volume_total",
    "Posts counted per key (region and source capped; rarer values are 'other').",
    ["family", "topic", "region", "source"],
)
POSTS_LATE = Counter(
    "yuqing_alerts_posts_late_total",
    "Posts that arrived after their window closed; left out of detection.",
)
POSTS_REPLAYED = Counter(
    "yuqing_alerts_posts_replayed_total",
    "Posts read again after a restart or rebalance and skipped (already counted).",
)
POSTS_DUPLICATE = Counter(
    "yuqing_alerts_posts_duplicate_total",
    "Posts written twice upstream (same post id, another offset) and counted once.",
)
DEAD_LETTERS = Counter(
    "yuqing_alerts_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"]
)
LAG_SECONDS = Gauge(
    "yuqing_alerts_event_lag_seconds", "Arrival time minus event time of the last post."
)
SURGE_SCORE = Gauge(
    "yuqing_alerts_surge_score",
    "Highest surge intensity (0-1) among a family's keys in the last closed window.", ["family"],
)
FIRING = Gauge("yuqing_alerts_firing", "Alerts firing now.", ["severity"])
WINDOW_KEYS = Gauge("yuqing_alerts_window_keys", "Open (key, window) pairs being counted.")
CLOSED_BUCKET = Gauge(
    "yuqing_alerts_closed_bucket_timestamp_seconds", "Start (event time) of the last closed window."
)
ALERTS = Counter("yuqing_alerts_alerts_total", "Alert events published.", ["state", "severity"])
NOTIFICATIONS = Counter(
    "yuqing_alerts_notifications_total", "Webhook notifications by outcome.", ["outcome"]
)
