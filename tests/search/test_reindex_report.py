"""What a re-index reports of the messages Elasticsearch refused: each counted, the first kept."""

from __future__ import annotations

from services.search.reindex import KEPT_REJECTIONS, ReindexReport


def test_refused_messages_are_counted_and_the_first_ones_kept_with_their_reason() -> None:
    # a re-index refused throughout (a mapping from another version) kept a reason for each of
    # millions of messages
    report = ReindexReport()

    for offset in range(KEPT_REJECTIONS * 3):
        report.reject("posts.enriched", 0, offset, "elasticsearch 400: mapper_parsing_exception")

    assert report.rejected_count == KEPT_REJECTIONS * 3
    assert [offset for _, _, offset, _ in report.rejected] == list(range(KEPT_REJECTIONS))
