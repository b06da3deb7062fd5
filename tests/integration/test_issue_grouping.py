"""Issues through the real pipeline: Kafka -> indexer -> Elasticsearch -> API, corrections, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from services.search.api import create_app
from services.search.auth import hash_key, new_key
from services.search.bulk import build_actions, write_bulk
from services.search.correction_locks import LOCK_TTL, CorrectionBusy, correcting
from services.search.es import ensure_templates, make_client
from services.search.grouping import GroupingParams, IssueMerge
from services.search.indexer import Indexer
from services.search.issue_alerts import driving_issues
from services.search.issue_auto_merges import record_system_merges
from services.search.issue_corrections import Correction, corrections_index, ensure_index, reassign_posts
from services.search.issue_live import LiveIssues
from services.search.mappings import posts_alias, posts_index, small_alias, templates
from services.search.reindex import reindex
from services.search.settings import SearchSettings
from tests.integration.conftest import indexed_hits
from tests.search.factory import BASE_TIME, make_post
from tests.search.test_indexer_kafka import _publish, _wait
from yuqing.consumer import Record
from yuqing.contracts import EnrichedPost, Topic
from yuqing.contracts.codec import encode
from yuqing.settings import ElasticsearchSettings, KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration

OUTAGE = ["河口镇新街村停电了，什么时候来电？", "新街村这边突然黑了，整个村都没电",
          "我家也是，新街村三组，一点电都没有", "河口新街停电+1",
          "停了快一个小时了，新街村到底啥时候恢复供电啊"]


def _post(tag: str, text: str, minutes: float, region: str = "河口镇",
          topic: Topic = Topic.OUTAGE) -> EnrichedPost:
    return make_post(text, external_id=tag, region=region, unit=f"{region[:2]}供电所", topic=topic,
                     created_at=BASE_TIME + timedelta(minutes=minutes))


@pytest.fixture
def settings(kafka_settings: KafkaSettings, es_settings: ElasticsearchSettings,
             tmp_path: Path) -> Iterator[SearchSettings]:
    keys = {"desk": ("responder", None), "hekou": ("responder", "河口镇")}
    lines = []
    for name, (role, region) in keys.items():
        lines += ["[[keys]]", f'id = "{name}"', f'role = "{role}"', f'sha256 = "{hash_key(_key(name))}"']
        lines += [f'regions = ["{region}"]'] if region else []
    (tmp_path / "keys.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    yield SearchSettings(kafka=kafka_settings, es=es_settings, bulk_max_wait_s=0.2, bulk_max_docs=50,
                         indexer_group_id=f"{es_settings.index_prefix}-ix", bulk_max_retries=1,
                         api_keys_path=tmp_path / "keys.toml", rate_limit_per_minute=0)
    es = make_client(es_settings)
    es.indices.delete(index=f"{es_settings.index_prefix}-*", ignore=404)
    for name in templates(es_settings.index_prefix):
        es.indices.delete_index_template(name=name, ignore=404)


_KEYS: dict[str, str] = {}


def _key(name: str) -> str:
    return _KEYS.setdefault(name, new_key(name))


class Running:
    """One indexer process (a thread here), stopped and started like a deployment would."""

    def __init__(self, settings: SearchSettings) -> None:
        self.indexer = Indexer(settings)
        self.thread = threading.Thread(target=self.indexer.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.indexer.stop()
        self.thread.join(timeout=30)


def _issues(es: Elasticsearch, settings: SearchSettings) -> dict[str, str]:
    # every index: the other indexer reads the recorded merges too
    es.indices.refresh(index=f"{settings.es.index_prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    # polled while the indexer may have just created a monthly index (a 503 for a moment)
    hits = indexed_hits(es, posts_alias(settings.es.index_prefix))
    return {h["_source"]["external_id"]: h["_source"]["issue_id"] for h in hits}


def _index(settings: SearchSettings, es: Elasticsearch, posts: list[EnrichedPost],
           total: int) -> dict[str, str]:
    _publish(settings, LogicalTopic.POSTS_ENRICHED, posts)
    _wait(lambda: len(_issues(es, settings)) == total, 60, f"{total} posts indexed")
    return _issues(es, settings)


def _api(settings: SearchSettings, es: Elasticsearch) -> TestClient:
    return TestClient(create_app(settings, client=es), raise_server_exceptions=False)


def test_paraphrases_join_one_issue_other_townships_and_days_do_not(settings: SearchSettings) -> None:
    es = make_client(settings.es)
    running = Running(settings)
    try:
        posts = [_post(f"hk-{i}", text, 8 * i) for i, text in enumerate(OUTAGE)]
        posts.append(_post("cg", "城关镇东关村停电了，什么时候来电？", 5, region="城关镇"))
        posts.append(_post("later", OUTAGE[0], 2 * 24 * 60))
        issues = _index(settings, es, posts, len(posts))
    finally:
        running.stop()
    outage = {issues[f"hk-{i}"] for i in range(len(OUTAGE))}
    assert len(outage) == 1
    assert issues["cg"] not in outage and issues["later"] not in outage and issues["cg"] != issues["later"]
    with _api(settings, es) as api:
        page = api.get("/v1/issues", headers={"X-Api-Key": _key("desk")},
                       params={"since": (BASE_TIME - timedelta(days=1)).isoformat(),
                               "until": (BASE_TIME + timedelta(days=3)).isoformat()}).json()
    top = page["issues"][0]
    assert top["issue_id"] in outage and top["size"] == len(OUTAGE) and top["places"][0] in ("新街村", "新街")
    assert top["title"] and top["representative"]["issue_id"] == top["issue_id"]
    with _api(settings, es) as api:
        desk = {"X-Api-Key": _key("desk")}
        window = {"since": (BASE_TIME - timedelta(days=1)).isoformat(),
                  "until": (BASE_TIME + timedelta(days=3)).isoformat()}
        assert api.post(f"/v1/issues/{top['issue_id']}/actions", headers=desk,
                        json={"action": "resolve"}).status_code == 201
        ranked = api.get("/v1/issues", headers=desk, params=window).json()["issues"]
        assert ranked[-1]["issue_id"] == top["issue_id"]  # resolved: after every unresolved issue
        resolved = api.get("/v1/issues", headers=desk, params={**window, "state": "resolved"}).json()
        assert [i["issue_id"] for i in resolved["issues"]] == [top["issue_id"]]
    driving = driving_issues(es, prefix=settings.es.index_prefix, since=BASE_TIME - timedelta(hours=1),
                             until=BASE_TIME + timedelta(hours=2), topic="outage", region="河口镇")
    assert [(d.issue_id, d.posts, d.share) for d in driving] == [(top["issue_id"], len(OUTAGE), 1.0)]


def test_merge_move_and_split_survive_a_restart_and_steer_later_posts(settings: SearchSettings) -> None:
    es = make_client(settings.es)
    running = Running(settings)
    first = [_post("a-0", "新街村停电了，啥时候来电", 0), _post("a-1", "新街村还是没电，啥时候来电", 3),
             _post("b-0", "滨河小区3栋电梯停了，老人被困在里面", 5),
             _post("c-0", "这个月电费怎么翻倍了，是不是电表坏了", 6, topic=Topic.BILLING),
             _post("x-0", "柳塘街停电了", 7, region="柳塘镇")]
    try:
        issues = _index(settings, es, first, len(first))
        a, b, c = issues["a-0"], issues["b-0"], issues["c-0"]
        assert len({a, b, c}) == 3
        desk, hekou = {"X-Api-Key": _key("desk")}, {"X-Api-Key": _key("hekou")}
        with _api(settings, es) as api:
            merged = api.post(f"/v1/issues/{b}/merge", headers=hekou, json={"into": a})
            assert merged.status_code == 201, merged.text
            a1 = first[1].post_id
            moved = api.post(f"/v1/issues/{a}/posts/{a1}/move", headers=desk, json={"to": c})
            assert moved.status_code == 201, moved.text
            split = api.post(f"/v1/issues/{a}/posts/{first[0].post_id}/split", headers=desk)
            assert split.status_code == 201, split.text
            new = split.json()["target_issue_id"]
            history = api.get(f"/v1/issues/{a}/actions", headers=desk).json()["actions"]
            assert {h["action"] for h in history} >= {"merge", "move", "split"}
            # a region-scoped responder may not correct an issue with posts outside its regions
            x = issues["x-0"]
            refused = api.post(f"/v1/issues/{x}/merge", headers=hekou, json={"into": a})
            assert refused.status_code == 404  # 柳塘镇's issue: the 河口镇 desk does not see it
            assert api.post(f"/v1/issues/{a}/merge", headers=desk, json={"into": a}).status_code == 409
        now = _issues(es, settings)
        assert now["b-0"] == a and now["a-1"] == c and now["a-0"] == new
    finally:
        running.stop()
    running = Running(settings)  # restarted: state rebuilt from the index
    try:
        later = [_post("b-1", "滨河小区电梯还是停着，老人还在里面", 20),
                 _post("a-2", "新街村停电了，啥时候来电啊", 21)]
        issues = _index(settings, es, later, len(first) + len(later))
    finally:
        running.stop()
    assert issues["b-1"] == a  # posts like the merged issue's join the issue it was merged into
    assert issues["a-2"] == new  # posts like a split-out post follow it
    assert issues["b-0"] == a and issues["a-1"] == c and issues["a-0"] == new  # corrections kept


def test_two_indexers_agree_on_the_issue_of_a_matter(settings: SearchSettings) -> None:
    es = make_client(settings.es)
    first, second = Running(settings), Running(settings)  # one consumer group: partitions split
    try:
        founder = [_post("hk-0", OUTAGE[0], 0)]
        _index(settings, es, founder, 1)
        time.sleep(3)  # past a refresh: each indexer has read back what the other wrote
        rest = [_post(f"hk-{i}", text, 8 * i) for i, text in enumerate(OUTAGE) if i]
        rest += [_post(f"more-{i}", f"新街村停电第{i}个小时了，还没来电", 40 + i) for i in range(8)]
        issues = _index(settings, es, rest, 1 + len(rest))
    finally:
        first.stop()
        second.stop()
    assert set(issues.values()) == {issues["hk-0"]}


def test_an_automatic_merge_renames_indexed_posts_is_in_the_history_and_a_split_keeps_it_undone(
        settings: SearchSettings) -> None:
    es = make_client(settings.es)
    desk = {"X-Api-Key": _key("desk")}
    # a post of no known township founds the outage's first issue, the village's posts a second
    unplaced = make_post("灯一下子全灭了，小孩吓得直哭", external_id="m-0", region=None, unit=None,
                         created_at=BASE_TIME)
    first = [unplaced, _post("m-1", "河口镇新街村停电了，什么时候来电？", 2),
             _post("m-2", "新街村这边突然黑了，整个村都没电", 4),
             _post("m-3", "我家也是，新街村三组，一点电都没有", 6)]
    running = Running(settings)
    try:
        issues = _index(settings, es, first, len(first))
        older, younger = issues["m-0"], issues["m-1"]
        assert older != younger == issues["m-2"] == issues["m-3"]
        # a township post in the first one's words joins it: the two issues are one matter
        _publish(settings, LogicalTopic.POSTS_ENRICHED, [_post("m-4", "灯全灭了，小孩吓得哭个不停", 9)])
        _wait(lambda: set(_issues(es, settings).values()) == {older} and len(_issues(es, settings)) == 5,
              60, "the village's indexed posts renamed to the older issue")
        with _api(settings, es) as api:
            def merges() -> list[dict[str, str]]:
                history = api.get(f"/v1/issues/{older}/actions", headers=desk).json()["actions"]
                return [h for h in history if h["action"] == "merge"]

            _wait(lambda: bool(merges()), 10, "the merge in the issue's history")
            assert [(m["responder"], m["issue_id"]) for m in merges()] == [("system", older)]
            assert younger in merges()[0]["note"] and "automatic, score" in merges()[0]["note"]
            # a responder undoes it for one post: the split-out issue stays apart
            post_id = first[2].post_id
            split = api.post(f"/v1/issues/{older}/posts/{post_id}/split", headers=desk)
            assert split.status_code == 201, split.text
            apart = split.json()["target_issue_id"]
    finally:
        running.stop()
    running = Running(settings)  # restarted: the state is rebuilt from the index and the corrections
    try:
        assert running.indexer.issues.grouper.is_protected(apart)
        assert running.indexer.issues.grouper.is_protected(older)
        # m-5 joins the older issue; the split-out one (same township, place and topic) is not
        # merged into it, and a post like the split-out one follows it
        issues = _index(settings, es, [_post("m-5", "灯全灭了，小孩还在哭", 12),
                                       _post("m-6", "新街村这边还是黑的，整个村都没电", 13)], 7)
    finally:
        running.stop()
    assert issues["m-2"] == issues["m-6"] == apart and issues["m-5"] == older
    with _api(settings, es) as api:
        history = api.get(f"/v1/issues/{older}/actions", headers=desk).json()["actions"]
    assert sum(1 for h in history if h["action"] == "merge") == 1


def test_an_automatic_merge_is_recorded_once_and_not_over_a_responders_split(
        settings: SearchSettings) -> None:
    es = make_client(settings.es)
    prefix = settings.es.index_prefix
    ensure_templates(es, settings.es)
    table = LiveIssues(replace(GroupingParams(), merge_threshold=float("inf")))  # merges decided below
    posts = [_post(f"r-{n}", text, n) for n, text in enumerate(OUTAGE[:4])]
    actions, kept, _ = build_actions([Record("posts.enriched", 0, n, None, encode(p)) for n, p in
                                      enumerate(posts)], prefix, issues=table)
    write_bulk(es, actions, kept, max_retries=1)
    es.indices.refresh(index=posts_alias(prefix))
    first = _issues(es, settings)["r-0"]
    at = BASE_TIME + timedelta(minutes=5)
    # two replicas decided the same merge: recorded (and in the history) once
    merge = IssueMerge("outage-aaaa", first, 0.5, at)
    assert record_system_merges(es, prefix, [merge]) == ([merge], [])
    assert record_system_merges(es, prefix, [merge]) == ([], [])
    # a responder split a post out of the issue: no automatic merge of it is recorded
    split = Correction("split", first, "outage-split", posts[3].post_id, at.isoformat())
    es.index(index=corrections_index(prefix), document=split.to_document("desk", ["河口镇"]), refresh=True)
    assert record_system_merges(es, prefix, [IssueMerge("outage-bbbb", first, 0.9, at)]) == ([], [])
    es.indices.refresh(index=f"{prefix}-*")
    history = es.search(index=small_alias(prefix, "actions"), body={"query": {"term": {"issue_id": first}}})
    assert [(h["_source"]["responder"], h["_source"]["action"]) for h in history["hits"]["hits"]] == [
        ("system", "merge")]


def _written(settings: SearchSettings, es: Elasticsearch, tag: str) -> str:
    """Three posts of one outage indexed without merges of their own; their issue's id."""
    ensure_templates(es, settings.es)
    table = LiveIssues(replace(GroupingParams(), merge_threshold=float("inf")))  # merges decided below
    posts = [_post(f"{tag}-{n}", text, n) for n, text in enumerate(OUTAGE[:3])]
    actions, kept, _ = build_actions([Record("posts.enriched", 0, n, None, encode(p)) for n, p in
                                      enumerate(posts)], settings.es.index_prefix, issues=table)
    write_bulk(es, actions, kept, max_retries=1)
    return _issues(es, settings)[f"{tag}-0"]


def test_an_automatic_merge_waits_while_a_responder_corrects_one_of_its_issues(
        settings: SearchSettings) -> None:
    es, prefix = make_client(settings.es), settings.es.index_prefix
    first = _written(settings, es, "w")
    at = BASE_TIME + timedelta(minutes=5)
    merge = IssueMerge(first, "outage-cccc", 0.5, at)
    other = IssueMerge("outage-dddd", "outage-eeee", 0.5, at)
    with correcting(es, prefix, [first], holder="desk"):  # a responder's correction in progress
        assert record_system_merges(es, prefix, [merge, other]) == ([other], [merge])
        assert set(_issues(es, settings).values()) == {first}  # nothing renamed meanwhile
        with correcting(es, prefix, ["outage-dddd", "outage-eeee"], holder="desk"):
            pass  # the recording gave its locks back
        # the responder's own lock is still there
        with pytest.raises(CorrectionBusy), correcting(es, prefix, [first], holder="another desk"):
            pass
    # done: the next recording takes it, and the responder can correct the issues again
    assert record_system_merges(es, prefix, [merge]) == ([merge], [])
    assert set(_issues(es, settings).values()) == {"outage-cccc"}
    with correcting(es, prefix, [first, "outage-cccc", "outage-dddd"], holder="desk"):
        pass


def test_a_lock_left_by_a_dead_process_does_not_hold_automatic_merges(settings: SearchSettings) -> None:
    es, prefix = make_client(settings.es), settings.es.index_prefix
    merge = IssueMerge(_written(settings, es, "d"), "outage-gggg", 0.5, BASE_TIME)
    stale = datetime.now(UTC) - LOCK_TTL - timedelta(seconds=5)
    with correcting(es, prefix, [merge.source_id], holder="desk", now=stale):
        assert record_system_merges(es, prefix, [merge]).recorded == [merge]


def test_automatic_merges_made_by_one_indexer_are_applied_by_the_other(settings: SearchSettings) -> None:
    es = make_client(settings.es)
    unplaced = make_post("灯一下子全灭了，小孩吓得直哭", external_id="m-0", region=None, unit=None,
                         created_at=BASE_TIME)
    first = [unplaced, _post("m-1", "河口镇新街村停电了，什么时候来电？", 2),
             _post("m-2", "新街村这边突然黑了，整个村都没电", 4),
             _post("m-3", "我家也是，新街村三组，一点电都没有", 6)]
    later = [_post("m-4", "灯全灭了，小孩吓得哭个不停", 9), _post("m-5", "灯全灭了，小孩还在哭", 12)]
    replicas = [Running(settings), Running(settings)]  # one consumer group: partitions split
    try:
        # the replicas may each found an issue for the village's posts (they have not read each
        # other's yet); the older issue then draws one issue per post that joins it
        older = _index(settings, es, first, len(first))["m-0"]
        for n, post in enumerate(later):
            time.sleep(3)  # past a refresh: each indexer has read back what the other wrote
            _index(settings, es, [post], len(first) + n + 1)
        _wait(lambda: set(_issues(es, settings).values()) == {older}, 30,
              "every indexed post renamed to the older issue")
    finally:
        for replica in replicas:
            replica.stop()
    for replica in replicas:  # each follows the merges, whichever made them
        replica.indexer.issues.refresh(es, settings.es.index_prefix, force=True)
        assert {replica.indexer.issues.grouper.issue_of(p.post_id) for p in first + later} == {older}


def _merging_pair(tag: str, hours: int) -> tuple[list[EnrichedPost], EnrichedPost]:
    """Posts making two issues of one matter, and the post that shows they are one (see above)."""
    minutes = hours * 60
    first = [make_post("灯一下子全灭了，小孩吓得直哭", external_id=f"{tag}-0", region=None, unit=None,
                       created_at=BASE_TIME + timedelta(minutes=minutes)),
             _post(f"{tag}-1", "河口镇新街村停电了，什么时候来电？", minutes + 2),
             _post(f"{tag}-2", "新街村这边突然黑了，整个村都没电", minutes + 4)]
    return first, _post(f"{tag}-3", "灯全灭了，小孩吓得哭个不停", minutes + 9)


def test_an_automatic_merge_of_the_last_batch_before_a_quiet_spell_is_recorded(
        settings: SearchSettings) -> None:
    es = make_client(settings.es)

    def issues_of(tag: str) -> int:
        return len({issue for external_id, issue in _issues(es, settings).items()
                    if external_id.startswith(tag)})

    a_posts, a_join = _merging_pair("qa", 0)
    # six hours later the village's posts join the same matter, the unplaced one founds an issue
    b_posts, b_join = _merging_pair("qb", 6)
    running = Running(settings)
    running.indexer.issues.refresh_s = 5  # merges are recorded at most every 5 s
    try:
        _index(settings, es, a_posts + b_posts, 6)
        _publish(settings, LogicalTopic.POSTS_ENRICHED, [a_join])
        _wait(lambda: issues_of("qa") == 1, 30, "the first merge recorded")
        assert issues_of("q") == 2
        # the second merge comes within the 5 s, and no post follows it: it was recorded (and
        # the post under the merged id renamed) only when the next post arrived
        _publish(settings, LogicalTopic.POSTS_ENRICHED, [b_join])
        _wait(lambda: issues_of("q") == 1, 30, "the second merge recorded with no later post")
    finally:
        running.stop()


def _recorded(es: Elasticsearch, prefix: str, correction: Correction) -> None:
    es.index(index=corrections_index(prefix), document=correction.to_document("desk", ["河口镇"]),
             refresh=True)


def test_a_correction_visible_after_a_later_one_is_still_applied(
        settings: SearchSettings) -> None:
    # a correction becomes searchable a moment after its time (a refresh; an automatic merge is
    # written without one): a replica that had read a later one meanwhile never applied it, and
    # kept grouping posts into the merged-away issue
    es, prefix = make_client(settings.es), settings.es.index_prefix
    ensure_templates(es, settings.es)
    es.indices.create(index=posts_index(prefix, BASE_TIME), ignore=400)
    ensure_index(es, prefix)
    now = datetime.now(UTC)
    at = [(now + timedelta(seconds=s)).isoformat(timespec="microseconds") for s in (-1, 0, 1)]
    live = LiveIssues()
    late_merge = Correction("merge", "outage-000000000000000a", "outage-000000000000000b", None, at[0])
    _recorded(es, prefix, Correction("move", "outage-000000000000000c", "outage-000000000000000d",
                                     "p" * 32, at[1]))
    live.refresh(es, prefix, force=True)
    _recorded(es, prefix, late_merge)
    _recorded(es, prefix, Correction("move", "outage-000000000000000d", "outage-000000000000000e",
                                     "p" * 32, at[2]))

    live.refresh(es, prefix, force=True)
    live.refresh(es, prefix, force=True)  # read again over the lag: the later move still wins

    assert live.grouper.resolve("outage-000000000000000a") == "outage-000000000000000b"
    assert live.grouper.issue_of("p" * 32) == "outage-000000000000000e"


def _corrected(es: Elasticsearch, prefix: str, correction: Correction) -> None:
    """A correction as the API records it (its record, then the posts renamed)."""
    ensure_index(es, prefix)
    _recorded(es, prefix, correction)
    reassign_posts(es, prefix, correction)


def test_a_reindex_keeps_the_corrections_of_posts_older_than_the_warm_up(settings: SearchSettings) -> None:
    # a rebuild groups again every post older than the warm-up (span + gap before the newest
    # arrival) and replayed only the corrections recorded in the warm-up before it: a post moved
    # ten days ago went back, an issue merged ten days ago came back
    es, prefix = make_client(settings.es), settings.es.index_prefix
    old = [_post("r-1", OUTAGE[0], 0), _post("r-2", OUTAGE[1], 2),
           _post("r-3", "石门镇老街从早上停电到现在，冰箱里的东西都坏了", 1, region="石门镇")]
    now = datetime.now(UTC)
    recent = make_post("城关镇今天又停电了", external_id="r-now", created_at=now - timedelta(minutes=5),
                       received_at=now - timedelta(minutes=4))
    _publish(settings, LogicalTopic.POSTS_ENRICHED, [*old, recent])
    reindex(settings, from_offset=0)
    first = _issues(es, settings)
    a, b = first["r-1"], first["r-3"]
    assert first["r-2"] == a != b
    moved = next(p.post_id for p in old if p.external_id == "r-2")
    days_ago = [(now - timedelta(days=10, minutes=m)).isoformat(timespec="microseconds") for m in (2, 1)]

    _corrected(es, prefix, Correction("move", a, b, moved, days_ago[0]))
    reindex(settings, from_offset=0)
    assert _issues(es, settings)["r-2"] == b and _issues(es, settings)["r-1"] == a
    _corrected(es, prefix, Correction("merge", a, b, None, days_ago[1]))
    reindex(settings, from_offset=0)

    assert {issue for tag, issue in _issues(es, settings).items() if tag != "r-now"} == {b}


RUMOUR = [("lt-0", "网上传明天拉闸限电，我们厂明天还要开工，到底限不限？", "柳塘镇"),
          ("lt-1", "听说明天全县限电，是真的吗", "柳塘镇"), ("lt-2", "明天全县拉闸限电是真的吗", "柳塘镇"),
          ("sm-0", "有人转发说明天全县限电，供电所能不能出来说句话", "石门镇"),
          ("sm-1", "石门这边也在传明天全县限电", "石门镇")]


def test_a_townships_later_posts_follow_a_merge_into_another_townships_issue(
        settings: SearchSettings) -> None:
    # the county desk merged 石门镇's issue of the county's rumour into 柳塘镇's; 石门镇's next post of
    # it (the same words) founded a new issue instead of joining the one it was merged into
    es = make_client(settings.es)
    first = [_post(tag, text, i, region=town, topic=Topic.RUMOR)
             for i, (tag, text, town) in enumerate(RUMOUR)]
    running = Running(settings)
    try:
        issues = _index(settings, es, first, len(first))
        stays, gone = issues["lt-0"], issues["sm-0"]
        assert stays != gone
        with _api(settings, es) as api:
            merged = api.post(f"/v1/issues/{gone}/merge", headers={"X-Api-Key": _key("desk")},
                              json={"into": stays})
            assert merged.status_code == 201, merged.text
        time.sleep(3)  # past the indexer's refresh: it has read the merge
        again = _post("sm-2", "有人转发说明天全县限电，供电所能不能出来说句话啊", 10, region="石门镇",
                      topic=Topic.RUMOR)
        assert _index(settings, es, [again], len(first) + 1)["sm-2"] == stays
    finally:
        running.stop()
    running = Running(settings)  # restarted: the merge replayed from the corrections
    try:
        later = _post("sm-3", "石门这边也在传明天全县限电，到底真的假的", 12, region="石门镇",
                      topic=Topic.RUMOR)
        assert _index(settings, es, [later], len(first) + 2)["sm-3"] == stays
    finally:
        running.stop()
