"""What templates read (placeholder roots and fields) and the ``{% if %}`` conditions over it.

``answers.goal and not scores.readiness >= 3`` -> a :mod:`offerloop.core.conditions` tree that reads
:func:`template_facts`: the policy's facts about the buyer plus ``traits``, the buyer's own fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from offerloop.assembly.facts import Facts, facts
from offerloop.assembly.inputs import BuyerInputs, placeholder_values
from offerloop.core.conditions import All, Any_, Condition, Not, parse_leaf

PLACEHOLDER_ROOTS: Final = ("buyer", "answers", "scores", "date", "persona")


FIELDS: Final[Mapping[str, tuple[str, ...] | None]] = {  # None: any id (quiz questions, score dimensions)
    "buyer": ("name", "first_name", "level"),
    "answers": None,
    "scores": None,
    "date": ("today", "year"),
    "persona": ("name", "confidence"),
}


_ROOT_EXAMPLES: Final = {
    "buyer": "buyer.first_name",
    "answers": "answers.<question_id>",
    "scores": "scores.<dimension>",
    "date": "date.today",
    "persona": "persona.name",
}


MAX_DEPTH: Final = 16  # nested {% if %} blocks


_PATH_RE: Final = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


Scalar: TypeAlias = str | int | float


# Template variables that are neither answers nor scores -> the path conditions read them at.
FIELD_PATHS: Final[Mapping[str, str]] = {
    "buyer.name": "traits.name",
    "buyer.first_name": "traits.first_name",
    "buyer.level": "traits.level",
    "date.today": "traits.today",
    "date.year": "traits.year",
    "persona.name": "persona",
    "persona.confidence": "traits.persona_confidence",
}


def path_problem(dotted: str, snippet: str) -> str | None:
    """Why ``dotted`` is not a variable (None when it is one)."""
    root = dotted.split(".", 1)[0]
    if not dotted:
        return f"empty placeholder {snippet}"
    if not _PATH_RE.fullmatch(dotted):
        return f"invalid placeholder {snippet}: expected a dotted path like buyer.first_name"
    if root not in PLACEHOLDER_ROOTS:
        return f"unknown placeholder root {root!r} in {snippet} (allowed: {', '.join(PLACEHOLDER_ROOTS)})"
    if "." not in dotted:
        return f"placeholder {snippet} needs a field, e.g. {_ROOT_EXAMPLES[root]}"
    field = dotted.split(".", 1)[1]
    known = FIELDS[root]
    if known is not None and field not in known:
        return f"unknown field {field!r} of {root} in {snippet} (allowed: {', '.join(known)})"
    if known is None and "." in field:
        return f"invalid placeholder {snippet}: {root}.<id> takes one id, e.g. {_ROOT_EXAMPLES[root]}"
    return None


# --------------------------------------------------------------------------------------------------


class _ConditionError(ValueError):
    pass


_COND_TOKEN: Final = re.compile(
    r"""\s*(?:(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<str>"[^"]*"|'[^']*')|(?P<op>==|!=|>=|<=|>|<|\(|\)|\[|\]|,)"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_.-]*))"""
)
_ORDER_OPS: Final = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}


MAX_CONDITION_CHARS: Final = 500


class _ConditionParser:
    def __init__(self, source: str) -> None:
        if len(source) > MAX_CONDITION_CHARS:
            raise _ConditionError(f"the condition is longer than {MAX_CONDITION_CHARS} characters")
        self.source = source
        self.items: list[tuple[str, str]] = []
        pos = 0
        while pos < len(source):
            if not source[pos:].strip():
                break
            m = _COND_TOKEN.match(source, pos)
            if m is None or m.end() == pos:
                raise _ConditionError(f"unexpected {source[pos:].strip()[:20]!r}")
            kind = m.lastgroup
            assert kind is not None
            self.items.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def take(self) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise _ConditionError("the condition ends too early")
        self.i += 1
        return item

    def at_word(self, word: str) -> bool:
        item = self.peek()
        return item is not None and item == ("word", word)

    def parse(self) -> Condition:
        if not self.items:
            raise _ConditionError("the condition is empty")
        condition = self.disjunction()
        extra = self.peek()
        if extra is not None:
            raise _ConditionError(f"unexpected {extra[1]!r}")
        return condition

    def disjunction(self) -> Condition:
        items = [self.conjunction()]
        while self.at_word("or"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Any_(tuple(items))

    def conjunction(self) -> Condition:
        items = [self.negation()]
        while self.at_word("and"):
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else All(tuple(items))

    def negation(self) -> Condition:
        count = 0
        while self.at_word("not"):
            self.take()
            count += 1
        condition = self.primary()
        return Not(condition) if count % 2 else (Not(Not(condition)) if count else condition)

    def primary(self) -> Condition:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _ConditionError(f"parentheses nested too deeply (at most {MAX_DEPTH})")
            inner = self.disjunction()
            if self.take() != ("op", ")"):
                raise _ConditionError("missing ')'")
            self.depth -= 1
            return inner
        if kind != "word" or value in ("and", "or", "not", "in"):
            raise _ConditionError(f"expected a variable such as answers.goal, got {value!r}")
        return self.comparison(value)

    def literal(self) -> Scalar:
        kind, value = self.take()
        if kind == "num":
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
        if kind == "str":
            return value[1:-1]
        raise _ConditionError(f"expected a number or a quoted text, got {value!r}")

    def literal_list(self) -> tuple[Scalar, ...]:
        if self.take() != ("op", "["):
            raise _ConditionError('\'in\' needs a list such as ["idea", "building"]')
        values = [self.literal()]
        while self.peek() == ("op", ","):
            self.take()
            values.append(self.literal())
        if self.take() != ("op", "]"):
            raise _ConditionError("missing ']'")
        return tuple(values)

    def comparison(self, path: str) -> Condition:
        problem = path_problem(path, repr(path))
        if problem is not None:
            raise _ConditionError(problem.replace("placeholder", "variable"))
        root, field = path.split(".", 1)
        negate = False
        op: str | None = None
        values: tuple[Scalar, ...] = ()
        if self.at_word("not") and self.i + 1 < len(self.items) and self.items[self.i + 1] == ("word", "in"):
            self.take()
            negate = True
        item = self.peek()
        if item == ("word", "in"):
            self.take()
            op, values = "in", self.literal_list()
        elif item is not None and item[0] == "op" and item[1] in ("==", "!=", ">=", ">", "<=", "<"):
            self.take()
            op, values = item[1], (self.literal(),)
            if op == "!=":
                op, negate = "==", True
        elif negate:
            raise _ConditionError("'not in' needs a list")
        condition = _leaf(root, field, path, op, values)
        return Not(condition) if negate else condition


def _number(value: Scalar, path: str) -> int | float:
    if isinstance(value, str):
        raise _ConditionError(f"{path} compares with a number, got {value!r}")
    return value


def _leaf(root: str, field: str, path: str, op: str | None, values: tuple[Scalar, ...]) -> Condition:
    if root == "answers":
        if op is None:
            return parse_leaf(path, {"exists": True})
        if op in ("==", "in"):
            return parse_leaf(path, {"in": list(values)})
        raise _ConditionError(f"compare answers with ==, != or in (use scores.<dimension> {op} ...)")
    if root == "scores":
        if op is None:
            raise _ConditionError(f"a score needs a comparison, e.g. {path} >= 3")
        if op == "in":
            raise _ConditionError("compare scores with == != >= > <= <")
        return parse_leaf(path, {_ORDER_OPS.get(op, "eq"): _number(values[0], path)})
    target = FIELD_PATHS[path]
    if target == "persona" and op in ("==", "in") and not all(isinstance(v, str) for v in values):
        raise _ConditionError("persona names are quoted texts")
    if op is None:
        return parse_leaf(target, {"exists": True})
    if op == "in":
        return parse_leaf(target, {"in": list(values)})
    if op == "==":
        return parse_leaf(target, {"eq": values[0]})
    return parse_leaf(target, {_ORDER_OPS[op]: values[0]})  # numbers, or texts such as ISO dates


def parse_condition(source: str) -> Condition:
    """``answers.goal and not scores.readiness >= 3`` -> a condition; raises ``ValueError`` saying why not."""
    return _ConditionParser(source).parse()


def template_facts(inputs: BuyerInputs) -> Facts:
    """What ``{% if %}`` conditions read: the policy's facts about the buyer plus ``traits``, the
    buyer's own fields (:data:`FIELD_PATHS`), each present only when it is not empty."""
    base = facts(inputs)
    text = placeholder_values(inputs).get("buyer", {})
    traits: dict[str, Any] = {k: text[k] for k in ("name", "first_name") if text.get(k)}
    if inputs.level is not None:
        traits["level"] = inputs.level
    confidence = inputs.persona_confidence
    if isinstance(confidence, int | float) and not isinstance(confidence, bool) and confidence == confidence:
        traits["persona_confidence"] = confidence
    traits["today"], traits["year"] = inputs.today.isoformat(), inputs.today.year
    return Facts({**base.values, "traits": traits}, base.now)
