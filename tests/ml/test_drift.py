"""PSI with explicit binning rules (issue 13, item 6): exact values on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from offerloop.ml.drift import (
    ALERT,
    EPSILON,
    WATCH,
    categorical_psi,
    numeric_psi,
    psi_from_shares,
    quantile_cuts,
    severity,
)


def test_median_split_by_hand():
    # reference 1..10, two bins: the cut is the median 5.5; the reference is half and half
    reference = list(range(1, 11))
    current = [1] * 8 + [6, 7]  # 8 at or below 5.5, 2 above
    drift = numeric_psi(reference, current, bins=2)
    assert quantile_cuts(reference, 2) == [5.5]
    assert drift.bins == ["5.5", "+inf"]
    assert drift.reference_shares == [0.5, 0.5]
    assert drift.current_shares == [0.8, 0.2]
    # (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5) = 0.3 ln 4
    assert drift.psi == pytest.approx(0.3 * math.log(4), abs=1e-15)
    assert (drift.reference_n, drift.current_n) == (10, 10)


def test_deciles_type7_and_closed_on_the_right():
    reference = list(range(1, 11))
    # type 7: position 9q between order statistics -> 1.9, 2.8, ..., 9.1
    assert quantile_cuts(reference) == pytest.approx([1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1])
    same = numeric_psi(reference, reference)
    assert same.reference_shares == [0.1] * 10 and same.psi == 0.0
    # a value equal to a cut falls in the lower bin; values beyond the reference's range in the outer bins
    edge = numeric_psi([0, 1, 2, 3], [1.5, 1.5, -100, 100], bins=2)  # median 1.5
    assert edge.current_shares == [0.75, 0.25]


def test_ties_merge_cut_points():
    # nine zeros and a 5: the deciles 0.1 .. 0.8 are all 0, the 0.9 quantile is 0 + 0.1 * 5 = 0.5
    reference = [0.0] * 9 + [5.0]
    assert quantile_cuts(reference) == pytest.approx([0.0, 0.5], abs=1e-12)
    drift = numeric_psi(reference, [0.0] * 5 + [0.3] * 5)
    assert drift.bins == ["0", "0.5", "+inf"]
    assert drift.reference_shares == [0.9, 0.0, 0.1]
    assert drift.current_shares == [0.5, 0.5, 0.0]
    expected = (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    expected += (EPSILON - 0.1) * math.log(EPSILON / 0.1)
    assert drift.psi == pytest.approx(expected, rel=1e-15)


def test_empty_bin_uses_epsilon_without_renormalising():
    # reference [0, 0, 0, 1]: the median is 0, shares 3/4 and 1/4; the current sample is all above it
    drift = numeric_psi([0, 0, 0, 1], [1, 1], bins=2)
    assert drift.current_shares == [0.0, 1.0]
    expected = (EPSILON - 0.75) * math.log(EPSILON / 0.75) + (1 - 0.25) * math.log(1 / 0.25)
    assert drift.psi == pytest.approx(expected, rel=1e-15)
    assert psi_from_shares([0.75, 0.25], [0.0, 1.0], eps=0.01) == pytest.approx(
        (0.01 - 0.75) * math.log(0.01 / 0.75) + 0.75 * math.log(4), rel=1e-15
    )


def test_categorical_shares_and_a_new_category():
    drift = categorical_psi({"a": 50, "b": 50}, {"a": 80, "b": 20})
    assert drift.psi == pytest.approx(0.3 * math.log(4), abs=1e-15)
    new = categorical_psi(["a"] * 10, ["a"] * 9 + ["b"])
    assert new.bins == ["a", "b"]
    assert (new.reference_shares, new.current_shares) == ([1.0, 0.0], [0.9, 0.1])
    expected = (0.9 - 1.0) * math.log(0.9) + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    assert new.psi == pytest.approx(expected, rel=1e-15)
    assert severity(new.psi) == "alert"
    booleans = categorical_psi([True, False], [True, True, False, False])
    assert booleans.bins == ["false", "true"] and booleans.psi == 0.0
    assert categorical_psi({"a": 0, "b": 2}, {"b": 1}).bins == ["b"]  # a zero count is no category


def test_empty_and_non_finite_samples():
    assert numeric_psi([], [1.0]).psi is None
    assert numeric_psi([1.0, 2.0], [float("nan")]).psi is None
    drift = numeric_psi([1.0, 2.0, float("inf"), float("nan")], [1.0, 2.0, float("nan")], bins=2)
    assert (drift.reference_n, drift.current_n, drift.psi) == (2, 2, 0.0)
    assert categorical_psi({}, {"a": 1}).psi is None


def test_thresholds():
    assert (WATCH, ALERT) == (0.1, 0.25)
    assert [severity(v) for v in (None, 0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        None, None, None, "watch", "watch", "alert", "alert",
    ]  # fmt: skip
    assert severity(0.15, watch=0.2, alert=0.3) is None
    assert severity(float("nan")) is None


def test_bad_arguments():
    with pytest.raises(ValueError):
        quantile_cuts([1.0], bins=1)
    with pytest.raises(ValueError):
        psi_from_shares([1.0], [0.5, 0.5])
    with pytest.raises(ValueError):
        psi_from_shares([1.0], [1.0], eps=0.0)
