"""Which counting keys a post contributes to (pure)."""

from __future__ import annotations

from yuqing.contracts import AlertKey, EnrichedPost


def keys_for(post: EnrichedPost) -> list[AlertKey]:
    """overall, per topic, per topic x region, per source, per near-duplicate cluster."""
    keys = [AlertKey(family="overall"), AlertKey(family="topic", topic=post.topic),
            AlertKey(family="source", source=post.source),
            AlertKey(family="cluster", cluster=post.fingerprint[:4])]
    if post.region:
        keys.append(AlertKey(family="topic_region", topic=post.topic, region=post.region))
    return keys
