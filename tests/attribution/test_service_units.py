"""The store's conversion and touch rules, without a database: offerloop's own channels, conversion values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from offerloop.attribution import service
from offerloop.attribution.exceptions import AttributionInputError

AT = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("channel", "source", "medium", "expected"),
    [
        ("email", "offerloop", "email", "email"),
        ("referral", "offerloop", "push", "push"),
        ("referral", "offerloop", "inapp", "in_app"),
        ("referral", "offerloop", "webhook", "referral"),  # not a buyer-facing click channel
        ("social", "instagram", "social", "social"),
        ("referral", "partner", "push", "referral"),  # only offerloop's own links are renamed
    ],
)
def test_own_clicks_are_their_channel(channel: str, source: str, medium: str, expected: str) -> None:
    touch = service._touch(("b1", AT, channel, source, medium, "welcome", "step1"))
    assert (touch.channel, touch.source, touch.campaign, touch.content) == (
        expected,
        source,
        "welcome",
        "step1",
    )


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"total_minor": 4900, "currency": "usd"}, (4900, "USD")),
        ({"revenue": "49.00", "currency": "EUR"}, (4900, "EUR")),
        ({"revenue": 1500, "currency": "JPY"}, (1500, "JPY")),
        ({"total": "12.345", "currency": "KWD"}, (12345, "KWD")),
        ({"value": 3}, (300, None)),
        ({"revenue": "n/a", "currency": "USD"}, (0, "USD")),
        ({"total_minor": True, "revenue": "1"}, (100, None)),
        ({"revenue": "1", "currency": "XXQ"}, (0, "XXQ")),
        ({}, (0, None)),
    ],
)
def test_conversion_value(props: dict[str, Any], expected: tuple[int, str | None]) -> None:
    assert service._value(props) == expected


def test_split_gives_each_conversion_its_touches_since_the_previous_one() -> None:
    def t(day: int, ch: str) -> service.Touch:
        return service.Touch(datetime(2026, 11, day, tzinfo=UTC), ch, None, None, None)

    touches = [t(1, "a"), t(2, "b"), t(4, "c"), t(9, "d"), t(12, "e")]
    convs = [service.Conversion("o1", "b1", datetime(2026, 11, 3, tzinfo=UTC), 1, "USD"),
             service.Conversion("o2", "b1", datetime(2026, 11, 10, tzinfo=UTC), 1, "USD")]  # fmt: skip
    rest = service._split(touches, convs, datetime(2026, 11, 1, tzinfo=UTC), timedelta(days=5), None)
    assert [x.channel for x in convs[0].touches] == ["a", "b"]
    assert [x.channel for x in convs[1].touches] == [
        "d"
    ]  # c (11-04) is 6 days before o2: outside the lookback
    assert rest is not None and [x.channel for x in rest] == ["e"]


def test_period_defaults_and_bounds() -> None:
    today = date(2026, 12, 6)
    assert service.period(None, None, today=today) == (
        datetime(2026, 11, 7, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC),
    )  # fmt: skip
    with pytest.raises(AttributionInputError, match="after end"):
        service.period(date(2026, 12, 2), date(2026, 12, 1), today=today)
    with pytest.raises(AttributionInputError, match="between 1970-01-01 and 2100-12-31"):
        service.period(None, date(9999, 12, 31), today=today)
    with pytest.raises(AttributionInputError, match="at most 3660 days"):
        service.period(date(1990, 1, 1), date(2026, 1, 1), today=today)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"revenue": "1e999999999", "currency": "USD"}, (0, "USD")),
        ({"total": "1e400"}, (0, None)),
        ({"total_minor": "1e400"}, (0, None)),
        ({"total_minor": 10**15 + 1}, (0, None)),
        ({"revenue": 1e300, "currency": "USD"}, (0, "USD")),
        ({"revenue": "NaN"}, (0, None)),
        ({"total": "-Infinity"}, (0, None)),
        ({"total_minor": 1000.0}, (1000, None)),
        ({"total_minor": "1000"}, (1000, None)),
        ({"total_minor": " 2500 ", "revenue": "1"}, (2500, None)),
        ({"total_minor": -500, "currency": "USD"}, (0, "USD")),
        ({"revenue": "-5.00", "currency": "USD"}, (0, "USD")),
        ({"total_minor": [1], "revenue": "2"}, (200, None)),
        ({"total_minor": 10**15}, (10**15, None)),
    ],
)
def test_conversion_value_is_read_defensively(
    props: dict[str, Any], expected: tuple[int, str | None]
) -> None:
    # F1 / F7: absurd values count as 0; integral floats and numeric strings are minor units; negative is 0.
    assert service._value(props) == expected


def test_long_order_ids_stay_distinct() -> None:
    # F7: two ids longer than the stored 120 characters sharing their first 120 are two orders.
    a, b = "x" * 120 + "a", "x" * 120 + "b"
    assert service.order_key(a) != service.order_key(b)
    assert all(len(k or "") <= 120 for k in (service.order_key(a), service.order_key(b)))
    assert (service.order_key("o1"), service.order_key(7), service.order_key(True), service.order_key("")) == (
        "o1", "7", None, None,
    )  # fmt: skip
