"""The one condition language of every offerloop config: signal rules, feature filters, persona signals,
eligibility rules, composition policies (and journeys and gates later).

A condition is a tree::

    {all: [c, ...]}    every one holds (``{all: []}`` always holds)
    {any: [c, ...]}    at least one holds (``{any: []}`` never holds)
    {not: c}           c does not hold
    {path: features.orders, gte: 1, lt: 5}                  a test on one value; every operator must hold
    {features.orders: {gte: 1}, persona: {in: [a, b]}}      shorthand: one test per path, all must hold

Short forms kept from the configs that came before: ``{answer: q, in: [...]}``, ``{answer: q, equals: v}``,
``{answer: q, answered: true}``, ``{score: d, gte: 2}``, ``{persona: [a, b]}``, ``{feature: f, gte: 1}``,
``{trait: t, eq: v}``, ``{property: p, exists: true}``. A value that is not a mapping means ``eq``.

**Paths** start with a root (``traits``, ``features``, ``persona``, ``answers``, ``scores``,
``entitlements``, ``properties``, ``event``); each config kind says which roots its conditions may read and
which root a bare key means (``where:`` in signal rules reads event properties, so ``plan`` there is
``properties.plan``). Below the root, ``a.b`` is first the literal key ``"a.b"``, then ``a`` then ``b``; a
digit segment indexes a list.

**Semantics**, the same for every kind:

- *Missing* (the path leads nowhere) is not ``null``: ``null`` is a value. A missing value fails every
  operator except ``ne``, ``not_in`` and ``exists: false``, which hold.
- *Types* never mix: ``true`` is not ``1``, ``"3"`` is not ``3``; ``3`` equals ``3.0``. Ordered comparisons
  (``gt``, ``gte``, ``lt``, ``lte``, ``between``) hold between numbers, or between strings (so ISO dates
  compare as text); anything else fails them.
- *Lists*: ``eq`` compares whole values. ``in`` holds when the value is one of the items — for a list value
  (a multiple-choice answer, tags), when any of its items is; ``not_in`` is its negation. ``contains`` holds
  for a string containing the text, or a list with an item equal to the operand.
- *Time*: ``within: 7d`` holds for a timestamp (an aware datetime or ISO-8601 text with an offset) no older
  than 7 days and not in the future; ``older_than: 7d`` for one older than that. Units: s, m, h, d, w.
- ``matches`` is a regular expression the whole text must match.

:func:`describe` gives the reason shown in decisions and lint output: ``features.orders >= 1``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypeAlias

import re2
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "MISSING",
    "OPERATORS",
    "ROOTS",
    "All",
    "Any_",
    "Check",
    "Condition",
    "ConditionError",
    "Leaf",
    "Not",
    "PropertiesWhere",
    "Scope",
    "Where",
    "compile_condition",
    "describe",
    "evaluate",
    "leaves",
    "member",
    "parse",
    "parse_leaf",
    "parse_where",
    "problems_of",
    "reader",
    "resolve",
    "same",
    "to_data",
]

ROOTS: Final = ("traits", "features", "persona", "answers", "scores", "entitlements", "properties", "event")
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
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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

    roots: frozenset[str] = frozenset(ROOTS)
    default_root: str | None = None
    sugar: bool = True  # accept the short forms (answer:, score:, persona: [...], feature:, ...)


class ConditionError(ValueError):
    """Every problem of a condition at once, each as ``(path inside the condition, message)``."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.problems))


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


def _duration(value: Any) -> float | None:
    if _is_number(value) and value >= 0:
        return float(value) * 86400  # a bare number is days
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found:
            return float(found.group(1)) * _UNITS[found.group(2)]
    return None


def _format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


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


class Where:
    """A ``where:``-form condition that remembers its root: ``{plan: pro, amount: {gte: 10}}``."""

    __slots__ = ("check", "condition", "root")

    def __init__(self, root: str, condition: Condition) -> None:
        self.root, self.condition = root, condition
        self.check = compile_condition(condition)

    @classmethod
    def of(cls, data: Any, root: str) -> Where:
        if isinstance(data, Where):
            return data
        return cls(root, parse_where(data, root=root))

    def __bool__(self) -> bool:
        return not (isinstance(self.condition, All) and not self.condition.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Where) and (self.root, self.condition) == (other.root, other.condition)

    def __hash__(self) -> int:
        return hash((self.root, self.condition))

    def __repr__(self) -> str:
        return f"Where({self.to_data()!r})"

    def holds(self, value: Any, now: datetime | None = None) -> bool:
        """Whether the condition holds for ``value``, the mapping its root names (event properties, ...)."""
        return self.check({self.root: value}, now)

    def to_data(self) -> dict[str, dict[str, Any]]:
        """``{key: {operator: operand}}``, each key below the root (parses back to an equal Where)."""
        return {leaf.key: {op: _thaw(v) for op, v in leaf.ops} for leaf in leaves(self.condition)}


CONDITION_ERROR: Final = "condition"


def _where_validator(root: str) -> Callable[[Any], Where]:
    def validate(value: Any) -> Where:
        try:
            return Where.of(value, root)
        except ConditionError as exc:
            # One pydantic error carrying every problem; config formatters print one line each
            # (problems_of), others show the joined message.
            raise PydanticCustomError(
                CONDITION_ERROR,
                "{message}",
                {"message": str(exc), "problems": [list(p) for p in exc.problems]},
            ) from None

    return validate


def problems_of(error: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """The ``(path inside the condition, message)`` problems of a pydantic error raised by a condition field."""
    if error.get("type") != CONDITION_ERROR:
        return None
    return [(str(p), str(m)) for p, m in (error.get("ctx") or {}).get("problems", [])]


def _where_schema(root: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "object", "description": f"{root}: {{key: value | {{operator: operand}}}}"}
    )


# pydantic field types for a ``where:`` mapping; None or {} always holds.
PropertiesWhere: TypeAlias = Annotated[
    Where,
    PlainValidator(_where_validator("properties")),
    PlainSerializer(lambda where: where.to_data()),
    _where_schema("properties"),
]
