"""The shared policy interface of the next-best-action engine.

A *policy* ranks candidate actions (lessons, offers, coaching slots) for one buyer context and learns
from the reward of the action that was shown. Conventions (river / scikit-learn):

* hyper-parameters are the ``__init__`` arguments only, stored as attributes of the same names, with
  an explicit ``seed`` where randomness could be involved;
* ``rank`` never changes the policy; ``learn_one`` returns ``None``;
* ``to_payload`` gives an explicit, versioned, JSON-serialisable dict
  ``{"kind", "version", "params", "state"}`` (bytes as base64), never a pickle, and
  ``from_payload(to_payload())`` ranks exactly like the original;
* ``clone`` gives a policy with the same hyper-parameters and no learned state.

Feature values: ``str`` values are categorical (one-hot as ``"name=value"``), ``bool`` values are 0/1,
``int``/``float`` values are numeric. A feature that is absent is simply missing (treated as 0).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

__all__ = ["Action", "Features", "Policy", "Scored", "load_policy", "sample"]

# str values are categorical (one-hot as "name=value"); bools are 0/1
Features = Mapping[str, float | int | str | bool]


@dataclass(frozen=True, slots=True)
class Action:
    """One candidate action: a stable ``id`` (lesson, offer, coaching slot) and its features."""

    id: str
    features: Mapping[str, float | int | str | bool]


@dataclass(frozen=True, slots=True)
class Scored:
    """One ranked action."""

    index: int  # position in the actions list given
    score: float  # ranking score, higher = better; NOT a probability (may be negative, may include an exploration bonus)
    probability: float  # the policy's probability of choosing this action first (exploration pmf; sums to 1 over the list)
    # calibrated estimate of the reward of showing this action (for 0/1 rewards: a probability in [0, 1]);
    # None where the policy has no estimate (nothing learned yet, or a policy without a reward model)
    expected_reward: float | None = None


@runtime_checkable
class Policy(Protocol):
    """What every next-best-action model implements."""

    name: str

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        """Score every action; side-effect free; sorted by score desc, ties by index."""
        ...

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        """Learn from one shown action: ``actions[chosen]`` was picked with ``probability`` and earned ``reward``."""
        ...

    def to_payload(self) -> dict[str, Any]:
        """Explicit versioned JSON-serialisable payload (bytes as base64), NOT a pickle."""
        ...

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a policy from ``to_payload()``; it ranks exactly like the original."""
        ...

    def clone(self) -> Self:
        """Same hyper-parameters, no learned state."""
        ...


def sample(ranked: Sequence[Scored], rng: random.Random) -> Scored:
    """Draw the first slot from the pmf of ``ranked`` (one ``rng.random()`` call).

    The chosen item's ``probability`` is the propensity to log. Probabilities are renormalised by their
    sum, so float round-off never makes the draw fall off the end; entries with probability 0 are never
    drawn.
    """
    if not ranked:
        raise ValueError("cannot sample from an empty ranking")
    total = 0.0
    for item in ranked:
        p = item.probability
        if not (math.isfinite(p) and p >= 0.0):
            raise ValueError(f"invalid probability {p!r} for action index {item.index}")
        total += p
    if total <= 0.0:
        raise ValueError("the ranking's probabilities sum to 0")
    u = rng.random() * total
    cumulative = 0.0
    last_positive = ranked[0]
    for item in ranked:
        if item.probability > 0.0:
            last_positive = item
            cumulative += item.probability
            if u < cumulative:
                return item
    return last_positive


def load_policy(payload: Mapping[str, Any]) -> Policy:
    """Rebuild any policy from its payload, dispatching on ``payload["kind"]``."""
    from offerloop.ml.policies import POLICY_KINDS  # local import: policies imports this module

    kind = payload.get("kind")
    if not isinstance(kind, str) or kind not in POLICY_KINDS:
        raise ValueError(f"unknown policy kind {kind!r}; known: {sorted(POLICY_KINDS)}")
    return POLICY_KINDS[kind].from_payload(payload)
