"""What every policy shares: feedback checks, rankings, feature encoding, versioned payloads, base classes."""

from __future__ import annotations

import base64
import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from offerloop.ml.base import Action, Features, Scored

PAYLOAD_VERSION = 1
# Numeric feature values are clipped to +/- this (VW keeps float32 weights; interactions multiply values),
# and larger rewards are refused: either is a unit bug upstream, never a meaningful value.
MAX_ABS_VALUE = 1e9


def _check_feedback(actions: Sequence[Action], chosen: int, probability: float, reward: float) -> None:
    if not 0 <= chosen < len(actions):
        raise IndexError(f"chosen={chosen} is not an index of the {len(actions)} actions given")
    if not (math.isfinite(probability) and 0.0 < probability <= 1.0 + 1e-9):
        raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    if not (math.isfinite(reward) and abs(reward) <= MAX_ABS_VALUE):
        raise ValueError(f"reward must be finite and within +/-{MAX_ABS_VALUE:g}, got {reward!r}")


_NO_ESTIMATES: Sequence[float | None] = ()

# Scored is a frozen dataclass: its __init__ sets each field through object.__setattr__, which costs
# ~0.5 us a Scored (a third of ranking 50 actions); its slot descriptors set the same fields directly.
# (Unpacking fails at import if Scored's fields change.)
_new_scored = object.__new__
_set_index, _set_score, _set_probability, _set_expected = (
    getattr(Scored, f.name).__set__ for f in dataclasses.fields(Scored)
)


def _ranking(
    scores: Sequence[float], probabilities: Sequence[float], expected: Sequence[float | None] = _NO_ESTIMATES
) -> list[Scored]:
    """Scored items sorted by score desc, ties by index (``expected``: calibrated expected rewards, if any)."""
    negated = [-s for s in scores]
    order = sorted(range(len(scores)), key=negated.__getitem__)  # a stable sort: ties stay in index order
    out = []
    for i in order:
        scored = _new_scored(Scored)
        _set_index(scored, i)
        _set_score(scored, float(scores[i]))
        _set_probability(scored, float(probabilities[i]))
        _set_expected(scored, expected[i] if expected else None)
        out.append(scored)
    return out


def _greedy_ranking(
    scores: Sequence[float], expected: Sequence[float | None] = _NO_ESTIMATES
) -> list[Scored]:
    """Sorted by score desc (ties by index); probability 1 on the first, 0 elsewhere."""
    first = min(range(len(scores)), key=lambda i: (-scores[i], i), default=-1)
    return _ranking(scores, [1.0 if i == first else 0.0 for i in range(len(scores))], expected)


def _encode(features: Features, prefix: str = "") -> dict[str, float]:
    """One-hot / numeric encoding: ``str`` -> ``"name=value": 1``, ``bool`` -> 0/1, numbers as they are.

    Zero, ``None``, non-finite and out-of-float-range values are dropped (a missing feature is a zero);
    numbers are clipped to ``+/-MAX_ABS_VALUE``.
    """
    out: dict[str, float] = {}
    for name, value in features.items():
        if isinstance(value, str):
            out[f"{prefix}{name}={value}"] = 1.0
            continue
        if isinstance(value, bool | np.bool_):
            v = 1.0 if value else 0.0
        elif isinstance(value, numbers.Real):
            try:
                v = float(value)
            except OverflowError:
                continue
        elif value is None:
            continue
        else:
            raise TypeError(f"feature {name!r}: unsupported value type {type(value).__name__}")
        if v != 0.0 and math.isfinite(v):
            out[prefix + name] = min(max(v, -MAX_ABS_VALUE), MAX_ABS_VALUE)
    return out


def _payload(kind: str, params: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "version": PAYLOAD_VERSION, "params": dict(params), "state": dict(state)}


def _unpack(kind: str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if payload.get("kind") != kind:
        raise ValueError(f"payload kind {payload.get('kind')!r} is not {kind!r}")
    if payload.get("version") != PAYLOAD_VERSION:
        raise ValueError(f"unsupported {kind} payload version {payload.get('version')!r}")
    return dict(payload["params"]), dict(payload["state"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _floats_b64(array: np.ndarray[Any, Any]) -> str:
    return _b64(np.ascontiguousarray(array, dtype="<f8").tobytes())


def _floats_unb64(text: str, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return np.frombuffer(_unb64(text), dtype="<f8").astype(np.float64).reshape(shape)


class _PolicyBase:
    """Hyper-parameter plumbing shared by the policies (``get_params`` / ``clone`` / ``repr``)."""

    kind: ClassVar[str]
    _param_names: ClassVar[tuple[str, ...]]

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` arguments, read back from the attributes of the same names."""
        return {name: getattr(self, name) for name in self._param_names}

    def clone(self) -> Self:
        """Same hyper-parameters, no learned state."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class _PerActionMeans(_PolicyBase):
    """Shared state of the context-free baselines: reward count and sum per action id."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._sum: dict[str, float] = {}
        self._total_count = 0
        self._total_sum = 0.0

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)
        action_id = actions[chosen].id
        self._count[action_id] = self._count.get(action_id, 0) + 1
        self._sum[action_id] = self._sum.get(action_id, 0.0) + float(reward)
        self._total_count += 1
        self._total_sum += float(reward)

    def _state(self) -> dict[str, Any]:
        return {
            "count": dict(sorted(self._count.items())),
            "sum": dict(sorted(self._sum.items())),
            "total_count": self._total_count,
            "total_sum": self._total_sum,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._count = {str(k): int(v) for k, v in state["count"].items()}
        self._sum = {str(k): float(v) for k, v in state["sum"].items()}
        self._total_count = int(state["total_count"])
        self._total_sum = float(state["total_sum"])

    def to_payload(self) -> dict[str, Any]:
        return _payload(self.kind, self.get_params(), self._state())

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, state = _unpack(cls.kind, payload)
        policy = cls(**params)
        policy._set_state(state)
        return policy
