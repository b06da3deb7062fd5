"""Times written to and asked of Elasticsearch: any RFC 3339 offset is one it reads."""

from datetime import UTC, datetime, timedelta, timezone

from services.search.documents import to_document
from services.search.mappings import es_time
from services.search.query import range_filter
from tests.search.factory import make_post

MOMENT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_a_time_keeps_its_offset_when_elasticsearch_reads_it() -> None:
    assert es_time(MOMENT.astimezone(timezone(timedelta(hours=8)))) == "2026-11-28T20:00:00+08:00"
    assert es_time(MOMENT.astimezone(timezone(timedelta(hours=-18)))) == "2026-11-27T18:00:00-18:00"


def test_an_offset_beyond_18_hours_is_written_in_utc() -> None:
    for hours, minutes in ((23, 59), (-23, -59), (18, 1)):
        far = MOMENT.astimezone(timezone(timedelta(hours=hours, minutes=minutes)))
        assert es_time(far) == "2026-11-28T12:00:00+00:00"


def test_documents_and_range_filters_use_readable_offsets() -> None:
    far = MOMENT.astimezone(timezone(timedelta(hours=-19)))
    post = make_post("停电了", external_id="far-offset", created_at=far, received_at=far)
    document = to_document(post)
    assert document["created_at"] == document["received_at"] == "2026-11-28T12:00:00+00:00"
    assert range_filter("created_at", far, None) == [
        {"range": {"created_at": {"gte": "2026-11-28T12:00:00+00:00"}}}]
