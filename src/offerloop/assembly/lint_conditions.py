"""The linter's checks of conditions against the intake quiz: what a ``when`` can never meet.

References to questions the quiz does not have, option values that do not exist, scale values outside
the scale, score thresholds outside the range the quiz can produce (:func:`score_ranges`) or compared
with text, and contradictory all-of conditions (``answers.stage in [a]`` and ``answers.stage in [b]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from offerloop.assembly.inputs import format_number
from offerloop.content.model import Question, Quiz
from offerloop.core.conditions import All, Any_, Condition, Leaf, Not, describe, leaves, same

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    location: str  # "sections[2].slots[0]", "sections[1].slots[0].fallback", "sections"
    message: str
    line: int | None = field(default=None, compare=False)  # in the policy file, when known

    def __str__(self) -> str:
        return f"{self.severity}: {self.location}: {self.message}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    return describe(Leaf("", (("eq", value),)))[4:]  # true, false, null, lists: as conditions show them


def _show_all(values: Sequence[Any]) -> str:
    return ", ".join(_show(v) for v in values)


# --------------------------------------------------------------------------------------------------
# What the quiz can produce


def score_ranges(quiz: Quiz) -> dict[str, tuple[float, float]]:
    """Per score dimension, the lowest and highest total a completed quiz can give."""
    dimensions: list[str] = []
    for question in quiz.questions:
        for option in question.options:
            dimensions.extend(d for d in option.scores if d not in dimensions)
        if question.type == "scale" and question.score and question.score not in dimensions:
            dimensions.append(question.score)
    ranges: dict[str, tuple[float, float]] = {}
    for dimension in dimensions:
        low = high = 0.0
        for question in quiz.questions:
            part_low, part_high = _question_range(question, dimension)
            low, high = low + part_low, high + part_high
        ranges[dimension] = (low, high)
    return ranges


def _question_range(question: Question, dimension: str) -> tuple[float, float]:
    if question.type == "scale":
        if question.score != dimension or question.min is None or question.max is None:
            return 0.0, 0.0
        low, high = float(question.min), float(question.max)
        return (low, high) if question.required else (min(0.0, low), max(0.0, high))
    values = [float(option.scores.get(dimension, 0.0)) for option in question.options]
    if not values:
        return 0.0, 0.0
    if question.type == "multiple":
        negative = sum(v for v in values if v < 0)
        positive = sum(v for v in values if v > 0)
        if question.required:  # at least one option is chosen
            negative = negative if negative < 0 else min(values)
            positive = positive if positive > 0 else max(values)
        return negative, positive
    low, high = min(values), max(values)
    return (low, high) if question.required else (min(0.0, low), max(0.0, high))


# --------------------------------------------------------------------------------------------------
# Conditions: the analysis classifies core leaves by root and operator — answers.<q> with in/exists,
# scores.<d> with gt/gte/lt/lte (eq and between as both bounds), persona with in/eq; a leaf with any
# other operator gets no such analysis.

_ANSWER_OPS: Final = frozenset({"in", "exists"})
_SCORE_OPS: Final = frozenset({"gt", "gte", "lt", "lte", "eq", "between"})
_PERSONA_OPS: Final = frozenset({"in", "eq"})
Bound: TypeAlias = tuple[str, float]  # (gt | gte | lt | lte, value)


def _kind(leaf: Leaf) -> Literal["answer", "score", "persona"] | None:
    ops = {op for op, _ in leaf.ops}
    if leaf.root == "answers" and leaf.key and ops <= _ANSWER_OPS:
        return "answer"
    if leaf.root == "scores" and leaf.key and ops <= _SCORE_OPS and _bounds(leaf) is not None:
        return "score"
    if leaf.path == "persona" and ops <= _PERSONA_OPS:
        return "persona"
    return None


def _bounds(leaf: Leaf) -> list[Bound] | None:
    """A score leaf's bounds (None when an operand is not a number: no range analysis)."""
    bounds: list[Bound] = []
    for op, operand in leaf.ops:
        pair = operand if op == "between" else (operand, operand)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair):
            return None
        if op in ("gt", "gte", "lt", "lte"):
            bounds.append((op, float(operand)))
        else:  # eq, between
            bounds += [("gte", float(pair[0])), ("lte", float(pair[1]))]
    return bounds


def holds_when_missing(op: str, operand: Any) -> bool:
    return op in ("ne", "not_in") or (op == "exists" and not operand)


def _wants_answer(leaf: Leaf) -> bool:
    """Whether an answer leaf needs the question answered (``in``, ``exists: true``)."""
    return any(op == "in" or (op == "exists" and operand) for op, operand in leaf.ops)


def _answer_values(leaf: Leaf) -> tuple[Any, ...] | None:
    """The values an answer leaf allows (None: any value)."""
    return next((operand for op, operand in leaf.ops if op == "in"), None)


def _persona_names(leaf: Leaf) -> set[Any]:
    found: set[Any] = set()
    for op, operand in leaf.ops:
        names = set(operand) if op == "in" else {operand}
        found = names if not found else found & names
    return found


def conjuncts(condition: Condition | None) -> list[Condition]:
    if condition is None:
        return []
    if isinstance(condition, All):
        return [c for item in condition.items for c in conjuncts(item)]
    return [condition]


def _value_problem(question: Question, value: Any) -> str | None:
    """Why ``value`` can never be an answer to ``question`` (None when it can)."""
    if question.type in ("single", "multiple"):
        if any(same(option.value, value) for option in question.options):
            return None
        return "not an option"
    if question.type == "scale" and question.min is not None and question.max is not None:
        if not isinstance(value, int | float) or isinstance(value, bool) or float(value) != int(value):
            return "not a whole number"
        if not question.min <= value <= question.max:
            return "outside"
    return None


def _answer_issue(leaf: Leaf, quiz: Quiz) -> tuple[bool, str] | None:
    """(never holds, message) for an answer condition that names what the quiz does not have."""
    question = quiz.question(leaf.key)
    if question is None:
        return _wants_answer(leaf), f"condition refers to unknown question {leaf.key!r} (quiz {quiz.id!r})"
    values = _answer_values(leaf)
    if values is None:
        return None
    bad = [v for v in values if _value_problem(question, v) is not None]
    if not bad:
        return None
    never = len(bad) == len(values)
    if question.type == "scale":
        where = f"the scale {question.min}..{question.max} of question {question.id!r}"
        return never, f"condition value {_show_all(bad)} {'is' if len(bad) == 1 else 'are'} not in {where}"
    options = ", ".join(option.value for option in question.options)
    verb = "is not an option" if len(bad) == 1 else "are not options"
    return never, f"condition value {_show_all(bad)} {verb} of question {question.id!r} (options: {options})"


def _never_within(bounds: Sequence[Bound], low: float, high: float) -> bool:
    """Whether a value between ``low`` and ``high`` can never meet every bound."""
    checks = {
        "gte": lambda v: v > high,
        "gt": lambda v: v >= high,
        "lte": lambda v: v < low,
        "lt": lambda v: v <= low,
    }
    return any(checks[op](value) for op, value in bounds)


def _score_issue(leaf: Leaf, quiz: Quiz, ranges: dict[str, tuple[float, float]]) -> tuple[bool, str] | None:
    dimension = leaf.key
    low, high = ranges.get(dimension, (0.0, 0.0))
    never = _never_within(_bounds(leaf) or [], low, high)
    if dimension not in ranges:
        outcome = "can never hold" if never else "always holds"
        return (
            never,
            f"{describe(leaf)} {outcome}: quiz {quiz.id!r} does not define score {dimension!r} (always 0)",
        )
    if never:
        span = f"{format_number(low)} to {format_number(high)}"
        return True, f"{describe(leaf)} can never hold: quiz {quiz.id!r} gives {dimension} from {span}"
    return None


def _other_issue(leaf: Leaf, quiz: Quiz) -> tuple[bool, str] | None:
    """What is known without the operator's analysis: an unknown question, a score compared with text."""
    if leaf.root == "answers" and leaf.key and quiz.question(leaf.key) is None:
        never = not all(holds_when_missing(op, operand) for op, operand in leaf.ops)
        return never, f"condition refers to unknown question {leaf.key!r} (quiz {quiz.id!r})"
    if leaf.root == "scores" and {op for op, _ in leaf.ops} <= _SCORE_OPS:
        return True, f"{describe(leaf)} can never hold: a score is a number"
    return None


def _never(condition: Condition, never_leaves: set[Leaf]) -> bool:
    if isinstance(condition, All):
        return any(_never(item, never_leaves) for item in condition.items)
    if isinstance(condition, Any_):
        return all(_never(item, never_leaves) for item in condition.items)
    if isinstance(condition, Not):
        return False
    return condition in never_leaves


def condition_findings(
    condition: Condition, location: str, quiz: Quiz | None, ranges: dict[str, tuple[float, float]]
) -> tuple[list[Finding], bool]:
    """Findings about references to the quiz, and whether the condition can never hold."""
    if quiz is None:
        return [], False
    issues: list[tuple[Leaf, bool, str]] = []
    for leaf in leaves(condition):
        kind = _kind(leaf)
        if kind == "score":
            issue = _score_issue(leaf, quiz, ranges)
        elif kind == "answer":
            issue = _answer_issue(leaf, quiz)
        else:
            issue = _other_issue(leaf, quiz)
        if issue is not None and not any(message == issue[1] for _, _, message in issues):
            issues.append((leaf, *issue))
    never_leaves = {leaf for leaf, never, _ in issues if never}
    unreachable = _never(condition, never_leaves)
    findings = [
        Finding("error" if never and unreachable else "warning", location, message)
        for _, never, message in issues
    ]
    return findings, unreachable


def _single_valued(question_id: str, quiz: Quiz | None) -> bool | None:
    """True/False when the quiz says whether the answer is one value; None without that knowledge."""
    question = quiz.question(question_id) if quiz is not None else None
    if question is None:
        return None
    return question.type != "multiple"


def contradictions(conjuncts: Sequence[Condition], quiz: Quiz | None) -> list[tuple[Severity, str]]:
    """Groups of all-of conditions that cannot hold together."""
    found: list[tuple[Severity, str]] = []
    by_question: dict[str, list[Leaf]] = {}
    by_dimension: dict[str, list[Leaf]] = {}
    personas: list[Leaf] = []
    for leaf in (c for c in conjuncts if isinstance(c, Leaf)):
        kind = _kind(leaf)
        if kind == "answer":
            by_question.setdefault(leaf.key, []).append(leaf)
        elif kind == "score":
            by_dimension.setdefault(leaf.key, []).append(leaf)
        elif kind == "persona":
            personas.append(leaf)

    def report(severity: Severity, group: Sequence[Condition], suffix: str = "") -> None:
        described = " and ".join(dict.fromkeys(describe(c) for c in group))
        found.append((severity, f"conditions contradict each other{suffix}: {described}"))

    for question, group in by_question.items():
        wants_answer = [c for c in group if _wants_answer(c)]
        unanswered = [c for c in group if ("exists", False) in c.ops]
        if unanswered and wants_answer:
            report("error", [*wants_answer, *unanswered])
            continue
        value_sets = [values for c in group if (values := _answer_values(c)) is not None]
        if len(value_sets) < 2:
            continue
        allowed = list(value_sets[0])
        for values in value_sets[1:]:
            allowed = [a for a in allowed if any(same(a, v) for v in values)]
        if allowed:
            continue
        single = _single_valued(question, quiz)
        if single is True:
            report("error", group)
        elif single is None:
            report("warning", group, f" unless {question!r} is a multiple-choice question")
    for group_scores in by_dimension.values():
        bounds = [(op, value, leaf) for leaf in group_scores for op, value in _bounds(leaf) or []]
        lower = [b for b in bounds if b[0] in ("gte", "gt")]
        upper = [b for b in bounds if b[0] in ("lte", "lt")]
        if not lower or not upper:
            continue
        low = max(lower, key=lambda b: (b[1], b[0] == "gt"))
        high = min(upper, key=lambda b: (b[1], b[0] == "lte"))
        if low[1] > high[1] or (low[1] == high[1] and (low[0] == "gt" or high[0] == "lt")):
            report("error", [low[2], high[2]])
    if len(personas) > 1:
        common = _persona_names(personas[0])
        for persona in personas[1:]:
            common &= _persona_names(persona)
        if not common:
            report("error", personas)
    return found
