"""A cursor's sort values edited by hand are a "malformed cursor", never a query that the
search engine refuses (which answered 400 "search_phase_execution_exception").

Every sort of the API is numbers (score, times in epoch milliseconds) then an id.
"""

import pytest

from services.search.query import Cursor, CursorError, decode_cursor, encode_cursor

SNAPSHOT = "2026-12-01T00:00:00+00:00"


@pytest.mark.parametrize("after", [["abc", "x"], ["", ""], [1700000000000, 5], ["2026-01-01", "x"],
                                   [1700000000000, None], [[1], "x"], [{"a": 1}, "x"]])
def test_sort_values_of_the_wrong_kind_are_malformed(after: list[object]) -> None:
    cursor = encode_cursor(Cursor(after, SNAPSHOT), fingerprint="f1")
    with pytest.raises(CursorError, match="malformed"):
        decode_cursor(cursor, fingerprint="f1", width=2)


@pytest.mark.parametrize("after", [[1700000000000, "67509b682df244b59f3047a38722f7bd"], [1e300, "x"],
                                   [-(2 ** 62), ""]])
def test_numbers_then_an_id_are_read(after: list[object]) -> None:
    cursor = encode_cursor(Cursor(after, SNAPSHOT), fingerprint="f1")
    assert decode_cursor(cursor, fingerprint="f1", width=2).after == after
