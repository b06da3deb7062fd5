"""A post dated and received far in the future (an ingest clock gone wrong, a message written to
``posts.enriched`` directly) must not move the alerts worker's watermark there: every post after
it would be late, never counted, until the worker's state is wiped.

The source's clock is trusted only up to ``max_future_seconds`` after arrival; arrival itself only
up to the worker's own clock.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from services.alerts.evidence import Observation
from services.alerts.settings import AlertsSettings
from services.alerts.watch import Counted, SurgeWatch
from services.alerts.windows import event_time
from services.alerts.worker import route, watch_config
from yuqing.consumer import Record
from yuqing.topics import SCHEMAS_DIR

FAR = datetime(9999, 1, 1, tzinfo=UTC)


def _record(offset: int, at: datetime, received: datetime) -> Record:
    example = SCHEMAS_DIR / "posts.enriched" / "examples" / "outage-complaint.json"
    post = json.loads(example.read_text(encoding="utf-8"))
    post.update({"post_id": f"{offset:032x}", "created_at": at.isoformat(),
                 "received_at": received.isoformat()})
    return Record("t.posts.enriched", 0, offset, b"k", json.dumps(post, ensure_ascii=False).encode())


def test_arrival_is_trusted_only_up_to_the_workers_own_clock() -> None:
    now = time.time()

    assert event_time(FAR, FAR, 300, now=now) == now + 300
    assert event_time(datetime(2026, 11, 28, tzinfo=UTC), FAR, 300, now=now) == datetime(
        2026, 11, 28, tzinfo=UTC).timestamp()


def test_posts_after_one_received_in_year_9999_are_still_counted() -> None:
    settings = AlertsSettings()
    watch = SurgeWatch(watch_config(settings), windows={}, detectors={}, desk={}, posts={})
    now = datetime.now(UTC)
    ahead = now + timedelta(seconds=settings.max_future_seconds)  # as far as a source's clock is trusted
    outcomes, times = [], []
    for offset, (at, received) in enumerate([(now, now), (FAR, FAR), (ahead, now)]):
        observation = route(_record(offset, at, received), settings)
        assert isinstance(observation, Observation)
        outcomes.append(watch.add(observation, partition=0, offset=offset))
        watch.advance(observation.event_time, now=now)
        times.append(observation.event_time)

    assert times[1] <= time.time() + settings.max_future_seconds  # counted as if dated `ahead`
    assert outcomes == [Counted.COUNTED] * 3
    assert watch.totals()["late"] == 0
