"""A condition back to data (its canonical YAML form) and to words (the reasons of decisions and lint)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from offerloop.core.conditions.model import _SYMBOLS, All, Any_, Condition, Leaf, Not, _thaw

# -- back to data, and to words -----------------------------------------------------------------


def to_data(condition: Condition) -> Any:
    """The canonical YAML form (parses back to an equal condition)."""
    if isinstance(condition, All):
        return {"all": [to_data(i) for i in condition.items]}
    if isinstance(condition, Any_):
        return {"any": [to_data(i) for i in condition.items]}
    if isinstance(condition, Not):
        return {"not": to_data(condition.item)}
    return {"path": condition.path, **{op: _thaw(v) for op, v in condition.ops}}


def _text(value: Any) -> str:
    value = _thaw(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def describe(condition: Condition, *, root: str | None = None) -> str:
    """Words for a reason or a lint line: ``features.orders >= 1``, ``(a and not b)``; with ``root``,
    paths below it are shown without it (``orders >= 1`` for a config that reads only features)."""
    if isinstance(condition, All | Any_):
        if not condition.items:
            return "always" if isinstance(condition, All) else "never"
        word = " and " if isinstance(condition, All) else " or "
        inner = word.join(describe(i, root=root) for i in condition.items)
        return inner if len(condition.items) == 1 else f"({inner})"
    if isinstance(condition, Not):
        return f"not {describe(condition.item, root=root)}"
    path = condition.path
    if root is not None and path.startswith(root + "."):
        path = path[len(root) + 1 :]
    parts = []
    for op, operand in condition.ops:
        if op in _SYMBOLS:
            parts.append(f"{path} {_SYMBOLS[op]} {_text(operand)}")
        elif op == "exists":
            parts.append(f"{path} {'exists' if operand else 'is missing'}")
        elif op == "not_in":
            parts.append(f"{path} not in {_text(operand)}")
        elif op == "older_than":
            parts.append(f"{path} older than {operand}")
        else:
            parts.append(f"{path} {op} {_text(operand)}")
    return " and ".join(parts)


def leaves(condition: Condition) -> Iterator[Leaf]:
    """Every test in the tree (for lint: unknown questions, features never computed, ...)."""
    if isinstance(condition, Leaf):
        yield condition
    elif isinstance(condition, Not):
        yield from leaves(condition.item)
    else:
        for item in condition.items:
            yield from leaves(item)
