"""The uniform random baseline."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from offerloop.ml.base import Action, Features, Scored
from offerloop.ml.policies.common import _check_feedback, _payload, _PolicyBase, _ranking, _unpack


class RandomPolicy(_PolicyBase):
    """Uniform pmf over the actions given.

    There is no reward estimate; ``score`` is a pseudo-random key in ``[0, 1)`` derived from
    ``(seed, context, action id)``, so the order of the slots after the first is a random but
    reproducible permutation (and ``rank`` stays deterministic and side-effect free).
    """

    kind: ClassVar[str] = "random"
    name: str = "random"
    _param_names: ClassVar[tuple[str, ...]] = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        context_key = repr(sorted((k, type(v).__name__, repr(v)) for k, v in context.items()))
        prefix = f"{int(self.seed)}\x1f{context_key}\x1f"
        scores = [
            int.from_bytes(hashlib.blake2b((prefix + a.id).encode(), digest_size=8).digest(), "big") / 2.0**64
            for a in actions
        ]
        p = 1.0 / len(actions)
        return _ranking(scores, [p] * len(actions))

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)

    def to_payload(self) -> dict[str, Any]:
        return _payload(self.kind, self.get_params(), {})

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, _ = _unpack(cls.kind, payload)
        return cls(**params)
