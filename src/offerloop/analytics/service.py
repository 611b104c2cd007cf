"""Customer analytics over the store's purchases (``repository.purchases``), computed with Polars.

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
from typing import Any, Final

import polars as pl
from sqlalchemy.orm import Session

from offerloop.analytics import repository
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
from offerloop.decisions import service as decision_service

MAX_DAYS: Final = 3660
MAX_WINDOWS: Final = 12
MAX_PERIODS: Final = 120


def purchases(
    *, session: Session, workspace_id: str, start: datetime | None = None, end: datetime | None = None
) -> pl.DataFrame:
    """The workspace's purchases (the one definition, see ``repository``): buyer_id, at (naive UTC),
    amount_minor, currency."""
    return repository.purchases(session, workspace_id, start=start, end=end)


def transactions(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per buyer and UTC day with a purchase (same-day purchases are one transaction)."""
    return frame.select("buyer_id", pl.col("at").dt.date().alias("day")).unique()


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


def _as_of_end(as_of: date | None) -> datetime | None:
    """The exclusive instant after the inclusive day ``as_of``."""
    if as_of is None:
        return None
    try:
        return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)
    except OverflowError:
        return None  # 9999-12-31: no purchase can be after it


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
    frame = purchases(session=session, workspace_id=workspace_id, start=start, end=end)
    frame = frame.filter(pl.col("currency") == code)
    buyers = frame["buyer_id"].n_unique()
    revenue = int(frame["amount_minor"].sum() or 0)
    return Summary(
        buyers=buyers, revenue_minor=revenue, arpu_minor=revenue // buyers if buyers else 0, currency=code,
        start=start, end=end,
    )  # fmt: skip


def revenue_by_currency(
    *, session: Session, workspace_id: str, start: datetime, end: datetime | None = None
) -> list[Summary]:
    """``summary`` for each currency sold in during [start, end), sorted by currency (none: empty). Reads
    only the window's purchases (the console's "today"), never the workspace's whole history."""
    start_utc, end_utc = _utc(start), _utc(end)
    frame = purchases(session=session, workspace_id=workspace_id, start=start_utc, end=end_utc)
    frame = frame.filter(pl.col("currency").is_not_null())
    out = []
    for (code,), group in sorted(frame.group_by("currency"), key=lambda g: str(g[0][0])):
        buyers = group["buyer_id"].n_unique()
        revenue = int(group["amount_minor"].sum() or 0)
        out.append(Summary(buyers=buyers, revenue_minor=revenue, arpu_minor=revenue // buyers if buyers else 0,
                           currency=str(code), start=start_utc, end=end_utc))  # fmt: skip
    return out


def _firsts(tx: pl.DataFrame) -> pl.DataFrame:
    """Per buyer: first and second purchase day (second null when none)."""
    first = tx.group_by("buyer_id").agg(pl.col("day").min().alias("first"))
    second = (
        tx.join(first, on="buyer_id")
        .filter(pl.col("day") > pl.col("first"))
        .group_by("buyer_id")
        .agg(pl.col("day").min().alias("second"))
    )
    return first.join(second, on="buyer_id", how="left")


def _repeat(firsts: pl.DataFrame, windows: Sequence[int], as_of: date | None) -> HoldoutGroup:
    shares: dict[str, float | None] = {}
    eligible: dict[str, int] = {}
    repeaters: dict[str, int] = {}
    if as_of is None or firsts.is_empty():
        for n in windows:
            shares[str(n)], eligible[str(n)], repeaters[str(n)] = None, 0, 0
        return HoldoutGroup(
            buyers=firsts.height, repeat_within=shares, eligible=eligible, repeaters=repeaters
        )
    measured = firsts.with_columns(
        age=(pl.lit(as_of) - pl.col("first")).dt.total_days(),
        gap=(pl.col("second") - pl.col("first")).dt.total_days(),
    )
    counts = measured.select(
        *[(pl.col("age") >= n).sum().alias(f"e{n}") for n in windows],
        *[((pl.col("age") >= n) & (pl.col("gap") <= n)).sum().alias(f"r{n}") for n in windows],
    ).row(0, named=True)
    for n in windows:
        e, r = int(counts[f"e{n}"]), int(counts[f"r{n}"])
        shares[str(n)], eligible[str(n)], repeaters[str(n)] = (r / e if e else None), e, r
    return HoldoutGroup(buyers=firsts.height, repeat_within=shares, eligible=eligible, repeaters=repeaters)


def _scoped_transactions(
    session: Session, workspace_id: str, as_of: date | None
) -> tuple[pl.DataFrame, date | None]:
    frame = purchases(session=session, workspace_id=workspace_id, end=_as_of_end(as_of))
    tx = transactions(frame)
    if as_of is None and not tx.is_empty():
        as_of = tx["day"].max()  # type: ignore[assignment]
    return tx, as_of


def retention(
    *, session: Session, workspace_id: str, windows: Sequence[int], as_of: date | None = None
) -> Retention:
    """Share of buyers who purchased again within each N days of their first purchase (see the module)."""
    tx, end = _scoped_transactions(session, workspace_id, as_of)
    group = _repeat(_firsts(tx), windows, end)
    return Retention(
        repeat_within=group.repeat_within, eligible=group.eligible, repeaters=group.repeaters,
        buyers=group.buyers, as_of=end,
    )  # fmt: skip


def holdout_retention(
    *,
    session: Session,
    workspace_id: str,
    windows: Sequence[int],
    holdout_share: float,
    as_of: date | None = None,
) -> HoldoutRetention:
    """Retention of buyers in the decision engine's holdout group vs the others (personalized)."""
    tx, end = _scoped_transactions(session, workspace_id, as_of)
    firsts = _firsts(tx)
    held = [
        decision_service.in_holdout(workspace_id, buyer, holdout_share)
        for buyer in firsts["buyer_id"].to_list()
    ]
    firsts = firsts.with_columns(pl.Series("holdout", held, dtype=pl.Boolean))
    personalized = _repeat(firsts.filter(~pl.col("holdout")), windows, end)
    holdout = _repeat(firsts.filter(pl.col("holdout")), windows, end)
    delta: dict[str, float | None] = {}
    for n in windows:
        a, b = personalized.repeat_within[str(n)], holdout.repeat_within[str(n)]
        delta[str(n)] = a - b if a is not None and b is not None else None
    return HoldoutRetention(
        personalized=personalized, holdout=holdout, delta=delta, holdout_share=holdout_share, as_of=end
    )


def _month_index(column: str) -> pl.Expr:
    return pl.col(column).dt.year().cast(pl.Int32) * 12 + pl.col(column).dt.month().cast(pl.Int32) - 1


def _segments(session: Session, workspace_id: str, by: CohortBy) -> pl.DataFrame | None:
    if by == "first_touch_channel":
        return repository.first_touch_channels(session, workspace_id)
    if by == "persona":
        return repository.current_personas(session, workspace_id)
    return None


def cohorts(
    *, session: Session, workspace_id: str, by: CohortBy, periods: int, as_of: date | None = None
) -> Cohorts:
    """Acquisition cohorts by first-purchase month (and first-touch channel or current persona)."""
    if not 1 <= periods <= MAX_PERIODS:
        raise BadAnalyticsQuery(f"periods must be from 1 to {MAX_PERIODS}", details={"periods": periods})
    frame = purchases(session=session, workspace_id=workspace_id, end=_as_of_end(as_of))
    if frame.is_empty():
        return Cohorts(by=by, periods=periods, as_of=as_of, cohorts=[])
    end = as_of or frame["at"].max().date()  # type: ignore[union-attr]
    end_month = end.year * 12 + end.month - 1
    frame = frame.with_columns(_month_index("at").alias("month"))
    buyers = frame.group_by("buyer_id").agg(pl.col("month").min().alias("cohort"))
    segments = _segments(session, workspace_id, by)
    if segments is None:
        buyers = buyers.with_columns(pl.lit(None, dtype=pl.String).alias("segment"))
    else:
        buyers = buyers.join(segments, on="buyer_id", how="left").with_columns(
            pl.col("segment").fill_null("unknown")
        )
    keys = ["cohort", "segment"]
    sizes = buyers.group_by(keys).agg(pl.len().alias("size"))
    active = (
        frame.select("buyer_id", "month")
        .unique()
        .join(buyers, on="buyer_id")
        .with_columns((pl.col("month") - pl.col("cohort")).alias("k"))
        .filter(pl.col("k").is_between(1, periods))
        .group_by([*keys, "k"])
        .agg(pl.len().alias("n"))
    )
    revenue = (
        frame.join(buyers, on="buyer_id")
        .group_by([*keys, "currency"])
        .agg(pl.col("amount_minor").sum().alias("revenue"))
    )
    counts: dict[tuple[Any, Any, int], int] = {(c, s, k): n for c, s, k, n in active.iter_rows()}
    money: dict[tuple[Any, Any], dict[str, int]] = {}
    for c, s, cur, amount in revenue.sort("currency").iter_rows():
        money.setdefault((c, s), {})[cur] = int(amount)
    out = []
    for c, s, size in sizes.sort(keys, nulls_last=True).iter_rows():
        shares = [
            (counts.get((c, s, k), 0) / size) if c + k <= end_month else None for k in range(1, periods + 1)
        ]
        label = f"{c // 12:04d}-{c % 12 + 1:02d}"
        out.append(
            Cohort(cohort=label, segment=s, size=size, active=shares, revenue_minor=money.get((c, s), {}))
        )
    return Cohorts(by=by, periods=periods, as_of=end, cohorts=out)
