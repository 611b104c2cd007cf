"""BG/NBD + Gamma-Gamma: hand-computed likelihoods, an independent numerical integral, and the published CDNOW fit."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

from offerloop.ml import ltv

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"
EPOCH = date(1970, 1, 1)


def _day(value: date) -> int:
    return (value - EPOCH).days


# -- a tiny hand-built case -----------------------------------------------------------------------------------

ONES = ltv.BGNBDParams(r=1.0, alpha=1.0, a=1.0, b=1.0)
# (x, t_x, T) -> the likelihood at r = alpha = a = b = 1, by hand from eq. 6 of Fader, Hardie & Lee (2005):
#   L = Gamma(r+x) alpha^r / Gamma(r) * B(a, b+x) / B(a, b) * [(alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x)]
#   (0, 0, 1): 1 * 1 * 2^-1                        = 1/2
#   (1, 1, 2): 1 * 1/2 * (3^-2 + 2^-2)             = 13/72
#   (2, 1, 3): 2 * 1/3 * (4^-3 + (1/2) 2^-3)       = 5/96
HAND = [((0.0, 0.0, 1.0), 1 / 2), ((1.0, 1.0, 2.0), 13 / 72), ((2.0, 1.0, 3.0), 5 / 96)]


def test_bgnbd_likelihood_of_three_buyers_by_hand() -> None:
    x, t_x, T = (np.array(col) for col in zip(*(row for row, _ in HAND), strict=True))
    each = ltv.bgnbd_individual_log_likelihood(ONES, x, t_x, T)
    assert each.tolist() == pytest.approx([math.log(v) for v in (1 / 2, 13 / 72, 5 / 96)], abs=1e-14)
    assert ltv.bgnbd_log_likelihood(ONES, x, t_x, T) == pytest.approx(
        math.log(1 / 2 * 13 / 72 * 5 / 96), abs=1e-13
    )
    # weights are counts: two copies of the first buyer
    assert ltv.bgnbd_log_likelihood(ONES, x, t_x, T, weights=[2, 1, 1]) == pytest.approx(
        math.log(1 / 4 * 13 / 72 * 5 / 96), abs=1e-13
    )


def _integrated_likelihood(params: ltv.BGNBDParams, x: int, t_x: float, T: float) -> float:
    """The BG/NBD likelihood as the model defines it: the individual likelihood integrated over lambda and p."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_norm = r * math.log(alpha) - math.lgamma(r) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))

    def individual(p: float, lam: float) -> float:
        if lam <= 0.0 or p <= 0.0 or p >= 1.0:
            return 0.0
        alive = (1 - p) ** x * lam**x * math.exp(-lam * T)
        died = p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 else 0.0
        # Gamma(r, alpha) density of lambda times Beta(a, b) density of p
        prior = math.exp(
            log_norm
            + (r - 1) * math.log(lam)
            - alpha * lam
            + (a - 1) * math.log(p)
            + (b - 1) * math.log1p(-p)
        )
        return (alive + died) * prior

    value, _ = integrate.dblquad(individual, 0, np.inf, 0, 1, epsabs=1e-11, epsrel=1e-8)
    return float(value)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 5.0), (1, 2.0, 6.5), (3, 4.5, 10.0)])
def test_bgnbd_likelihood_matches_the_integral_over_lambda_and_p(x: int, t_x: float, T: float) -> None:
    params = ltv.BGNBDParams(r=1.7, alpha=3.2, a=1.4, b=2.6)
    closed = ltv.bgnbd_individual_log_likelihood(params, [x], [t_x], [T])[0]
    assert math.exp(closed) == pytest.approx(_integrated_likelihood(params, x, t_x, T), rel=1e-6)


def test_gamma_gamma_likelihood_by_hand() -> None:
    # p = q = v = 1, x = 1, m = 1: Gamma(2)/(Gamma(1) Gamma(1)) * 1 * 1^0 * 1^1 / (1 + 1)^2 = 1/4
    params = ltv.GammaGammaParams(p=1.0, q=1.0, v=1.0)
    assert ltv.gamma_gamma_log_likelihood(params, [1.0], [1.0]) == pytest.approx(math.log(1 / 4), abs=1e-14)
    # x = 2, m = 3: Gamma(3)/Gamma(2) * 3^1 * 2^2 / (1 + 6)^3 = 2 * 3 * 4 / 343; x = 0 rows carry nothing
    assert ltv.gamma_gamma_log_likelihood(params, [2.0, 0.0], [3.0, 0.0]) == pytest.approx(
        math.log(24 / 343), abs=1e-14
    )


def test_predictions_by_hand() -> None:
    # P(alive) = 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)): (1, 1, 2) -> 1 / (1 + (3/2)^2) = 4/13
    alive = ltv.p_alive(ONES, [0.0, 1.0], [0.0, 1.0], [1.0, 2.0])
    assert alive.tolist() == pytest.approx([1.0, 4 / 13], abs=1e-15)
    # E[M | x, m] = p (v + x m) / (p x + q - 1): p=2, q=3, v=4, x=2, m=5 -> 2 * 14 / 6
    gg = ltv.GammaGammaParams(p=2.0, q=3.0, v=4.0)
    assert ltv.conditional_expected_value(gg, [2.0, 0.0], [5.0, 0.0]).tolist() == pytest.approx(
        [28 / 6, 8 / 2], abs=1e-15
    )


def test_expected_purchases_against_simulation() -> None:
    params = ltv.BGNBDParams(r=2.0, alpha=5.0, a=1.5, b=3.0)
    rng = np.random.default_rng(7)
    n, horizon = 200_000, 8.0
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    # purchases in (0, horizon] of a buyer who just made a first purchase, simulated event by event
    count = np.zeros(n)
    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        t[active] += rng.exponential(1 / lam[active])
        active &= t <= horizon
        count[active] += 1
        active &= rng.random(n) >= p
    assert ltv.expected_purchases_new(params, horizon) == pytest.approx(count.mean(), abs=0.01)
    # and a fresh buyer observed for T = 0 predicts the same as the unconditional expectation
    assert ltv.expected_purchases(params, horizon, [0.0], [0.0], [0.0])[0] == pytest.approx(
        ltv.expected_purchases_new(params, horizon), rel=1e-12
    )


def test_clv_discounts_each_period() -> None:
    bg = ltv.BGNBDParams(r=0.5, alpha=4.0, a=0.8, b=2.5)
    gg = ltv.GammaGammaParams(p=6.0, q=4.0, v=15.0)
    x, t_x, T, m = [2.0], [10.0], [30.0], [20.0]
    value = ltv.conditional_expected_value(gg, x, m)[0]
    flat = ltv.clv(bg, gg, x, t_x, T, m, horizon=3)[0]
    assert flat == pytest.approx(ltv.expected_purchases(bg, 3.0, x, t_x, T)[0] * value, rel=1e-12)
    steps = [ltv.expected_purchases(bg, float(k), x, t_x, T)[0] for k in range(4)]
    discounted = sum((steps[k] - steps[k - 1]) / 1.1**k for k in range(1, 4)) * value
    assert ltv.clv(bg, gg, x, t_x, T, m, horizon=3, discount_rate=0.1)[0] == pytest.approx(
        discounted, rel=1e-12
    )


# -- the RFM summary ------------------------------------------------------------------------------------------


def test_rfm_summary_conventions() -> None:
    # buyer 1: two orders on day 0 (one transaction, values summed), a zero-value order on day 7, one on the
    # calibration end (day 14, inclusive), one in the holdout (day 15) and one after the observation end.
    # buyer 2: first purchase after the calibration end: not in the cohort. buyer 3: one purchase.
    summary = ltv.rfm_summary(
        [1, 1, 1, 1, 1, 1, 2, 3],
        [0, 0, 7, 14, 15, 30, 20, 7],
        [5.0, 6.0, 0.0, 10.0, 4.0, 99.0, 8.0, 3.0],
        calibration_end=14,
        observation_end=21,
        unit_days=7.0,
    )
    assert summary.customers.tolist() == [1, 3]
    assert summary.x.tolist() == [2.0, 0.0]
    assert summary.t_x.tolist() == [2.0, 0.0]
    assert summary.T.tolist() == [2.0, 1.0]
    assert summary.monetary.tolist() == [5.0, 0.0]
    assert summary.x_holdout.tolist() == [1.0, 0.0]
    assert summary.value_holdout.tolist() == [4.0, 0.0]
    assert summary.holdout_length == 1.0


def _cdnow_summary() -> ltv.RFMSummary:
    customer: list[int] = []
    day: list[int] = []
    value: list[float] = []
    with (CDNOW / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, cust, ymd, _, amount = line.split()
            customer.append(int(cust))
            day.append(_day(date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))))
            value.append(float(amount))
    return ltv.rfm_summary(
        customer,
        day,
        value,
        calibration_end=_day(date(1997, 9, 30)),
        observation_end=_day(date(1998, 6, 30)),
        unit_days=7.0,
    )


@pytest.fixture(scope="module")
def cdnow() -> ltv.RFMSummary:
    return _cdnow_summary()


def test_cdnow_summary_built_from_the_transactions_matches_the_published_one(cdnow: ltv.RFMSummary) -> None:
    with (CDNOW / "cdnow_customers_summary_with_transactions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(cdnow.customers) == 2357
    assert cdnow.customers.tolist() == [int(row["ID"]) for row in rows]
    assert cdnow.x.tolist() == [float(row["x"]) for row in rows]
    # the CSV rounds to 2 decimals
    assert np.round(cdnow.t_x, 2).tolist() == [float(row["t_x"]) for row in rows]
    assert np.round(cdnow.T, 2).tolist() == [float(row["T"]) for row in rows]
    assert np.abs(cdnow.monetary - [float(row["zbar"]) for row in rows]).max() <= 0.005 + 1e-9
    with (CDNOW / "cdnow_customers_summary.csv").open() as handle:
        plain = list(csv.DictReader(handle))
    assert [float(row["frequency"]) for row in plain] == cdnow.x.tolist()
    assert cdnow.holdout_length == 39.0
    # holdout transactions, counted directly: distinct (buyer, day) in 1997-10-01 .. 1998-06-30
    with (CDNOW / "CDNOW_sample.txt").open() as handle:
        pairs = {(line.split()[1], line.split()[2]) for line in handle}
    assert cdnow.x_holdout.sum() == sum(1 for _, ymd in pairs if "19971001" <= ymd <= "19980630") == 1882


def test_cdnow_bgnbd_reproduces_the_published_parameters(cdnow: ltv.RFMSummary) -> None:
    fit = ltv.fit_bgnbd(cdnow.x, cdnow.t_x, cdnow.T)
    assert (round(fit.r, 3), round(fit.alpha, 3), round(fit.a, 3), round(fit.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(fit.log_likelihood, 1) == -9582.4
    assert fit.buyers == 2357
    # the optimum: the likelihood at the fit equals the one recomputed row by row
    assert ltv.bgnbd_log_likelihood(fit, cdnow.x, cdnow.t_x, cdnow.T) == pytest.approx(
        fit.log_likelihood, abs=1e-8
    )


def test_cdnow_gamma_gamma_reproduces_the_published_parameters(cdnow: ltv.RFMSummary) -> None:
    fit = ltv.fit_gamma_gamma(cdnow.x, cdnow.monetary)
    assert fit.buyers == 946
    # published to two decimals: p = 6.25, q = 3.74, gamma = 15.44
    assert (round(fit.p, 2), round(fit.q, 2), round(fit.v, 2)) == (6.25, 3.74, 15.44)
    assert (round(fit.p, 3), round(fit.q, 3), round(fit.v, 3)) == (6.250, 3.744, 15.444)


def test_cdnow_holdout_by_frequency(cdnow: ltv.RFMSummary) -> None:
    fit = ltv.fit_bgnbd(cdnow.x, cdnow.t_x, cdnow.T)
    buckets = ltv.holdout_by_frequency(fit, cdnow)
    assert [b.frequency for b in buckets] == list(range(8))
    assert [b.buyers for b in buckets] == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert round(buckets[0].actual, 3) == 0.237
    assert round(buckets[0].predicted, 3) == 0.225
    assert sum(b.actual * b.buyers for b in buckets) == pytest.approx(1882.0)


def test_weights_equal_repeated_rows(cdnow: ltv.RFMSummary) -> None:
    keep = slice(0, 600)
    x, t_x, T = cdnow.x[keep], cdnow.t_x[keep], cdnow.T[keep]
    doubled = ltv.fit_bgnbd(np.tile(x, 2), np.tile(t_x, 2), np.tile(T, 2))
    weighted = ltv.fit_bgnbd(x, t_x, T, weights=np.full(x.shape[0], 2.0))
    assert weighted.log_likelihood == pytest.approx(doubled.log_likelihood, abs=1e-6)
    assert (weighted.r, weighted.alpha, weighted.a, weighted.b) == pytest.approx(
        (doubled.r, doubled.alpha, doubled.a, doubled.b), rel=1e-5
    )


def test_too_little_data_is_a_fit_error() -> None:
    with pytest.raises(ltv.FitError):
        ltv.fit_bgnbd([0.0, 1.0], [0.0, 1.0], [2.0, 2.0])
    with pytest.raises(ltv.FitError):
        ltv.fit_bgnbd([0.0] * 20, [0.0] * 20, [2.0] * 20)  # no repeat buyer
    with pytest.raises(ltv.FitError):
        ltv.fit_gamma_gamma([1.0] * 5, [3.0] * 5)
    with pytest.raises(ValueError, match="t_x"):
        ltv.fit_bgnbd([1.0], [3.0], [2.0])


# -- Pareto/NBD ----------------------------------------------------------------------------------------------


def _pareto_integral(params: ltv.ParetoNBDParams, x: int, t_x: float, T: float) -> float:
    """The Pareto/NBD likelihood as the model defines it: integrated over lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_norm = r * math.log(alpha) - math.lgamma(r) + s * math.log(beta) - math.lgamma(s)

    def individual(mu: float, lam: float) -> float:
        if lam <= 0.0 or mu <= 0.0:
            return 0.0
        both = lam + mu
        alive = lam**x * math.exp(-both * T)
        died = lam**x * mu / both * (math.exp(-both * t_x) - math.exp(-both * T))
        prior = math.exp(
            log_norm + (r - 1) * math.log(lam) - alpha * lam + (s - 1) * math.log(mu) - beta * mu
        )
        return (alive + died) * prior

    value, _ = integrate.dblquad(individual, 0, np.inf, 0, np.inf, epsabs=1e-12, epsrel=1e-9)
    return float(value)


@pytest.mark.parametrize(
    ("params", "row"),
    [
        (ltv.ParetoNBDParams(r=1.3, alpha=4.0, s=0.8, beta=2.5), (2, 3.0, 7.0)),  # alpha >= beta
        (ltv.ParetoNBDParams(r=0.9, alpha=2.0, s=1.4, beta=5.0), (1, 1.5, 6.0)),  # alpha < beta
        (ltv.ParetoNBDParams(r=0.9, alpha=2.0, s=1.4, beta=5.0), (0, 0.0, 4.0)),
    ],
)
def test_pareto_nbd_likelihood_matches_the_integral(
    params: ltv.ParetoNBDParams, row: tuple[int, float, float]
) -> None:
    x, t_x, T = row
    closed = ltv.pareto_nbd_individual_log_likelihood(params, [x], [t_x], [T])[0]
    assert math.exp(closed) == pytest.approx(_pareto_integral(params, x, t_x, T), rel=1e-6)


def test_cdnow_pareto_nbd_reproduces_the_published_fit(cdnow: ltv.RFMSummary) -> None:
    # Fader, Hardie & Lee's MATLAB note: r = 0.5534, alpha = 10.5802, s = 0.6061, beta = 11.6562, LL = -9594.98;
    # the likelihood is flat along beta, which optimisers leave anywhere in 11.66 .. 11.67.
    fit = ltv.fit_pareto_nbd(cdnow.x, cdnow.t_x, cdnow.T)
    assert round(fit.log_likelihood, 2) == -9594.98
    assert (round(fit.r, 2), round(fit.alpha, 1), round(fit.s, 2), round(fit.beta, 1)) == (
        0.55,
        10.6,
        0.61,
        11.7,
    )
    alive = ltv.pareto_nbd_p_alive(fit, cdnow.x, cdnow.t_x, cdnow.T)
    assert bool(np.all((alive > 0) & (alive <= 1)))
