"""The epsilon-greedy baseline on the mean reward per action id (no context)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from offerloop.ml.base import Action, Features, Scored
from offerloop.ml.policies.common import _PerActionMeans, _ranking


class EpsilonGreedyPolicy(_PerActionMeans):
    """Epsilon-greedy on the mean observed reward per action id; ignores the context.

    Unseen actions score 0. pmf: ``epsilon / n`` on every action plus ``1 - epsilon`` on the greedy one
    (the first after sorting, so score ties go to the lowest index). ``seed`` is unused (sampling is
    :func:`offerloop.ml.base.sample`'s job) and kept for the common signature.
    """

    kind: ClassVar[str] = "epsilon_greedy"
    name: str = "epsilon_greedy"
    _param_names: ClassVar[tuple[str, ...]] = ("epsilon", "seed")

    def __init__(self, epsilon: float = 0.1, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = epsilon
        self.seed = seed
        super().__init__()

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        scores = []
        for a in actions:
            n = self._count.get(a.id, 0)
            scores.append(self._sum[a.id] / n if n else 0.0)
        greedy = min(range(len(actions)), key=lambda i: (-scores[i], i))
        floor = self.epsilon / len(actions)
        pmf = [floor + (1.0 - self.epsilon if i == greedy else 0.0) for i in range(len(actions))]
        return _ranking(scores, pmf)
