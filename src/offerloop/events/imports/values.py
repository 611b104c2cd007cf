"""Values: cells parsed into what a message carries (timestamps, amounts in minor units, currencies)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from offerloop.core import currencies

_TRUE: Final = frozenset({"yes", "y", "true", "1"})
_FALSE: Final = frozenset({"no", "n", "false", "0"})
_COMPLETED: Final = frozenset(
    {"completed", "complete", "paid", "succeeded", "success", "successful", "fulfilled"}
)
_REFUNDED: Final = frozenset({"refunded", "refund", "fully_refunded"})

_DEFAULT_CURRENCY: Final = "USD"
_MAX_MINOR: Final = 2**63 - 1

_YEAR_FIRST = re.compile(r"^\d{4}-?\d{2}")
_TZ_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)
_MONEY = re.compile(
    r"""^
    (?P<open>\()?\s*
    (?P<sign1>[-+\u2212])?\s*
    (?P<pre>[A-Za-z]{0,3}\$|[€£¥₩₹₽₺₪₫₱฿₦₴]|[A-Za-z]{3}(?=[\s\d]))?\s*
    (?P<sign2>[-+\u2212])?\s*
    (?P<num>(?:\d|[.,](?=\d))[\d.,'\x20\u00a0\u202f]*)
    (?P<post>[€£¥₩₹₽₺₪₫₱฿₦₴$]|[A-Za-z]{3})?\s*
    (?P<sign3>-)?\s*
    (?P<close>\))?
    $""",
    re.VERBOSE,
)
_GROUP_CHARS = re.compile(r"[.,'\x20\u00a0\u202f]")


class _Invalid(ValueError):
    """One field's value is unusable: ``code`` and a message for the person fixing the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _clip(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


# --------------------------------------------------------------------------------------------------------
# Values


def _parse_timestamp(raw: str) -> datetime:
    text = _TZ_WORD.sub("", raw.strip())
    explain = f"{_clip(raw)} is not a date; use ISO 8601 like 2024-03-01 or 2024-03-01T12:30:00Z"
    if not _YEAR_FIRST.match(text):
        raise _Invalid("invalid_timestamp", explain)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid("invalid_timestamp", explain) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if not 1970 <= parsed.year <= 2100:
        raise _Invalid("invalid_timestamp", f"{_clip(raw)} is outside 1970-2100")
    return parsed


def _iso(moment: datetime) -> str:
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def _parse_decimal(raw: str, group_hint: str, currency: str | None) -> Decimal:
    """A non-negative decimal as written (``1,299.50``, ``$49``, ``1.299,50 €``); never via float."""
    bad = _Invalid("invalid_amount", f"{_clip(raw)} is not an amount; write it like 49, 49.00 or 1,299.50")
    match = _MONEY.match(raw.strip())
    if not match:
        raise bad
    if bool(match["open"]) != bool(match["close"]):
        raise bad
    signs = [s for s in (match["sign1"], match["sign2"], match["sign3"]) if s]
    if len(signs) > 1 or (match["pre"] and match["post"]):
        raise bad
    for code in (match["pre"], match["post"]):
        if code and code.isalpha() and currency is not None and code.upper() != currency:
            raise _Invalid(
                "invalid_amount", f"{_clip(raw)} is in {code.upper()} but the currency is {currency}"
            )
        if code and code.isalpha() and not _known_currency(code):
            raise bad
    if match["open"] or (signs and signs[0] != "+"):
        raise _Invalid(
            "invalid_amount",
            f"{_clip(raw)} is negative; amounts must be positive (a refund is a row with status refunded)",
        )

    number = match["num"].rstrip(" \u00a0\u202f")
    dots, commas = number.count("."), number.count(",")
    decimal_sep: str | None = None
    if dots and commas:
        decimal_sep = "." if number.rfind(".") > number.rfind(",") else ","
        if number.count(decimal_sep) > 1:
            raise bad
    elif dots or commas:
        sep = "." if dots else ","
        if number.count(sep) == 1:
            after = len(number) - number.index(sep) - 1
            ambiguous = after == 3 and number.index(sep) > 0
            decimal_sep = None if ambiguous and sep == group_hint else sep
    whole, fraction = number.rsplit(decimal_sep, 1) if decimal_sep else (number, "")
    if not fraction.isdigit() and fraction:
        raise bad
    groups = _GROUP_CHARS.split(whole)
    separators = set(_GROUP_CHARS.findall(whole))
    if len(groups) > 1 and (
        len(separators) > 1 or not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])
    ):
        raise bad
    digits = "".join(groups)
    if (digits and not digits.isdigit()) or not (digits or fraction):
        raise bad
    return Decimal(f"{digits or '0'}.{fraction}" if fraction else digits)


def _known_currency(code: str) -> bool:
    try:
        currencies.normalize(code, withdrawn=True)
    except currencies.InvalidCurrency:
        return False
    return True


def _to_minor(value: Decimal, raw: str, currency: str) -> int:
    places = currencies.exponent(currency)
    exponent = value.as_tuple().exponent
    written = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if written > places:
        if places == 0:
            why = f"{currency} has no minor unit; write {_clip(raw)} without decimals"
        else:
            why = f"{_clip(raw)} has {written} decimals but {currency} has {places}"
        raise _Invalid("invalid_amount", why)
    minor = int(value.scaleb(places))
    if minor > _MAX_MINOR:
        raise _Invalid("invalid_amount", f"{_clip(raw)} is too large")
    return minor


def _major(minor: int, places: int) -> str:
    if places == 0:
        return str(minor)
    units, cents = divmod(minor, 10**places)
    return f"{units}.{cents:0{places}d}"
