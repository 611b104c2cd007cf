"""A seeded sparse-reward stream (click-like success rates) with known true rates.

Real logged decisions often have rewards of a few per thousand (the Open Bandit sample clicks at
0.3-0.6%). :class:`SparseStream` reproduces that: every round a visitor of one of ``segments``
segments sees ``n_actions`` actions; the true success probability of each (segment, action) cell is
drawn once, uniformly in ``[low, high]`` (or given as ``rates``), and a reward is a Bernoulli draw of it (0 or 1). The
context also carries a numeric feature and a persona-like score that carry no signal. It serves the
calibration tests of the policies' ``expected_reward`` and ``bench/regret.py --sparse``.

Determinism: string-seeded ``random.Random`` streams; the round stream does not depend on the rewards
drawn, and rewards are drawn from their own stream (common random numbers across policies).
Pure: stdlib and ``offerloop.ml.base``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from offerloop.ml.base import Action, Features

__all__ = ["SparseRound", "SparseStream"]

_KINDS = ("lesson", "offer", "prompt")


@dataclass(frozen=True, slots=True)
class SparseRound:
    """One visit: the context, the actions offered (all of them, catalog order) and their true rates."""

    step: int
    segment: str
    context: Features
    actions: tuple[Action, ...]
    rates: tuple[float, ...]


class SparseStream:
    """A stream of :class:`SparseRound` with known success rates; see the module docstring."""

    def __init__(
        self,
        *,
        seed: int = 0,
        n_actions: int = 8,
        segments: int = 4,
        low: float = 0.003,
        high: float = 0.006,
        rates: Sequence[Sequence[float]] | None = None,
    ) -> None:
        if rates is not None:  # explicit rates: one row per segment, one column per action
            segments, n_actions = len(rates), len(rates[0]) if rates else 0
            if any(len(row) != n_actions for row in rates):
                raise ValueError("every segment needs a rate for every action")
            if not all(0.0 <= rate <= 1.0 for row in rates for rate in row):
                raise ValueError("rates are probabilities in [0, 1]")
        if n_actions < 1 or segments < 1:
            raise ValueError("n_actions and segments must be >= 1")
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError("need 0 <= low <= high <= 1")
        self.seed = seed
        self.low, self.high = low, high
        key = f"offerloop-sparse-v1:{seed}"
        setup = random.Random(f"{key}:setup")
        self.segments = tuple(f"s{k}" for k in range(segments))
        self.actions = tuple(
            Action(id=f"a{i}", features={"kind": _KINDS[i % len(_KINDS)], "level": 1 + i % 3})
            for i in range(n_actions)
        )
        self._rates = {
            segment: tuple(rates[k])
            if rates is not None
            else tuple(low + (high - low) * setup.random() for _ in self.actions)
            for k, segment in enumerate(self.segments)
        }
        self._rounds = random.Random(f"{key}:rounds")
        self._rewards = random.Random(f"{key}:rewards")
        self._step = 0

    def rate(self, segment: str, index: int) -> float:
        """The true success probability of ``actions[index]`` for a visitor of ``segment``."""
        return self._rates[segment][index]

    def next_round(self) -> SparseRound:
        rng = self._rounds
        self._step += 1
        segment = self.segments[rng.randrange(len(self.segments))]
        context: Features = {
            "segment": segment,
            "visits": rng.randrange(1, 20),
            "persona=lurker": round(rng.random(), 3),
        }
        return SparseRound(self._step, segment, context, self.actions, self._rates[segment])

    def reward(self, rnd: SparseRound, index: int) -> float:
        """A seeded Bernoulli draw of ``rnd.rates[index]``: 1.0 or 0.0."""
        return 1.0 if self._rewards.random() < rnd.rates[index] else 0.0
