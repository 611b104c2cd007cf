"""The condition tree and its vocabulary: roots, operators, limits, :data:`MISSING`, the scope a config
kind reads, the error listing every problem, and the operand helpers parsing and evaluation share."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeAlias

from offerloop.core import durations

ROOTS: Final = (
    "traits", "features", "persona", "answers", "scores", "entitlements", "properties", "event", "experiments",
)  # fmt: skip
# Roots a caller resolves itself, for the conditions that may read them (``experiments.<key>``: the buyer's arm
# in that experiment, assigned when the condition is evaluated): no config reads them unless its scope says so.
CALLER_ROOTS: Final = frozenset({"experiments"})
OPERATORS: Final = (
    "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "contains", "matches",
    "within", "older_than",
)  # fmt: skip
_ORDERED: Final = frozenset({"gt", "gte", "lt", "lte"})
_SYMBOLS: Final = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Short forms: key -> the root its value names.
_SUGAR: Final = {
    "answer": "answers", "score": "scores", "feature": "features", "trait": "traits", "property": "properties",
}  # fmt: skip
_COMBINATORS: Final = ("all", "any", "not")
MAX_DEPTH: Final = 16
MAX_NODES: Final = 1000
MAX_ITEMS: Final = 1000  # items of an in/not_in list
MAX_PATTERN: Final = 200


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


# -- the tree ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """A test on the value at ``path``: every ``(operator, operand)`` in ``ops`` must hold."""

    path: str
    ops: tuple[tuple[str, Any], ...]

    @property
    def root(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def key(self) -> str:
        """The path below its root ("" for a root read whole, such as ``persona``)."""
        return self.path.partition(".")[2]


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Any_:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition: TypeAlias = Leaf | All | Any_ | Not
Check: TypeAlias = Callable[[Mapping[str, Any], datetime | None], bool]


@dataclass(frozen=True, slots=True)
class Scope:
    """What one config kind's conditions may read: ``roots``, and the root a bare key means."""

    roots: frozenset[str] = frozenset(ROOTS) - CALLER_ROOTS
    default_root: str | None = None
    sugar: bool = True  # accept the short forms (answer:, score:, persona: [...], feature:, ...)


class ConditionError(ValueError):
    """Every problem of a condition at once, each as ``(path inside the condition, message)``."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.problems))


_INVALID: Final = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _freeze(value: Any) -> Any:
    """Lists as tuples and mappings as sorted item tuples, so a condition is hashable and comparable."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return _Frozen(tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    return value


@dataclass(frozen=True, slots=True)
class _Frozen:
    items: tuple[tuple[str, Any], ...]


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, _Frozen):
        return {k: _thaw(v) for k, v in value.items}
    return value


# Durations (``7d``, ``12h``; a bare number is days) are the one reading in core/durations.py.
_duration = durations.seconds
_format_duration = durations.text
