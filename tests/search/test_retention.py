from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.search.bulk import PipelinedWriter
from services.search.es import apply_retention, ensure_templates, expired_indices, make_client
from services.search.issue_live import LiveIssues
from services.search.mappings import (
    OutsideRetentionError,
    posts_alias,
    posts_index,
    retained_posts_index,
    templates,
)
from services.search.settings import SearchSettings
from tests.search.factory import as_messages, make_post
from tests.test_cli import _yuqing
from yuqing.contracts.limits import INDEX_KEPT_MONTHS, RETENTION_GRACE, first_kept_instant
from yuqing.settings import ElasticsearchSettings
from yuqing.topics import LogicalTopic, topic_spec

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def test_whole_months_older_than_the_kept_ones_expire():
    months = {f"yq-posts-v1-2026.{m:02d}": datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 12)}
    months["yq-posts-v0-2025.12"] = datetime(2025, 12, 1, tzinfo=UTC)
    assert expired_indices(months, keep_months=3, now=NOW) == [
        "yq-posts-v0-2025.12", *[f"yq-posts-v1-2026.{m:02d}" for m in range(1, 9)]]
    assert expired_indices(months, keep_months=24, now=NOW) == []


def test_indices_of_impossible_months_expire_too():
    months = {"yq-posts-v1-1.01": datetime(1, 1, 1, tzinfo=UTC),
              "yq-posts-v1-5138.11": datetime(5138, 11, 1, tzinfo=UTC),
              "yq-posts-v1-2026.12": datetime(2026, 12, 1, tzinfo=UTC),
              "yq-posts-v1-2027.01": datetime(2027, 1, 1, tzinfo=UTC)}
    assert expired_indices(months, keep_months=13, now=NOW) == [
        "yq-posts-v1-1.01", "yq-posts-v1-2027.01", "yq-posts-v1-5138.11"]


@pytest.mark.integration
def test_retention_deletes_old_monthly_indices_only(es_settings: ElasticsearchSettings):
    es = make_client(es_settings)
    prefix = es_settings.index_prefix
    ensure_templates(es, es_settings)
    try:
        for month in ("1.01", "2026.08", "2026.10", "2026.11", "5138.11"):
            es.indices.create(index=f"{prefix}-posts-v1-{month}")
        oldest = [f"{prefix}-posts-v1-{month}" for month in ("1.01", "2026.08", "5138.11")]
        assert apply_retention(es, prefix, keep_months=2, now=NOW, dry_run=True) == oldest
        assert apply_retention(es, prefix, keep_months=2, now=NOW) == oldest
        left = set(es.indices.get_alias(index=posts_alias(prefix)))
        assert left == {f"{prefix}-posts-v1-2026.10", f"{prefix}-posts-v1-2026.11"}
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore=404)
        for name in templates(prefix):
            es.indices.delete_index_template(name=name, ignore=404)


def test_a_retention_below_the_months_the_edge_admits_is_refused() -> None:
    # 6 months were accepted while the edge answered 202 to back-filled posts of the 13 latest:
    # the indexer dead-lettered those of the 7 months before, never searchable
    with pytest.raises(ValidationError, match="YUQING_SEARCH_RETENTION_MONTHS=6 is below the 13 months"):
        SearchSettings(retention_months=6)
    assert SearchSettings(retention_months=13).retention_months == 13
    assert SearchSettings(retention_months=24).retention_months == 24


@pytest.mark.parametrize("command", [["search", "indexer"], ["search", "serve"], ["search", "retention"]])
def test_the_search_commands_refuse_it_at_start_in_one_line(command: list[str], tmp_path: Path) -> None:
    done = _yuqing(*command, env={"YUQING_SEARCH_RETENTION_MONTHS": "6", "YUQING_HOME": str(tmp_path)})

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: SearchSettings: retention_months: Value error, YUQING_SEARCH_RETENTION_MONTHS=6 is below "
        "the 13 months the ingest edge admits (yuqing publish back-fills and YUQING_INGEST_EVENT_MAX_AGE_S "
        "reach back that far): posts it accepted would be dropped; keep 13 or more"]


@pytest.mark.integration
def test_retention_run_with_fewer_months_deletes_nothing(es_settings: ElasticsearchSettings,
                                                         tmp_path: Path) -> None:
    es = make_client(es_settings)
    prefix = es_settings.index_prefix
    ensure_templates(es, es_settings)
    month = datetime.now(UTC).replace(day=1)
    eight_months_ago = f"{month.year - (month.month <= 8)}.{(month.month - 9) % 12 + 1:02d}"
    try:
        es.indices.create(index=f"{prefix}-posts-v1-{eight_months_ago}")

        done = _yuqing("search", "retention", "--keep-months", "6",
                       env={"YUQING_ES_INDEX_PREFIX": prefix, "YUQING_ES_URL": es_settings.url,
                            "YUQING_HOME": str(tmp_path)})

        assert done.returncode == 1 and done.stderr.startswith("error: --keep-months=6 is below the 13"), done
        assert es.indices.exists(index=f"{prefix}-posts-v1-{eight_months_ago}")
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore=404)
        for name in templates(prefix):
            es.indices.delete_index_template(name=name, ignore=404)


def test_a_retention_reaching_back_before_the_year_1_is_refused(tmp_path: Path) -> None:
    # accepted, it failed the first month kept of every post ("year -473 is out of range"): the
    # indexer stopped uncommitted on its first batch after every restart and indexed nothing
    assert SearchSettings(retention_months=1_200).retention_months == 1_200
    with pytest.raises(ValidationError, match="YUQING_SEARCH_RETENTION_MONTHS=30000 reaches back before"):
        SearchSettings(retention_months=30_000)
    done = _yuqing("search", "indexer", env={"YUQING_SEARCH_RETENTION_MONTHS": "30000",
                                             "YUQING_HOME": str(tmp_path)})
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: SearchSettings: retention_months: Value error, YUQING_SEARCH_RETENTION_MONTHS=30000 "
        "reaches back before the year 1; keep at most 1200 (100 years)"]


def _month_ends() -> list[datetime]:
    """The last second of every month of two years (a leap year among them)."""
    starts = [datetime(year, month, 1, tzinfo=UTC) for year in (2027, 2028) for month in range(1, 13)]
    return [start - timedelta(seconds=1) for start in starts]


def test_the_oldest_month_the_edge_admitted_before_the_turn_is_kept_for_the_grace() -> None:
    # a post answered 202 at 23:59:59 on a month's last day, dated in the oldest kept month, was
    # dead-lettered when indexed a second after midnight, and the retention job deleted its month
    for admitted_at in _month_ends():
        post_time = first_kept_instant(admitted_at, INDEX_KEPT_MONTHS)
        index = f"yq-posts-v1-{post_time:%Y.%m}"
        for later in (timedelta(seconds=1), timedelta(hours=3, minutes=30), RETENTION_GRACE):
            now = admitted_at + later
            assert retained_posts_index("yq", post_time, keep_months=INDEX_KEPT_MONTHS, now=now) == index
            assert expired_indices({index: post_time}, keep_months=INDEX_KEPT_MONTHS, now=now) == []
        after = admitted_at + RETENTION_GRACE + timedelta(days=1)
        with pytest.raises(OutsideRetentionError, match="14 days back"):
            retained_posts_index("yq", post_time, keep_months=INDEX_KEPT_MONTHS, now=after)
        assert expired_indices({index: post_time}, keep_months=INDEX_KEPT_MONTHS, now=after) == [index]


def test_the_grace_is_as_long_as_posts_enriched_keeps_a_post() -> None:
    # a post not indexed within the grace is gone from Kafka as well: no longer grace is needed
    retention_ms = topic_spec(LogicalTopic.POSTS_ENRICHED).retention_ms
    assert timedelta(milliseconds=retention_ms) == RETENTION_GRACE


@pytest.mark.integration
def test_a_post_admitted_before_the_turn_and_indexed_after_it_is_written_and_kept(
        es_settings: ElasticsearchSettings) -> None:
    es, prefix = make_client(es_settings), es_settings.index_prefix
    ensure_templates(es, es_settings)
    admitted_at = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    post = make_post("河口镇去年的停电", external_id="turn-1", received_at=admitted_at,
                     created_at=first_kept_instant(admitted_at, INDEX_KEPT_MONTHS) + timedelta(days=3))
    indexed_at = admitted_at + timedelta(minutes=5)
    writer = PipelinedWriter(es, prefix, issues=LiveIssues(), clock=lambda: indexed_at)
    try:
        outcome = writer.write(as_messages([post]))
    finally:
        writer.close()

    assert (outcome.indexed, outcome.rejected) == (1, [])
    index = posts_index(prefix, post.created_at)
    assert apply_retention(es, prefix, keep_months=INDEX_KEPT_MONTHS,
                           now=admitted_at + timedelta(hours=3, minutes=31)) == []
    es.indices.refresh(index=index)
    assert es.get(index=posts_alias(prefix), id=post.post_id)["_source"]["external_id"] == "turn-1"
    after_grace = admitted_at + RETENTION_GRACE + timedelta(days=1)
    assert apply_retention(es, prefix, keep_months=INDEX_KEPT_MONTHS, now=after_grace) == [index]
