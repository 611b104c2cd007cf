from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offerloop.core.money import CurrencyMismatch, Money, currency_code, exponent, total


def usd(amount: int) -> Money:
    return Money("USD", amount)


# --- currency validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["usd", " USD ", "Usd"])
def test_currency_codes_are_normalised(raw: str) -> None:
    assert Money(raw, 1).currency == "USD"
    assert currency_code(raw) == "USD"


@pytest.mark.parametrize("raw", ["", "US", "USDX", "U1D", "US$", "€"])
def test_malformed_currency_codes_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(raw, 1)


@pytest.mark.parametrize("amount", [1.0, Decimal(1), "1", True, None])
def test_amounts_are_integer_minor_units(amount: object) -> None:
    with pytest.raises(TypeError):
        Money("USD", amount)  # type: ignore[arg-type]


def test_exponents() -> None:
    assert (exponent("USD"), exponent("EUR"), exponent("JPY"), exponent("KWD")) == (2, 2, 0, 3)
    assert exponent("jpy") == 0


# --- currencies never mix --------------------------------------------------------------------------


def test_mixing_currencies_is_refused() -> None:
    eur = Money("EUR", 100)
    with pytest.raises(CurrencyMismatch):
        usd(100) + eur
    with pytest.raises(CurrencyMismatch):
        usd(100) - eur
    with pytest.raises(CurrencyMismatch):
        total([usd(1), eur], "USD")
    with pytest.raises(CurrencyMismatch):
        total([eur], "USD")


def test_arithmetic_within_one_currency() -> None:
    assert usd(4900) + usd(100) == usd(5000)
    assert usd(100) - usd(4900) == usd(-4800)
    assert -usd(5) == usd(-5)
    assert usd(4900).times(3) == usd(14700)
    assert total([usd(1), usd(2), usd(-4)], "USD") == usd(-1)
    assert total([], "usd") == Money.zero("USD")
    assert usd(1) < usd(2)


def test_ordering_across_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = usd(1) < Money("EUR", 100)


# --- percent: half to even on the minor unit ------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (50, 1, 0),  # 0.5 -> 0
        (150, 1, 2),  # 1.5 -> 2
        (250, 1, 2),  # 2.5 -> 2
        (350, 1, 4),  # 3.5 -> 4
        (-150, 1, -2),  # -1.5 -> -2
        (-50, 1, 0),  # -0.5 -> 0
        (51, 1, 1),  # 0.51 -> 1
        (4900, 20, 980),
        (3920, 8, 314),  # 313.6
        (4234, "2.9", 123),  # 122.786
        (500, "2.9", 14),  # 14.5 -> 14
        (1500, "2.9", 44),  # 43.5 -> 44
        (4900, Decimal("12.5"), 612),  # 612.5 -> 612
        (4900, 0, 0),
        (4900, 100, 4900),
    ],
)
def test_percent_rounds_half_to_even(amount: int, rate: Decimal | str | int, expected: int) -> None:
    assert usd(amount).percent(rate) == usd(expected)


def test_percent_in_basis_points() -> None:
    assert usd(5).percent(1000, basis_points=True) == usd(0)  # 0.5
    assert usd(15).percent(1000, basis_points=True) == usd(2)  # 1.5
    assert usd(4900).percent(290, basis_points=True) == usd(142)  # 142.1


# --- allocate: every minor unit goes somewhere --------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (5, [1, 1], [3, 2]),  # tie: the earlier part gets the unit
        (10, [1, 2], [3, 7]),  # 3.33 / 6.67: the larger remainder wins
        (1, [1, 1, 1], [1, 0, 0]),
        (1000, [70, 30], [700, 300]),
        (1000, [3920, 314], [926, 74]),  # 925.84 / 74.16
        (7, [0, 1], [0, 7]),
        (0, [1, 2], [0, 0]),
        (-5, [1, 1], [-2, -3]),  # floors then the unit to the earliest of equal remainders
        (10, [Fraction(1, 3), Fraction(2, 3)], [3, 7]),
    ],
)
def test_allocate_hand_checked(amount: int, weights: list[int | Fraction], expected: list[int]) -> None:
    parts = usd(amount).allocate(weights)
    assert parts == [usd(x) for x in expected]
    assert sum(p.amount for p in parts) == amount


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_bad_weights(weights: list[int | Fraction]) -> None:
    with pytest.raises(ValueError):
        usd(100).allocate(weights)


@given(
    amount=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8).filter(
        lambda w: sum(w) > 0
    ),
)
def test_allocate_parts_sum_exactly_and_stay_close(amount: int, weights: list[int]) -> None:
    parts = usd(amount).allocate(weights)
    assert len(parts) == len(weights)
    assert sum(p.amount for p in parts) == amount
    assert all(p.currency == "USD" for p in parts)
    for part, w in zip(parts, weights, strict=True):
        assert abs(Fraction(part.amount) - Fraction(amount * w, sum(weights))) < 1


# --- format ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (usd(4900), "USD 49.00"),
        (usd(5), "USD 0.05"),
        (usd(0), "USD 0.00"),
        (usd(-4900), "USD -49.00"),
        (usd(-5), "USD -0.05"),
        (Money("JPY", 4900), "JPY 4900"),
        (Money("JPY", -4900), "JPY -4900"),
        (Money("KWD", 1234), "KWD 1.234"),
        (Money("KWD", 5), "KWD 0.005"),
        (Money("KWD", -1005), "KWD -1.005"),
    ],
)
def test_format(money: Money, text: str) -> None:
    assert money.format() == text


@pytest.mark.parametrize("code", ["XOF", "XAF", "UGX", "PYG", "RWF"])
def test_zero_decimal_currencies_outside_the_table(code: str) -> None:
    assert exponent(code) == 0
    assert Money(code, 5000).format() == f"{code} 5000"
