"""A keyword placeholder classifier, used only when no trained model is configured.

It exists so the pipeline runs end to end without a model directory
(``YUQING_NLP_CLASSIFIER=placeholder``); its scores are crude and its version
string says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from yuqing.contracts import Sentiment, Topic

_TOPIC_WORDS: dict[Topic, tuple[str, ...]] = {
    Topic.OUTAGE: ("停电", "断电", "没电", "来电", "跳闸", "电压", "抢修"),
    Topic.BILLING: ("电费", "电表", "账单", "欠费", "缴费", "抄表", "余额"),
    Topic.SERVICE: ("态度", "营业厅", "95598", "客服", "电话打不通", "服务"),
    Topic.ONLINE_SERVICE: ("APP", "app", "登录", "绑定", "发票", "小程序", "网上国网"),
    Topic.SAFETY: ("电线", "掉下", "火花", "电箱", "电杆", "触电", "树枝"),
    Topic.POLICY: ("阶梯", "峰谷", "电价", "补贴", "政策"),
    Topic.RUMOR: ("谣言", "听说", "转发", "诈骗", "骗子", "真的吗"),
    Topic.EMPLOYEE: ("加班", "工资", "值班", "培训", "绩效", "班组"),
    Topic.ENERGY_USE: ("充电桩", "光伏", "节能", "空调", "电动车"),
    Topic.PRAISE_SUGGESTION: ("感谢", "谢谢", "点赞", "锦旗", "建议"),
}
_NEGATIVE = ("投诉", "怎么回事", "太差", "气死", "垃圾", "坏了", "！！", "??", "？？", "😡", "无语")
_POSITIVE = ("感谢", "谢谢", "点赞", "满意", "辛苦了", "👍", "好评")


class PlaceholderPrediction(NamedTuple):
    topic: str
    topic_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]


class KeywordPlaceholderClassifier:
    version = "placeholder-keywords/0"

    def predict(self, texts: Sequence[str]) -> list[PlaceholderPrediction]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> PlaceholderPrediction:
        hits: dict[Topic, float] = {t: float(sum(w in text for w in words))
                                    for t, words in _TOPIC_WORDS.items()}
        hits[Topic.OTHER] = 0.5
        total = sum(hits.values())
        topic_scores = {t.value: hits.get(t, 0) / total for t in Topic}
        neg = sum(w in text for w in _NEGATIVE)
        pos = sum(w in text for w in _POSITIVE)
        raw = {Sentiment.NEGATIVE.value: neg, Sentiment.POSITIVE.value: pos,
               Sentiment.NEUTRAL.value: 0.5}
        s_total = sum(raw.values())
        sentiment_scores = {k: v / s_total for k, v in raw.items()}
        return PlaceholderPrediction(
            topic=max(topic_scores, key=topic_scores.__getitem__),
            topic_scores=topic_scores,
            sentiment=max(sentiment_scores, key=sentiment_scores.__getitem__),
            sentiment_scores=sentiment_scores,
        )
