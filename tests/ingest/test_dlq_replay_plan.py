"""Which dead letters a replay publishes again, and what (pure)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from services.ingest.dlq_replay import ReplayFilter, plan
from yuqing.consumer.dlq import make_dead_letter
from yuqing.contracts import DeadLetter

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def letter(offset: int, *, service: str = "nlp", source: str = "crm-95598", failed_at: datetime = AT,
           max_bytes: int | None = None) -> DeadLetter:
    original = json.dumps({"post_id": f"{offset:032x}", "source": source, "text": "停电" * 300}).encode()
    made = make_dead_letter(value=original, key=f"{offset:032x}".encode(), topic="t.posts.raw", partition=1,
                            offset=offset, error=ValueError("bad post"), service=service, max_bytes=max_bytes)
    return made.model_copy(update={"failed_at": failed_at})


def test_every_original_is_replayed_once_with_its_key_and_bytes() -> None:
    letters = [letter(1), letter(2), letter(1, service="search-indexer")]

    replays = plan(letters, ReplayFilter())

    assert [(r.where, r.key) for r in replays] == [("t.posts.raw[1]@1", f"{1:032x}".encode()),
                                                   ("t.posts.raw[1]@2", f"{2:032x}".encode())]
    assert replays[0].value == base64.b64decode(letters[0].original_b64)


def test_letters_are_chosen_by_service_source_post_and_time() -> None:
    letters = [letter(1), letter(2, service="alerts"), letter(3, source="app-main"),
               letter(4, failed_at=AT - timedelta(days=1))]

    def chosen(wanted: ReplayFilter) -> list[int]:
        return [r.offset for r in plan(letters, wanted)]

    assert chosen(ReplayFilter(service="alerts")) == [2]
    assert chosen(ReplayFilter(source="app-main")) == [3]
    assert chosen(ReplayFilter(post_id=f"{4:032x}")) == [4]
    assert chosen(ReplayFilter(since=AT)) == [1, 2, 3]


def test_the_indexer_is_found_by_the_name_its_dead_letter_alert_gives_it() -> None:
    # YuqingDeadLetterRatioHigh names the service by its metrics' label, "indexer"; the letters
    # say "search-indexer", and --service indexer was refused as a service writing none
    letters = [letter(1), letter(2, service="search-indexer")]

    assert [r.offset for r in plan(letters, ReplayFilter(service="indexer"))] == [2]


def test_a_cut_original_is_not_replayed_from_its_cut() -> None:
    cut = letter(5, max_bytes=1_200)
    assert "[original cut to" in cut.error_message

    [replay] = plan([cut], ReplayFilter())

    assert replay.value is None and replay.where == "t.posts.raw[1]@5"
