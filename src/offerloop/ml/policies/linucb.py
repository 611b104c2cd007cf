"""Disjoint LinUCB on numpy: one ridge regression per action id."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from offerloop.ml.base import Action, Features, Scored
from offerloop.ml.calibration import RewardCalibrator
from offerloop.ml.policies.common import (
    _check_feedback,
    _encode,
    _floats_b64,
    _floats_unb64,
    _greedy_ranking,
    _payload,
    _PolicyBase,
    _unpack,
)


class _Arm:
    """One LinUCB arm: ``A^-1`` (kept by Sherman-Morrison updates) and ``b`` over the first ``d`` features."""

    __slots__ = ("a_inv", "b")

    def __init__(self, a_inv: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> None:
        self.a_inv = a_inv
        self.b = b

    @property
    def dim(self) -> int:
        return int(self.b.shape[0])

    def grow(self, dim: int) -> None:
        """Extend to ``dim`` features: new features have never been seen, so their block of A is I."""
        old = self.dim
        if dim <= old:
            return
        a_inv = np.eye(dim)
        a_inv[:old, :old] = self.a_inv
        b = np.zeros(dim)
        b[:old] = self.b
        self.a_inv, self.b = a_inv, b


class LinUCBPolicy(_PolicyBase):
    """Disjoint LinUCB (Li et al. 2010): one ridge regression per action id, ``A = I + sum x x^T``.

    ``x`` is the one-hot/numeric encoding of the context (``u:`` prefix) and of the action's own
    features (``a:`` prefix) plus a bias; keeping one model per action id makes it the context ⊗
    action-id feature space. ``score = theta_a . x + alpha * sigma * sqrt(x^T A_a^-1 x)`` (the upper
    confidence bound), where ``sigma`` is the standard deviation of the rewards observed so far (shrunk
    toward 1 by one pseudo-observation: before any reward the bonus is ``alpha * width``, as in Li et al.).
    ``alpha`` is thus in units of the reward's own spread: with rewards of a few per cent the bonus
    shrinks with them (``sigma ~ sqrt(rate)``), so the estimated means decide once data arrives instead
    of the width alone (on 0/1 rewards at a 0.9% rate, an unscaled ``alpha = 1`` gave a bonus of ~0.5
    against means of ~0.01). Feature names first seen at ``rank`` time have an identity block in every
    ``A``, so they add to the width exactly as a trained model would see them, without being stored;
    unseen actions have ``A = I``, ``theta = 0``. pmf: probability 1 on the argmax (ties by index). The
    update ignores the logged probability (LinUCB is on-policy). ``seed`` is unused (deterministic) and
    kept for the common signature.

    ``expected_reward``: ``theta_a . x`` (no bonus) calibrated by :class:`RewardCalibrator` on the
    progressive predictions. Snapshots saved before the calibrator existed load with no reward
    statistics: ``sigma`` starts from its prior (1) and moves to the observed spread as rewards arrive.
    """

    kind: ClassVar[str] = "linucb"
    name: str = "linucb"
    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "seed")
    _BIAS = "\x00bias"

    def __init__(self, alpha: float = 1.0, seed: int = 0) -> None:
        if not alpha >= 0.0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.alpha = alpha
        self.seed = seed
        self._vocabulary: dict[str, int] = {}
        self._arms: dict[str, _Arm] = {}
        self._calibrator = RewardCalibrator()

    def exploration_scale(self) -> float:
        """``alpha * sigma``: what multiplies the confidence width in ``score``."""
        return self.alpha * self._calibrator.reward_std()

    def _mean_width(self, context_x: Mapping[str, float], action: Action) -> tuple[float, float]:
        """``(theta_a . x, x^T A_a^-1 x)`` of one action."""
        v, unknown = self._vector(self._features(context_x, action))
        arm = self._arms.get(action.id)
        if arm is None:
            return 0.0, float(v @ v) + unknown
        d = arm.dim
        head, tail = v[:d], v[d:]
        mean = float(head @ (arm.a_inv @ arm.b))
        return mean, float(head @ arm.a_inv @ head) + float(tail @ tail) + unknown

    def decompose(self, context: Features, actions: Sequence[Action]) -> list[tuple[float, float]]:
        """``(estimated mean, exploration bonus)`` per action, in the order given (``score`` is their sum)."""
        context_x = _encode(context, "u:")
        context_x[self._BIAS] = 1.0
        scale = self.exploration_scale()
        out = []
        for action in actions:
            mean, width = self._mean_width(context_x, action)
            out.append((mean, scale * math.sqrt(max(width, 0.0))))
        return out

    def _features(self, context_x: Mapping[str, float], action: Action) -> dict[str, float]:
        x = dict(context_x)
        x.update(_encode(action.features, "a:"))
        return x

    def _vector(self, x: Mapping[str, float]) -> tuple[np.ndarray[Any, Any], float]:
        """Dense vector over the known vocabulary, plus the squared norm of the unknown features."""
        v = np.zeros(len(self._vocabulary))
        unknown = 0.0
        for name, value in x.items():
            j = self._vocabulary.get(name)
            if j is None:
                unknown += value * value
            else:
                v[j] = value
        return v, unknown

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        parts = self.decompose(context, actions)
        expected = self._calibrator.predict([mean for mean, _ in parts], [a.id for a in actions])
        return _greedy_ranking([mean + bonus for mean, bonus in parts], expected)

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)
        context_x = _encode(context, "u:")
        context_x[self._BIAS] = 1.0
        action = actions[chosen]
        self._calibrator.update(self._mean_width(context_x, action)[0], action.id, float(reward))
        x = self._features(context_x, action)
        for name in x:
            if name not in self._vocabulary:
                self._vocabulary[name] = len(self._vocabulary)
        v, _ = self._vector(x)
        arm = self._arms.get(action.id)
        if arm is None:
            arm = self._arms[action.id] = _Arm(np.eye(len(v)), np.zeros(len(v)))
        arm.grow(len(v))
        a_inv_v = arm.a_inv @ v
        arm.a_inv -= np.outer(a_inv_v, a_inv_v) / (1.0 + float(v @ a_inv_v))
        arm.b += float(reward) * v

    def to_payload(self) -> dict[str, Any]:
        vocabulary = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        arms = {
            action_id: {"dim": arm.dim, "a_inv": _floats_b64(arm.a_inv), "b": _floats_b64(arm.b)}
            for action_id, arm in sorted(self._arms.items())
        }
        state = {"vocabulary": vocabulary, "arms": arms, "calibrator": self._calibrator.to_state()}
        return _payload(self.kind, self.get_params(), state)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, state = _unpack(cls.kind, payload)
        policy = cls(**params)
        policy._vocabulary = {str(name): j for j, name in enumerate(state["vocabulary"])}
        for action_id, arm in state["arms"].items():
            d = int(arm["dim"])
            policy._arms[str(action_id)] = _Arm(
                _floats_unb64(arm["a_inv"], (d, d)), _floats_unb64(arm["b"], (d,))
            )
        policy._calibrator = RewardCalibrator.from_state(state.get("calibrator"))
        return policy
