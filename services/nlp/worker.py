"""The Faust worker: posts.raw -> posts.enriched (and posts.dlq)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import faust

from services.nlp import metrics
from services.nlp.enrich import load_rules
from services.nlp.pipeline import BatchProcessor, Classifier, Record
from services.nlp.settings import NlpSettings
from yuqing.contracts.codec import encode
from yuqing.deadletter import DeadLetterBudget, DeadLetterRateExceeded
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)


def load_configured_classifier(settings: NlpSettings) -> Classifier:
    if settings.classifier == "placeholder":
        from services.nlp.placeholder import KeywordPlaceholderClassifier

        return KeywordPlaceholderClassifier()
    from services.nlp.classifier import load_classifier

    return load_classifier(settings.model_dir, variant=settings.model_variant)


def create_app(settings: NlpSettings, classifier: Classifier) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=settings.kafka.faust_broker(),
        web_enabled=False, datadir=str(settings.state_dir),
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=settings.kafka.replication_factor,
        producer_acks=-1,
        broker_commit_every=100,
        broker_commit_interval=1.0,
    )
    kafka = settings.kafka
    raw = app.topic(kafka.topic(LogicalTopic.POSTS_RAW), key_serializer="raw",
                    value_serializer="raw")
    enriched = app.topic(kafka.topic(LogicalTopic.POSTS_ENRICHED), key_serializer="raw",
                         value_serializer="raw")
    dlq = app.topic(kafka.topic(LogicalTopic.POSTS_DLQ), key_serializer="raw",
                    value_serializer="raw")
    processor = BatchProcessor(classifier, load_rules(settings.rules_path))
    budget = DeadLetterBudget(settings.dlq_window, settings.dlq_max_ratio, settings.dlq_min_failures)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @app.agent(raw)
    async def enrich_posts(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_max_wait_s):
            records = [Record(e.message.key, e.message.value, e.message.topic,
                              e.message.partition, e.message.offset) for e in events]
            result = await loop.run_in_executor(executor, processor.process, records)
            pending = []
            for post in result.enriched:
                pending.append(await enriched.send(key=post.post_id.encode(), value=encode(post)))
                metrics.POSTS_BY_TOPIC.labels(topic=post.topic.value).inc()
                metrics.POSTS_BY_SENTIMENT.labels(sentiment=post.sentiment.value).inc()
            for letter in result.dead_letters:
                pending.append(await dlq.send(key=None, value=encode(letter)))
            # Offsets are acknowledged after this block: wait for the broker first.
            await asyncio.gather(*pending)
            metrics.POSTS_PROCESSED.inc(len(result.enriched))
            failed = {(d.partition, d.offset) for d in result.dead_letters}
            try:
                for record in records:
                    budget.record(failed=(record.partition, record.offset) in failed)
            except DeadLetterRateExceeded as exc:
                log.critical("stopping: %s", exc)
                await app.crash(exc)
                return

    return app
