"""Calibrated expected reward on top of a policy's ranking score (progressive, monotone linear stacking).

A bandit's ranking score is not a probability: VW's squared-loss regressor on rewards of a few per
thousand predicts around -0.03 (it is trained to rank, with a large learning rate), and a UCB score
adds an exploration bonus. :class:`RewardCalibrator` maps the score to an estimate of the expected
reward, fit on the policy's own feedback *before* the policy learns each example (progressive
validation: every pair is an out-of-sample prediction and the reward that followed it).

The map is ``reward ~ mean + b1 * (raw - mean_raw) + b2 * (q - mean_q)`` by least squares, where
``raw`` is the model's prediction and ``q`` the action's smoothed mean reward minus the base rate
(``k = 1 / base rate`` pseudo-observations at the base rate, so an action moves away from it only
after about one expected success). The slopes are constrained to be >= 0 (a calibration map never reverses the model's order,
the monotonicity isotonic calibration asks for); a feature whose slope would be negative is dropped,
and with no usable signal the estimate is the base rate. The intercept makes the mean prediction
equal the mean observed reward. Estimates are clipped to the observed reward range widened to include
0 (for 0/1 rewards: ``[0, 1]``). Until a first reward has been observed there is no estimate (None).

It also keeps the reward count, mean and variance, which LinUCB uses to scale its exploration.
Pure numpy; state as a JSON-serialisable dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["RewardCalibrator"]

_RIDGE = 1e-3  # relative ridge on the slopes' covariance (keeps the 2x2 solve well posed)
_MIN_BASE_RATE = 1e-3  # the action prior's strength is 1 / max(base rate, this)


class RewardCalibrator:
    """Progressive, monotone linear calibration of a raw score into an expected reward."""

    __slots__ = (
        "_action_n", "_action_sum", "_coefficients", "_n", "_r_max", "_r_min", "_sum", "_sum_sq", "_xtx", "_xty",
    )  # fmt: skip

    def __init__(self) -> None:
        self._n = 0
        self._sum = 0.0
        self._sum_sq = 0.0
        self._r_min = 0.0
        self._r_max = 0.0
        self._action_n: dict[str, int] = {}
        self._action_sum: dict[str, float] = {}
        self._xtx = np.zeros((3, 3))  # over x = (1, raw, q)
        self._xty = np.zeros(3)
        self._coefficients: tuple[float, float, float, float, float] | None = None  # cached until an update

    # ---- reward statistics ------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Rewards observed."""
        return self._n

    @property
    def base_rate(self) -> float:
        """Mean observed reward (0 before any)."""
        return self._sum / self._n if self._n else 0.0

    def reward_std(self, *, prior_std: float = 1.0, prior_weight: float = 1.0) -> float:
        """Standard deviation of the observed rewards, shrunk toward ``prior_std`` by ``prior_weight`` observations."""
        m = self.base_rate
        squares = max(self._sum_sq - self._n * m * m, 0.0)
        return math.sqrt((squares + prior_weight * prior_std**2) / (self._n + prior_weight))

    def action_mean(self, action_id: str) -> float:
        """The action's mean reward, smoothed toward the base rate (``1 / base rate`` pseudo-observations)."""
        m = self.base_rate
        k = 1.0 / max(m, _MIN_BASE_RATE)
        return (self._action_sum.get(action_id, 0.0) + k * m) / (self._action_n.get(action_id, 0) + k)

    def _action_lift(self, action_id: str) -> float:
        # relative to the current base rate: the base rate itself drifts while it is estimated, and that
        # drift must not pass for a property of the action
        return self.action_mean(action_id) - self.base_rate

    # ---- fit and predict --------------------------------------------------------------------------

    def update(self, raw: float, action_id: str, reward: float) -> None:
        """One out-of-sample pair: the model predicted ``raw`` for ``action_id``, before learning ``reward``."""
        raw = float(raw) if math.isfinite(raw) else 0.0
        x = np.array([1.0, raw, self._action_lift(action_id)])
        self._coefficients = None
        self._xtx += np.outer(x, x)
        self._xty += reward * x
        self._n += 1
        self._sum += reward
        self._sum_sq += reward * reward
        self._r_min = min(self._r_min, reward)
        self._r_max = max(self._r_max, reward)
        self._action_n[action_id] = self._action_n.get(action_id, 0) + 1
        self._action_sum[action_id] = self._action_sum.get(action_id, 0.0) + reward

    def coefficients(self) -> tuple[float, float, float, float, float]:
        """``(mean reward, mean raw, mean q, slope raw, slope q)``; slopes >= 0 (see the module docstring)."""
        if self._coefficients is None:
            self._coefficients = self._fit()
        return self._coefficients

    def _fit(self) -> tuple[float, float, float, float, float]:
        w = self._xtx[0, 0]
        if w <= 0.0:
            return 0.0, 0.0, 0.0, 0.0, 0.0
        mu = self._xtx[0] / w
        my = self._xty[0] / w
        cov = self._xtx[1:, 1:] / w - np.outer(mu[1:], mu[1:])
        cxy = self._xty[1:] / w - mu[1:] * my
        cov = cov + _RIDGE * np.diag(np.diag(cov))
        slopes = np.zeros(2)
        if np.linalg.det(cov) > 1e-300:
            slopes = np.linalg.solve(cov, cxy)
        if not (slopes >= 0.0).all() or not np.isfinite(slopes).all():
            # the best single non-negative slope (largest variance explained), else none
            slopes = np.zeros(2)
            gains = [cxy[j] ** 2 / cov[j, j] if cov[j, j] > 0.0 and cxy[j] > 0.0 else 0.0 for j in range(2)]
            j = int(np.argmax(gains))
            if gains[j] > 0.0:
                slopes[j] = cxy[j] / cov[j, j]
        return float(my), float(mu[1]), float(mu[2]), float(slopes[0]), float(slopes[1])

    def predict(self, raws: list[float], action_ids: list[str]) -> list[float | None]:
        """Expected reward of each (raw score, action id) pair; None before the first reward."""
        if self._n == 0:
            return [None] * len(raws)
        my, m_raw, m_q, b_raw, b_q = self.coefficients()
        lo, hi = self._r_min, self._r_max
        # _action_lift inlined, the same operations in the same order (it runs once per ranked action)
        m = self.base_rate
        k = 1.0 / max(m, _MIN_BASE_RATE)
        km = k * m
        sums, counts = self._action_sum, self._action_n
        isfinite = math.isfinite
        out: list[float | None] = []
        for raw, action_id in zip(raws, action_ids, strict=True):
            raw = raw if isfinite(raw) else m_raw
            lift = (sums.get(action_id, 0.0) + km) / (counts.get(action_id, 0) + k) - m
            value = my + b_raw * (raw - m_raw) + b_q * (lift - m_q)
            out.append(lo if value < lo else hi if value > hi else value)
        return out

    # ---- persistence ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "n": self._n,
            "sum": self._sum,
            "sum_sq": self._sum_sq,
            "min": self._r_min,
            "max": self._r_max,
            "action_n": dict(sorted(self._action_n.items())),
            "action_sum": dict(sorted(self._action_sum.items())),
            "xtx": [float(v) for v in self._xtx.ravel()],
            "xty": [float(v) for v in self._xty],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> RewardCalibrator:
        """Rebuild from ``to_state()``; None (a snapshot saved before calibration existed) gives a fresh one."""
        calibrator = cls()
        if state is None:
            return calibrator
        calibrator._n = int(state["n"])
        calibrator._sum = float(state["sum"])
        calibrator._sum_sq = float(state["sum_sq"])
        calibrator._r_min = float(state["min"])
        calibrator._r_max = float(state["max"])
        calibrator._action_n = {str(k): int(v) for k, v in state["action_n"].items()}
        calibrator._action_sum = {str(k): float(v) for k, v in state["action_sum"].items()}
        calibrator._xtx = np.array(state["xtx"], dtype=np.float64).reshape(3, 3)
        calibrator._xty = np.array(state["xty"], dtype=np.float64).reshape(3)
        return calibrator
