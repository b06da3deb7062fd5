"""Synthetic enriched-post streams for the alerts tests: a steady day rhythm and a surge."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta

from services.demo.stream import APP_SOURCE, DEMO_STREAM, FORUM_SOURCE, WECHAT_SOURCE
from yuqing.contracts import EnrichedPost, Sentiment, Topic, make_post_id

BUCKET_SECONDS = 300
UTC_OFFSET = timedelta(hours=8)
REGIONS = ("青山乡", "城关镇", "河口镇", "柳塘镇", "白沙乡", "石桥镇")
SOURCES = ("app-main", "app-main", "wechat-gzh", "forum-intranet")
BLOCK = 60  # a multiple of len(TOPICS), len(REGIONS) and len(SOURCES)
CHANNELS = {"app-main": "app", "wechat-gzh": "wechat", "forum-intranet": "forum"}
TOPICS = (Topic.OUTAGE, Topic.OUTAGE, Topic.OUTAGE, Topic.BILLING, Topic.BILLING, Topic.SERVICE,
          Topic.SERVICE, Topic.ONLINE_SERVICE, Topic.ENERGY_USE, Topic.PRAISE_SUGGESTION)
TEXTS = {
    Topic.OUTAGE: ("{region}这边电压不稳，灯一闪一闪的", ["电压", "灯"]),
    Topic.BILLING: ("这个月电费怎么比上个月多了一百多", ["电费", "上个月"]),
    Topic.SERVICE: ("营业厅排队太久了，窗口只开了一个", ["营业厅", "排队"]),
    Topic.ONLINE_SERVICE: ("APP上交电费一直提示系统繁忙", ["系统繁忙", "交电费"]),
    Topic.ENERGY_USE: ("冬天电暖气怎么用更省电", ["电暖气", "省电"]),
    Topic.PRAISE_SUGGESTION: ("感谢抢修师傅半夜还在干活", ["感谢", "师傅"]),
}
SURGE_TEXTS = (
    ("{region}又停电了，冰箱里的肉都要坏了，什么时候来电？", ["停电", "来电", "冰箱"]),
    ("{region}从下午三点停电到现在，抢修的人呢", ["停电", "抢修", "下午"]),
    ("{region}整个村都没电了，老人孩子冻得不行", ["没电", "停电", "老人"]),
    ("{region}停电一晚上了，打电话也没人接", ["停电", "电话", "没人接"]),
)


def rate(moment: datetime, mean: float) -> float:
    """Posts per bucket: quiet at night, a daytime hump (local time, UTC+8)."""
    local = moment + UTC_OFFSET
    hour = local.hour + local.minute / 60
    return mean * (0.25 + 1.5 * max(0.0, math.sin(math.pi * (hour - 6) / 16)))


def make_post(
    *, index: str, created_at: datetime, topic: Topic, region: str, source: str, text: str,
    keywords: list[str], fingerprint: int, sentiment: Sentiment,
) -> EnrichedPost:
    other = (1.0 - 0.9) / (len(Sentiment) - 1)
    return EnrichedPost(
        post_id=make_post_id(source, index), source=source, channel=CHANNELS[source],
        external_id=index, created_at=created_at, received_at=created_at + timedelta(seconds=2),
        region=region, text=text, topic=topic, topic_scores={topic: 0.9},
        sentiment=sentiment, sentiment_scores={s: (0.9 if s == sentiment else other) for s in Sentiment},
        keywords=keywords, fingerprint=f"{fingerprint:016x}", redacted_text=text,
        model_version="test", enriched_at=created_at + timedelta(seconds=3),
    )


def steady_posts(start: datetime, end: datetime, *, mean: float = 6.0, seed: int = 7) -> list[EnrichedPost]:
    """A steady stream with a day rhythm: per-bucket totals follow the rhythm; topics,
    regions and sources come in shuffled blocks with exact shares (no bursts to flag)."""
    rng = random.Random(seed)
    posts, carry, n = [], 0.0, 0
    block = list(range(BLOCK))
    moment = start
    while moment < end:
        carry += rate(moment, mean)
        count, carry = int(carry), carry - int(carry)
        for _ in range(count):
            if n % BLOCK == 0:
                rng.shuffle(block)
            i = block[n % BLOCK]
            topic, region = TOPICS[i % len(TOPICS)], REGIONS[i % len(REGIONS)]
            source = SOURCES[i % len(SOURCES)]
            text, keywords = TEXTS[topic]
            posts.append(make_post(
                index=f"base-{seed}-{n}",
                created_at=moment + timedelta(seconds=rng.uniform(0, BUCKET_SECONDS)),
                topic=topic, region=region, source=source,
                text=text.format(region=region), keywords=keywords, fingerprint=rng.getrandbits(64),
                sentiment=Sentiment.NEGATIVE if topic is Topic.OUTAGE else Sentiment.NEUTRAL))
            n += 1
        moment += timedelta(seconds=BUCKET_SECONDS)
    return sorted(posts, key=lambda p: p.created_at)


def surge_posts(start: datetime, *, region: str = "青山乡", count: int = 40, minutes: int = 10,
                seed: int = 11) -> list[EnrichedPost]:
    """Outage complaints from one township: near-duplicate texts, mostly through the APP."""
    rng = random.Random(seed)
    templates = [rng.getrandbits(64) for _ in SURGE_TEXTS]
    posts = []
    for i in range(count):
        which = i % len(SURGE_TEXTS)
        text, keywords = SURGE_TEXTS[which]
        flips = sum(1 << bit for bit in rng.sample(range(64), 6))
        source = ("app-main",) * 6 + ("wechat-gzh",) * 3 + ("forum-intranet",)
        posts.append(make_post(
            index=f"surge-{seed}-{i}", created_at=start + timedelta(seconds=rng.uniform(0, minutes * 60)),
            topic=Topic.OUTAGE, region=region, source=source[i % len(source)],
            text=text.format(region=region), keywords=keywords, fingerprint=templates[which] ^ flips,
            sentiment=Sentiment.NEGATIVE))
    return sorted(posts, key=lambda p: p.created_at)


OUTAGE_WORDS = ("停电", "没电", "停了", "来电")
# the everyday topics of the rest, in the demo history's shares
EVERYDAY_TOPICS = (Topic.BILLING, Topic.SERVICE, Topic.ONLINE_SERVICE, Topic.ENERGY_USE,
                   Topic.PRAISE_SUGGESTION, Topic.POLICY, Topic.SAFETY)
EVERYDAY_SHARES = (0.25, 0.15, 0.15, 0.1, 0.08, 0.05, 0.04)
RUMOUR_WORDS = ("听说", "在传", "传明天", "有人说", "有人转发", "谣言", "真的假的", "是不是真的", "都在说")


def demo_posts(start: datetime) -> list[EnrichedPost]:
    """The demo stream from ``start``, labelled as the NLP stage labels it (rumour and outage
    where the words say so, an everyday topic otherwise) and delivered as its connectors deliver it:
    a region on APP posts only, each channel through its demo source."""
    sources = {"app": APP_SOURCE, "wechat": WECHAT_SOURCE, "forum": FORUM_SOURCE}
    posts = []
    for n, line in enumerate(DEMO_STREAM.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        text = record["text"]
        topic = (Topic.RUMOR if any(w in text for w in RUMOUR_WORDS)
                 else Topic.OUTAGE if any(w in text for w in OUTAGE_WORDS)
                 else random.Random(n).choices(EVERYDAY_TOPICS, EVERYDAY_SHARES)[0])
        post = make_post(
            index=f"demo-{n}", created_at=start + timedelta(seconds=record["offset_s"]), topic=topic,
            region=record["region"], source="app-main", text=text,
            keywords={Topic.RUMOR: ["限电", "听说"], Topic.OUTAGE: ["停电"]}.get(topic, []),
            fingerprint=random.Random(n).getrandbits(64),
            sentiment=Sentiment.NEGATIVE if topic is Topic.OUTAGE else Sentiment.NEUTRAL)
        channel = record["channel"]
        posts.append(post.model_copy(update={
            "source": sources[channel], "channel": channel,
            "region": record["region"] if channel == "app" else None}))
    return posts
