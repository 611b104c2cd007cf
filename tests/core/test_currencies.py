"""The ISO 4217 table: active codes with their published minor units, and nothing else."""

from __future__ import annotations

import pytest

from offerloop.core import currencies
from offerloop.core.errors import OfferloopError
from offerloop.core.money import Money, currency_code, exponent


@pytest.mark.parametrize(
    ("code", "digits"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0), ("UGX", 0), ("CLP", 0), ("MGA", 2),
     ("MRU", 2), ("KWD", 3), ("BHD", 3), ("TND", 3), ("CLF", 4), ("UYW", 4), ("XCG", 2), ("ZWG", 2),
     ("SLE", 2), ("VED", 2)],
)  # fmt: skip
def test_minor_units_are_the_published_ones(code: str, digits: int) -> None:
    assert (currencies.ACTIVE[code], exponent(code), currencies.exponent(code)) == (digits, digits, digits)


def test_the_table_has_every_active_code_once_and_only_three_letter_codes() -> None:
    assert len(currencies.ACTIVE) == 167
    assert sum(len(codes.split()) for codes in currencies._ISO_4217.values()) == 167  # no code twice
    assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in currencies.ACTIVE)
    assert set(currencies.ACTIVE.values()) == {0, 2, 3, 4}
    assert not set(currencies.ACTIVE) & set(currencies.WITHDRAWN)


@pytest.mark.parametrize(
    "raw",
    [
        "XYZ",
        "ABC",
        "QQQ",
        "XAU",
        "XDR",
        "XXX",
        "XTS",
        "HRK",
        "ZWL",
        "SLL",
        "",
        "US",
        "USDX",
        "U1D",
        "€",
        None,
        840,
    ],
)
def test_codes_that_are_not_active_currencies_are_refused_naming_the_code(raw: object) -> None:
    with pytest.raises(currencies.InvalidCurrency) as info:
        currency_code(raw)  # type: ignore[arg-type]
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, OfferloopError)
    assert (error.status_code, error.code) == (422, "invalid_currency")
    assert error.message.startswith(f"not an ISO 4217 currency code: {raw!r} ")
    if raw not in currencies.WITHDRAWN:
        with pytest.raises(ValueError, match="ISO 4217"):
            Money(raw, 1)  # type: ignore[arg-type]


def test_withdrawn_codes_only_where_past_orders_are_read() -> None:
    assert currencies.normalize(" hrk ", withdrawn=True) == "HRK"
    assert Money("hrk", 1999).format() == "HRK 19.99"  # booked before the euro: still readable
    assert currencies.exponent("HRK") == 2 and currencies.exponent("BYR") == 0
    with pytest.raises(currencies.InvalidCurrency):
        currencies.normalize("XYZ", withdrawn=True)


def test_formatting_uses_the_table() -> None:
    assert Money("MGA", 160000).format() == "MGA 1600.00"
    assert Money("JPY", 4900).format() == "JPY 4900"
    assert Money("KWD", 12345).format() == "KWD 12.345"
    assert Money("CLF", 12345).format() == "CLF 1.2345"
