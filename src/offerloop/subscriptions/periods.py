"""Calendar arithmetic of subscription periods (monthly ones keep their billing anchor's day of month,
clamped to shorter months) and proration of a plan change over the rest of a period. Pure: no clock,
no database."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from offerloop.core.money import Money, currency_code
from offerloop.offers.catalog import Interval


def add_months(moment: datetime, months: int, *, anchor_day: int | None = None) -> datetime:
    """``moment`` plus ``months`` calendar months, on ``anchor_day`` (default: ``moment``'s day)
    clamped to the last day of the target month; the time of day is kept."""
    day = anchor_day if anchor_day is not None else moment.day
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(day, last))


def next_period_end(start: datetime, interval: Interval, *, anchor_day: int | None = None) -> datetime:
    """The end of a billing period starting at ``start``."""
    return add_months(start, 1 if interval == "month" else 12, anchor_day=anchor_day)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def prorate(
    old_amount: int,
    new_amount: int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
    currency: str,
) -> Money:
    """The charge (positive) or credit (negative) for switching plans at ``at``::

        (new_amount - old_amount) * unused / length,   rounded half to even on the minor unit

    where ``length = period_end - period_start`` and ``unused = period_end - at`` (``at`` clamped into
    the period), both exact to the microsecond, i.e. the share of the period's seconds still to come.
    The difference is rounded once, so an upgrade and the matching downgrade are exact opposites.
    """
    start, end, moment = _utc(period_start), _utc(period_end), _utc(at)
    if end <= start:
        raise ValueError(f"the period must end after it starts: {_iso(start)} .. {_iso(end)}")
    moment = min(max(moment, start), end)
    micro = timedelta(microseconds=1)
    share = Fraction((end - moment) // micro, (end - start) // micro)
    return Money(currency_code(currency), round((new_amount - old_amount) * share))  # round(): half-even
