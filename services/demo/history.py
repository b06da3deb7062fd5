"""Fourteen days of realistic past posts for the demo, so alerts start with baselines.

The demo townships, units and sources of ``data/demo/stream.jsonl`` post at a
rate with a day rhythm (quiet nights, a daytime hump, local time UTC+8) and a
week rhythm (weekends at 70%), Poisson in 5-minute buckets, spread over every
topic in everyday shares. The rate is set so that at the hour the history
ends the area is as busy as the live demo stream's background (its 42 posts
in ten minutes that tell no story): the stream is then an ordinary evening,
or morning, but for its two stories, the outage of one township and a rumour
over five, and only their keys surge. A history at a fixed rate would make the whole stream a surge of every
source at most hours. :func:`write_history` writes them as
``posts.enriched`` messages (JSONL) that ``yuqing alerts warm --posts`` reads:

    python -m services.demo.history PATH
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.demo.stream import APP_SOURCE, DEMO_STREAM, FORUM_SOURCE, WECHAT_SOURCE
from yuqing.contracts import Channel, EnrichedPost, Sentiment, Topic, make_post_id

BUCKET = timedelta(minutes=5)
TOPIC_SHARES = {Topic.BILLING: 0.25, Topic.OUTAGE: 0.15, Topic.SERVICE: 0.15, Topic.ONLINE_SERVICE: 0.15,
                Topic.ENERGY_USE: 0.1, Topic.PRAISE_SUGGESTION: 0.08, Topic.POLICY: 0.05,
                Topic.SAFETY: 0.04, Topic.RUMOR: 0.03}
TEXTS = {
    Topic.BILLING: ("这个月电费好像比上个月多了一些", ["电费"]),
    Topic.OUTAGE: ("{region}刚才闪了一下电，现在好了", ["停电"]),
    Topic.SERVICE: ("营业厅今天人有点多，排了一会儿队", ["营业厅", "排队"]),
    Topic.ONLINE_SERVICE: ("APP上怎么查历史电费账单", ["APP", "账单"]),
    Topic.ENERGY_USE: ("空调开多少度最省电", ["省电", "空调"]),
    Topic.PRAISE_SUGGESTION: ("谢谢师傅上门帮忙换表", ["感谢", "师傅"]),
    Topic.POLICY: ("阶梯电价第二档从多少度开始", ["阶梯电价"]),
    Topic.SAFETY: ("{region}路边电线有点低，注意安全", ["电线", "安全"]),
    Topic.RUMOR: ("听说要调电价了，有官方消息吗", ["电价", "听说"]),
}
CHANNELS = ((Channel.WECHAT, WECHAT_SOURCE, 0.5), (Channel.APP, APP_SOURCE, 0.37),
            (Channel.FORUM, FORUM_SOURCE, 0.13))


def demo_places() -> dict[str, str]:
    """Township -> its supply unit, as in the demo stream."""
    places: dict[str, str] = {}
    for line in DEMO_STREAM.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            places.setdefault(record["region"], record["unit"])
    return places


def rhythm(moment: datetime) -> float:
    """The relative rate at ``moment`` (UTC): quiet nights, a daytime hump (local time), weekends at 70%."""
    local = moment + timedelta(hours=8)
    hour = local.hour + local.minute / 60
    day = 0.25 + 1.5 * max(0.0, math.sin(math.pi * (hour - 6) / 16))
    week = 0.7 if local.weekday() >= 5 else 1.0
    return day * week


def stream_rate() -> float:
    """Posts per bucket of the live demo stream's background: the posts that tell no story
    (the stories, marked ``story`` in the stream, are the surges the demo shows)."""
    records = [json.loads(line) for line in DEMO_STREAM.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    offsets = [float(record["offset_s"]) for record in records]
    background = sum(1 for record in records if not record.get("story"))
    return background / max(1.0, (max(offsets) - min(offsets)) / BUCKET.total_seconds())


def history(until: datetime, *, days: int = 14, seed: int = 14, rate_at_end: float | None = None
            ) -> Iterator[EnrichedPost]:
    """Posts from ``days`` before ``until`` to ``until``, in time order, at ``rate_at_end`` posts
    per bucket at the hour of ``until`` (by default :func:`stream_rate`) and the rhythm elsewhere."""
    rng = random.Random(seed)
    places = sorted(demo_places().items())
    topics, shares = list(TOPIC_SHARES), list(TOPIC_SHARES.values())
    scale = (stream_rate() if rate_at_end is None else rate_at_end) / rhythm(until)
    moment, n = until - timedelta(days=days), 0
    while moment < until:
        for _ in range(_poisson(rng, scale * rhythm(moment))):
            region, unit = rng.choice(places)
            topic = rng.choices(topics, shares)[0]
            channel, source, _ = rng.choices(CHANNELS, [c[2] for c in CHANNELS])[0]
            created = moment + timedelta(seconds=rng.uniform(0, BUCKET.total_seconds()))
            yield _post(n, created, topic, region, unit, channel, source, rng.getrandbits(64))
            n += 1
        moment += BUCKET


def _post(n: int, created: datetime, topic: Topic, region: str, unit: str, channel: Channel,
          source: str, fingerprint: int) -> EnrichedPost:
    text, keywords = TEXTS[topic]
    text = text.format(region=region)
    sentiment = Sentiment.NEGATIVE if topic in (Topic.OUTAGE, Topic.SAFETY) else Sentiment.NEUTRAL
    other = 0.1 / (len(Sentiment) - 1)
    external_id = f"history-{n}"
    return EnrichedPost(
        post_id=make_post_id(source, external_id), source=source, channel=channel, external_id=external_id,
        created_at=created, received_at=created + timedelta(seconds=2), region=region, unit=unit, text=text,
        topic=topic, topic_scores={topic: 0.9}, sentiment=sentiment,
        sentiment_scores={s: (0.9 if s == sentiment else other) for s in Sentiment},
        keywords=keywords, fingerprint=f"{fingerprint:016x}", redacted_text=text,
        model_version="demo-history", enriched_at=created + timedelta(seconds=3))


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def history_end(now: datetime) -> datetime:
    """Where the history of a demo started at ``now`` ends: a bucket before the live stream's
    first post, which the replay dates the stream's length before the (later) replay."""
    offsets = [float(json.loads(line)["offset_s"])
               for line in DEMO_STREAM.read_text(encoding="utf-8").splitlines() if line.strip()]
    return now - timedelta(seconds=max(offsets) + 1) - BUCKET


def write_history(path: Path, until: datetime | None = None) -> int:
    """Write the history as JSONL, by default up to :func:`history_end` of now; the number of posts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for post in history(until or history_end(datetime.now(UTC))):
            handle.write(post.model_dump_json() + "\n")
            count += 1
    return count


if __name__ == "__main__":
    print(f"{write_history(Path(sys.argv[1]))} past posts written to {sys.argv[1]}")
