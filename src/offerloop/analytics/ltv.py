"""Customer lifetime value from the store: BG/NBD + Gamma-Gamma fitted on a workspace's purchases.

Purchases are the one definition every report shares (``analytics.purchases``: paid checkout orders net of
refunds, and creators'/server ``Order Completed`` events of other orders, never a write-key client's), as the
``analytics`` consumer keeps them: after identity merges (a merged buyer's orders are the winner's) and
without erased buyers. Values are the net amount in one currency: the one asked for, else the workspace's most frequent; orders in
other currencies are left out, an order without a usable ``total_minor`` is a zero-value transaction.

The conventions of :func:`offerloop.ml.ltv.rfm_summary` apply: one transaction per buyer and UTC day, the
calibration end day inclusive, zero-value orders count. ``time_unit`` is a day, a week (7 days) or a month
(365.25 / 12 days). Results per buyer are P(alive) at the calibration end, expected purchases over the next
``horizon`` time units, and their value: expected purchases times the Gamma-Gamma expected order value,
discounted at ``discount_rate`` per time unit (see :func:`offerloop.ml.ltv.clv`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl
from sqlalchemy.orm import Session

from offerloop.analytics import ltv_repository as repository
from offerloop.analytics.ltv_exceptions import BadLTVPeriod, LTVFitFailed, NotEnoughBuyers
from offerloop.analytics.ltv_schemas import (
    BGNBDRead,
    GammaGammaRead,
    HoldoutBucket,
    LTVOptions,
    LTVRead,
    LTVRefreshRead,
    SegmentLTV,
)
from offerloop.core.clock import utcnow
from offerloop.features import service as features_service
from offerloop.ml import ltv as model

UNIT_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}
FEATURES = ["ltv_p_alive", "ltv_expected_purchases", "ltv_expected_value"]
MIN_BUYERS = 20  # fewer buyers than this do not identify four BG/NBD parameters
MIN_REPEAT_BUYERS = 5  # nor fewer repeat buyers with spend the three Gamma-Gamma ones
_EPOCH = date(1970, 1, 1)
NO_PERSONA = "(none)"
NO_CHANNEL = "(none)"


@dataclass(frozen=True, slots=True)
class _Fit:
    read: LTVRead
    buyers: list[str]
    p_alive: npt.NDArray[np.float64]
    purchases: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]


# Above this, the BG/NBD rate shape r or a Gamma-Gamma shape (p, q) means the fit found no maximum: fitted stores
# give values from 0.1 to a few hundred (CDNOW: r 0.24, p 6.25, q 3.74).
MAX_SHAPE = 1e5


def _day(value: date) -> int:
    return (value - _EPOCH).days


def _purchases(session: Session, workspace_id: str, currency: str | None) -> tuple[pl.DataFrame, str | None]:
    """One row per purchase (buyer, day, value) in the chosen currency, and that currency. A ``total_minor``
    that is not a non-negative integer (a JSON number or a digit string) makes a zero-value order."""
    # A merge moves the loser's events to the winner (identity), so rows carry the survivor already; an erased
    # buyer's anonymised orders stay out.
    erased = repository.erased_buyers(session, workspace_id)
    schema = {name: pl.String for name in ("buyer", "day", "total", "currency", "order_id")}
    chunks = [
        pl.DataFrame(rows, schema=schema, orient="row")
        for rows in repository.purchases(session, workspace_id)
    ]
    raw = pl.concat(chunks) if chunks else pl.DataFrame(schema=schema)
    frame = (
        raw.filter(~pl.col("buyer").is_in(list(erased)))
        .select(
            "buyer",
            pl.col("day").str.to_date("%Y-%m-%d", strict=False).cast(pl.Int32),
            pl.when(pl.col("total").str.contains(r"^[0-9]{1,15}$"))
            .then(pl.col("total").cast(pl.Int64, strict=False))
            .otherwise(0)
            .alias("value"),
            pl.col("currency").str.to_uppercase(),
            pl.col("order_id").str.slice(0, 255),
        )
        .drop_nulls("day")
    )
    if currency is None:
        counts = (
            frame.drop_nulls("currency")
            .group_by("currency")
            .len()
            .sort(["len", "currency"], descending=[True, False])
        )
        currency = counts["currency"][0] if counts.height else None
    keep = pl.col("currency").is_null()
    if currency is not None:
        keep = keep | (pl.col("currency") == currency)
    frame = frame.filter(keep).sort("day", maintain_order=True)
    with_id = frame.filter(pl.col("order_id").is_not_null()).unique(
        ["buyer", "order_id"], keep="first", maintain_order=True
    )
    frame = pl.concat([frame.filter(pl.col("order_id").is_null()), with_id])
    return frame.select("buyer", "day", "value"), currency


def _first_channels(session: Session, workspace_id: str) -> pl.DataFrame:
    rows = list(repository.touchpoints(session, workspace_id))  # merges moved touchpoints to the survivor too
    frame = pl.DataFrame(
        rows,
        schema={"buyer": pl.String, "at": pl.Datetime("us", "UTC"), "id": pl.Int64, "channel": pl.String},
        orient="row",
    )
    return frame.sort(["at", "id"]).group_by("buyer").agg(pl.col("channel").first())


def _at_bounds(named: dict[str, float]) -> list[str]:
    """A warning per parameter the optimiser left at its bound (e^-30 or e^30): the likelihood's supremum is
    a limit there (e.g. ``bgnbd.a`` -> 0: no buyer was seen dropping out), and the values are that limit's."""
    return [
        f"{name} = {value:.3g} is at the optimiser's bound: the data identify only its limit"
        for name, value in named.items()
        if abs(math.log(value)) >= model.LOG_BOUND - 0.01
    ]


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _segments(frame: pl.DataFrame, key: str) -> list[SegmentLTV]:
    grouped = (
        frame.group_by(key)
        .agg(
            pl.len().alias("buyers"),
            pl.col("p_alive").mean(),
            pl.col("purchases").mean(),
            pl.col("value").mean().alias("mean_value"),
            pl.col("value").sum().alias("total_value"),
        )
        .sort(key)
    )
    return [
        SegmentLTV(
            key=row[key],
            buyers=row["buyers"],
            p_alive=_finite(row["p_alive"]),
            expected_purchases=_finite(row["purchases"]),
            expected_value_minor=_finite(row["mean_value"]),
            total_value_minor=_finite(row["total_value"]),
        )
        for row in grouped.iter_rows(named=True)
    ]


def _fit(
    *,
    session: Session,
    workspace_id: str,
    calibration_end: date,
    observation_end: date | None,
    options: LTVOptions,
) -> _Fit:
    time_unit, horizon, discount_rate, currency = (
        options.time_unit, options.horizon, options.discount_rate, options.currency,
    )  # fmt: skip
    if observation_end is not None and observation_end < calibration_end:
        raise BadLTVPeriod("observation_end is before calibration_end")
    purchases, chosen = _purchases(session, workspace_id, currency.upper() if currency else None)
    codes = purchases.select(pl.col("buyer").unique().sort()).with_row_index("code")
    coded = purchases.join(codes, on="buyer")
    cal = _day(calibration_end)
    last_day = int(coded["day"].max()) if coded.height else cal  # type: ignore[arg-type]
    obs = _day(observation_end) if observation_end is not None else max(cal, last_day)
    summary = model.rfm_summary(
        coded["code"].to_numpy(),
        coded["day"].to_numpy(),
        coded["value"].to_numpy().astype(np.float64),
        calibration_end=cal,
        observation_end=obs,
        unit_days=UNIT_DAYS[time_unit],
    )
    try:
        bg = model.fit_bgnbd(summary.x, summary.t_x, summary.T, min_buyers=MIN_BUYERS)
        gg = model.fit_gamma_gamma(summary.x, summary.monetary, min_buyers=MIN_REPEAT_BUYERS)
    except model.FitError as exc:
        raise NotEnoughBuyers(str(exc), details={"buyers": int(summary.x.shape[0])}) from exc
    params = (bg.r, bg.alpha, bg.a, bg.b, bg.log_likelihood, gg.p, gg.q, gg.v)
    # The purchase rate's or the spend's shape in the hundreds of thousands is the optimiser walking off towards a
    # likelihood without a finite maximum (buyers too alike in how often or how much they buy); where it stops
    # depends on SciPy's version. a and b growing together is a usable limit (every buyer drops out with the
    # same probability a / (a + b), common on short histories) and is kept.
    shapes = (bg.r, gg.p, gg.q)
    if not all(np.isfinite(params)) or gg.q <= 1.0 or bg.a == 1.0 or max(shapes) > MAX_SHAPE:
        raise LTVFitFailed("the purchases do not identify the model: its likelihood has no finite maximum")
    with np.errstate(all="ignore"):
        alive = model.p_alive(bg, summary.x, summary.t_x, summary.T)
        expected = model.expected_purchases(bg, float(horizon), summary.x, summary.t_x, summary.T)
        value = model.clv(
            bg,
            gg,
            summary.x,
            summary.t_x,
            summary.T,
            summary.monetary,
            horizon=horizon,
            discount_rate=discount_rate,
        )
        holdout = model.holdout_by_frequency(bg, summary) if summary.holdout_length > 0 else []
    for what, values in (("p_alive", alive), ("expected purchases", expected), ("expected value", value),
                         ("holdout predictions", np.array([b.predicted for b in holdout], dtype=float))):  # fmt: skip
        if not np.isfinite(values).all():  # the parameters are finite but overflow what is derived from them
            raise LTVFitFailed(
                f"the fitted parameters give no finite {what} (the model is degenerate on these purchases)",
                details={"buyers": int(summary.x.shape[0])},
            )
    buyer_ids: list[str] = codes["buyer"].gather(summary.customers).to_list()
    per_buyer = pl.DataFrame(
        {"buyer": buyer_ids, "p_alive": alive, "purchases": expected, "value": value},
        schema={"buyer": pl.String, "p_alive": pl.Float64, "purchases": pl.Float64, "value": pl.Float64},
    )
    persona = pl.DataFrame(
        repository.personas(session, workspace_id),
        schema={"buyer": pl.String, "persona": pl.String},
        orient="row",
    )
    per_buyer = per_buyer.join(persona, on="buyer", how="left").with_columns(
        pl.col("persona").fill_null(NO_PERSONA)
    )
    per_buyer = per_buyer.join(_first_channels(session, workspace_id), on="buyer", how="left").with_columns(
        pl.col("channel").fill_null(NO_CHANNEL)
    )
    read = LTVRead(
        bgnbd=BGNBDRead(r=bg.r, alpha=bg.alpha, a=bg.a, b=bg.b, log_likelihood=bg.log_likelihood),
        gamma_gamma=GammaGammaRead(p=gg.p, q=gg.q, v=gg.v),
        buyers=bg.buyers,
        repeat_buyers=int((summary.x > 0).sum()),
        calibration_end=calibration_end,
        observation_end=(date.fromordinal(_EPOCH.toordinal() + obs) if obs > cal else None),
        time_unit=time_unit,
        horizon=horizon,
        discount_rate=discount_rate,
        currency=chosen or "",
        holdout=[
            HoldoutBucket(frequency=b.frequency, buyers=b.buyers, actual=b.actual, predicted=b.predicted)
            for b in holdout
            if np.isfinite(b.predicted)
        ],
        by_persona=_segments(per_buyer, "persona"),
        by_channel=_segments(per_buyer, "channel"),
        warnings=_at_bounds(
            {"bgnbd.r": bg.r, "bgnbd.alpha": bg.alpha, "bgnbd.a": bg.a, "bgnbd.b": bg.b,
             "gamma_gamma.p": gg.p, "gamma_gamma.q": gg.q, "gamma_gamma.v": gg.v}
        ),
    )  # fmt: skip
    return _Fit(read=read, buyers=buyer_ids, p_alive=alive, purchases=expected, value=value)


def fit(
    *,
    session: Session,
    workspace_id: str,
    calibration_end: date,
    observation_end: date | None = None,
    options: LTVOptions = LTVOptions(),
) -> LTVRead:
    """Fit on the purchases up to ``calibration_end`` (inclusive); those after it, up to ``observation_end``
    (default: the last purchase), are the holdout the predictions are compared with."""
    return _fit(
        session=session, workspace_id=workspace_id, calibration_end=calibration_end,
        observation_end=observation_end, options=options,
    ).read  # fmt: skip


def refresh(
    *,
    session: Session,
    workspace_id: str,
    options: LTVOptions = LTVOptions(),
    today: date | None = None,
) -> LTVRefreshRead:
    """Fit on every purchase up to today and write each buyer's ``ltv_p_alive``, ``ltv_expected_purchases``
    (next ``horizon`` time units) and ``ltv_expected_value`` (their discounted value, minor units) as buyer
    features, replacing the previous ones (a buyer no longer in the fit loses them)."""
    repository.lock_scores(session, workspace_id)
    result = _fit(
        session=session, workspace_id=workspace_id, calibration_end=today or utcnow().date(),
        observation_end=None, options=options,
    )  # fmt: skip

    def rows() -> Iterator[tuple[str, str, float]]:
        for i, buyer in enumerate(result.buyers):
            for name, values in zip(FEATURES, (result.p_alive, result.purchases, result.value), strict=True):
                if np.isfinite(values[i]):
                    yield buyer, name, float(values[i])

    written = {buyer for buyer, _, _ in rows()}
    features_service.replace_scores(session=session, workspace_id=workspace_id, names=FEATURES, rows=rows())
    return LTVRefreshRead(**result.read.model_dump(), written=len(written), features=FEATURES)
