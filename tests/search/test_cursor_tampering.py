"""A cursor edited by hand is a "malformed cursor", never a query the search engine refuses.

The fingerprint binds a cursor to its query, not its content: a caller can change the
snapshot time or the word weights and keep the fingerprint.
"""

import pytest

from services.search.query import Cursor, CursorError, decode_cursor, encode_cursor

AFTER = [1.5, 1700000000000, "abc"]


@pytest.mark.parametrize("snapshot", ["2026-12-01T00:00:00+23:59", "2026-12-01T00:00:00-19:00",
                                      "2026-12-01T00:00:00", "2026-12-01"])
def test_a_snapshot_the_search_engine_cannot_compare_is_malformed(snapshot: str) -> None:
    cursor = encode_cursor(Cursor(AFTER, snapshot, None), fingerprint="f1")
    with pytest.raises(CursorError, match="malformed"):
        decode_cursor(cursor, fingerprint="f1", width=3)


@pytest.mark.parametrize("weights", [[1e308, 1.0], [-5.0, 0.0], [0.7, 101.0]])
def test_weights_outside_what_a_first_page_computes_are_malformed(weights: list[float]) -> None:
    cursor = encode_cursor(Cursor(AFTER, "2026-12-01T00:00:00+00:00", weights), fingerprint="f1")
    with pytest.raises(CursorError, match="malformed"):
        decode_cursor(cursor, fingerprint="f1", width=3)


def test_a_cursor_as_a_first_page_makes_it_is_read() -> None:
    made = Cursor(AFTER, "2026-12-01T08:00:00.123456+08:00", [0.0741, 0.6931, 25.0])
    assert decode_cursor(encode_cursor(made, fingerprint="f1"), fingerprint="f1", width=3) == made
