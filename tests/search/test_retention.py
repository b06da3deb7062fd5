from datetime import UTC, datetime

import pytest

from services.search.es import apply_retention, ensure_templates, expired_indices, make_client
from services.search.mappings import posts_alias, templates
from yuqing.settings import ElasticsearchSettings

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
