"""The rules-only baseline: keeps the order the rules gave."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from offerloop.ml.base import Action, Features, Scored
from offerloop.ml.policies.common import _check_feedback, _greedy_ranking, _payload, _PolicyBase, _unpack


class RulesOnlyPolicy(_PolicyBase):
    """Keeps the order it is given (the upstream rules' order): ``score = -index``, probability 1 on the first."""

    kind: ClassVar[str] = "rules_only"
    name: str = "rules_only"
    _param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        pass

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        return _greedy_ranking([0.0 - i for i in range(len(actions))])

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)

    def to_payload(self) -> dict[str, Any]:
        return _payload(self.kind, {}, {})

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        _unpack(cls.kind, payload)
        return cls()
