from __future__ import annotations

import pytest

from offerloop.core.pages import InvalidCursor, Page, decode_cursor, encode_cursor, page_of


def test_a_cursor_round_trips_its_sort_key() -> None:
    cursor = encode_cursor(["2026-12-06T00:00:00+00:00", "ord_1"])
    assert decode_cursor(cursor, types=(str, str)) == ("2026-12-06T00:00:00+00:00", "ord_1")
    assert decode_cursor(encode_cursor([41]), types=(int,)) == (41,)
    assert decode_cursor(None, types=(int,)) is None
    assert decode_cursor("", types=(int,)) is None


@pytest.mark.parametrize(
    "cursor",
    ["%%%", "bm90IGpzb24", encode_cursor([1, 2]), encode_cursor(["x"]), encode_cursor([True]), "A" * 600],
)
def test_a_cursor_from_elsewhere_is_a_422(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(cursor, types=(int,))
    assert caught.value.status_code == 422
    assert caught.value.code == "invalid_cursor"


def test_the_extra_row_only_says_there_is_a_next_page() -> None:
    rows = [(5, "e"), (4, "d"), (3, "c")]
    page = page_of(rows, 2, key=lambda r: [r[0]], item=lambda r: r[1])
    assert page == Page[str](items=["e", "d"], next_cursor=encode_cursor([4]))
    last = page_of(rows[2:], 2, key=lambda r: [r[0]], item=lambda r: r[1])
    assert last == Page[str](items=["c"], next_cursor=None)


def test_error_responses_group_codes_by_status() -> None:
    from offerloop.core.errors import Conflict, ErrorBody, NotFound, error_responses

    class OrderNotFound(NotFound):
        code = "order_not_found"

    assert error_responses(OrderNotFound, NotFound, Conflict, OrderNotFound) == {
        404: {"model": ErrorBody, "description": "code: `order_not_found`, `not_found`"},
        409: {"model": ErrorBody, "description": "code: `conflict`"},
    }
