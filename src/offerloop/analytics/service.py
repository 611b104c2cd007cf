"""Customer analytics over the analytics state (``analytics.state``, kept by the ``analytics`` consumer):
each report is a few aggregates in SQL over narrow rows (``repository``); Polars only shapes the answer.

Conventions (docs/analytics.md):

* Days are UTC calendar days. Same-day purchases of one buyer are one transaction (CDNOW): a second
  purchase on the day of the first is not "buying again".
* ``as_of`` is the data's end, inclusive: the day of the workspace's last purchase unless given; purchases
  after it are ignored.
* Retention within N days: a buyer repeats within N if their second purchase day is at most N days after
  their first (day N included). Only buyers whose first purchase is at least N days before ``as_of`` are
  in the denominator for N (the others could not have been seen for N days yet).
* Cohorts: buyers by the month of their first purchase; ``active[k-1]`` is the share of the cohort who
  purchased in calendar month first+k (k = 1..periods), null for a month after ``as_of``'s month.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final

import polars as pl
from sqlalchemy.orm import Session

from offerloop.analytics import purchases as definition
from offerloop.analytics import repository, state
from offerloop.analytics.exceptions import BadAnalyticsQuery, CurrencyRequired
from offerloop.analytics.schemas import (
    Cohort,
    CohortBy,
    Cohorts,
    HoldoutGroup,
    HoldoutRetention,
    Retention,
    Summary,
)
from offerloop.core import currencies as currency_codes

MAX_DAYS: Final = 3660
MAX_WINDOWS: Final = 12
MAX_PERIODS: Final = 120


EPOCH: Final = date(1970, 1, 1)

# The purchase definition and the state, for the other domains (attribution, the LTV fit, identity's erasure).
event_value = definition.event_value
order_key = definition.order_key
KEY_LENGTH = definition.KEY_LENGTH
refresh = state.refresh
forget = state.forget
rebuild = state.rebuild


def purchases(
    *, session: Session, workspace_id: str, start: datetime | None = None, end: datetime | None = None
) -> pl.DataFrame:
    """The workspace's purchases (the one definition, ``analytics.purchases``): buyer_id, at (naive UTC),
    amount_minor, currency."""
    return repository.purchases(session, workspace_id, start_us=_us(start), end_us=_us(end))


def purchase_rows(
    *, session: Session, workspace_id: str, start: datetime | None = None, end: datetime | None = None
) -> list[tuple[str, str, datetime, int, str]]:
    """(purchase key, buyer_id, at (aware UTC), amount_minor, currency) of the purchases in [start, end),
    oldest first: attribution's conversions."""
    return [
        (key, buyer, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us), amount, currency)
        for key, buyer, us, amount, currency in repository.purchase_rows(
            session, workspace_id, start_us=_us(start), end_us=_us(end)
        )
    ]


def _us(value: datetime | None) -> int | None:
    return None if value is None else definition.epoch_us(value)


def _day(value: date) -> int:
    return (value - EPOCH).days


def _date(day: int) -> date:
    return EPOCH + timedelta(days=day)


def parse_windows(text: str) -> list[int]:
    """``"30,60,90"`` -> [30, 60, 90]: 1 to 12 distinct whole numbers of days in 1..3660."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or len(parts) > MAX_WINDOWS:
        raise BadAnalyticsQuery(
            f"days must list 1 to {MAX_WINDOWS} numbers of days, comma separated",
            details={"days": text[:100]},
        )
    out: list[int] = []
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= MAX_DAYS:
            raise BadAnalyticsQuery(
                f"days must be whole numbers from 1 to {MAX_DAYS}, got {part[:20]!r}",
                details={"days": text[:100]},
            )
        if int(part) not in out:
            out.append(int(part))
    return out


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def summary(
    *,
    session: Session,
    workspace_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    currency: str | None = None,
) -> Summary:
    """Buyers who purchased in [start, end) in ``currency``, their revenue and ARPU (rounded down).

    Without a currency the workspace's only one is used (none: zeros; several: ``CurrencyRequired``)."""
    start, end = _utc(start), _utc(end)
    if start is not None and end is not None and start > end:
        raise BadAnalyticsQuery("start must not be after end", details={"start": str(start), "end": str(end)})
    if currency is not None:
        try:
            code = currency_codes.normalize(currency, withdrawn=True)
        except currency_codes.InvalidCurrency as exc:
            raise BadAnalyticsQuery(str(exc), details={"currency": currency[:20]}) from None
    else:
        known = repository.currencies(session, workspace_id)
        if len(known) > 1:
            raise CurrencyRequired(
                "the workspace sold in several currencies: pass currency=", details={"currencies": known}
            )
        if not known:
            return Summary(buyers=0, revenue_minor=0, arpu_minor=0, currency=None, start=start, end=end)
        code = known[0]
    buyers, revenue = repository.summary(session, workspace_id, code, _us(start), _us(end))
    return Summary(
        buyers=buyers, revenue_minor=revenue, arpu_minor=revenue // buyers if buyers else 0, currency=code,
        start=start, end=end,
    )  # fmt: skip


def revenue_by_currency(
    *, session: Session, workspace_id: str, start: datetime, end: datetime | None = None
) -> list[Summary]:
    """``summary`` for each currency sold in during [start, end), sorted by currency (none: empty) — the
    console's "today", read from the analytics state like every report."""
    start_utc, end_utc = _utc(start), _utc(end)
    out = []
    for code in sorted(repository.currencies(session, workspace_id)):
        buyers, revenue = repository.summary(session, workspace_id, code, _us(start_utc), _us(end_utc))
        if buyers:
            out.append(Summary(buyers=buyers, revenue_minor=revenue, arpu_minor=revenue // buyers,
                               currency=code, start=start_utc, end=end_utc))  # fmt: skip
    return out


def _end_day(session: Session, workspace_id: str, as_of: date | None) -> int | None:
    """``as_of`` as a day number, or the day of the workspace's last purchase."""
    if as_of is not None:
        return _day(as_of)
    return repository.last_day(session, workspace_id)


def _group(
    counts: tuple[int, list[int], list[int]] | None, windows: Sequence[int], measured: bool
) -> HoldoutGroup:
    buyers, eligible, repeaters = (
        counts if counts is not None else (0, [0] * len(windows), [0] * len(windows))
    )
    if not measured:
        eligible, repeaters = [0] * len(windows), [0] * len(windows)
    return HoldoutGroup(
        buyers=buyers,
        repeat_within={
            str(n): (r / e if e else None) for n, e, r in zip(windows, eligible, repeaters, strict=True)
        },
        eligible={str(n): e for n, e in zip(windows, eligible, strict=True)},
        repeaters={str(n): r for n, r in zip(windows, repeaters, strict=True)},
    )


def retention(
    *, session: Session, workspace_id: str, windows: Sequence[int], as_of: date | None = None
) -> Retention:
    """Share of buyers who purchased again within each N days of their first purchase (see the module)."""
    end = _end_day(session, workspace_id, as_of)
    counts = repository.repeat_counts(session, workspace_id, end, windows) if end is not None else {}
    group = _group(counts.get(False), windows, end is not None and bool(counts))
    return Retention(
        repeat_within=group.repeat_within, eligible=group.eligible, repeaters=group.repeaters,
        buyers=group.buyers, as_of=_date(end) if end is not None else None,
    )  # fmt: skip


def holdout_retention(
    *,
    session: Session,
    workspace_id: str,
    windows: Sequence[int],
    holdout_share: float,
    as_of: date | None = None,
) -> HoldoutRetention:
    """Retention of buyers in the decision engine's holdout group vs the others (personalized): the same
    stable per-buyer draw as /v1/decide, stored with each buyer's summary."""
    end = _end_day(session, workspace_id, as_of)
    counts = (
        repository.repeat_counts(session, workspace_id, end, windows, holdout_share)
        if end is not None
        else {}
    )
    personalized = _group(counts.get(False), windows, False in counts)
    holdout = _group(counts.get(True), windows, True in counts)
    delta: dict[str, float | None] = {}
    for n in windows:
        a, b = personalized.repeat_within[str(n)], holdout.repeat_within[str(n)]
        delta[str(n)] = a - b if a is not None and b is not None else None
    return HoldoutRetention(
        personalized=personalized, holdout=holdout, delta=delta, holdout_share=holdout_share,
        as_of=_date(end) if end is not None else None,
    )  # fmt: skip


_SEGMENTS: Final[dict[str, repository.Segment]] = {
    "first_purchase_month": "none", "first_touch_channel": "first_touch", "persona": "persona",
}  # fmt: skip


def cohorts(
    *, session: Session, workspace_id: str, by: CohortBy, periods: int, as_of: date | None = None
) -> Cohorts:
    """Acquisition cohorts by first-purchase month (and first-touch channel or current persona)."""
    if not 1 <= periods <= MAX_PERIODS:
        raise BadAnalyticsQuery(f"periods must be from 1 to {MAX_PERIODS}", details={"periods": periods})
    end = repository.last_day(session, workspace_id, _day(as_of) if as_of is not None else None)
    if end is None:
        return Cohorts(by=by, periods=periods, as_of=as_of, cohorts=[])
    end = _day(as_of) if as_of is not None else end
    end_date = _date(end)
    end_month = end_date.year * 12 + end_date.month - 1
    segment = _SEGMENTS[by]
    sizes = repository.cohort_sizes(session, workspace_id, end, segment)
    counts = {
        (c, s, k): n for c, s, k, n in repository.cohort_active(session, workspace_id, end, periods, segment)
    }
    money: dict[tuple[int, str | None], dict[str, int]] = {}
    for c, s, cur, amount in sorted(
        repository.cohort_revenue(session, workspace_id, end, segment), key=lambda r: r[2]
    ):
        money.setdefault((c, s), {})[cur] = amount
    out = []
    for c, s, size in sorted(sizes, key=lambda r: (r[0], r[1] is None, r[1] or "")):
        shares = [
            (counts.get((c, s, k), 0) / size) if c + k <= end_month else None for k in range(1, periods + 1)
        ]
        label = f"{c // 12:04d}-{c % 12 + 1:02d}"
        out.append(
            Cohort(cohort=label, segment=s, size=size, active=shares, revenue_minor=money.get((c, s), {}))
        )
    return Cohorts(by=by, periods=periods, as_of=end_date, cohorts=out)
