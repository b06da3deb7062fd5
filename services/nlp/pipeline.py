"""decode -> classify -> enrich for one batch, with a per-message error boundary.

The Faust agent hands raw Kafka records to ``BatchProcessor.process`` (in an
executor, since inference is CPU-bound) and publishes what comes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.nlp import enrich as text
from services.nlp import metrics
from yuqing.consumer import Record, make_dead_letter
from yuqing.contracts import DeadLetter, EnrichedPost, RawPost
from yuqing.contracts.codec import ContractError, decode
from yuqing.places import NO_PLACES, Gazetteer

log = logging.getLogger(__name__)
SERVICE = "nlp"


class Classifier(Protocol):
    version: str

    def predict(self, texts: Sequence[str]) -> Sequence[Any]: ...


@dataclass
class BatchResult:
    enriched: list[EnrichedPost] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass
class BatchProcessor:
    classifier: Classifier
    rules: Sequence[text.TopicRule] = ()
    max_message_bytes: int | None = None  # enriched posts larger than this are cut to fit
    places: Gazetteer = NO_PLACES  # known regions, for posts that carry none

    def warm_up(self) -> None:
        """Load now what the first batch would load (the keyword segmenter's dictionary,
        about a second; the model's first run), so the first posts wait no longer than
        the rest."""
        text.keywords("供电所抢修停电线路")
        # a mixed post the n-gram model is unsure of, so the encoder runs too
        self.classifier.predict(["电费和停电的事情，还有营业厅的服务，说不清楚"])

    def process(self, records: Sequence[Record]) -> BatchResult:
        started = time.perf_counter()
        result = BatchResult()
        posts: list[tuple[Record, RawPost]] = []
        for record in records:
            try:
                posts.append((record, decode(RawPost, record.value)))
            except ContractError as exc:
                self._dead_letter(result, record, exc, "contract")
        inputs = [text.model_input(p) for _, p in posts]
        predictions = self._predict(inputs)
        for (record, post), model_text, prediction in zip(posts, inputs, predictions, strict=True):
            try:
                if isinstance(prediction, Exception):
                    raise prediction
                result.enriched.append(self._enrich(post, model_text, prediction))
            except Exception as exc:
                self._dead_letter(result, record, exc, "processing")
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return result

    def _predict(self, texts: list[str]) -> list[Any]:
        if not texts:
            return []
        try:
            return list(self.classifier.predict(texts))
        except Exception:
            log.exception("batch inference failed; retrying one by one")
        out: list[Any] = []
        for one in texts:
            try:
                out.append(self.classifier.predict([one])[0])
            except Exception as exc:
                out.append(exc)
        return out

    def _enrich(self, post: RawPost, model_text: str, prediction: Any) -> EnrichedPost:
        topic, scores, hits = text.apply_rules(model_text, prediction.topic_scores, self.rules)
        enriched = text.enrich(
            post, model_text=model_text, topic=topic, topic_scores=scores, sentiment=prediction.sentiment,
            sentiment_scores=prediction.sentiment_scores, rule_hits=hits,
            model_version=self.classifier.version,
            low_confidence=bool(getattr(prediction, "low_confidence", False)), places=self.places,
        )
        metrics.TOPIC_CONFIDENCE.observe(max(scores.values()))
        if enriched.low_confidence:
            metrics.LOW_CONFIDENCE.inc()
        fitted, cuts = text.fit_to_size(enriched, self.max_message_bytes)
        if cuts:
            log.warning("post %s cut to fit the message size limit: %s", post.post_id, ", ".join(cuts))
            metrics.POSTS_CUT.inc()
        return fitted

    @staticmethod
    def _dead_letter(result: BatchResult, record: Record, exc: Exception, reason: str) -> None:
        # not logged here: the runtime logs every letter it sends
        metrics.DEAD_LETTERS.labels(reason=reason).inc()
        result.dead_letters.append(make_dead_letter(
            value=record.value, key=record.key, topic=record.topic, partition=record.partition,
            offset=record.offset, error=exc, service=SERVICE,
        ))
