"""Static checks of a composition policy against a corpus and (optionally) the intake quiz.

:func:`lint_policy` returns :class:`Finding` values (``error`` or ``warning``, a location such as
``sections[2].slots[0]`` and a message), in policy order:

* duplicate section keys / slot keys, empty level ranges (min > max);
* no unconditional section (a section without ``when`` holding an intro or a slot without ``when``):
  some buyers could get an empty document;
* conditions (the one condition language, :mod:`offerloop.core.conditions`): references to questions
  the quiz does not have, option values that do not exist, scale values outside the scale, score
  thresholds outside the range the quiz can produce or compared with text (errors when they make the
  section or slot unreachable, warnings otherwise), and contradictory all-of conditions
  (``answers.stage in [a]`` and ``answers.stage in [b]``; ``scores.readiness >= 4`` and
  ``scores.readiness < 2``; disjoint persona lists), a slot's ``when`` taken together with its section's;
* slots no atom can fill (no atom passes kinds/tags/level/persona ``require``, before the no-duplicates
  rule) and, as a warning, slots fewer than ``choose`` atoms can fill; ``tags_from_answers`` naming
  unknown questions or questions whose options carry no tags;
* fallback atoms that are not in the corpus, or that are the fallback of more than one slot;
* the atom language of the atoms the policy can place and of the policy's own texts (location
  ``atoms[<id>]`` with the atom's ``file:line`` in the message, or ``sections[0].intro``...): problems
  of the text (unbalanced ``{% if %}`` blocks, bad conditions), ``{% if %}`` conditions and placeholders
  naming questions or scores the quiz does not have, and — a warning — an optional question's answer
  quoted outside a block that tests it was answered (a skipped answer would give an invented quote).

Without a quiz, the checks that need it are skipped, and tags from answers are assumed to allow any atom.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from offerloop.assembly.inputs import format_number
from offerloop.assembly.policy import AtomFallback, Policy, PolicySection, Slot, TextFallback
from offerloop.assembly.selector import CorpusIndex, passes_filters
from offerloop.assembly.template import Branch, parse_template, walk
from offerloop.content.model import Atom, Question, Quiz
from offerloop.core.conditions import All, Any_, Condition, Leaf, Not, describe, leaves, same

__all__ = ["Finding", "lint_atom", "lint_policy", "score_ranges"]

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


def _holds_when_missing(op: str, operand: Any) -> bool:
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


def _conjuncts(condition: Condition | None) -> list[Condition]:
    if condition is None:
        return []
    if isinstance(condition, All):
        return [c for item in condition.items for c in _conjuncts(item)]
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
        never = not all(_holds_when_missing(op, operand) for op, operand in leaf.ops)
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


def _condition_findings(
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


def _contradictions(conjuncts: Sequence[Condition], quiz: Quiz | None) -> list[tuple[Severity, str]]:
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


# --------------------------------------------------------------------------------------------------
# Slots


def _filter_summary(slot: Slot) -> str:
    parts: list[str] = []
    if slot.kinds:
        parts.append(f"kinds {', '.join(slot.kinds)}")
    if slot.tags_any or slot.tags_from_answers:
        tags = ", ".join(slot.tags_any)
        if slot.tags_from_answers:
            tags = (tags + " + " if tags else "") + f"tags of answers to {', '.join(slot.tags_from_answers)}"
        parts.append(f"tags_any {tags}")
    if slot.tags_all:
        parts.append(f"tags_all {', '.join(slot.tags_all)}")
    if slot.level is not None:
        parts.append(f"level {slot.level.min}..{slot.level.max}")
    if slot.persona == "require":
        parts.append("persona require")
    return "; ".join(parts) or "none"


def _slot_tags(
    slot: Slot, quiz: Quiz | None, location: str, findings: list[Finding]
) -> frozenset[str] | None:
    """The widest tag filter any buyer can get (None: no tag filter, or unknown without a quiz)."""
    if not slot.tags_any and not slot.tags_from_answers:
        return None
    tags = set(slot.tags_any)
    if slot.tags_from_answers and quiz is None:
        return None
    for qid in slot.tags_from_answers:
        assert quiz is not None
        question = quiz.question(qid)
        if question is None:
            findings.append(
                Finding(
                    "error",
                    location,
                    f"tags_from_answers refers to unknown question {qid!r} (quiz {quiz.id!r})",
                )
            )
            continue
        option_tags = {tag for option in question.options for tag in option.tags}
        if not option_tags:
            findings.append(
                Finding("warning", location, f"tags_from_answers: no option of question {qid!r} has tags")
            )
        tags |= option_tags
    return frozenset(tags)


def _slot_fill(
    slot: Slot, atoms: Sequence[Atom], quiz: Quiz | None, location: str, placeable: dict[str, Atom]
) -> list[Finding]:
    """Findings about what can fill the slot; the atoms that can are added to ``placeable``."""
    findings: list[Finding] = []
    if slot.level is not None and slot.level.min > slot.level.max:
        findings.append(
            Finding("error", location, f"level range {slot.level.min}..{slot.level.max} is empty (min > max)")
        )
        return findings
    tags = _slot_tags(slot, quiz, location, findings)
    passing = [a for a in atoms if passes_filters(a, slot, tags_any=tags, persona=None, any_persona=True)]
    placeable.update((a.id, a) for a in passing)
    if not passing:
        findings.append(
            Finding(
                "error",
                location,
                f"can never be filled: no atom passes its filters ({_filter_summary(slot)}); "
                "the fallback is always used",
            )
        )
    elif len(passing) < slot.choose:
        count = f"only {len(passing)} atom passes" if len(passing) == 1 else f"only {len(passing)} atoms pass"
        findings.append(
            Finding("warning", location, f"{count} its filters, fewer than choose: {slot.choose}")
        )
    return findings


# --------------------------------------------------------------------------------------------------
# The policy


def _unconditional(section: PolicySection) -> bool:
    return section.when is None and (section.intro is not None or any(s.when is None for s in section.slots))


def lint_policy(
    policy: Policy, atoms: Iterable[Atom] | CorpusIndex, quiz: Quiz | None = None
) -> list[Finding]:
    """Every finding about ``policy`` for this corpus (and quiz), in policy order."""
    corpus = list(atoms.atoms if isinstance(atoms, CorpusIndex) else sorted(atoms, key=lambda a: a.id))
    ids = {atom.id for atom in corpus}
    ranges = score_ranges(quiz) if quiz is not None else {}
    findings: list[Finding] = []
    if not any(_unconditional(section) for section in policy.sections):
        findings.append(
            Finding(
                "error",
                "sections",
                "no unconditional section: every section has a when or only conditional slots, "
                "so some buyers could get an empty document",
            )
        )
    section_keys: dict[str, int] = {}
    fallback_atoms: dict[str, str] = {}
    placeable: dict[str, Atom] = {}
    by_id = {atom.id: atom for atom in corpus}
    for number, section in enumerate(policy.sections):
        location = f"sections[{number}]"
        if section.key in section_keys:
            findings.append(
                Finding(
                    "error",
                    location,
                    f"duplicate section key {section.key!r} (also sections[{section_keys[section.key]}])",
                )
            )
        section_keys.setdefault(section.key, number)
        section_unreachable = False
        section_contradictions: list[tuple[Severity, str]] = []
        if section.when is not None:
            found, section_unreachable = _condition_findings(section.when, location, quiz, ranges)
            findings.extend(found)
            section_contradictions = _contradictions(_conjuncts(section.when), quiz)
            findings.extend(Finding(sev, location, message) for sev, message in section_contradictions)
            section_unreachable = section_unreachable or any(s == "error" for s, _ in section_contradictions)
        slot_keys: dict[str, int] = {}
        for slot_number, slot in enumerate(section.slots):
            slot_location = f"{location}.slots[{slot_number}]"
            if slot.key in slot_keys:
                findings.append(
                    Finding(
                        "error",
                        slot_location,
                        f"duplicate slot key {slot.key!r} (also slots[{slot_keys[slot.key]}])",
                    )
                )
            slot_keys.setdefault(slot.key, slot_number)
            if slot.when is not None:
                found, _ = _condition_findings(slot.when, slot_location, quiz, ranges)
                findings.extend(found)
                if not section_unreachable:
                    conjuncts = [*_conjuncts(section.when), *_conjuncts(slot.when)]
                    findings.extend(
                        Finding(severity, slot_location, message)
                        for severity, message in _contradictions(conjuncts, quiz)
                        if (severity, message) not in section_contradictions
                    )
            findings.extend(_slot_fill(slot, corpus, quiz, slot_location, placeable))
            if isinstance(slot.fallback, AtomFallback):
                fallback_location = f"{slot_location}.fallback"
                atom_id = slot.fallback.atom
                if atom_id not in ids:
                    findings.append(
                        Finding(
                            "error",
                            fallback_location,
                            f"fallback atom {atom_id!r} does not exist in the corpus",
                        )
                    )
                elif atom_id in fallback_atoms:
                    findings.append(
                        Finding(
                            "warning",
                            fallback_location,
                            f"fallback atom {atom_id!r} is also the fallback of {fallback_atoms[atom_id]}: "
                            "an atom appears at most once per document",
                        )
                    )
                fallback_atoms.setdefault(atom_id, slot_location)
                if atom_id in by_id:
                    placeable[atom_id] = by_id[atom_id]
    findings.extend(_policy_text_findings(policy, quiz, ranges))
    for atom in sorted(placeable.values(), key=lambda a: a.id):
        findings.extend(lint_atom(atom, quiz, ranges))
    return [_with_line(finding, policy) for finding in findings]


def _with_line(finding: Finding, policy: Policy) -> Finding:
    line = policy.line_of(finding.location)
    return finding if line is None else Finding(finding.severity, finding.location, finding.message, line)


# --------------------------------------------------------------------------------------------------
# The atom language


def _implies_answered(condition: Condition, question: str, polarity: bool = True) -> bool:
    """Whether ``condition`` being ``polarity`` (true, or false) means ``question`` was answered
    (an unanswered question is missing from the answers conditions read)."""
    if isinstance(condition, Leaf):
        if condition.path != f"answers.{question}":
            return False
        missing = [_holds_when_missing(op, operand) for op, operand in condition.ops]
        # true: some test fails on a missing value; false: every test holds on one.
        return not all(missing) if polarity else all(missing)
    if isinstance(condition, Not):
        return _implies_answered(condition.item, question, not polarity)
    items = condition.items
    if isinstance(condition, All) == polarity:  # all true, or any false: one item suffices
        return any(_implies_answered(i, question, polarity) for i in items)
    return bool(items) and all(_implies_answered(i, question, polarity) for i in items)


def _text_findings(
    text: str,
    location: str,
    where: str | None,
    quiz: Quiz | None,
    ranges: dict[str, tuple[float, float]],
) -> list[Finding]:
    """Findings about one text in the atom language; ``where`` + line number prefixes each message."""

    def at(line: int) -> str:
        return "" if where is None else f"{where}{line}: "

    nodes, problems = parse_template(text)
    findings = [Finding("error", location, f"{at(line)}{message}") for line, message in problems]
    if quiz is None:
        return findings
    for item, guard in walk(nodes):
        if isinstance(item, Branch):
            assert item.condition is not None
            found, _ = _condition_findings(item.condition, location, quiz, ranges)
            findings.extend(
                Finding(f.severity, location, f"{at(item.line)}{{% if %}} {f.message}") for f in found
            )
            continue
        root, _, key = item.path.partition(".")
        if root == "answers":
            question = quiz.question(key)
            if question is None:
                findings.append(
                    Finding(
                        "error",
                        location,
                        f"{at(item.line)}placeholder refers to unknown question {key!r} (quiz {quiz.id!r})",
                    )
                )
            elif not question.required and not any(_implies_answered(c, key) for c in guard):
                findings.append(
                    Finding(
                        "warning",
                        location,
                        f"{at(item.line)}{{{{ {item.path} }}}} quotes optional question {key!r} outside "
                        f"a block that tests it: a buyer who skips it gets "
                        + ("nothing" if item.default is None else f"the default {item.default!r}")
                        + f" instead; wrap it in {{% if {item.path} %}} ... {{% endif %}}",
                    )
                )
        elif root == "scores" and key not in ranges:
            findings.append(
                Finding(
                    "warning",
                    location,
                    f"{at(item.line)}placeholder refers to score {key!r}, which quiz {quiz.id!r} "
                    "does not define (always 0)",
                )
            )
    return findings


def lint_atom(
    atom: Atom, quiz: Quiz | None = None, ranges: dict[str, tuple[float, float]] | None = None
) -> list[Finding]:
    """Findings about an atom's title and body in the atom language (location ``atoms[<id>]``)."""
    if ranges is None:
        ranges = score_ranges(quiz) if quiz is not None else {}
    location = f"atoms[{atom.id}]"
    file = f"{atom.path} " if atom.path else ""
    return [  # the atom keeps no file lines: body lines count from the body's first line
        *_text_findings(atom.title, location, f"{file}title line ", quiz, ranges),
        *_text_findings(atom.body, location, f"{file}body line ", quiz, ranges),
    ]


def _policy_text_findings(
    policy: Policy, quiz: Quiz | None, ranges: dict[str, tuple[float, float]]
) -> list[Finding]:
    findings: list[Finding] = []
    texts: list[tuple[str, str | None]] = [("title", policy.title), ("subtitle", policy.subtitle)]
    for number, section in enumerate(policy.sections):
        location = f"sections[{number}]"
        texts += [(f"{location}.title", section.title), (f"{location}.intro", section.intro)]
        for slot_number, slot in enumerate(section.slots):
            if isinstance(slot.fallback, TextFallback):
                fallback = f"{location}.slots[{slot_number}].fallback"
                texts += [(fallback, slot.fallback.title), (fallback, slot.fallback.markdown)]
    for location, text in texts:
        if text:
            findings.extend(_text_findings(text, location, None, quiz, ranges))
    return findings
