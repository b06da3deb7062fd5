"""make bench-issues: how well posts are grouped into issues, and what grouping costs.

Scores ``services.search.issue_offline.group_rows`` (the live algorithm) on a
labelled set (lines ``{"id", "text", "created_at", "region", "channel",
"topic", "sentiment", "event"}``; a post alone in its event is a lone post):

* B-cubed precision, recall and F1 (per post: the share of its issue that is in
  its event, and of its event that is in its issue; averaged over posts);
* big events recovered: the share of events with >= 5 posts whose largest
  issue holds >= 80 % of them;

beside the same grouping without its issue-level merge step, and two
baselines: SimHash grouping (the nearest earlier post of the same
topic within 7 bits and 72 h, the grouping this replaced) and "same topic,
region and day". The labelled topics are dropped and the default model
classifies (as the indexer and the offline command for posts without one see
them): the figures at the top of ``bench/results/issues.json`` are these; the
same grouping with the labelled topics is reported beside them
(``labelled_topics``; ``--labelled-topics`` puts them first). ``--tune``
searches the grouping parameters on the given set, ``--tune-merge`` those of
the issue-level step, ``--loo`` the burst and township parameters by leaving
one development set (``data/issues/dev*.jsonl``) out at a time (``--loo-dominant``
those of the dominant-issue rule, ``--loo-second`` the margins of the
classifier's second choice, ``--loo-days`` the rules for matters over days and posts of no
township, ``--loo-sole`` those for a township's one matter and companion issues, ``--loo-relay`` whether
it draws a service post relaying the utility's answer without shared words, ``--loo-voice`` how a
post's wording is read and whether safety is compatible with service, ``--loo-soft`` whether
topics are read as the classifier's distributions and whether ``other`` loses an issue's topic tie,
``--loo-kind`` the bonus for a kind of slow matter a post and an issue both name, ``--loo-places``
whether places are read from a clause's words and common words, ``--loo-county`` the topics of matters of
the whole county, ``--loo-county-kinds`` whether a county-wide kind of matter named in several townships
is one matter),
``--splits`` prints how the development sets' large events not recovered are
split: run them on the development sets only, never on the evaluation set; ``--hold-out NAME``
leaves a development set out of all of these (a set written to check rules chosen without it).
With the evaluation set (the default ``--input``) it also scores the sets written apart
(``WRITTEN_APART``: writers who read neither the code nor the other sets, from the description of the
sets the grouping is judged on), the estimate nearest to such a set (``written_apart`` in the report).
Writes ``bench/results/issues.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "issues"
sys.path.insert(0, str(ROOT))

from services.search import open_issues  # noqa: E402
from services.search.grouping import GroupingParams  # noqa: E402
from services.search.issue_offline import (  # noqa: E402
    configured_places,
    group_rows,
    model_topics,
    parse_time,
    read_posts,
)
from services.search.issue_text import PLAIN, Voice, forget_views, idf_table  # noqa: E402
from yuqing.fingerprint import simhash  # noqa: E402

BIG_EVENT = 5
RECOVERED_SHARE = 0.8
OURS, UNMERGED = "meaning, place and time", "without issue merging"
# the issue-level steps off: merging by centroids and bridging an issue of no known township
WITHOUT_MERGE = replace(GroupingParams(), merge_threshold=float("inf"), bridge_unplaced=False)


def bcubed(events: Sequence[str], issues: Sequence[str]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 of a grouping against the true events."""
    pair = Counter(zip(events, issues, strict=True))
    by_event, by_issue = Counter(events), Counter(issues)
    n = len(events)
    precision = sum(pair[(e, i)] / by_issue[i] for e, i in zip(events, issues, strict=True)) / n
    recall = sum(pair[(e, i)] / by_event[e] for e, i in zip(events, issues, strict=True)) / n
    return precision, recall, 2 * precision * recall / (precision + recall)


def big_events_recovered(events: Sequence[str], issues: Sequence[str]) -> tuple[int, int]:
    """(recovered, total) events of >= 5 posts whose largest issue holds >= 80 % of them."""
    members: dict[str, Counter[str]] = defaultdict(Counter)
    for event, issue in zip(events, issues, strict=True):
        members[event][issue] += 1
    big = [c for c in members.values() if sum(c.values()) >= BIG_EVENT]
    recovered = sum(1 for c in big if max(c.values()) >= RECOVERED_SHARE * sum(c.values()))
    return recovered, len(big)


def simhash_baseline(rows: list[dict[str, Any]]) -> list[str]:
    """The nearest earlier post of the same topic within 7 bits and 72 h, else a new issue."""
    order = sorted(range(len(rows)), key=lambda i: (parse_time(rows[i]["created_at"]), i))
    seen: list[tuple[str, int, Any, str]] = []
    issues: dict[int, str] = {}
    for i in order:
        row, value = rows[i], int(simhash(rows[i]["text"]), 16)
        at = parse_time(row["created_at"])
        near = [((value ^ v).bit_count(), issue) for topic, v, t, issue in seen
                if topic == row["topic"] and (value ^ v).bit_count() <= 7 and at - t <= timedelta(hours=72)]
        issues[i] = min(near)[1] if near else f"{row['topic']}-{value:016x}"
        seen.append((row["topic"], value, at, issues[i]))
    return [issues[i] for i in range(len(rows))]


def topic_region_day_baseline(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['topic']}|{r.get('region')}|{parse_time(r['created_at']).date()}" for r in rows]


def score(rows: list[dict[str, Any]], issues: list[str]) -> dict[str, Any]:
    events = [r["event"] for r in rows]
    precision, recall, f1 = bcubed(events, issues)
    recovered, big = big_events_recovered(events, issues)
    return {"bcubed_precision": round(precision, 4), "bcubed_recall": round(recall, 4),
            "bcubed_f1": round(f1, 4), "big_events_recovered": round(recovered / big, 4) if big else None,
            "big_events": f"{recovered}/{big}", "issues": len(set(issues))}


POST_GRID: dict[str, list[Any]] = {
    "threshold": [0.15, 0.2, 0.25], "topic_bonus": [0.2, 0.3], "topic_penalty": [0.15, 0.3],
    "place_bonus": [0.3, 0.45], "place_conflict": [0.5, 0.7], "place_open": [0.0, 0.1, 0.2],
    "late_margin": [0.1, 0.35], "gap": [timedelta(hours=h) for h in (3, 5)], "decay_per_hour": [0.02]}
# the issue-level step's parameters (docs/search.md, *Issue-level merging*)
MERGE_GRID: dict[str, list[Any]] = {
    "merge_threshold": [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.6, 0.75],
    "merge_size_bonus": [0.0, 0.15, 0.3], "merge_topic_bonus": [0.15, 0.3],
    "merge_place_bonus": [0.3, 0.45], "merge_gap": [timedelta(hours=h) for h in (0.5, 1, 3)]}


def tune(rows: list[dict[str, Any]], grid: dict[str, list[Any]]) -> GroupingParams:
    """Grid search on the given (development) set; prints the best few."""
    results = []
    for values in itertools.product(*grid.values()):
        params = replace(GroupingParams(), **dict(zip(grid, values, strict=True)))
        found = score(rows, group_rows(rows, classify=None, params=params))
        results.append((found["bcubed_f1"], found["big_events_recovered"] or 0, params))
    results.sort(key=lambda r: (r[0], r[1]), reverse=True)
    for f1, big, params in results[:5]:
        print(f"F1 {f1:.4f} big {big:.3f} {params}")
    return results[0][2]


# the burst term, topics and townships (docs/search.md, *Bursts*), chosen by ``--loo``
LOO_GRID: dict[str, list[Any]] = {
    "busy_bonus": [0.15, 0.3, 0.4, 0.45, 0.5], "busy_window": [timedelta(hours=h) for h in (1, 2)],
    "busy_full": [6, 8], "busy_min": [2, 3], "unplaced_pair_penalty": [0.0, 0.25],
    "infer_township": [False, True]}


# the dominant-issue rule of the issue-level step (docs/search.md), chosen by ``--loo-dominant``
DOMINANT_GRID: dict[str, list[Any]] = {
    "dominant_bonus": [0.0, 0.15, 0.2, 0.25, 0.3], "dominant_min": [3, 4, 6], "dominant_small": [1],
    "dominant_gap": [timedelta(hours=h) for h in (1, 3)]}


# the classifier's second choice as topic compatibility (docs/search.md), chosen by ``--loo-second``
SECOND_GRID: dict[str, list[Any]] = {"second_same_margin": [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0],
                                     "second_margin": [0.0, 0.2, 0.3, 0.4, 0.6]}


# days and townships (docs/search.md, *Matters over days, posts of no region*), chosen by
# ``--loo-days``; each list starts with the rule off, so that a tie keeps it off
DAYS_GRID: dict[str, list[Any]] = {
    "leading_township": [False, True], "late_min_size": [1, 2],
    "merge_place_gap": [timedelta(hours=h) for h in (1, 12)], "merge_place_min": [2],
    "unplaced_penalty": [0.25, 0.2], "unplaced_words_relief": [0.0, 0.5]}


# the township's one matter of the hours and companion issues (docs/search.md, *The sixth round*),
# chosen by ``--loo-sole``; each list starts with the rule off
SOLE_GRID: dict[str, list[Any]] = {
    "sole_bonus": [0.0, 0.1, 0.15, 0.2, 0.3], "sole_min": [3, 4], "sole_cosine": [0.02, 0.05],
    "companion_bonus": [0.0, 0.1, 0.15, 0.2], "companion_min": [2, 3]}


# the township's one matter also draws a service post relaying the utility's answer (docs/search.md,
# *The seventh round*), chosen by ``--loo-relay``; the list starts with the rule off
RELAY_GRID: dict[str, list[Any]] = {"sole_relayed": [False, True]}


# how a post's wording is read, safety and service compatible (docs/search.md, *The eighth round*),
# chosen by ``--loo-voice``; each list starts with the rule off. ``COMPATIBLE`` is not a parameter:
# the compatible topic pairs (``open_issues.COMPATIBLE_TOPICS``) for the run
COMPATIBLE = "compatible"
BASE_COMPATIBLE = open_issues.COMPATIBLE_TOPICS
SAFETY_SERVICE = frozenset({frozenset(("safety", "service"))})
VOICE_GRID: dict[str, list[Any]] = {
    "voice": [PLAIN, Voice(simplify=True, dialect=False), Voice(simplify=False, dialect=True), Voice(),
              Voice(trip=True)],
    COMPATIBLE: [BASE_COMPATIBLE - SAFETY_SERVICE, BASE_COMPATIBLE | SAFETY_SERVICE]}


# the topic term read from the classifier's distributions, and ``other`` losing an issue's topic tie
# (docs/search.md, *The ninth round*), chosen by ``--loo-soft``; each list starts with the rule off
SOFT_GRID: dict[str, list[Any]] = {
    "soft_topics": [False, True], "soft_topic_smoothing": [0.0, 0.01, 0.02, 0.05, 0.1],
    "specific_topic_first": [False, True]}


# the kind of slow matter a post and an issue of one township both name (docs/search.md, *The tenth
# round*), chosen by ``--loo-kind``; each list starts with the rule off
KIND_GRID: dict[str, list[Any]] = {"kind_bonus": [0.0, 0.2, 0.3, 0.4, 0.5, 0.6], "kind_late": [False, True]}


# places not read from a clause's words or common words, a township's name before a place suffix read
# as a place's (docs/search.md, *The eleventh round*), chosen
# by ``--loo-places``; the list starts with the rule off
# the topics of matters of the whole county, whose posts of no township are not penalised against
# each other's issues (docs/search.md, *The eleventh round*), chosen by ``--loo-county``; the list
# starts with the rule off
COUNTY_GRID: dict[str, list[Any]] = {"county_topics": [
    frozenset(), frozenset({"online_service"}), frozenset({"online_service", "policy"}),
    frozenset({"online_service", "policy", "rumor"})]}


# an issue of a county's topic founded by a post of no township keeps none when a township's post
# joins it (docs/search.md, *The twelfth round*; the county's topics are ``--loo-county``'s), chosen
# by ``--loo-unhomed``; the list starts with the rule off
UNHOMED_GRID: dict[str, list[Any]] = {"county_unhomed": [False, True]}


# a post naming the service hall's queue not drawn by an outage issue that does not name it, and the
# two issues not merged (docs/search.md, *The twelfth round*), chosen by ``--loo-hall``; the list
# starts with the rule off
HALL_GRID: dict[str, list[Any]] = {"hall_apart": [False, True]}


# a county-wide kind of matter (the app's payment failing, the price) named by issues of several
# townships in the same hours: one issue open to every township's posts naming it (docs/search.md, *The
# thirteenth round*), chosen by ``--loo-county-kinds``; the list starts with the rule off
COUNTY_KINDS_GRID: dict[str, list[Any]] = {
    "county_kinds": [frozenset(), frozenset({"payment"}), frozenset({"price"}),
                     frozenset({"payment", "price"})],
    "county_towns": [2, 3, 4]}


# how long an issue stays open and how strict the issue-level merge is, chosen by ``--loo-gates
# --apart`` (leaving one of the sets written apart out; docs/search.md, *The fourteenth round*); the
# lists start with the thirteenth round's values
GATES_GRID: dict[str, list[Any]] = {
    "merge_threshold": [0.3, 0.35, 0.4],
    "span": [timedelta(hours=72), timedelta(hours=96), timedelta(hours=120)],
    "late_gap": [timedelta(hours=24), timedelta(hours=36)]}


PLACES_GRID: dict[str, list[Any]] = {
    "voice": [Voice(strict_places=strict, town_streets=streets) for streets in (False, True)
              for strict in (False, True)]}


# development sets written by writers who read neither the grouping's code nor the other sets
# (docs/search.md, *The thirteenth round* and *Three more sets written apart*)
WRITTEN_APART = ("dev14", "dev15", "dev16", "dev17")


def written_apart() -> dict[str, Any]:
    """The defaults on each set written apart, their mean F1 and large events: with the model's
    topics (the estimate), and with the topics their writers gave each post (``labelled``: an input
    line's ``topic`` is used as it is; a writer gives a matter's posts its topic)."""
    rows = {p.stem: read_posts(p) for p in dev_sets() if p.stem in WRITTEN_APART}
    if not rows:
        return {}
    report: dict[str, Any] = {}
    for name, sets in (("model topics", {n: with_model_topics(r) for n, r in rows.items()}),
                       ("labelled topics", rows)):
        found = grouped_scores(sets, {})
        print(f"sets written apart, {name}:")
        print(table(found))
        mean, recovered, large = totals(found.values())
        print(f"mean F1 {mean:.3f}, big events {recovered}/{large}")
        part = {"sets": found, "mean_bcubed_f1": round(mean, 4), "big_events": f"{recovered}/{large}"}
        if name == "model topics":
            report.update(part)
        else:
            report["labelled"] = part
    return report


def dev_sets(held_out: Sequence[str] = ()) -> list[Path]:
    """The development sets, without those held out (never the evaluation set)."""
    return [p for p in sorted(DATA.glob("dev*.jsonl"), key=lambda p: (len(p.stem), p.stem))
            if p.stem not in held_out]


def leave_one_out(grid: dict[str, list[Any]], held_out: Sequence[str] = (), apart: bool = False) -> None:
    """For each development set: the grid's best setting on the others (mean F1, model topics), and
    its F1 and big events on the one left out, beside the defaults'. Prints every setting's scores.
    ``apart``: over the sets written apart only (``WRITTEN_APART``), the rest scored beside them."""
    paths, rest = dev_sets(held_out), {}
    if apart:
        rest = {p.stem: with_model_topics(read_posts(p)) for p in paths if p.stem not in WRITTEN_APART}
        paths = [p for p in paths if p.stem in WRITTEN_APART]
    sets = {path.stem: with_model_topics(read_posts(path)) for path in paths}
    scored: list[tuple[dict[str, Any], dict[str, dict[str, Any]]]] = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        scored.append((setting, grouped_scores(sets, setting)))
        others = f" | the other sets: {summary(grouped_scores(rest, setting).values())}" if apart else ""
        print(f"{described(setting)}: {summary(scored[-1][1].values())} "
              + " ".join(f"{n} {f['bcubed_f1']:.3f} {f['big_events']}" for n, f in scored[-1][1].items())
              + others, flush=True)
    defaults = grouped_scores(sets, {})
    held: list[dict[str, Any]] = []
    for out in sets:
        setting, found = max(scored, key=lambda s: sum(s[1][n]["bcubed_f1"] for n in sets if n != out))
        held.append(found[out])
        print(f"{out} left out: F1 {found[out]['bcubed_f1']:.3f} big {found[out]['big_events']} "
              f"(defaults {defaults[out]['bcubed_f1']:.3f} {defaults[out]['big_events']}) "
              f"with {described(setting)}")
    print(f"left out: {summary(held)}; the defaults: {summary(defaults.values())}")


def described(setting: dict[str, Any]) -> dict[str, Any]:
    """The setting as printed: the compatible topic pairs by whether safety and service are one."""
    if COMPATIBLE not in setting:
        return setting
    return {**setting, COMPATIBLE: f"safety~service {setting[COMPATIBLE] >= SAFETY_SERVICE}"}


def grouped_scores(sets: dict[str, list[dict[str, Any]]],
                   setting: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each set's scores grouped with the defaults changed by ``setting`` (``COMPATIBLE``: the
    compatible topic pairs)."""
    setting = dict(setting)
    open_issues.COMPATIBLE_TOPICS = setting.pop(COMPATIBLE, BASE_COMPATIBLE)
    try:
        params = replace(GroupingParams(), **setting)
        return {name: score(rows, group_rows(rows, classify=None, params=params))
                for name, rows in sets.items()}
    finally:
        open_issues.COMPATIBLE_TOPICS = BASE_COMPATIBLE


def totals(found: Iterable[dict[str, Any]]) -> tuple[float, int, int]:
    """Mean F1 over sets, big events recovered and big events in all."""
    rows = list(found)
    big = [tuple(map(int, r["big_events"].split("/"))) for r in rows]
    return (sum(r["bcubed_f1"] for r in rows) / len(rows), sum(b[0] for b in big), sum(b[1] for b in big))


def summary(found: Iterable[dict[str, Any]]) -> str:
    """Mean F1 and big events recovered over sets."""
    mean, recovered, large = totals(found)
    return f"mean F1 {mean:.4f}, big events {recovered}/{large}"


def split_profiles(held_out: Sequence[str] = ()) -> None:
    """For each development set (model topics): the large events not recovered and the sizes of the
    issues they are split into, largest first (``[13, 4, 2, 1]``: one large part and small ones, for
    a merge or a looser join; ``[4, 4]``: two parts of one matter). Development sets only."""
    for path in dev_sets(held_out):
        rows = with_model_topics(read_posts(path))
        issues = group_rows(rows, classify=None)
        parts: dict[str, Counter[str]] = defaultdict(Counter)
        for row, issue in zip(rows, issues, strict=True):
            parts[row["event"]][issue] += 1
        missed = {event: sorted(c.values(), reverse=True) for event, c in sorted(parts.items())
                  if sum(c.values()) >= BIG_EVENT and max(c.values()) < RECOVERED_SHARE * sum(c.values())}
        print(f"{path.stem}: " + ("; ".join(f"{e} {sizes}" for e, sizes in missed.items()) or "none missed"))


def with_model_topics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the default model's topics in place of the labelled ones."""
    return [{**row, "topic": topic, "topic_scores": scores}
            for row, (topic, scores) in zip(rows, model_topics([r["text"] for r in rows]), strict=True)]


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'grouping':<28}{'P':>8}{'R':>8}{'F1':>8}{'big events':>12}{'issues':>8}"]
    for name, r in results.items():
        lines.append(f"{name:<28}{r['bcubed_precision']:>8.3f}{r['bcubed_recall']:>8.3f}"
                     f"{r['bcubed_f1']:>8.3f}{r['big_events']:>12}{r['issues']:>8}")
    return "\n".join(lines)


def timed(run: Callable[[], list[str]], posts: int) -> tuple[list[str], float]:
    """The result and the CPU time per post in µs (process time: other processes on the machine
    slow the wall clock, not this)."""
    forget_views()  # each run computes the posts' text views afresh
    started = time.process_time()
    issues = run()
    return issues, (time.process_time() - started) / posts * 1e6


def synthetic_grouping_us(values: list[bytes]) -> float:
    """CPU time per post of the grouping alone (``IssueGrouper.assign``) on the indexer's synthetic
    posts, in the order the indexer sees them within a batch (by ``created_at``)."""
    from services.search.grouping import IssueGrouper
    from services.search.issue_live import post_signal
    from yuqing.contracts import EnrichedPost
    from yuqing.contracts.codec import decode

    signals = sorted((post_signal(decode(EnrichedPost, v)) for v in values), key=lambda s: s.created_at)
    grouper = IssueGrouper()
    started = time.process_time()
    for signal in signals:
        grouper.assign(signal)
    return (time.process_time() - started) / len(signals) * 1e6


def build_cpu_us(values: list[bytes], batch: int = 500) -> float:
    """CPU time per post of the indexer's build step (decode, grouping, jieba words, documents),
    without Elasticsearch: what one indexer process spends of its own per post."""
    from bench.bench_search import batches
    from services.search.bulk import build_actions
    from services.search.issue_live import LiveIssues

    table = LiveIssues()
    started = time.process_time()
    for messages in batches(values, batch):
        build_actions(messages, "bench", issues=table)
    return (time.process_time() - started) / len(values) * 1e6


def indexing(docs: int) -> dict[str, Any]:
    """The indexer's path (decode, grouping, jieba words, bulk) on ``docs`` synthetic posts (bench_search),
    its ratio to the bulk ceiling measured in the same run, and the grouping's share of a post's cost."""
    from bench.bench_search import bench_indexing, synthesize
    from services.search.es import make_client
    from yuqing.settings import ElasticsearchSettings

    es = make_client(ElasticsearchSettings())
    prefix = f"bench-issues-{int(time.time())}"
    values = synthesize(docs)
    try:
        measured = bench_indexing(es, values, prefix)
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore=404)
    build_cpu_us(values[:200])  # loads the word segmenter's dictionary: not a post's cost
    forget_views()  # each measurement computes the posts' text views afresh
    measured["build_cpu_us_per_post"] = round(build_cpu_us(values))
    forget_views()
    measured["grouping_us_per_post"] = round(synthetic_grouping_us(values))
    measured["load_average"] = [round(x, 1) for x in os.getloadavg()]  # the machine is shared: say how busy
    return measured


# each --loo* flag: the grid it searches leaving one development set out, and what it chooses
LOO_GRIDS: dict[str, tuple[dict[str, list[Any]], str]] = {
    "loo": (LOO_GRID, "the burst and township parameters"),
    "loo_dominant": (DOMINANT_GRID, "the dominant-issue rule's parameters"),
    "loo_second": (SECOND_GRID, "the second-choice topic margin"),
    "loo_days": (DAYS_GRID, "the rules for matters over days and posts of no region"),
    "loo_sole": (SOLE_GRID, "the rules for a township's one matter and companion issues"),
    "loo_relay": (RELAY_GRID, "whether the township's one matter draws relayed answers"),
    "loo_voice": (VOICE_GRID, "how wording is read and whether safety is compatible with service"),
    "loo_kind": (KIND_GRID, "the bonus for a kind of slow matter named by a post and an issue, and whether "
                            "it opens an issue of one post beyond the gap,"),
    "loo_county": (COUNTY_GRID, "the topics of matters of the whole county"),
    "loo_unhomed": (UNHOMED_GRID, "whether an issue of a county's topic keeps no township"),
    "loo_county_kinds": (COUNTY_KINDS_GRID, "whether issues of several townships naming one county-wide "
                                            "kind of matter in the same hours are one matter"),
    "loo_hall": (HALL_GRID, "whether a post naming the service hall's queue is kept from an outage "
                            "issue that does not name it"),
    "loo_gates": (GATES_GRID, "how long an issue stays open and how strict the issue-level merge is"),
    "loo_places": (PLACES_GRID, "whether places are read from a clause's words and common words"),
    "loo_soft": (SOFT_GRID, "whether topics are read as the classifier's distributions, and the topic "
                            "tie order,"),
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DATA / "eval.jsonl")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "issues.json")
    parser.add_argument("--labelled-topics", action="store_true",
                        help="group with the labelled topics first (default: the default model's)")
    parser.add_argument("--model-topics", action="store_true", help="the default; kept for older commands")
    parser.add_argument("--tune", action="store_true", help="search parameters (development set only)")
    parser.add_argument("--tune-merge", action="store_true",
                        help="search the issue-level step's parameters (development set only)")
    for flag, (_, what) in LOO_GRIDS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", action="store_true",
                            help=f"choose {what} leaving one development set out")
    parser.add_argument("--apart", action="store_true",
                        help="with --loo*: leave one of the sets written apart (WRITTEN_APART) out, "
                             "choosing on the others of them")
    parser.add_argument("--hold-out", action="append", default=[], metavar="NAME",
                        help="leave this development set (dev10) out of --loo* and --splits")
    parser.add_argument("--splits", action="store_true",
                        help="how the development sets' large events not recovered are split")
    parser.add_argument("--indexing", type=int, default=0, metavar="DOCS",
                        help="also measure indexing throughput on this many synthetic posts (Elasticsearch)")
    args = parser.parse_args()
    if not args.input.exists():
        args.input = DATA / "dev.jsonl"
    args.input = args.input.resolve()
    return args


def compare(rows: list[dict[str, Any]], grouped: list[dict[str, Any]]) -> dict[str, Any]:
    """The grouping (with and without its merge step) and the baselines on ``grouped`` (the rows
    with the topics used), scored against the rows' events, with the grouping's cost per post."""
    idf_table()  # built once per process; not part of a post's cost
    configured_places()  # read once per process, likewise
    issues, us_per_post = timed(lambda: group_rows(grouped, classify=None), len(rows))
    unmerged, unmerged_us = timed(lambda: group_rows(grouped, classify=None, params=WITHOUT_MERGE), len(rows))
    results = {OURS: score(rows, issues), UNMERGED: score(rows, unmerged),
               "SimHash (previous)": score(rows, simhash_baseline(grouped)),
               "same topic, region, day": score(rows, topic_region_day_baseline(grouped))}
    print(table(results))
    print(f"grouping: {us_per_post:.0f} µs per post ({unmerged_us:.0f} without issue-level merging)")
    ours = results[OURS]
    return {"bcubed_f1": ours["bcubed_f1"], "big_events_recovered": ours["big_events_recovered"],
            "detail": ours, "grouping_us_per_post": round(us_per_post, 1),
            "without_issue_merging": {**results[UNMERGED], "grouping_us_per_post": round(unmerged_us, 1)},
            "baselines": {k: v for k, v in results.items() if k not in (OURS, UNMERGED)}}


def _shown(path: Path) -> str:
    """A set's path as the report names it: relative to the project when it lies in it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def main() -> None:
    args = arguments()
    if args.splits:
        split_profiles(args.hold_out)
        return
    chosen = [grid for flag, (grid, _) in LOO_GRIDS.items() if getattr(args, flag)]
    if chosen:
        leave_one_out(chosen[0], args.hold_out, apart=args.apart)
        return
    rows = read_posts(args.input)
    modelled = with_model_topics(rows)
    if args.tune or args.tune_merge:
        tune(rows if args.labelled_topics else modelled, MERGE_GRID if args.tune_merge else POST_GRID)
        return
    first, second = ("labelled", "model") if args.labelled_topics else ("model", "labelled")
    topics = {"model": modelled, "labelled": rows}
    name = _shown(args.input)
    print(f"{name}: {len(rows)} posts, {len(set(r['event'] for r in rows))} events")
    print(f"topics {first}:")
    report = {"input": name, "posts": len(rows), "topics": first,
              **compare(rows, topics[first])}
    print(f"topics {second}:")
    report[f"{second}_topics"] = compare(rows, topics[second])
    if args.input == (DATA / "eval.jsonl").resolve():
        report["written_apart"] = written_apart()
    if args.indexing:
        report["indexing"] = indexing(args.indexing)
        print(f"indexing: {report['indexing']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
