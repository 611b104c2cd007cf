"""Parsing a condition from its YAML/JSON form, every problem reported at once with its path."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import re2

from offerloop.core.conditions.evaluation import _pattern
from offerloop.core.conditions.model import (
    _COMBINATORS,
    _INVALID,
    _ORDERED,
    _SUGAR,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_NODES,
    MAX_PATTERN,
    OPERATORS,
    ROOTS,
    All,
    Any_,
    Condition,
    ConditionError,
    Leaf,
    Not,
    Scope,
    _duration,
    _format_duration,
    _freeze,
    _is_json,
    _is_number,
)
from offerloop.core.conditions.words import _text

# -- parsing ---------------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _join(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


class _Parser:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.problems: list[tuple[str, str]] = []
        self.nodes = 0

    def fail(self, where: str, message: str) -> None:
        self.problems.append((where, message))

    def tree(self, data: Any, where: str, depth: int) -> Condition | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(where, f"more than {MAX_NODES} conditions")
            return None
        if depth > MAX_DEPTH:
            self.fail(where, f"nested deeper than {MAX_DEPTH} levels")
            return None
        if not isinstance(data, Mapping) or not data:
            self.fail(where, f"must be a non-empty mapping, got {_show(data)}")
            return None
        keys = set(data)
        combinators = keys & set(_COMBINATORS)
        if combinators:
            if len(keys) != 1:
                self.fail(
                    where,
                    f"'{sorted(combinators)[0]}' must be alone in its mapping, got {sorted(map(str, keys))}",
                )
                return None
            (word,) = combinators
            value = data[word]
            if word == "not":
                item = self.tree(value, _join(where, "not"), depth + 1)
                return Not(item) if item is not None else None
            if not isinstance(value, list):
                self.fail(_join(where, word), f"must be a list of conditions, got {_show(value)}")
                return None
            items = [self.tree(v, _join(_join(where, word), i), depth + 1) for i, v in enumerate(value)]
            if any(i is None for i in items):
                return None
            kept = tuple(i for i in items if i is not None)
            return All(kept) if word == "all" else Any_(kept)
        if "path" in keys:
            return self.explicit(data, where)
        if self.scope.sugar:
            for key in _SUGAR:
                if key in keys:
                    return self.sugar(key, data, where)
            if keys == {"persona"} and isinstance(data["persona"], list):
                at = _join(where, "persona")
                return self.leaf(self.absolute("persona", at), {"in": data["persona"]}, at)
        return self.where(data, where, None)

    def explicit(self, data: Mapping[str, Any], where: str) -> Leaf | None:
        path = data["path"]
        if not isinstance(path, str):
            self.fail(_join(where, "path"), f"must be text, got {_show(path)}")
            return None
        ops = {k: v for k, v in data.items() if k != "path"}
        if not ops:
            self.fail(where, f"no operator given (one of {', '.join(OPERATORS)})")
            return None
        return self.leaf(self.absolute(path, _join(where, "path")), ops, where)

    def sugar(self, key: str, data: Mapping[str, Any], where: str) -> Leaf | None:
        name = data[key]
        if not isinstance(name, str) or not name:
            self.fail(_join(where, key), f"must be a name, got {_show(name)}")
            return None
        ops: dict[str, Any] = {k: v for k, v in data.items() if k != key}
        if key == "answer":  # the policy forms: equals (one of the chosen) and answered
            for short, long in (("equals", "in"), ("answered", "exists")):
                if short in ops and long in ops:
                    self.fail(where, f"give '{short}' or '{long}', not both")
                    return None
            if "equals" in ops:
                ops["in"] = [ops.pop("equals")]
            if "answered" in ops:
                answered = ops.pop("answered")
                if not isinstance(answered, bool):
                    self.fail(_join(where, "answered"), f"must be true or false, got {_show(answered)}")
                    return None
                ops["exists"] = answered
        if not ops:
            self.fail(where, f"no operator given (one of {', '.join(OPERATORS)})")
            return None
        root = _SUGAR[key]
        if root not in self.scope.roots:
            self.fail(_join(where, key), f"'{key}' cannot be used here (this config reads {self.readable()})")
            return None
        return self.leaf(f"{root}.{name}", ops, where)

    def readable(self) -> str:
        return ", ".join(r for r in ROOTS if r in self.scope.roots)

    def absolute(self, path: str, where: str) -> str:
        root = path.split(".", 1)[0]
        if root in ROOTS:
            if root not in self.scope.roots:
                self.fail(where, f"{root!r} cannot be read here (this config reads {self.readable()})")
            return path
        if self.scope.default_root is not None:
            return f"{self.scope.default_root}.{path}"
        self.fail(
            where, f"unknown root {root!r}{_hint(root, ROOTS)}: a path starts with one of {self.readable()}"
        )
        return path

    def where(self, data: Mapping[str, Any], where: str, root: str | None) -> Condition | None:
        leaves: list[Condition] = []
        for path, ops in data.items():
            at = _join(where, str(path))
            if not isinstance(path, str):
                self.fail(at, f"a path must be text, got {_show(path)}")
                continue
            if not path or any(not part for part in path.split(".")):
                self.fail(at, f"invalid path {_show(path)} (empty segment)")
                continue
            full = f"{root}.{path}" if root is not None else self.absolute(path, at)
            leaf = self.leaf(full, ops if isinstance(ops, Mapping) else {"eq": ops}, at)
            if leaf is not None:
                leaves.append(leaf)
        if len(leaves) != len(data):
            return None
        return leaves[0] if len(leaves) == 1 else All(tuple(leaves))

    def leaf(self, path: str, ops: Mapping[str, Any], where: str) -> Leaf | None:
        if not ops:
            self.fail(where, f"no operator given (one of {', '.join(OPERATORS)})")
            return None
        before = len(self.problems)
        checked: list[tuple[str, Any]] = []
        for op, operand in ops.items():
            at = _join(where, str(op))
            if op not in OPERATORS:
                self.fail(at, f"unknown operator{_hint(str(op), OPERATORS)} (one of {', '.join(OPERATORS)})")
                continue
            value = self.operand(op, operand, at)
            if value is not _INVALID:
                checked.append((op, value))
        if len(self.problems) != before:
            return None
        order = {op: i for i, op in enumerate(OPERATORS)}
        return Leaf(path, tuple(sorted(checked, key=lambda p: order[p[0]])))

    def operand(self, op: str, operand: Any, where: str) -> Any:
        if op in ("eq", "ne", "contains"):
            if not _is_json(operand):
                self.fail(where, f"must be a JSON value (finite numbers), got {_show(operand)}")
                return _INVALID
            return _freeze(operand)
        if op in _ORDERED:
            if isinstance(operand, str) or _is_number(operand):
                return operand
            self.fail(where, f"must be a finite number or text, got {_show(operand)}")
            return _INVALID
        if op == "between":
            if (
                isinstance(operand, list | tuple)
                and len(operand) == 2
                and all(_is_number(v) for v in operand)
            ):
                if operand[0] > operand[1]:
                    self.fail(
                        where, f"lower bound {_text(operand[0])} is above upper bound {_text(operand[1])}"
                    )
                    return _INVALID
                return (operand[0], operand[1])
            self.fail(where, f"must be [low, high], two finite numbers, got {_show(operand)}")
            return _INVALID
        if op in ("in", "not_in"):
            if not isinstance(operand, list | tuple) or not operand or len(operand) > MAX_ITEMS:
                self.fail(where, f"must be a list of 1 to {MAX_ITEMS} values, got {_show(operand)}")
                return _INVALID
            if not all(_is_json(v) for v in operand):
                self.fail(where, f"must hold JSON values (finite numbers), got {_show(operand)}")
                return _INVALID
            return tuple(_freeze(v) for v in operand)
        if op == "exists":
            if isinstance(operand, bool):
                return operand
            self.fail(where, f"must be true or false, got {_show(operand)}")
            return _INVALID
        if op == "matches":
            if not isinstance(operand, str):
                self.fail(where, f"must be a regular expression (text), got {_show(operand)}")
                return _INVALID
            if len(operand) > MAX_PATTERN:
                self.fail(where, f"must be a regular expression of at most {MAX_PATTERN} characters")
                return _INVALID
            try:
                _pattern(operand)
            except re2.error as exc:
                why = (
                    exc.args[0].decode("utf-8", "replace")
                    if exc.args and isinstance(exc.args[0], bytes)
                    else exc
                )
                self.fail(
                    where,
                    f"invalid regular expression {_show(operand)}: {why} (RE2 syntax: no lookaround, no backreferences)",
                )
                return _INVALID
            return operand
        # within / older_than
        seconds = _duration(operand)
        if seconds is None:
            self.fail(where, f"must be a duration such as 30m, 12h, 7d or 2w, got {_show(operand)}")
            return _INVALID
        return _format_duration(seconds)


def parse(data: Any, *, scope: Scope = Scope()) -> Condition:
    """A condition from its YAML/JSON form; :class:`ConditionError` lists every problem at once."""
    parser = _Parser(scope)
    condition = parser.tree(data, "", 0)
    if parser.problems or condition is None:
        raise ConditionError(parser.problems or [("", "invalid condition")])
    return condition


def parse_where(data: Any, *, root: str) -> Condition:
    """The ``where:``/``requires:`` form: ``{key: {op: operand} | value, ...}``, each key read below ``root``."""
    parser = _Parser(Scope(roots=frozenset({root}), default_root=root, sugar=False))
    if data is None or (isinstance(data, Mapping) and not data):
        return All(())
    if not isinstance(data, Mapping):
        raise ConditionError([("", f"must be a mapping of {root} to conditions, got {_show(data)}")])
    condition = parser.where(data, "", root)
    if parser.problems or condition is None:
        raise ConditionError(parser.problems)
    return condition


def parse_leaf(path: str, ops: Mapping[str, Any]) -> Leaf:
    """One test, from code that keeps the path and the operators apart (persona signals)."""
    parser = _Parser(Scope())
    leaf = parser.leaf(path, ops, "")
    if parser.problems or leaf is None:
        raise ConditionError(parser.problems)
    return leaf
