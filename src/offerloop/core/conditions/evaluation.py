"""Evaluating conditions: reading paths below the facts, the operators' semantics, compiling a tree
to a check run many times."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import re2

from offerloop.core.conditions.model import (
    _ORDERED,
    MISSING,
    All,
    Any_,
    Check,
    Condition,
    Not,
    _duration,
    _Frozen,
)

# -- evaluation -------------------------------------------------------------------------------------


def resolve(facts: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in ``facts`` (roots → values), or :data:`MISSING`."""
    root, _, rest = path.partition(".")
    return _below(facts.get(root, MISSING), rest, tuple(rest.split(".")) if "." in rest else None)


def _below(current: Any, rest: str, segments: tuple[str, ...] | None) -> Any:
    if not rest:
        return current
    if isinstance(current, Mapping):
        value = current.get(rest, MISSING)
        if value is not MISSING or segments is None:
            return value
    if segments is None:
        segments = (rest,)
    for segment in segments:
        if isinstance(current, Mapping):
            current = current.get(segment, MISSING)
            if current is MISSING:
                return MISSING
        elif isinstance(current, list | tuple) and segment.isdigit():
            index = int(segment)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def same(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, text is not a number, 3 equals 3.0."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, int | float) or isinstance(b, int | float):
        return isinstance(a, int | float) and isinstance(b, int | float) and a == b
    if isinstance(b, tuple):
        return isinstance(a, list | tuple) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(b, _Frozen):
        return (
            isinstance(a, Mapping)
            and len(a) == len(b.items)
            and all(k in a and same(a[k], v) for k, v in b.items)
        )
    return False


def member(value: Any, items: Sequence[Any]) -> bool:
    """``in``: the value is one of the items; a list value, when any of its items is."""
    if isinstance(value, list | tuple):
        return any(member(v, items) for v in value if not isinstance(v, list | tuple))
    return any(same(value, item) for item in items)


def _ordered(value: Any, operand: Any, op: str) -> bool:
    if isinstance(operand, str):
        if not isinstance(value, str):
            return False
    elif not (isinstance(value, int | float) and not isinstance(value, bool)):
        return False
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    if op == "lt":
        return bool(value < operand)
    return bool(value <= operand)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


def _test(op: str, operand: Any, value: Any, now: datetime | None) -> bool:
    if value is MISSING:
        return op in ("ne", "not_in") or (op == "exists" and not operand)
    if op == "eq":
        return same(value, operand)
    if op == "ne":
        return not same(value, operand)
    if op in _ORDERED:
        return _ordered(value, operand, op)
    if op == "between":
        return _ordered(value, operand[0], "gte") and _ordered(value, operand[1], "lte")
    if op == "in":
        return member(value, operand)
    if op == "not_in":
        return not member(value, operand)
    if op == "exists":
        return bool(operand)
    if op == "contains":
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        return isinstance(value, list | tuple) and any(same(v, operand) for v in value)
    if op == "matches":
        return isinstance(value, str) and _pattern(operand).fullmatch(value) is not None
    at = _timestamp(value)
    if at is None:
        return False
    clock = now or datetime.now(UTC)
    span = timedelta(seconds=_duration(operand) or 0.0)
    if op == "within":
        return clock - span <= at <= clock
    return at < clock - span  # older_than


# ``matches`` runs RE2 (linear time in the text), not ``re``: a creator's pattern meets text buyers control,
# and a backtracking engine lets "(a+)+$" and 30 a's hold an ingest transaction for minutes. RE2 refuses
# what it cannot run in linear time (backreferences, lookaround) when the config is loaded.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # refused patterns are reported to the creator, not logged by the engine
_patterns: dict[str, Any] = {}


def _pattern(text: str) -> Any:
    found = _patterns.get(text)
    if found is None:
        if len(_patterns) > 4096:
            _patterns.clear()
        found = _patterns[text] = re2.compile(text, _RE2_OPTIONS)
    return found


def compile_condition(condition: Condition) -> Check:
    """A function ``(facts, now) -> bool`` for a condition checked many times."""
    if isinstance(condition, All):
        checks = tuple(compile_condition(i) for i in condition.items)
        if len(checks) == 1:
            return checks[0]
        return lambda facts, now: all(c(facts, now) for c in checks)
    if isinstance(condition, Any_):
        alternatives = tuple(compile_condition(i) for i in condition.items)
        return lambda facts, now: any(c(facts, now) for c in alternatives)
    if isinstance(condition, Not):
        inner = compile_condition(condition.item)
        return lambda facts, now: not inner(facts, now)
    root, _, rest = condition.path.partition(".")
    segments = tuple(rest.split(".")) if "." in rest else None
    ops = condition.ops
    if len(ops) == 1:  # the common case, without the loop (feature filters run per event)
        ((op, operand),) = ops
        if op == "eq" and isinstance(operand, str):

            def text_equals(facts: Mapping[str, Any], now: datetime | None) -> bool:
                value = _below(facts.get(root, MISSING), rest, segments)
                return isinstance(value, str) and value == operand

            return text_equals

        def single(facts: Mapping[str, Any], now: datetime | None) -> bool:
            return _test(op, operand, _below(facts.get(root, MISSING), rest, segments), now)

        return single

    def leaf(facts: Mapping[str, Any], now: datetime | None) -> bool:
        value = _below(facts.get(root, MISSING), rest, segments)
        return all(_test(op, operand, value, now) for op, operand in ops)

    return leaf


def evaluate(condition: Condition, facts: Mapping[str, Any], *, now: datetime | None = None) -> bool:
    """Whether ``condition`` holds for ``facts``: a mapping of roots (``features``, ``persona``, ...) to values."""
    return compile_condition(condition)(facts, now)


def reader(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """A function reading ``path`` below a mapping (no root), as conditions read it; :data:`MISSING` if absent."""
    segments = tuple(path.split(".")) if "." in path else None
    if segments is None:
        return lambda mapping: mapping.get(path, MISSING)
    return lambda mapping: _below(mapping, path, segments)
