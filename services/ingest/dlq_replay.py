"""``yuqing dlq replay``: publish dead letters' originals again, once their cause is fixed.

A dead letter keeps the original message (value and key) and where it was read
(topic, partition, offset). Replaying publishes that value, with its key, to the
same topic, where every consumer of the topic reads it again. They are all
idempotent by post id: the search index overwrites the post's document, and the
alerts worker skips a post it already counted in an open window (one whose window
has closed is late and not counted again), so replaying a post that only one
consumer refused changes nothing for the others.

Letters are chosen by service, source, post id and failure time. Each original is
replayed once, however many consumers dead-lettered it. An original cut to fit the
dead-letter topic is read whole from its own topic at its offset while that topic
still holds it; one the topic no longer holds is reported, not replayed. Only the
letters on ``posts.dlq`` when the replay starts are read, so a message that fails
again is not replayed twice by the same run. A message that failed again after an
earlier replay has two letters, the original's and the copy's (at another offset),
with the same key and bytes: it is published once, not once per letter (each replay
that failed again doubled it).

A tombstone is never published: a letter whose original had no value (a record
with a null value that a consumer dead-lettered) is reported and counted, as is a
record with a null value on ``posts.dlq`` itself. The replay published such an
original as an empty message, which every consumer of the topic refused again.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from kafka import KafkaConsumer, TopicPartition

from services.ingest.dlq import caught_up, open_dead_letters, original_identity, records_of
from yuqing.contracts import DeadLetter
from yuqing.contracts.codec import ContractError, decode
from yuqing.kafka import make_producer
from yuqing.settings import KafkaSettings

# The note yuqing.consumer.dlq adds to the reason of a letter whose original was cut.
_CUT = re.compile(r"\[original cut to (\d+) of (\d+) bytes")
# The ``service`` of the letters Yuqing's consumers write (each module's SERVICE).
DEAD_LETTER_SERVICES = ("nlp", "alerts", "search-indexer")
# The names the metrics and alerts give a service (their ``service`` label, from the scrape job):
# YuqingDeadLetterRatioHigh says "indexer" where its letters say "search-indexer".
SERVICE_LABELS = {"indexer": "search-indexer"}


@dataclass(frozen=True)
class ReplayFilter:
    """Which dead letters to replay; a field left ``None`` selects every letter."""

    service: str | None = None
    source: str | None = None
    post_id: str | None = None
    since: datetime | None = None  # failed at or after

    def matches(self, letter: DeadLetter) -> bool:
        source, post_id = original_identity(letter.original_b64)
        return ((self.service is None or letter.service == self.service)
                and (self.source is None or source == self.source)
                and (self.post_id is None or post_id == self.post_id)
                and (self.since is None or letter.failed_at >= self.since))


@dataclass(frozen=True)
class Replay:
    """One original to publish again; ``value`` is None when the letter holds only a cut of it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # cut and gone from their topic, or the topic gone
    repeats: list[str] = field(default_factory=list)  # the same message as one replayed before it
    tombstones: list[str] = field(default_factory=list)  # no value: a letter's original, or on posts.dlq


def plan(letters: Iterable[DeadLetter], wanted: ReplayFilter) -> list[Replay]:
    """The originals to publish again, in the order of their letters, each once.

    Raises ValueError when ``wanted.service`` names no service that writes dead letters:
    a mistyped name (``search`` for ``search-indexer``) matched nothing, and the answer
    "0 would be replayed" read as nothing to do.
    """
    letters = list(letters)
    if wanted.service in SERVICE_LABELS:
        wanted = replace(wanted, service=SERVICE_LABELS[wanted.service])
    _check_service(wanted.service, {letter.service for letter in letters})
    replays: dict[tuple[str, int, int], Replay] = {}
    for letter in letters:
        where = (letter.topic, letter.partition, letter.offset)
        if where in replays or not wanted.matches(letter):
            continue
        value = base64.b64decode(letter.original_b64)
        cut = _CUT.search(letter.error_message)
        whole = cut is None or len(value) >= int(cut.group(2))
        key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 else None
        replays[where] = Replay(letter.topic, letter.partition, letter.offset, key, value if whole else None)
    return list(replays.values())


def _check_service(service: str | None, seen: set[str]) -> None:
    known = seen | set(DEAD_LETTER_SERVICES)
    if service is not None and service not in known:
        raise ValueError(f"--service {service!r} writes no dead letters; "
                         f"the services are {', '.join(sorted(known))}")


@dataclass
class OnTopic:
    """What ``posts.dlq`` holds now: its dead letters, and where it holds records without a value."""

    letters: list[DeadLetter] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)


def read_letters(settings: KafkaSettings, *, poll_timeout_ms: int = 1_000) -> OnTopic:
    """Every dead letter on ``posts.dlq`` now (other records with a value are skipped)."""
    consumer, partitions = open_dead_letters(settings, client_id="yuqing-dlq-replay")
    try:
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found = OnTopic()
        while not caught_up(consumer, ends):
            for record in records_of(consumer.poll(timeout_ms=poll_timeout_ms).values()):
                if record.value is None:
                    found.tombstones.append(f"{record.topic}[{record.partition}]@{record.offset}")
                    continue
                try:
                    found.letters.append(decode(DeadLetter, record.value))
                except ContractError:
                    continue
        return found
    finally:
        consumer.close()


def topics_now(settings: KafkaSettings) -> set[str]:
    """The topics the cluster has now."""
    consumer = KafkaConsumer(bootstrap_servers=settings.servers(), client_id="yuqing-dlq-replay",
                             enable_auto_commit=False, **settings.client_options())
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def read_original(settings: KafkaSettings, replay: Replay, *, timeout_ms: int = 5_000) -> bytes | None:
    """The whole original from its own topic (empty for a record without a value), or None when
    the topic no longer holds it."""
    partition = TopicPartition(replay.topic, replay.partition)
    consumer = KafkaConsumer(bootstrap_servers=settings.servers(), client_id="yuqing-dlq-replay",
                             enable_auto_commit=False, **settings.client_options())
    try:
        consumer.assign([partition])
        if consumer.beginning_offsets([partition])[partition] > replay.offset:
            return None
        consumer.seek(partition, replay.offset)
        for record in records_of(consumer.poll(timeout_ms=timeout_ms, max_records=1).values()):
            if record.offset == replay.offset:
                return bytes(record.value) if record.value is not None else b""
        return None
    finally:
        consumer.close()


def replay(settings: KafkaSettings, wanted: ReplayFilter, *, dry_run: bool = False,
           emit: Callable[[str], None] = print) -> ReplayReport:
    """Publish the chosen originals again (``dry_run``: only say which); one line each."""
    report = ReplayReport()
    first_of: dict[tuple[str, bytes | None, bytes], str] = {}  # (topic, key, digest) -> replayed at
    producer = None if dry_run else make_producer(settings, client_id="yuqing-dlq-replay")
    try:
        existing = topics_now(settings)
        on_topic = read_letters(settings)
        for where in on_topic.tombstones:
            report.tombstones.append(where)
            emit(f"skipped {where}: a record without a value (a tombstone), not a dead letter")
        for chosen in plan(on_topic.letters, wanted):
            if chosen.value == b"":
                _tombstone(report, chosen, emit)
                continue
            if chosen.topic not in existing:
                # the send waited for the topic's metadata and ended the whole replay in
                # "KafkaTimeoutError: Failed to update metadata", naming no topic
                report.missing.append(chosen.where)
                emit(f"not replayed {chosen.where}: topic {chosen.topic} does not exist")
                continue
            value = chosen.value if chosen.value is not None else read_original(settings, chosen)
            if value is None:
                report.missing.append(chosen.where)
                emit(f"not replayed {chosen.where}: the dead letter holds only a cut of it and "
                     "its topic no longer has it")
                continue
            if not value:
                _tombstone(report, chosen, emit)
                continue
            same = (chosen.topic, chosen.key, hashlib.sha256(value).digest())
            if same in first_of:
                report.repeats.append(chosen.where)
                emit(f"not replayed {chosen.where}: the same message as {first_of[same]}")
                continue
            first_of[same] = chosen.where
            if producer is not None:
                producer.send(chosen.topic, key=chosen.key, value=value).get(timeout=30)
            report.replayed.append(chosen.where)
            emit(f"{'would replay' if dry_run else 'replayed'} {chosen.where}")
    finally:
        if producer is not None:
            producer.close(timeout=10)
    return report


def _tombstone(report: ReplayReport, chosen: Replay, emit: Callable[[str], None]) -> None:
    report.tombstones.append(chosen.where)
    emit(f"not replayed {chosen.where}: its original has no value (a tombstone); an empty message is no post")
