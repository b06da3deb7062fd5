"""The NLP worker: posts.raw -> posts.enriched (and posts.dlq), a Faust agent on the consumer runtime.

The processing function is :class:`services.nlp.pipeline.BatchProcessor`
(run in an executor: inference is CPU-bound); :mod:`yuqing.consumer` does
the rest -- offset guard, dead letters under the cap, acknowledgements,
commit or stop.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import faust

from services.nlp import metrics
from services.nlp.enrich import load_rules
from services.nlp.pipeline import SERVICE, BatchProcessor, BatchResult, Classifier
from services.nlp.settings import NlpSettings
from yuqing.consumer import BatchOutcome, InvalidMessage, Output, Record, Runtime
from yuqing.consumer.faust_driver import FaustDriver
from yuqing.contracts.codec import encode
from yuqing.faust_run import state_dir
from yuqing.topics import LogicalTopic

log = logging.getLogger(__name__)


def load_configured_classifier(settings: NlpSettings) -> Classifier:
    if settings.classifier == "placeholder":
        from services.nlp.placeholder import KeywordPlaceholderClassifier

        return KeywordPlaceholderClassifier()
    from services.nlp.classifier import load_classifier

    return load_classifier(settings.model_dir, variant=settings.model_variant,
                           torch_threads=settings.torch_threads)


def outcome_of(result: BatchResult, enriched_topic: str) -> BatchOutcome:
    """The pipeline's result as the runtime's: enriched posts to produce, failures to dead-letter."""
    outputs = [Output(enriched_topic, post.post_id.encode(), encode(post)) for post in result.enriched]
    invalid = [InvalidMessage(d.topic, d.partition, d.offset, d.error_message, d.error_class)
               for d in result.dead_letters]
    return BatchOutcome(outputs=outputs, invalid=invalid)


def create_app(settings: NlpSettings, classifier: Classifier) -> faust.App:
    kafka = settings.kafka
    app = faust.App(
        settings.app_id, broker=kafka.faust_broker(), web_enabled=False,
        datadir=state_dir(settings.state_dir, "YUQING_NLP_STATE_DIR"), consumer_auto_offset_reset="earliest",
        topic_replication_factor=kafka.replication_factor, producer_acks=-1,
        # Room for the largest value plus its key and record overhead.
        producer_max_request_size=kafka.max_message_bytes + 64 * 1024,
        broker_commit_every=100, broker_commit_interval=1.0,
    )
    raw = app.topic(kafka.topic(LogicalTopic.POSTS_RAW), key_serializer="raw", value_serializer="raw")
    enriched_topic = kafka.topic(LogicalTopic.POSTS_ENRICHED)
    # a path set on purpose must exist; the default may be absent (no rules shipped)
    rules = load_rules(settings.rules_path, required="rules_path" in settings.model_fields_set)
    places = settings.gazetteer()
    processor = BatchProcessor(classifier, rules, max_message_bytes=kafka.max_message_bytes, places=places)
    # the worker said nothing at start: an operator could not tell which model, rules and
    # places it had taken (a rules file read as none looked like one that loaded)
    log.info("NLP worker %s: %s -> %s, model %s, %d topic rules (%s), %d regions (%s)",
             settings.app_id, raw.get_topic_name(), enriched_topic, classifier.version, len(rules),
             settings.rules_path, len(places.regions), settings.places_file)
    processor.warm_up()
    driver = FaustDriver(app, Runtime.create(SERVICE, kafka, settings.consumer),
                         ack_timeout_s=settings.consumer.ack_timeout_s)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    async def enrich(records: list[Record]) -> BatchOutcome:
        result = await asyncio.get_running_loop().run_in_executor(executor, processor.process, records)
        for post in result.enriched:
            metrics.POSTS_BY_TOPIC.labels(topic=post.topic.value).inc()
            metrics.POSTS_BY_SENTIMENT.labels(sentiment=post.sentiment.value).inc()
        return outcome_of(result, enriched_topic)

    @app.agent(raw)
    async def enrich_posts(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.batch_size, within=settings.batch_max_wait_s)
        async for events in batches:
            outcome = await driver.handle(events, enrich)
            metrics.POSTS_PROCESSED.inc(len(outcome.outputs))

    return app
