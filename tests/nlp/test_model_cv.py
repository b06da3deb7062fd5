"""Near-duplicate groups, grouped folds, corpus merging and progress lines (pure logic)."""

from __future__ import annotations

import numpy as np

from services.nlp.corpus_merge import select_new
from services.nlp.model_cv import grouped_folds, near_duplicate_groups, near_duplicates_across
from services.nlp.progress import ProgressLines, format_seconds
from services.nlp.training import Example

PARAPHRASES = ["桃源路幸福里小区3栋从晚上8点停电到现在", "桃源路幸福里小区3栋从晚上8点停电到现在了！"]


def test_paraphrases_share_a_group_and_others_do_not():
    texts = [*PARAPHRASES, "电费怎么这么高", "APP登录不上"]
    groups = near_duplicate_groups(texts)
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3]}) == 3


def test_grouped_folds_keep_a_group_on_one_side():
    examples = [Example(t, "outage") for t in PARAPHRASES]
    examples += [Example(f"第{i}号台区的问题{'停电' if i % 2 else '电费'}{i * 7919}",
                         "outage" if i % 2 else "billing") for i in range(40)]
    folds = grouped_folds(examples, folds=5)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(examples)))
    holding = [k for k, fold in enumerate(folds) if 0 in fold]
    assert holding and all(1 in folds[k] for k in holding)


def test_near_duplicates_across_finds_the_close_pair():
    hits = near_duplicates_across(["又停电了，什么时候来电", "电费太贵"],
                                  ["又停电了！什么时候来电？", "营业厅几点开门"])
    assert [(i, j) for i, j, _ in hits] == [(0, 0)]


def test_merge_drops_exact_near_and_test_duplicates():
    corpus = ["电费怎么又涨了，上个月才一百"]
    test = ["小区配电房的门一直开着，小孩在里面玩"]
    new = [{"text": "ＡＰＰ登录不上", "topic": "online_service"},
           {"text": "APP登录不上", "topic": "online_service"},  # same after NFKC
           {"text": "电费怎么又涨了，上个月才一百块", "topic": "billing"},
           {"text": "小区配电房的门一直开着，小孩子在里面玩", "topic": "safety"},
           {"text": "变压器冒烟了", "topic": "safety", "extra": 1}]
    report = select_new(new, corpus, test)
    assert [r["text"] for r in report.kept] == ["ＡＰＰ登录不上", "变压器冒烟了"]
    assert (report.exact_duplicates, report.near_corpus, report.near_test) == (1, 1, 1)
    assert "extra" not in report.kept[1]


def test_progress_lines_rate_limit_and_estimate_time_left():
    lines: list[str] = []
    now = [0.0]
    progress = ProgressLines(lines.append, interval=10, clock=lambda: now[0])
    for step in range(1, 101):
        now[0] = step * 1.0
        progress(step, 100, f"epoch 1/2 step {step}/100")
    assert len(lines) == 11  # the first call, then every 10 s, and the end of the phase
    assert lines[5] == "epoch 1/2 step 51/100: 51/100 (0m50s elapsed, about 0m49s left)"
    assert "left" not in lines[-1]
    progress(100, 200, "epoch 1/2 done, dev accuracy: topic 0.9000")
    assert "dev accuracy" in lines[-1]
    assert format_seconds(3725) == "1h02m" and format_seconds(65) == "1m05s"
