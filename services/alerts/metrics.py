"""Prometheus metrics of the alerts worker, declared once."""

from prometheus_client import Counter, Gauge

POSTS_COUNTED = Counter(
    "yuqing_alerts_posts_counted_total", "Enriched posts counted into windows.",
    ["topic", "sentiment"],
)
POSTS_LATE = Counter(
    "yuqing_alerts_posts_late_total", "Posts that arrived after their window closed."
)
DEAD_LETTERS = Counter(
    "yuqing_alerts_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"]
)
LAG_SECONDS = Gauge(
    "yuqing_alerts_event_lag_seconds", "Arrival time minus event time of the last post."
)
