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

from offerloop.assembly.lint_conditions import (
    Finding,
    Severity,
    condition_findings,
    conjuncts,
    contradictions,
    holds_when_missing,
    score_ranges,
)
from offerloop.assembly.policy import AtomFallback, Policy, PolicySection, Slot, TextFallback
from offerloop.assembly.selector import CorpusIndex, passes_filters
from offerloop.assembly.template import Branch, parse_template, walk
from offerloop.content.model import Atom, Quiz
from offerloop.core.conditions import All, Condition, Leaf, Not

__all__ = ["Finding", "lint_atom", "lint_policy", "score_ranges"]


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
            found, section_unreachable = condition_findings(section.when, location, quiz, ranges)
            findings.extend(found)
            section_contradictions = contradictions(conjuncts(section.when), quiz)
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
                found, _ = condition_findings(slot.when, slot_location, quiz, ranges)
                findings.extend(found)
                if not section_unreachable:
                    together = [*conjuncts(section.when), *conjuncts(slot.when)]
                    findings.extend(
                        Finding(severity, slot_location, message)
                        for severity, message in contradictions(together, quiz)
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
        missing = [holds_when_missing(op, operand) for op, operand in condition.ops]
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
            found, _ = condition_findings(item.condition, location, quiz, ranges)
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
