"""The popularity baseline: smoothed mean reward per action id, greedy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from offerloop.ml.base import Action, Features, Scored
from offerloop.ml.policies.common import _greedy_ranking, _PerActionMeans


class PopularityPolicy(_PerActionMeans):
    """Greedy on the smoothed mean observed reward per action id (ties by index); ignores the context.

    ``score = (sum_a + prior * m) / (n_a + prior)`` where ``m`` is the mean reward over all actions so
    far: ``prior`` pseudo-observations at the global mean (for 0/1 rewards, the posterior mean under a
    Beta(prior * m, prior * (1 - m)) prior). Unseen actions score ``m``. ``seed`` is unused (the policy
    is deterministic) and kept for the common signature.
    """

    kind: ClassVar[str] = "popularity"
    name: str = "popularity"
    _param_names: ClassVar[tuple[str, ...]] = ("seed", "prior")

    def __init__(self, seed: int = 0, prior: float = 1.0) -> None:
        if not prior >= 0.0:
            raise ValueError(f"prior must be >= 0, got {prior!r}")
        self.seed = seed
        self.prior = prior
        super().__init__()

    def _score(self, action_id: str, global_mean: float) -> float:
        n = self._count.get(action_id, 0)
        denominator = n + self.prior
        if denominator <= 0.0:
            return global_mean
        return (self._sum.get(action_id, 0.0) + self.prior * global_mean) / denominator

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        m = self._total_sum / self._total_count if self._total_count else 0.0
        return _greedy_ranking([self._score(a.id, m) for a in actions])
