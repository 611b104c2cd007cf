"""ISO 4217 currencies and their minor units: the one table every part of offerloop reads.

Active codes and their minor-unit exponents are those of the published ISO 4217 list one (list of
current currencies and funds, published 2024-06-25) plus XCG (Caribbean guilder), added in 2025.
Codes whose minor unit the list gives as "N.A." (gold, SDR, XTS, XXX, ...) are not money and are left
out. ``WITHDRAWN`` holds recently withdrawn codes (list three) that spreadsheets exported before the
change still carry: only imports of past orders accept them, never a new price, checkout or query.

Where a payment provider counts an amount in another unit than ISO (Stripe counts MGA in whole
ariary and ISK in hundredths of a krona), the provider converts at its boundary; the ISO exponent is
what amounts mean everywhere inside offerloop.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

from offerloop.core.errors import ValidationFailed

_ISO_4217: Final = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD "
        "BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD "
        "EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR "
        "IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP "
        "MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN "
        "QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB "
        "TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW "
        "ZWG"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
_WITHDRAWN: Final = {0: "BYR", 2: "EEK HRK LTL LVL MRO SLL STD VEF ZWL"}


def _table(groups: dict[int, str]) -> dict[str, int]:
    return {code: digits for digits, codes in groups.items() for code in codes.split()}


ACTIVE: Final[dict[str, int]] = _table(_ISO_4217)  # code -> minor-unit exponent (USD 2, JPY 0, KWD 3)
WITHDRAWN: Final[dict[str, int]] = _table(_WITHDRAWN)

_SHAPE = re.compile(r"^[A-Z]{3}$")


class InvalidCurrency(ValidationFailed, ValueError):
    """Not an ISO 4217 currency code (422 ``invalid_currency``); a ValueError for pure callers."""

    code = "invalid_currency"

    def __init__(self, value: object) -> None:
        shown = repr(value[:40] + "…" if isinstance(value, str) and len(value) > 40 else value)
        super().__init__(
            f"not an ISO 4217 currency code: {shown} (use an active code such as USD, EUR or JPY)",
            details={"currency": shown},
        )


def normalize(value: object, *, withdrawn: bool = False) -> str:
    """The ISO 4217 code for ``value`` (case and surrounding space ignored), or InvalidCurrency.

    Only active codes are accepted unless ``withdrawn`` (imports of past orders).
    """
    if not isinstance(value, str):
        raise InvalidCurrency(value)
    code = value.strip().upper()
    if _SHAPE.match(code) and (code in ACTIVE or (withdrawn and code in WITHDRAWN)):
        return code
    raise InvalidCurrency(value)


def is_active(value: object) -> bool:
    return isinstance(value, str) and value in ACTIVE


def exponent(code: str) -> int:
    """Digits after the decimal point of the currency's minor unit (USD 2, JPY 0, KWD 3, MGA 2)."""
    found = ACTIVE.get(code, WITHDRAWN.get(code))
    if found is None:
        return ACTIVE[normalize(code)]
    return found


# Payment providers whose API counts an amount in another unit than ISO 4217. Stripe: MGA in whole ariary
# (a zero-decimal currency there), ISK in hundredths of a krona ("two-decimal for backwards compatibility").
PROVIDER_EXPONENTS: Final[dict[str, dict[str, int]]] = {"stripe": {"ISK": 2, "MGA": 0}}


def _provider_shift(provider: str, code: str) -> int:
    """ISO digits minus the provider's digits for ``code``: 0 where they count alike."""
    theirs = PROVIDER_EXPONENTS.get(provider, {}).get(code.upper())
    return 0 if theirs is None else exponent(code.upper()) - theirs


def to_provider_units(provider: str, code: str, amount: int) -> int | None:
    """``amount`` (ISO minor units) in the provider's API unit, or None when it cannot be expressed there."""
    shift = _provider_shift(provider, code)
    if shift <= 0:
        return amount * int(10**-shift)
    whole, rest = divmod(amount, int(10**shift))
    return None if rest else whole


def from_provider_units(provider: str, code: str, amount: int) -> int:
    """An amount the provider reported, in ISO minor units (a fraction of the ISO unit rounds half to even)."""
    shift = _provider_shift(provider, code)
    if shift >= 0:
        return amount * int(10**shift)
    return round(Fraction(amount, int(10**-shift)))
