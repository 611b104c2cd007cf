"""Policy lint: exact findings for unreachable conditions, unfillable slots, fallbacks and structure."""

from __future__ import annotations

from dataclasses import replace

from tests.assembly.test_selector import CORPUS, INDEX, QUIZ

from offerloop.assembly.lint import Finding, lint_policy, score_ranges
from offerloop.assembly.policy import LevelRange, Policy, parse_policy
from offerloop.content.model import Option, Question, Quiz

from .test_composer import POLICY


def as_tuples(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.severity, f.location, f.message) for f in findings]


def test_the_composer_policy_is_clean() -> None:
    assert lint_policy(POLICY, CORPUS, QUIZ) == []
    assert lint_policy(POLICY, INDEX) == []


def test_score_ranges_from_the_quiz() -> None:
    # readiness: stage gives 1..3 (required); channels is optional and "none" gives -1.
    assert score_ranges(QUIZ) == {"readiness": (0.0, 3.0), "pricing_confidence": (1.0, 5.0)}
    multi = Quiz(
        id="q",
        title="Q",
        version="v",
        questions=(
            Question(
                id="m",
                prompt="?",
                type="multiple",
                options=(Option("a", "A", {"x": 2}), Option("b", "B", {"x": 3})),
            ),
            Question(id="s", prompt="?", type="scale", required=False, min=2, max=4, score="x"),
        ),
    )
    # a required multiple choice picks at least one option: 2..5; the optional scale adds 0..4.
    assert score_ranges(multi) == {"x": (2.0, 9.0)}


UNREACHABLE = """\
id: lint-me
title: T
sections:
  - key: base
    title: Base
    intro: hi
  - key: typo
    title: Typo
    intro: x
    when: {answer: stag, in: [idea]}
  - key: bad-option
    title: Bad option
    when: {answer: stage, in: [idea, launched]}
    slots:
      - key: s
        when: {answer: stage, equals: launched}
        fallback: {markdown: x}
  - key: scale
    title: Scale
    intro: x
    when: {any: [{answer: confidence, equals: 7}, {score: readiness, gte: 10}]}
  - key: scores
    title: Scores
    intro: x
    slots:
      - key: low
        when: {score: readiness, lt: 0}
        fallback: {markdown: x}
      - key: undefined
        when: {score: happiness, gte: 1}
        fallback: {markdown: x}
      - key: negated
        when: {not: {score: happiness, gte: 1}}
        fallback: {markdown: x}
      - key: half
        when: {any: [{answer: confidence, in: [0, 3]}, {score: pricing_confidence, gt: 5}]}
        fallback: {markdown: x}
  - key: contradiction
    title: Contradiction
    intro: x
    when: {all: [{answer: stage, equals: idea}, {answer: stage, equals: selling}]}
  - key: combined
    title: Combined
    when: {score: readiness, gte: 2}
    slots:
      - key: below
        when: {score: readiness, lt: 2}
        fallback: {markdown: x}
      - key: multi
        when: {all: [{answer: channels, equals: email}, {answer: channels, equals: social}]}
        fallback: {markdown: x}
      - key: personas
        when: {all: [{persona: [a, b]}, {persona: [c]}]}
        fallback: {markdown: x}
      - key: unanswered
        when: {all: [{answer: goal, answered: false}, {answer: goal, in: [ship]}]}
        fallback: {markdown: x}
"""


def test_unreachable_and_contradictory_conditions() -> None:
    policy = parse_policy(UNREACHABLE, path="lint.yaml")
    findings = lint_policy(policy, CORPUS, QUIZ)
    assert as_tuples(findings) == [
        ("error", "sections[1]", "condition refers to unknown question 'stag' (quiz 'intake')"),
        (
            "warning",
            "sections[2]",
            "condition value 'launched' is not an option of question 'stage' (options: idea, building, selling)",
        ),
        (
            "error",
            "sections[2].slots[0]",
            "condition value 'launched' is not an option of question 'stage' (options: idea, building, selling)",
        ),
        ("error", "sections[3]", "condition value 7 is not in the scale 1..5 of question 'confidence'"),
        (
            "error",
            "sections[3]",
            "scores.readiness >= 10 can never hold: quiz 'intake' gives readiness from 0 to 3",
        ),
        (
            "error",
            "sections[4].slots[0]",
            "scores.readiness < 0 can never hold: quiz 'intake' gives readiness from 0 to 3",
        ),
        (
            "error",
            "sections[4].slots[1]",
            "scores.happiness >= 1 can never hold: quiz 'intake' does not define score 'happiness' (always 0)",
        ),
        (
            "warning",
            "sections[4].slots[2]",
            "scores.happiness >= 1 can never hold: quiz 'intake' does not define score 'happiness' (always 0)",
        ),
        (
            "warning",
            "sections[4].slots[3]",
            "condition value 0 is not in the scale 1..5 of question 'confidence'",
        ),
        (
            "warning",
            "sections[4].slots[3]",
            "scores.pricing_confidence > 5 can never hold: quiz 'intake' gives pricing_confidence from 1 to 5",
        ),
        (
            "error",
            "sections[5]",
            "conditions contradict each other: answers.stage in [idea] and answers.stage in [selling]",
        ),
        (
            "error",
            "sections[6].slots[0]",
            "conditions contradict each other: scores.readiness >= 2 and scores.readiness < 2",
        ),
        (
            "error",
            "sections[6].slots[2]",
            "conditions contradict each other: persona in [a, b] and persona in [c]",
        ),
        (
            "error",
            "sections[6].slots[3]",
            "conditions contradict each other: answers.goal in [ship] and answers.goal is missing",
        ),
    ]
    # Findings carry the line of their location in the policy file.
    assert [f.line for f in findings[:3]] == [7, 11, 15]
    assert (
        str(findings[0]) == "error: sections[1]: condition refers to unknown question 'stag' (quiz 'intake')"
    )


def test_without_a_quiz_only_the_contradictions_remain() -> None:
    # Without the quiz, an answer could be a multiple-choice list: value clashes are warnings.
    policy = parse_policy(UNREACHABLE)
    assert as_tuples(lint_policy(policy, CORPUS)) == [
        (
            "warning",
            "sections[5]",
            "conditions contradict each other unless 'stage' is a multiple-choice question: "
            "answers.stage in [idea] and answers.stage in [selling]",
        ),
        (
            "error",
            "sections[6].slots[0]",
            "conditions contradict each other: scores.readiness >= 2 and scores.readiness < 2",
        ),
        (
            "warning",
            "sections[6].slots[1]",
            "conditions contradict each other unless 'channels' is a multiple-choice question: "
            "answers.channels in [email] and answers.channels in [social]",
        ),
        (
            "error",
            "sections[6].slots[2]",
            "conditions contradict each other: persona in [a, b] and persona in [c]",
        ),
        (
            "error",
            "sections[6].slots[3]",
            "conditions contradict each other: answers.goal in [ship] and answers.goal is missing",
        ),
    ]


def one_section(slots: str) -> Policy:
    """A policy of one section (with an intro) holding ``slots``: one YAML flow mapping a line."""
    header = "id: p\ntitle: T\nsections:\n  - {key: a, title: A, intro: hi, slots: [\n"
    return parse_policy(header + ",\n".join(line.strip() for line in slots.strip().splitlines()) + "]}\n")


def test_score_bounds_that_touch() -> None:
    policy = one_section(
        """\
{key: equal, when: {all: [{score: r, gte: 2}, {score: r, lte: 2}]}, fallback: {markdown: x}}
{key: open, when: {all: [{score: r, gt: 2}, {score: r, lte: 2}]}, fallback: {markdown: x}}
{key: three, when: {all: [{answer: q, in: [a, b]}, {answer: q, in: [b, c]}, {answer: q, in: [a, c]}]}, fallback: {markdown: x}}
"""
    )
    assert as_tuples(lint_policy(policy, CORPUS)) == [
        ("error", "sections[0].slots[1]", "conditions contradict each other: scores.r > 2 and scores.r <= 2"),
        (
            "warning",
            "sections[0].slots[2]",
            "conditions contradict each other unless 'q' is a multiple-choice question: "
            "answers.q in [a, b] and answers.q in [b, c] and answers.q in [a, c]",
        ),
    ]


def test_general_forms_get_the_same_analysis() -> None:
    policy = one_section(
        """\
{key: between, when: {path: scores.readiness, between: [4, 9]}, fallback: {markdown: x}}
{key: eq, when: {path: scores.readiness, eq: 2}, fallback: {markdown: x}}
{key: clash, when: {all: [{path: scores.readiness, between: [1, 2]}, {score: readiness, gt: 2}]}, fallback: {markdown: x}}
{key: text, when: {score: readiness, gte: high}, fallback: {markdown: x}}
{key: yaml-bool, when: {answer: stage, in: [idea, yes]}, fallback: {markdown: x}}
{key: typo, when: {path: answers.stag, matches: "i.*"}, fallback: {markdown: x}}
{key: typo-ne, when: {path: answers.stag, ne: idea}, fallback: {markdown: x}}
{key: not-answered, when: {not: {answer: goal, answered: true}}, fallback: {markdown: x}}
{key: persona-eq, when: {all: [{persona: a}, {persona: [b, c]}]}, fallback: {markdown: x}}
"""
    )
    assert as_tuples(lint_policy(policy, CORPUS, QUIZ)) == [
        (
            "error",
            "sections[0].slots[0]",
            "scores.readiness between [4, 9] can never hold: quiz 'intake' gives readiness from 0 to 3",
        ),
        (
            "error",
            "sections[0].slots[2]",
            "conditions contradict each other: scores.readiness > 2 and scores.readiness between [1, 2]",
        ),
        ("error", "sections[0].slots[3]", "scores.readiness >= high can never hold: a score is a number"),
        (
            "warning",
            "sections[0].slots[4]",
            "condition value true is not an option of question 'stage' (options: idea, building, selling)",
        ),
        ("error", "sections[0].slots[5]", "condition refers to unknown question 'stag' (quiz 'intake')"),
        ("warning", "sections[0].slots[6]", "condition refers to unknown question 'stag' (quiz 'intake')"),
        (
            "error",
            "sections[0].slots[8]",
            "conditions contradict each other: persona == a and persona in [b, c]",
        ),
    ]


FILL = """\
id: fill
title: T
sections:
  - key: fill
    title: Fill
    slots:
      - {key: none, kinds: [exercise], tags_any: [pricing], fallback: {markdown: x}}
      - {key: few, tags_any: [pricing], choose: 3, fallback: {markdown: x}}
      - {key: one, tags_any: [growth], choose: 2, fallback: {markdown: x}}
      - {key: req, persona: require, tags_any: [social], fallback: {markdown: x}}
      - {key: answers, tags_from_answers: [goal, nope], fallback: {markdown: x}}
      - {key: ghost, tags_any: [review], fallback: {atom: ghost}}
      - {key: f2, tags_any: [review], fallback: {atom: weekly-review}}
      - {key: f3, tags_all: [review], level: {min: 2}, fallback: {atom: weekly-review}}
"""


def test_slots_that_cannot_be_filled_and_bad_fallbacks() -> None:
    findings = lint_policy(parse_policy(FILL), CORPUS, QUIZ)
    assert as_tuples(findings) == [
        (
            "error",
            "sections[0].slots[0]",
            "can never be filled: no atom passes its filters (kinds exercise; tags_any pricing); "
            "the fallback is always used",
        ),
        ("warning", "sections[0].slots[1]", "only 2 atoms pass its filters, fewer than choose: 3"),
        ("warning", "sections[0].slots[2]", "only 1 atom passes its filters, fewer than choose: 2"),
        (
            "error",
            "sections[0].slots[3]",
            "can never be filled: no atom passes its filters (tags_any social; persona require); "
            "the fallback is always used",
        ),
        ("warning", "sections[0].slots[4]", "tags_from_answers: no option of question 'goal' has tags"),
        (
            "error",
            "sections[0].slots[4]",
            "tags_from_answers refers to unknown question 'nope' (quiz 'intake')",
        ),
        (
            "error",
            "sections[0].slots[4]",
            "can never be filled: no atom passes its filters (tags_any tags of answers to goal, nope); "
            "the fallback is always used",
        ),
        ("error", "sections[0].slots[5].fallback", "fallback atom 'ghost' does not exist in the corpus"),
        (
            "error",
            "sections[0].slots[7]",
            "can never be filled: no atom passes its filters (tags_all review; level 2..3); "
            "the fallback is always used",
        ),
        (
            "warning",
            "sections[0].slots[7].fallback",
            "fallback atom 'weekly-review' is also the fallback of sections[0].slots[6]: "
            "an atom appears at most once per document",
        ),
    ]
    # Without the quiz, tags from answers cannot be known: that slot is assumed fillable.
    no_quiz = as_tuples(lint_policy(parse_policy(FILL), CORPUS))
    assert [f for f in no_quiz if f[1] == "sections[0].slots[4]"] == []
    # An empty corpus: every slot is unfillable and every fallback atom is missing.
    empty = lint_policy(parse_policy(FILL), [], QUIZ)
    assert sum(f.message.startswith("can never be filled") for f in empty) == 8


def test_structure_no_unconditional_section_duplicate_keys_and_empty_levels() -> None:
    conditional = parse_policy(
        """\
id: p
title: T
sections:
  - {key: a, title: A, intro: hi, when: {persona: [superfan]}}
  - key: b
    title: B
    slots:
      - {key: s, when: {score: readiness, gte: 1}, fallback: {markdown: x}}
"""
    )
    assert as_tuples(lint_policy(conditional, CORPUS, QUIZ)) == [
        (
            "error",
            "sections",
            "no unconditional section: every section has a when or only conditional slots, "
            "so some buyers could get an empty document",
        ),
    ]
    # Policies built in code can break what parse_policy refuses: lint reports it too.
    section = POLICY.sections[0]
    slot = replace(section.slots[0], level=LevelRange(3, 1))
    broken = replace(
        POLICY,
        sections=(
            replace(section, slots=(slot, replace(slot, level=None))),
            replace(POLICY.sections[3], key="start-here"),
        ),
    )
    assert as_tuples(lint_policy(broken, CORPUS, QUIZ)) == [
        ("error", "sections[0].slots[0]", "level range 3..1 is empty (min > max)"),
        ("error", "sections[0].slots[1]", "duplicate slot key 'orientation' (also slots[0])"),
        ("error", "sections[1]", "duplicate section key 'start-here' (also sections[0])"),
    ]
