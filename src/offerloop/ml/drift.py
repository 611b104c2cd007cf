"""Population stability index (PSI): how far a current sample's distribution has moved from a reference's.

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins ``i``, where ``e_i`` is the reference's share of bin
``i`` and ``a_i`` the current sample's. It is 0 for identical distributions and grows with the shift; it is
symmetric in the two samples once the bins are fixed.

Binning rules (they decide the value, so they are fixed here and documented):

* **Numeric values** are cut at the reference's quantiles ``k / bins`` for ``k = 1 .. bins - 1`` (default 10
  bins: deciles), computed by linear interpolation between order statistics (numpy's default ``"linear"``
  method, Hyndman & Fan type 7). Repeated cut points (ties in the reference, e.g. a feature that is 0 for most
  buyers) are merged, so a sample may have fewer bins than asked. Bins are closed on the right:
  ``(-inf, c_1], (c_1, c_2], ..., (c_m, +inf)``, so a value equal to a cut point falls in the lower bin; the
  outer bins are open, so current values outside the reference's range still land in a bin.
* **Categorical values** (strings, booleans; a persona name): one bin per category seen in either sample.
* **Empty bins**: a share of exactly 0 (in either sample) is replaced by ``eps`` (default ``1e-4``), without
  renormalising the other shares, so the logarithm is defined. With ``eps = 1e-4`` one bin that is empty on
  one side and holds share ``s`` on the other contributes ``(s - 1e-4) * ln(s / 1e-4)``: about 0.68 for
  ``s = 0.1``; a new category is therefore an alert on its own once it holds more than a few percent.
* Non-finite numbers (NaN, +/-inf) are left out of a numeric sample; an empty sample has no PSI (``None``).

Thresholds, the usual reading (Siddiqi, *Credit Risk Scorecards*, 2006): below 0.1 no significant change,
0.1 to 0.25 a moderate shift worth watching, 0.25 and above a significant shift (:func:`severity`).

Pure numpy + stdlib: no database, no web imports.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALERT",
    "DEFAULT_BINS",
    "EPSILON",
    "WATCH",
    "Drift",
    "categorical_psi",
    "numeric_psi",
    "psi_from_shares",
    "quantile_cuts",
    "severity",
]

DEFAULT_BINS = 10
EPSILON = 1e-4
WATCH = 0.1
ALERT = 0.25

Severity = Literal["watch", "alert"]


@dataclass(frozen=True, slots=True)
class Drift:
    """A PSI with what it was computed from: the bins' labels (upper cut points, 6 significant digits, ``"+inf"`` for the
    last numeric bin; category names) and each sample's shares of them (before ``eps`` replaces zeros)."""

    psi: float | None  # None: one of the samples is empty
    bins: list[str]
    reference_shares: list[float]
    current_shares: list[float]
    reference_n: int
    current_n: int


def severity(psi: float | None, *, watch: float = WATCH, alert: float = ALERT) -> Severity | None:
    """``"alert"`` at or above ``alert``, ``"watch"`` at or above ``watch``, else None (also for no PSI)."""
    if psi is None or math.isnan(psi):
        return None
    if psi >= alert:
        return "alert"
    if psi >= watch:
        return "watch"
    return None


def psi_from_shares(reference: Sequence[float], current: Sequence[float], *, eps: float = EPSILON) -> float:
    """PSI of two share vectors over the same bins (zeros replaced by ``eps``, see the module docstring)."""
    if len(reference) != len(current):
        raise ValueError("the two share vectors must have the same bins")
    if not eps > 0.0:
        raise ValueError("eps must be positive")
    total = 0.0
    for e, a in zip(reference, current, strict=True):
        e, a = (e if e > 0.0 else eps), (a if a > 0.0 else eps)
        total += (a - e) * math.log(a / e)
    return total


def _finite(values: Iterable[float]) -> npt.NDArray[np.float64]:
    array = np.asarray(list(values), dtype=np.float64)
    finite: npt.NDArray[np.float64] = array[np.isfinite(array)]
    return finite


def quantile_cuts(reference: Iterable[float], bins: int = DEFAULT_BINS) -> list[float]:
    """The reference's inner cut points: quantiles ``k / bins`` (type 7), repeated ones merged, ascending."""
    if bins < 2:
        raise ValueError("bins must be at least 2")
    sample = _finite(reference)
    if sample.size == 0:
        return []
    cuts = np.quantile(sample, [k / bins for k in range(1, bins)], method="linear")
    return [float(c) for c in np.unique(cuts)]


def _shares(sample: npt.NDArray[np.float64], cuts: Sequence[float]) -> list[float]:
    # side="left": the index of the first cut >= x, i.e. bins closed on the right
    counts = np.bincount(
        np.searchsorted(np.asarray(cuts, dtype=float), sample, side="left"), minlength=len(cuts) + 1
    )
    return [float(c) / sample.size for c in counts]


def numeric_psi(
    reference: Iterable[float], current: Iterable[float], *, bins: int = DEFAULT_BINS, eps: float = EPSILON
) -> Drift:
    """PSI of a numeric feature over the reference's quantile bins (see the module docstring)."""
    ref, cur = _finite(reference), _finite(current)
    cuts = quantile_cuts(ref, bins) if ref.size else []
    labels = [f"{c:.6g}" for c in cuts] + ["+inf"]
    if ref.size == 0 or cur.size == 0:
        return Drift(None, labels, _shares(ref, cuts) if ref.size else [], _shares(cur, cuts) if cur.size else [],
                     int(ref.size), int(cur.size))  # fmt: skip
    e, a = _shares(ref, cuts), _shares(cur, cuts)
    return Drift(psi_from_shares(e, a, eps=eps), labels, e, a, int(ref.size), int(cur.size))


def _counts(sample: Mapping[str, int] | Iterable[Hashable]) -> Counter[str]:
    if isinstance(sample, Mapping):
        return Counter({str(k): int(v) for k, v in sample.items() if int(v) > 0})
    return Counter(_label(v) for v in sample)


def _label(value: Hashable) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def categorical_psi(
    reference: Mapping[str, int] | Iterable[Hashable],
    current: Mapping[str, int] | Iterable[Hashable],
    *,
    eps: float = EPSILON,
) -> Drift:
    """PSI of category shares: ``reference``/``current`` are samples of values or ``{category: count}``
    mappings. Booleans are the categories ``"true"``/``"false"``; bins are the categories sorted by name."""
    ref, cur = _counts(reference), _counts(current)
    labels = sorted(set(ref) | set(cur))
    ref_n, cur_n = sum(ref.values()), sum(cur.values())
    e = [ref[c] / ref_n for c in labels] if ref_n else []
    a = [cur[c] / cur_n for c in labels] if cur_n else []
    if not ref_n or not cur_n:
        return Drift(None, labels, e, a, ref_n, cur_n)
    return Drift(psi_from_shares(e, a, eps=eps), labels, e, a, ref_n, cur_n)
