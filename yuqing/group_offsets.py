"""Moving a stopped consumer group's committed offsets on one topic (``yuqing kafka offsets``).

The local Kafka install has no ``kafka-consumer-groups.sh``; this is its
``--reset-offsets`` for the cases the runbooks need: to the end of the topic,
to the first post written at or after a time, or by a number of messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.structs import OffsetAndMetadata

from yuqing.kafka import admin_client
from yuqing.settings import KafkaSettings


@dataclass(frozen=True)
class Target:
    """Where to move the offsets: exactly one of the three."""

    to_latest: bool = False
    to_datetime: datetime | None = None
    shift: int | None = None

    def __post_init__(self) -> None:
        given = sum((self.to_latest, self.to_datetime is not None, self.shift is not None))
        if given != 1:
            raise ValueError("give exactly one of --to-latest, --to-datetime, --shift")
        if self.to_datetime is not None and self.to_datetime.tzinfo is None:
            raise ValueError("--to-datetime needs a time zone (e.g. 2026-12-07T08:00:00+08:00)")


@dataclass(frozen=True)
class Move:
    """One partition's committed offset now (None: none committed) and the one it gets."""

    partition: int
    current: int | None
    new: int


class GroupActive(ValueError):
    """The group has members: the broker would refuse the commit, and they would overwrite it."""


def move_offsets(settings: KafkaSettings, *, group: str, topic: str, target: Target,
                 dry_run: bool = False) -> list[Move]:
    """Moves ``group``'s committed offsets on every partition of ``topic`` to ``target``
    (only says where to with ``dry_run``). Refuses while the group has active members."""
    with admin_client(settings) as admin:
        members = admin.describe_groups([group])[group]["members"]
        if members:
            raise GroupActive(f"consumer group {group} has {len(members)} active member(s): "
                              "stop its workers first")
        moves = plan(admin, group=group, topic=topic, target=target)
        if not dry_run and moves:
            commit = {TopicPartition(topic, m.partition): OffsetAndMetadata(m.new, "", -1) for m in moves}
            failed = {tp.partition: err for tp, err in admin.alter_group_offsets(group, commit).items()
                      if err.errno != 0}
            if failed:
                # a Kafka error, so that the command reports it in one line
                raise next(iter(failed.values()))(
                    f"refused the offsets of partitions {({p: e.__name__ for p, e in failed.items()})}")
        return moves


def plan(admin: KafkaAdminClient, *, group: str, topic: str, target: Target) -> list[Move]:
    """Each partition's move, the new offset kept within the partition's earliest..latest."""
    partitions = admin.describe_topics([topic])[0]["partitions"]
    if not partitions:
        raise LookupError(f"topic {topic} does not exist")
    tps = [TopicPartition(topic, p) for p in sorted(p["partition_index"] for p in partitions)]
    committed = admin.list_group_offsets({group: tps}).get(group, {})
    earliest = _offsets(admin, tps, OffsetSpec.EARLIEST)
    latest = _offsets(admin, tps, OffsetSpec.LATEST)
    if target.to_datetime is not None:
        wanted = _offsets(admin, tps, int(target.to_datetime.timestamp() * 1000))
    moves = []
    for tp in tps:
        held = committed.get(tp)
        current = held.offset if held is not None and held.offset >= 0 else None
        if target.to_latest:
            new = latest[tp]
        elif target.shift is not None:
            new = (latest[tp] if current is None else current) + target.shift
        else:
            # no post at or after that time: the end of the partition
            new = wanted[tp] if wanted[tp] >= 0 else latest[tp]
        moves.append(Move(tp.partition, current, min(max(new, earliest[tp]), latest[tp])))
    return moves


def _offsets(admin: KafkaAdminClient, tps: list[TopicPartition], spec: int) -> dict[TopicPartition, int]:
    found = admin.list_partition_offsets(dict.fromkeys(tps, spec))
    return {tp: found[tp].offset for tp in tps}
