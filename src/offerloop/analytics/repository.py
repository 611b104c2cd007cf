"""Every SQL statement of the analytics reports: reads only, each scoped by workspace.

The reports read the state the ``analytics`` consumer keeps (``analytics.state``): ``analytics_purchases``
(the one purchase definition, ``analytics.purchases``), ``analytics_buyers`` (first purchase, next distinct
purchase day, segments, holdout draw) and ``analytics_persona_firsts``. Instants there are integers (epoch
microseconds, UTC days, month indexes), so each report is one or a few aggregates in SQL whose answer has a
handful of rows per month, persona or day — never the workspace's purchase history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal

import polars as pl
from sqlalchemy import and_, case, false, func, literal, true
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select
from offerloop.models import (
    AnalyticsBuyer,
    AnalyticsPersonaFirst,
    AnalyticsPersonaPurchase,
    AnalyticsPurchase,
    Decision,
    PersonaChange,
)

Segment = Literal["none", "first_touch", "persona"]
P, B, F, S = AnalyticsPurchase, AnalyticsBuyer, AnalyticsPersonaFirst, AnalyticsPersonaPurchase

PURCHASE_SCHEMA: Final = {
    "buyer_id": pl.String,
    "at": pl.Int64,
    "amount_minor": pl.Int64,
    "currency": pl.String,
}


def _rows(session: Session, stmt: Any) -> list[Any]:
    """The driver's tuples, without SQLAlchemy's per-row objects."""
    result = session.connection().execute(stmt)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


def _frame(session: Session, stmt: Any, schema: dict[str, Any]) -> pl.DataFrame:
    rows = _rows(session, stmt)
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=dtype)
            for (name, dtype), values in zip(schema.items(), columns, strict=True)
        ]
    )


def purchases(
    session: Session, workspace_id: str, *, start_us: int | None = None, end_us: int | None = None
) -> pl.DataFrame:
    """The workspace's purchases, ``start`` inclusive, ``end`` exclusive: buyer_id, at (naive UTC datetime,
    µs), amount_minor, currency."""
    stmt = scoped_select(P, workspace_id, P.buyer_id, P.at_us, P.amount_minor, P.currency)
    if start_us is not None:
        stmt = stmt.where(P.at_us >= start_us)
    if end_us is not None:
        stmt = stmt.where(P.at_us < end_us)
    frame = _frame(session, stmt, PURCHASE_SCHEMA)
    return frame.with_columns(pl.from_epoch(pl.col("at"), time_unit="us"))


def purchase_rows(
    session: Session, workspace_id: str, *, start_us: int | None = None, end_us: int | None = None
) -> list[tuple[str, str, int, int, str]]:
    """(purchase_key, buyer_id, at_us, amount_minor, currency) in [start, end), oldest first."""
    stmt = scoped_select(P, workspace_id, P.purchase_key, P.buyer_id, P.at_us, P.amount_minor, P.currency)
    if start_us is not None:
        stmt = stmt.where(P.at_us >= start_us)
    if end_us is not None:
        stmt = stmt.where(P.at_us < end_us)
    return [tuple(r) for r in _rows(session, stmt.order_by(P.at_us, P.purchase_key))]


def currencies(session: Session, workspace_id: str) -> list[str]:
    """The currencies the workspace's purchases were made in (sorted): one probe of the summary index per
    currency (the next one after the last found) instead of a DISTINCT that reads every purchase's entry —
    neither database skips through an index by itself (100 ms at 366k purchases on PostgreSQL)."""
    found: list[str] = []
    while True:
        stmt = scoped_select(P, workspace_id, func.min(P.currency))
        if found:
            stmt = stmt.where(P.currency > found[-1])
        (code,) = _rows(session, stmt)[0]
        if code is None:
            return [c for c in found if c]
        found.append(code)


def summary(
    session: Session, workspace_id: str, currency: str, start_us: int | None, end_us: int | None
) -> tuple[int, int]:
    """(distinct buyers, revenue) of the purchases in [start, end) in ``currency`` (the covering index)."""
    stmt = scoped_select(
        P, workspace_id, func.count(func.distinct(P.buyer_id)), func.sum(P.amount_minor)
    ).where(P.currency == currency)
    if start_us is not None:
        stmt = stmt.where(P.at_us >= start_us)
    if end_us is not None:
        stmt = stmt.where(P.at_us < end_us)
    buyers, revenue = _rows(session, stmt)[0]
    return int(buyers or 0), int(revenue or 0)


def last_day(session: Session, workspace_id: str, end_day: int | None = None) -> int | None:
    """The last UTC day (days since 1970-01-01) with a purchase, at or before ``end_day``."""
    stmt = scoped_select(P, workspace_id, func.max(P.day))
    if end_day is not None:
        stmt = stmt.where(P.day <= end_day)
    found = _rows(session, stmt)[0][0]
    return None if found is None else int(found)


def repeat_counts(
    session: Session,
    workspace_id: str,
    end_day: int,
    windows: Sequence[int],
    holdout_share: float | None = None,
) -> dict[bool, tuple[int, list[int], list[int]]]:
    """Per group (in the holdout: draw < share; False for everyone without a share): (buyers whose first
    purchase is by ``end_day``, eligible per window, repeaters per window)."""
    age = literal(end_day) - B.first_day
    gap = B.second_day - B.first_day
    group = (B.holdout_draw < holdout_share) if holdout_share is not None else literal(False)
    columns = [
        func.count(),
        *[func.sum(case((age >= n, 1), else_=0)) for n in windows],
        *[func.sum(case((and_(age >= n, gap <= n), 1), else_=0)) for n in windows],
    ]
    stmt = (
        scoped_select(B, workspace_id, group.label("g"), *columns).where(B.first_day <= end_day).group_by("g")
    )
    out: dict[bool, tuple[int, list[int], list[int]]] = {}
    k = len(windows)
    for row in _rows(session, stmt):
        values = [int(v or 0) for v in row[1:]]
        out[bool(row[0])] = (values[0], values[1 : 1 + k], values[1 + k :])
    return out


def _segment(model: Any, by: Segment) -> Any:
    if by == "first_touch":
        return func.coalesce(model.first_touch, "unknown")
    if by == "persona":
        return func.coalesce(model.persona, "unknown")
    return literal(None)


def cohort_sizes(
    session: Session, workspace_id: str, end_day: int, by: Segment
) -> list[tuple[int, str | None, int]]:
    """(first-purchase month, segment, buyers) of the buyers whose first purchase is by ``end_day``."""
    seg = _segment(B, by).label("seg")
    stmt = (
        scoped_select(B, workspace_id, B.first_month, seg, func.count())
        .where(B.first_day <= end_day)
        .group_by(B.first_month, seg)
    )
    return [(int(m), s, int(n)) for m, s, n in _rows(session, stmt)]


def cohort_active(
    session: Session, workspace_id: str, end_day: int, periods: int, by: Segment
) -> list[tuple[int, str | None, int, int]]:
    """(cohort month, segment, k, buyers who purchased in month cohort + k) for k in 1..periods, up to
    ``end_day``."""
    seg = _segment(P, by).label("seg")
    k = (P.month - P.cohort_month).label("k")
    stmt = (
        scoped_select(P, workspace_id, P.cohort_month, seg, k, func.count(func.distinct(P.buyer_id)))
        .where(P.day <= end_day, P.month > P.cohort_month, P.month <= P.cohort_month + periods)
        .group_by(P.cohort_month, seg, k)
    )
    return [(int(c), s, int(kk), int(n)) for c, s, kk, n in _rows(session, stmt)]


def cohort_revenue(
    session: Session, workspace_id: str, end_day: int, by: Segment
) -> list[tuple[int, str | None, str, int]]:
    """(cohort month, segment, currency, revenue) of the purchases up to ``end_day``."""
    seg = _segment(P, by).label("seg")
    stmt = (
        scoped_select(P, workspace_id, P.cohort_month, seg, P.currency, func.sum(P.amount_minor))
        .where(P.day <= end_day)
        .group_by(P.cohort_month, seg, P.currency)
    )
    return [(int(c), s, cur, int(v or 0)) for c, s, cur, v in _rows(session, stmt)]


def assignment_spans(session: Session, workspace_id: str, end_day: int) -> list[tuple[str, int, bool, int]]:
    """(persona, days, hit, buyers): first assignments by ``end_day`` counted per persona and days from the
    assignment to the first purchase on or after it (hit) or to ``end_day`` (censored). Never-purchasing
    buyers are counted in the order of the covering index; the purchasers' spans are computed in SQL."""
    never = (
        scoped_select(F, workspace_id, F.persona, F.day, func.count())
        .where(F.purchased == false(), F.day <= end_day)  # '=' (not IS): an index range on PostgreSQL
        .group_by(F.persona, F.day)
    )
    out = [(p, end_day - int(d), False, int(n)) for p, d, n in _rows(session, never)]
    hit = and_(F.bought_day.is_not(None), F.bought_day <= end_day)
    days = (case((hit, F.bought_day), else_=literal(end_day)) - F.day).label("days")
    flag = case((hit, 1), else_=0).label("hit")
    bought = (
        scoped_select(F, workspace_id, F.persona, days, flag, func.count())
        .where(F.purchased == true(), F.day <= end_day)
        .group_by(F.persona, days, flag)
    )
    out += [(p, int(d), bool(h), int(n)) for p, d, h, n in _rows(session, bought)]
    return out


def persona_revenue(session: Session, workspace_id: str, end_day: int) -> list[tuple[str, str, int]]:
    """(persona, currency, revenue of purchases on or after the buyer's first assignment to it, by
    ``end_day``): one covering index, in its order."""
    stmt = (
        scoped_select(S, workspace_id, S.persona, S.currency, func.sum(S.amount_minor))
        .where(S.day <= end_day)
        .group_by(S.persona, S.currency)
    )
    return [(p, c, int(v or 0)) for p, c, v in _rows(session, stmt)]


def any_assignment(session: Session, workspace_id: str) -> bool:
    return bool(_rows(session, scoped_select(F, workspace_id, F.buyer_id).limit(1)))


def last_persona_change(session: Session, workspace_id: str) -> datetime | None:
    at: datetime | None = session.scalar(
        scoped_select(PersonaChange, workspace_id, func.max(PersonaChange.at))
    )
    return at


def offer_decisions(session: Session, workspace_id: str, now: datetime) -> pl.DataFrame:
    """Per chosen action, the decisions that showed it and whose outcome is known (rewarded, or their window
    is over), and how many of them converted (reward > 0): chosen_key, shown, converted."""
    stmt = (
        scoped_select(
            Decision,
            workspace_id,
            Decision.chosen_key,
            func.count(),
            func.sum(case((Decision.reward > 0, 1), else_=0)),
        )
        .where(
            Decision.chosen_key.is_not(None),
            Decision.reward.is_not(None) | (Decision.window_ends_at <= now),
        )
        .group_by(Decision.chosen_key)
    )
    return _frame(session, stmt, {"chosen_key": pl.String, "shown": pl.Int64, "converted": pl.Int64})
