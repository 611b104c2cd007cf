"""What policy conditions read about a buyer, and whether a condition holds for one.

Conditions (a section's or slot's ``when:``, a template's ``{% if %}``) are the one condition language
(:mod:`offerloop.core.conditions`). They read only what :class:`BuyerInputs` carries — the roots
``answers``, ``scores`` and ``persona`` — as :func:`facts` builds them: an unanswered question ("",
blanks, [] or None) is missing, every score dimension reads a number (0 when absent or not a number),
and a buyer without a persona has none (``persona`` is missing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Any, Final

from offerloop.assembly.inputs import BuyerInputs
from offerloop.core import conditions
from offerloop.core.conditions import Condition

__all__ = [
    "MAX_CONDITIONS",
    "MAX_CONDITION_DEPTH",
    "SCOPE",
    "Facts",
    "condition_size",
    "facts",
    "holds",
    "is_answered",
    "parse_when",
]

MAX_CONDITIONS: Final = conditions.MAX_NODES  # condition nodes in one policy, nested ones included
MAX_CONDITION_DEPTH: Final = conditions.MAX_DEPTH  # all/any/not nesting, checked by core
SCOPE: Final = conditions.Scope(roots=frozenset({"answers", "scores", "persona"}))


@dataclass(frozen=True, slots=True)
class Facts:
    """What policy conditions read about one buyer, built once per buyer by :func:`facts`."""

    values: Mapping[str, Any]  # roots (answers, scores, persona) -> values
    now: datetime  # the start of the buyer's ``today`` (UTC): time-relative tests are reproducible


class _Scores(Mapping[str, float]):
    """The buyer's scores as conditions read them: an absent or non-numeric dimension reads 0."""

    __slots__ = ("_known",)

    def __init__(self, scores: Mapping[str, Any]) -> None:
        self._known = {
            str(k): float(v)
            for k, v in scores.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }

    def __getitem__(self, key: str) -> float:
        return self._known.get(key, 0.0)

    def get(self, key: str, default: Any = None) -> float:
        return self._known.get(key, 0.0)  # every dimension reads a number: never the default

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def is_answered(answer: Any) -> bool:
    """Whether an answer counts as given: "" (or blanks), [] and None do not."""
    if answer is None:
        return False
    if isinstance(answer, str):
        return bool(answer.strip())
    if isinstance(answer, list | tuple | set | frozenset):
        return len(answer) > 0
    return True


def facts(inputs: BuyerInputs) -> Facts:
    """The buyer as conditions see it: ``answers`` without unanswered questions, ``scores`` where every
    dimension reads a number (0 when absent), ``persona`` (missing when the buyer has none)."""
    values: dict[str, Any] = {
        "answers": {k: v for k, v in inputs.answers.items() if is_answered(v)},
        "scores": _Scores(inputs.scores),
    }
    if inputs.persona:
        values["persona"] = inputs.persona
    return Facts(values, datetime.combine(inputs.today, time(), UTC))


@lru_cache(maxsize=4096)
def _check(condition: Condition) -> conditions.Check:
    return conditions.compile_condition(condition)


def holds(condition: Condition, buyer: Facts) -> bool:
    """Whether ``condition`` holds for the buyer (compiled once per condition, however many buyers)."""
    return _check(condition)(buyer.values, buyer.now)


def parse_when(data: Any) -> Condition:
    """A policy condition from its YAML form (for policies built in code); raises ``ConditionError``."""
    return conditions.parse(data, scope=SCOPE)


def condition_size(condition: Condition) -> int:
    """How many nodes ``condition`` has (all/any/not included): a policy holds at most MAX_CONDITIONS."""
    if isinstance(condition, conditions.Leaf):
        return 1
    if isinstance(condition, conditions.Not):
        return 1 + condition_size(condition.item)
    return 1 + sum(condition_size(item) for item in condition.items)
