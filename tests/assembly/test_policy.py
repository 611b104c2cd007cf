"""Composition policy parsing: the typed result, the content version, every problem with its line, conditions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from offerloop.assembly.exceptions import AssemblyError, InvalidPolicy
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import (
    AllOf,
    AnswerAnswered,
    AnswerEquals,
    AnswerIn,
    AnyOf,
    AtomFallback,
    Condition,
    LevelRange,
    Not,
    PersonaIn,
    Policy,
    PolicySection,
    Review,
    ScoreCompare,
    Slot,
    TextFallback,
    describe,
    evaluate,
    parse_policy,
)
from offerloop.core.errors import OfferloopError

SPEC_EXAMPLE = """\
id: launch-workbook
deliverable: workbook            # workbook | audit_report | course_pathway
title: "{{ buyer.first_name | Your }} launch workbook"
subtitle: "Built from your answers on {{ date.today }}"
review: never                    # never | always | guard_fired | {above_offer_value: 5000}
sections:
  - key: start-here              # unique in the policy
    title: "Start here"
    intro: "Hi {{ buyer.first_name | there }} — this workbook follows your answers."
    when: {answer: stage, in: [idea, building]}
    slots:
      - key: orientation         # unique within the section
        choose: 2
        kinds: [lesson, snippet]
        tags_any: [welcome, orientation]
        tags_all: []
        tags_from_answers: [stage]
        level: {min: 1, max: 2}
        persona: prefer
        order: relevance
        when: {score: readiness, gte: 2}
        fallback:
          title: "A first step"
          markdown: "Write down the one product you could sell this month."
      - key: extra
        fallback: {atom: some-atom-id}
"""


def problems(text: str, path: str = "policy.yaml") -> list[str]:
    with pytest.raises(InvalidPolicy) as info:
        parse_policy(text, path=path)
    error = info.value
    assert isinstance(error, AssemblyError) and isinstance(error, OfferloopError)
    assert error.status_code == 422
    assert error.code == "invalid_policy"
    assert error.details == {"problems": list(error.problems)}
    assert error.message == "\n".join(error.problems)
    return list(error.problems)


def test_the_spec_example_parses_into_typed_values() -> None:
    policy = parse_policy(SPEC_EXAMPLE, path="launch.yaml")
    assert policy == Policy(
        id="launch-workbook",
        title="{{ buyer.first_name | Your }} launch workbook",
        subtitle="Built from your answers on {{ date.today }}",
        deliverable="workbook",
        review=Review("never"),
        version=policy.version,
        sections=(
            PolicySection(
                key="start-here",
                title="Start here",
                intro="Hi {{ buyer.first_name | there }} — this workbook follows your answers.",
                when=AnswerIn("stage", ("idea", "building")),
                slots=(
                    Slot(
                        key="orientation",
                        choose=2,
                        kinds=("lesson", "snippet"),
                        tags_any=("welcome", "orientation"),
                        tags_all=(),
                        tags_from_answers=("stage",),
                        level=LevelRange(1, 2),
                        persona="prefer",
                        order="relevance",
                        when=ScoreCompare("readiness", "gte", 2.0),
                        fallback=TextFallback(
                            title="A first step",
                            markdown="Write down the one product you could sell this month.",
                        ),
                    ),
                    Slot(key="extra", fallback=AtomFallback("some-atom-id")),
                ),
            ),
        ),
    )
    assert policy.path == "launch.yaml"
    assert len(policy.version) == 16 and int(policy.version, 16) >= 0
    assert policy.line_of("sections[0].slots[1]") == 25
    assert policy.line_of("sections[0].slots[0].when") == 21


def test_version_is_a_hash_of_the_canonical_content() -> None:
    policy = parse_policy(SPEC_EXAMPLE)
    # Comments, layout, key order and spelled-out defaults do not change it.
    reformatted = yaml.safe_dump(policy.to_dict(), sort_keys=True, allow_unicode=True)
    again = parse_policy(reformatted)
    assert again == policy
    assert again.version == policy.version
    spelled_out = SPEC_EXAMPLE.replace("      - key: extra\n", "      - key: extra\n        choose: 1\n")
    assert parse_policy(spelled_out).version == policy.version
    # Any change of meaning does.
    assert parse_policy(SPEC_EXAMPLE.replace("choose: 2", "choose: 3")).version != policy.version
    assert parse_policy(SPEC_EXAMPLE.replace("gte: 2", "gt: 2")).version != policy.version
    assert policy.with_version() == policy and policy.content_version() == policy.version


def test_review_forms() -> None:
    base = "id: p\ntitle: T\nsections: [{key: s, title: S, intro: hi}]\n"
    assert parse_policy(base).review == Review("never")
    assert parse_policy(base + "review: guard_fired\n").review == Review("guard_fired")
    assert parse_policy(base + "review: {above_offer_value: 5000}\n").review == Review(
        "above_offer_value", 5000.0
    )
    assert problems(base + "review: {above_offer_value: -1}\n") == [
        "policy.yaml:4: review.above_offer_value: must be >= 0, got -1"
    ]


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = """\
id: Bad Id
title: ""
colour: blue
review: sometimes
sections:
  - key: start
    title: Start
    when: {answer: stage, in: [idea, yes]}
    slots:
      - key: one
        choose: 0
        kinds: [video, lesson]
        tags_any: [Pricing]
        level: {min: 3, max: 1}
        persona: maybe
        order: random
        when: {score: readiness, gte: high}
      - key: one
        fallback: {atom: ok-atom, markdown: "both"}
  - key: start
    title: Again
    title: Twice
    slots:
      - fallback: {markdown: "no key"}
"""
    assert problems(text) == [
        "policy.yaml:1: id: must be a policy id ([a-z0-9][a-z0-9_-]*), got 'Bad Id'",
        "policy.yaml:2: title: must be a non-empty string, got ''",
        "policy.yaml:3: colour: unknown key (expected one of id, deliverable, title, subtitle, review, sections)",
        "policy.yaml:4: review: must be never, always, guard_fired or {above_offer_value: <amount>}, got 'sometimes'",
        'policy.yaml:8: sections[0].when.in[1]: True was read as a boolean: quote it ("true") to mean the text',
        "policy.yaml:10: sections[0].slots[0].fallback: required: {title, markdown} or {atom: atom-id}",
        "policy.yaml:11: sections[0].slots[0].choose: must be a positive integer, got 0",
        "policy.yaml:12: sections[0].slots[0].kinds[0]: must be one of lesson, template, checklist, snippet, "
        "exercise, got 'video'",
        "policy.yaml:13: sections[0].slots[0].tags_any[0]: must be a tag ([a-z0-9][a-z0-9_-]*), got 'Pricing'",
        "policy.yaml:14: sections[0].slots[0].level: empty level range: min 3 > max 1",
        "policy.yaml:15: sections[0].slots[0].persona: must be one of prefer, require, ignore, got 'maybe'",
        "policy.yaml:16: sections[0].slots[0].order: must be one of relevance, level, minutes, title, got 'random'",
        "policy.yaml:17: sections[0].slots[0].when.gte: must be a number, got 'high'",
        "policy.yaml:18: sections[0].slots[1].key: duplicate slot key 'one' (also slots[0])",
        "policy.yaml:19: sections[0].slots[1].fallback: give either atom or title/markdown, not both",
        "policy.yaml:20: sections[1].key: duplicate section key 'start' (also sections[0])",
        "policy.yaml:22: sections[1].title: duplicate key (the later value would silently win)",
        "policy.yaml:24: sections[1].slots[0].key: required",
    ]


def test_duplicate_keys_are_reported_with_both_places() -> None:
    text = """\
id: p
title: T
sections:
  - key: a
    title: A
    slots:
      - {key: s, fallback: {markdown: x}}
      - {key: s, fallback: {markdown: y}}
  - key: a
    title: Again
    intro: hi
"""
    assert problems(text) == [
        "policy.yaml:8: sections[0].slots[1].key: duplicate slot key 's' (also slots[0])",
        "policy.yaml:9: sections[1].key: duplicate section key 'a' (also sections[0])",
    ]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "{answer: stage}",
            "sections[0].when: an answer condition needs exactly one of in, equals, answered",
        ),
        (
            "{answer: stage, in: [a], equals: b}",
            "sections[0].when: an answer condition needs exactly one of in, equals, answered",
        ),
        (
            "{answer: stage, is: a}",
            "sections[0].when: unknown key 'is' in an answer condition (expected in, equals or answered)",
        ),
        ("{answer: stage, in: []}", "sections[0].when.in: must be a non-empty list of values, got []"),
        ("{answer: stage, answered: maybe}", "sections[0].when.answered: must be true or false, got 'maybe'"),
        ("{score: readiness}", "sections[0].when: a score condition needs exactly one of gte, gt, lte, lt"),
        (
            "{score: readiness, above: 2}",
            "sections[0].when: unknown key 'above' in a score condition (expected gte, gt, lte or lt)",
        ),
        ("{persona: []}", "sections[0].when.persona: must be a non-empty list of persona names, got []"),
        ("{all: []}", "sections[0].when.all: must be a non-empty list of conditions, got []"),
        (
            "{all: [{score: r, gte: 1}], any: [{score: r, gte: 1}]}",
            "sections[0].when: all must be the only key of its condition (also found any)",
        ),
        (
            "{not: {colour: red}}",
            "sections[0].when.not: unknown condition ['colour'] (expected one of answer, score, persona, all, any or not)",
        ),
        (
            "[a, b]",
            "sections[0].when: a condition must be a mapping such as {answer: stage, in: [idea]}, got ['a', 'b']",
        ),
        (
            "{any: [{answer: 'two words', equals: x}]}",
            "sections[0].when.any[0].answer: must be a question id, got 'two words'",
        ),
    ],
)
def test_condition_problems(when: str, message: str) -> None:
    text = f"id: p\ntitle: T\nsections:\n  - key: a\n    title: A\n    intro: hi\n    when: {when}\n"
    assert problems(text) == [f"policy.yaml:7: {message}"]


def test_yaml_syntax_errors_and_non_mappings() -> None:
    assert problems("id: p\ntitle: [unclosed\n") == [
        "policy.yaml: invalid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'"
    ]
    assert problems("") == ["policy.yaml: the policy is empty"]
    assert problems("- a\n- b\n") == ["policy.yaml:1: policy: must be a mapping, got ['a', 'b']"]
    assert problems("id: p\ntitle: T\n") == [
        "policy.yaml:1: sections: must be a non-empty list of sections, got None"
    ]
    assert problems("id: p\ntitle: T\nsections: [{key: a, title: A}]\n", path="<string>") == [
        "<string>:3: sections[0].slots: a section needs at least one slot or an intro"
    ]


def test_conditions_parse_into_a_typed_tree() -> None:
    text = """\
id: p
title: T
sections:
  - key: a
    title: A
    intro: hi
    when:
      all:
        - {answer: stage, equals: idea}
        - {answer: confidence, in: [4, 5]}
        - any: [{score: readiness, lt: 1.5}, {persona: deal_seeker}, {answer: goal, answered: true}]
        - not: {persona: [superfan, lurker]}
"""
    when = parse_policy(text).sections[0].when
    assert when == AllOf(
        (
            AnswerEquals("stage", "idea"),
            AnswerIn("confidence", (4, 5)),
            AnyOf(
                (
                    ScoreCompare("readiness", "lt", 1.5),
                    PersonaIn(("deal_seeker",)),
                    AnswerAnswered("goal", True),
                )
            ),
            Not(PersonaIn(("superfan", "lurker"))),
        )
    )
    assert describe(when) == (
        "(stage = idea and confidence in [4, 5] and (readiness < 1.5 or persona in [deal_seeker] or goal answered)"
        " and not persona in [superfan, lurker])"
    )


def _inputs(**kwargs: Any) -> BuyerInputs:
    return BuyerInputs(today=date(2024, 5, 1), **kwargs)


@pytest.mark.parametrize(
    ("condition", "inputs", "expected"),
    [
        (AnswerIn("stage", ("idea", "building")), _inputs(answers={"stage": "idea"}), True),
        (AnswerIn("stage", ("idea", "building")), _inputs(answers={"stage": "selling"}), False),
        (AnswerIn("stage", ("idea",)), _inputs(), False),
        (AnswerIn("channels", ("email",)), _inputs(answers={"channels": ["social", "email"]}), True),
        (AnswerIn("channels", ("email",)), _inputs(answers={"channels": []}), False),
        (AnswerEquals("channels", "social"), _inputs(answers={"channels": ["social"]}), True),
        (AnswerEquals("confidence", 4), _inputs(answers={"confidence": 4}), True),
        (AnswerEquals("confidence", 4), _inputs(answers={"confidence": "4"}), False),  # no str/int conflation
        (AnswerEquals("flag", 1), _inputs(answers={"flag": True}), False),  # nor bool/int
        (AnswerIn("confidence", (4.0,)), _inputs(answers={"confidence": 4}), True),
        (AnswerAnswered("goal"), _inputs(answers={"goal": "ship"}), True),
        (AnswerAnswered("goal"), _inputs(answers={"goal": "  "}), False),
        (AnswerAnswered("goal"), _inputs(answers={"goal": []}), False),
        (AnswerAnswered("goal", False), _inputs(), True),
        (ScoreCompare("readiness", "gte", 2), _inputs(scores={"readiness": 2.0}), True),
        (ScoreCompare("readiness", "gt", 2), _inputs(scores={"readiness": 2.0}), False),
        (ScoreCompare("readiness", "lte", 0), _inputs(), True),  # an absent score is 0
        (ScoreCompare("readiness", "lt", 0), _inputs(), False),
        (PersonaIn(("superfan",)), _inputs(persona="superfan"), True),
        (PersonaIn(("superfan",)), _inputs(), False),
        (
            AllOf((PersonaIn(("a",)), ScoreCompare("r", "gte", 1))),
            _inputs(persona="a", scores={"r": 1}),
            True,
        ),
        (AllOf((PersonaIn(("a",)), ScoreCompare("r", "gte", 1))), _inputs(persona="a"), False),
        (AnyOf((PersonaIn(("a",)), ScoreCompare("r", "gte", 1))), _inputs(scores={"r": 1}), True),
        (Not(PersonaIn(("a",))), _inputs(), True),
    ],
)
def test_evaluate(condition: Condition, inputs: BuyerInputs, expected: bool) -> None:
    assert evaluate(condition, inputs) is expected


def test_recursive_and_exploding_aliases_are_bounded() -> None:
    recursive = "id: p\ntitle: T\nsections:\n  - {key: a, title: A, intro: hi, when: &c {not: *c}}\n"
    assert problems(recursive) == [
        "policy.yaml:4: sections[0].when" + ".not" * 16 + ": conditions nested too deeply (at most 16 levels)"
    ]
    levels = ["c0: &c0 {score: r, gte: 1}"]
    levels += [f"c{n}: &c{n} {{all: [*c{n - 1}, *c{n - 1}]}}" for n in range(1, 15)]
    # The anchors are defined under an unknown key, so that key is reported too.
    bomb = "id: p\ntitle: T\nx:\n" + "".join(f"  {line}\n" for line in levels)
    bomb += "sections:\n  - {key: a, title: A, intro: hi, when: *c14}\n"
    found = problems(bomb)
    assert found[0].startswith("policy.yaml:3: x: unknown key")
    assert found[1].endswith("too many conditions (at most 1000 in a policy)")
    assert len(found) == 2
