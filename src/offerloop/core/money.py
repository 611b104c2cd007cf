"""Money as integer minor units with an ISO 4217 currency: never floats.

Amounts of different currencies never mix; percentages round half to even on the minor unit; splitting
an amount (fees, refunds across lines, proration) allocates every minor unit, so parts always add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from offerloop.core import currencies
from offerloop.core.currencies import InvalidCurrency as InvalidCurrency


class CurrencyMismatch(ValueError):
    pass


MAX_MINOR = 10**15  # a reported order value beyond this (in minor units) is nonsense and counts as 0


def reported_number(raw: Any) -> Decimal | None:
    """A finite number within ±``MAX_MINOR`` from an int, a float or a numeric string in an event's properties
    (a client's report, not a booked amount); anything else is None."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        amount = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and amount.copy_abs() <= MAX_MINOR else None


def reported_minor(amount: Decimal | None) -> int:
    """A reported order value in minor units as it counts in reports: rounded to a whole minor unit, and 0 when
    missing, negative or beyond ``MAX_MINOR``."""
    if amount is None:
        return 0
    minor = int(amount.to_integral_value())
    return minor if 0 <= minor <= MAX_MINOR else 0


def currency_code(value: object) -> str:
    """The active ISO 4217 code for ``value`` (``"usd"`` -> ``"USD"``); InvalidCurrency (a ValueError) if none."""
    return currencies.normalize(value)


def exponent(currency: str) -> int:
    """Digits after the decimal point of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return currencies.exponent(currency)


@dataclass(frozen=True, slots=True)
class Money:
    currency: str
    amount: int  # minor units (cents)

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"money amounts are integer minor units, got {self.amount!r}")
        # Amounts already booked in a since-withdrawn currency (HRK before the euro) stay readable; every
        # door that takes a new currency (catalog, checkout, queries) calls currency_code: active codes only.
        object.__setattr__(self, "currency", currencies.normalize(self.currency, withdrawn=True))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(currency, 0)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.amount + other.amount)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.amount - other.amount)

    def __neg__(self) -> Money:
        return Money(self.currency, -self.amount)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def times(self, quantity: int) -> Money:
        return Money(self.currency, self.amount * quantity)

    def percent(self, rate: Decimal | str | int, *, basis_points: bool = False) -> Money:
        """``rate`` percent of this amount (or basis points), rounded half to even on the minor unit."""
        r = Decimal(str(rate)) / (Decimal(10_000) if basis_points else Decimal(100))
        value = (Decimal(self.amount) * r).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return Money(self.currency, int(value))

    def allocate(self, weights: Sequence[int | Fraction]) -> list[Money]:
        """Split into parts proportional to ``weights`` (largest remainder): the parts sum to this amount."""
        if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError("allocate needs non-negative weights with a positive sum")
        total = Fraction(sum(weights))
        exact = [Fraction(self.amount) * Fraction(w) / total for w in weights]
        floors = [int(e // 1) for e in exact]
        left = self.amount - sum(floors)
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in order[:left]:
            floors[i] += 1
        return [Money(self.currency, f) for f in floors]

    def format(self) -> str:
        """e.g. "USD 49.00", "JPY 4900"."""
        e = exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**e)
        return f"{self.currency} {sign}{whole}" + (f".{frac:0{e}d}" if e else "")


def total(items: Sequence[Money], currency: str) -> Money:
    out = Money.zero(currency)
    for m in items:
        out = out + m
    return out
