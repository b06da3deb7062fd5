"""Prometheus metrics of the NLP worker, declared once."""

from prometheus_client import Counter, Histogram

from yuqing.observability import service_registry

# this service's endpoint serves this registry alone (yuqing.observability.service_registry)
REGISTRY = service_registry()

POSTS_PROCESSED = Counter(
    "yuqing_nlp_posts_processed_total", "Posts enriched and published.", registry=REGISTRY,
)
POSTS_BY_TOPIC = Counter(
    "yuqing_nlp_posts_by_topic_total", "Enriched posts by topic.", ["topic"], registry=REGISTRY,
)
POSTS_BY_SENTIMENT = Counter(
    "yuqing_nlp_posts_by_sentiment_total", "Enriched posts by sentiment.", ["sentiment"], registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "yuqing_nlp_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"], registry=REGISTRY
)
# each reason's series from 0: one born at its first letter (1) shows no increase to rate(), so
# the first dead letters of a kind were invisible to the dead-letter alert
for _reason in ('contract', 'processing'):
    DEAD_LETTERS.labels(reason=_reason)
POSTS_CUT = Counter(
    "yuqing_nlp_posts_cut_total", "Enriched posts cut to fit the message size limit.", registry=REGISTRY
)
BATCH_SIZE = Histogram(
    "yuqing_nlp_batch_size", "Posts per inference batch.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "yuqing_nlp_batch_seconds", "Wall time to classify and enrich one batch.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)
LOW_CONFIDENCE = Counter(
    "yuqing_nlp_low_confidence_posts_total",
    "Posts the model flagged as low-confidence (a rising share signals drift).", registry=REGISTRY,
)
TOPIC_CONFIDENCE = Histogram(
    "yuqing_nlp_topic_confidence", "Top topic probability per post (a drift signal).",
    buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99), registry=REGISTRY,
)
