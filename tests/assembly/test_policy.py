"""Composition policy parsing: the typed result, the content version, every problem with its line, conditions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from offerloop.assembly.exceptions import InvalidPolicy
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import (
    AtomFallback,
    LevelRange,
    Policy,
    PolicySection,
    Review,
    Slot,
    TextFallback,
    facts,
    holds,
    parse_policy,
    parse_when,
)
from offerloop.core import conditions
from offerloop.core.conditions import MISSING, All, Any_, Leaf, Not, describe
from offerloop.core.errors import OfferloopError
from offerloop.declarative import ConfigError

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
    assert isinstance(error, ConfigError) and isinstance(error, OfferloopError)
    assert error.status_code == 422
    assert error.code == "invalid_policy"
    assert error.details == [
        {"path": p.file, "line": p.line, "location": p.path or None, "message": p.message}
        for p in error.found
    ]
    assert error.problems == [str(p) for p in error.found]
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
                when=Leaf("answers.stage", (("in", ("idea", "building")),)),
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
                        when=Leaf("scores.readiness", (("gte", 2),)),
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
    # A short form and the general form it stands for are one condition, one version.
    general = SPEC_EXAMPLE.replace("{score: readiness, gte: 2}", "{path: scores.readiness, gte: 2}")
    assert parse_policy(general).version == policy.version
    assert policy.with_version() == policy and policy.content_version() == policy.version


def test_review_forms() -> None:
    base = "id: p\ntitle: T\nsections: [{key: s, title: S, intro: hi}]\n"
    assert parse_policy(base).review == Review("never")
    assert parse_policy(base + "review: null\n").review == Review("never")
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
    when: {answer: stage, in: []}
    slots:
      - key: one
        choose: 0
        kinds: [video, lesson]
        tags_any: [Pricing]
        level: {min: 3, max: 1}
        persona: maybe
        order: random
        when: {score: readiness, gte: [1]}
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
        "policy.yaml:3: colour: unknown key 'colour' (allowed: id, deliverable, title, subtitle, review, sections)",
        "policy.yaml:4: review: must be never, always, guard_fired or {above_offer_value: <amount>}, got 'sometimes'",
        "policy.yaml:8: sections[0].when.in: must be a list of 1 to 1000 values, got []",
        "policy.yaml:10: sections[0].slots[0]: missing required key 'fallback' ({title, markdown} or {atom: atom-id})",
        "policy.yaml:11: sections[0].slots[0].choose: must be at least 1, got 0",
        "policy.yaml:12: sections[0].slots[0].kinds[0]: must be one of lesson, template, checklist, snippet, "
        "exercise, got 'video'",
        "policy.yaml:13: sections[0].slots[0].tags_any[0]: must be a tag ([a-z0-9][a-z0-9_-]*), got 'Pricing'",
        "policy.yaml:14: sections[0].slots[0].level: empty level range: min 3 > max 1",
        "policy.yaml:15: sections[0].slots[0].persona: must be one of prefer, require, ignore, got 'maybe'",
        "policy.yaml:16: sections[0].slots[0].order: must be one of relevance, level, minutes, title, got 'random'",
        "policy.yaml:17: sections[0].slots[0].when.gte: must be a finite number or text, got [1]",
        "policy.yaml:19: sections[0].slots[1].fallback: give either atom or title/markdown, not both",
        "policy.yaml:22: sections[1].title: duplicate key 'title' (first at line 21)",
        "policy.yaml:24: sections[1].slots[0]: missing required key 'key'",
    ]


def test_misspelled_keys_and_choices_get_a_hint() -> None:
    text = """\
id: p
titel: T
sections:
  - key: a
    title: A
    slots:
      - key: s
        persona: prefr
        fallback: {markdown: x, atm: y}
"""
    assert problems(text) == [
        "policy.yaml:1: missing required key 'title'",
        "policy.yaml:2: titel: unknown key 'titel' (did you mean 'title'?)",
        "policy.yaml:8: sections[0].slots[0].persona: must be one of prefer, require, ignore, got 'prefr' "
        "(did you mean 'prefer'?)",
        "policy.yaml:9: sections[0].slots[0].fallback.atm: unknown key 'atm' (did you mean 'atom'?)",
    ]


def test_fallback_forms() -> None:
    base = "id: p\ntitle: T\nsections:\n  - {key: a, title: A, slots: [{key: s, fallback: %s}]}\n"
    slot = parse_policy(base % "{atom: an-atom}").sections[0].slots[0]
    assert slot.fallback == AtomFallback("an-atom")
    slot = parse_policy(base % '{markdown: "  x\\n"}').sections[0].slots[0]
    assert slot.fallback == TextFallback(markdown="  x\n")  # kept as written
    assert problems(base % "{}") == [
        "policy.yaml:4: sections[0].slots[0].fallback: missing required key 'markdown' (or give atom)"
    ]
    assert problems(base % "{title: T}") == [
        "policy.yaml:4: sections[0].slots[0].fallback: missing required key 'markdown' (or give atom)"
    ]
    assert problems(base % "{atom: x, title: null}") == [
        "policy.yaml:4: sections[0].slots[0].fallback: give either atom or title/markdown, not both"
    ]
    assert problems(base % "{markdown: '   '}") == [
        "policy.yaml:4: sections[0].slots[0].fallback.markdown: must be a non-empty string, got '   '"
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


OPERATORS = (
    "one of eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than"
)


@pytest.mark.parametrize(
    ("when", "message"),
    [  # the one condition language's messages, each at its path inside the condition
        ("{answer: stage}", f"sections[0].when: no operator given ({OPERATORS})"),
        ("{answer: stage, is: a}", f"sections[0].when.is: unknown operator ({OPERATORS})"),
        ("{answer: stage, in: []}", "sections[0].when.in: must be a list of 1 to 1000 values, got []"),
        ("{answer: stage, answered: maybe}", "sections[0].when.answered: must be true or false, got 'maybe'"),
        ("{score: readiness}", f"sections[0].when: no operator given ({OPERATORS})"),
        ("{score: readiness, above: 2}", f"sections[0].when.above: unknown operator ({OPERATORS})"),
        ("{persona: []}", "sections[0].when.persona.in: must be a list of 1 to 1000 values, got []"),
        (
            "{all: [{score: r, gte: 1}], any: [{score: r, gte: 1}]}",
            "sections[0].when: 'all' must be alone in its mapping, got ['all', 'any']",
        ),
        (
            "{not: {colour: red}}",
            "sections[0].when.not.colour: unknown root 'colour': a path starts with one of persona, answers, scores",
        ),
        ("[a, b]", "sections[0].when: must be a non-empty mapping, got ['a', 'b']"),
        (
            "{any: [{answer: stage, in: [a]}, {answer: '', equals: x}]}",
            "sections[0].when.any[1].answer: must be a name, got ''",
        ),
        (
            "{path: scores.readiness, between: [3, 1]}",
            "sections[0].when.between: lower bound 3 is above upper bound 1",
        ),
        # Policies read what the buyer's inputs carry: answers, scores and persona.
        (
            "{path: features.orders, gte: 1}",
            "sections[0].when.path: 'features' cannot be read here (this config reads persona, answers, scores)",
        ),
        (
            "{trait: plan, eq: pro}",
            "sections[0].when.trait: 'trait' cannot be used here (this config reads persona, answers, scores)",
        ),
    ],
)
def test_condition_problems(when: str, message: str) -> None:
    text = f"id: p\ntitle: T\nsections:\n  - key: a\n    title: A\n    intro: hi\n    when: {when}\n"
    assert problems(text) == [f"policy.yaml:7: {message}"]


def test_yaml_syntax_errors_and_non_mappings() -> None:
    assert problems("id: p\ntitle: [unclosed\n") == [
        "policy.yaml:3: invalid YAML (column 1): expected ',' or ']', but got '<stream end>'"
    ]
    assert problems("") == ["policy.yaml:1: the policy is empty"]
    assert problems("- a\n- b\n") == ["policy.yaml:1: must be a mapping, got ['a', 'b']"]
    assert problems("id: p\ntitle: T\n") == ["policy.yaml:1: missing required key 'sections'"]
    assert problems("id: p\ntitle: T\nsections: []\n") == [
        "policy.yaml:3: sections: must have at least 1 item, got 0"
    ]
    assert problems("id: p\ntitle: T\nsections: [{key: a, title: A}]\n", path="<string>") == [
        "<string>:3: sections[0].slots: a section needs at least one slot or an intro"
    ]


def test_conditions_parse_into_the_one_condition_language() -> None:
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
        - {path: scores.readiness, between: [1, 3]}
        - not: {answer: goal, answered: false}
"""
    policy = parse_policy(text)
    when = policy.sections[0].when
    assert when == All(
        (
            Leaf("answers.stage", (("in", ("idea",)),)),
            Leaf("answers.confidence", (("in", (4, 5)),)),
            Any_(
                (
                    Leaf("scores.readiness", (("lt", 1.5),)),
                    Leaf("persona", (("eq", "deal_seeker"),)),
                    Leaf("answers.goal", (("exists", True),)),
                )
            ),
            Not(Leaf("persona", (("in", ("superfan", "lurker")),))),
            Leaf("scores.readiness", (("between", (1, 3)),)),
            Not(Leaf("answers.goal", (("exists", False),))),
        )
    )
    assert when is not None and describe(when) == (
        "(answers.stage in [idea] and answers.confidence in [4, 5] and (scores.readiness < 1.5 or "
        "persona == deal_seeker or answers.goal exists) and not persona in [superfan, lurker] and "
        "scores.readiness between [1, 3] and not answers.goal is missing)"
    )
    # The canonical form is the core's: it parses back to the same condition.
    assert policy.sections[0].to_dict()["when"] == conditions.to_data(when)
    assert parse_when(conditions.to_data(when)) == when


def _inputs(**kwargs: Any) -> BuyerInputs:
    return BuyerInputs(today=date(2024, 5, 1), **kwargs)


def test_facts_are_what_conditions_read() -> None:
    buyer = facts(
        _inputs(
            answers={"goal": "ship", "blank": "  ", "none": None, "empty": [], "channels": ["email"], "n": 0},
            scores={"readiness": 2, "odd": "high", "flag": True},
            persona=None,
        )
    )
    # Unanswered questions ("", blanks, [] and None) are missing; 0 is an answer.
    assert buyer.values["answers"] == {"goal": "ship", "channels": ["email"], "n": 0}
    # Every dimension reads a number: absent or not a number reads 0.
    scores = buyer.values["scores"]
    assert (scores["readiness"], scores["odd"], scores["flag"], scores["absent"]) == (2.0, 0.0, 0.0, 0.0)
    assert conditions.resolve(buyer.values, "scores.never.seen") == 0.0
    # A buyer without a persona has none: the persona is missing, not null.
    assert "persona" not in buyer.values and conditions.resolve(buyer.values, "persona") is MISSING
    assert facts(_inputs(persona="superfan")).values["persona"] == "superfan"
    assert buyer.now.isoformat() == "2024-05-01T00:00:00+00:00"  # the buyer's today: reproducible


@pytest.mark.parametrize(
    ("when", "inputs", "expected"),
    [
        ({"answer": "stage", "in": ["idea", "building"]}, _inputs(answers={"stage": "idea"}), True),
        ({"answer": "stage", "in": ["idea", "building"]}, _inputs(answers={"stage": "selling"}), False),
        ({"answer": "stage", "in": ["idea"]}, _inputs(), False),
        ({"answer": "channels", "in": ["email"]}, _inputs(answers={"channels": ["social", "email"]}), True),
        ({"answer": "channels", "in": ["email"]}, _inputs(answers={"channels": []}), False),
        ({"answer": "channels", "equals": "social"}, _inputs(answers={"channels": ["social"]}), True),
        ({"answer": "confidence", "equals": 4}, _inputs(answers={"confidence": 4}), True),
        ({"answer": "confidence", "equals": 4}, _inputs(answers={"confidence": "4"}), False),  # no str/int
        ({"answer": "flag", "equals": 1}, _inputs(answers={"flag": True}), False),  # nor bool/int
        ({"answer": "confidence", "in": [4.0]}, _inputs(answers={"confidence": 4}), True),
        ({"answer": "goal", "answered": True}, _inputs(answers={"goal": "ship"}), True),
        ({"answer": "goal", "answered": True}, _inputs(answers={"goal": "  "}), False),
        ({"answer": "goal", "answered": True}, _inputs(answers={"goal": []}), False),
        ({"answer": "goal", "answered": False}, _inputs(), True),
        ({"not": {"answer": "goal", "answered": True}}, _inputs(answers={"goal": ""}), True),
        ({"not": {"answer": "goal", "answered": True}}, _inputs(answers={"goal": "ship"}), False),
        ({"path": "answers.stage", "not_in": ["idea"]}, _inputs(), True),  # missing passes not_in
        ({"path": "answers.goal", "matches": "sh.*"}, _inputs(answers={"goal": "ship"}), True),
        ({"score": "readiness", "gte": 2}, _inputs(scores={"readiness": 2.0}), True),
        ({"score": "readiness", "gt": 2}, _inputs(scores={"readiness": 2.0}), False),
        ({"score": "readiness", "lte": 0}, _inputs(), True),  # an absent score is 0
        ({"score": "readiness", "lt": 0}, _inputs(), False),
        ({"score": "readiness", "eq": 0}, _inputs(scores={"readiness": "high"}), True),  # not a number: 0
        ({"path": "scores.readiness", "exists": True}, _inputs(), True),  # every dimension reads a number
        ({"path": "scores.readiness", "between": [1, 3]}, _inputs(scores={"readiness": 3}), True),
        ({"path": "scores.readiness", "between": [1, 3]}, _inputs(scores={"readiness": 3.5}), False),
        ({"path": "scores.readiness", "between": [1, 3]}, _inputs(), False),
        ({"persona": ["superfan"]}, _inputs(persona="superfan"), True),
        ({"persona": ["superfan"]}, _inputs(), False),
        ({"path": "persona", "exists": False}, _inputs(), True),  # no persona: missing
        ({"path": "persona", "ne": "superfan"}, _inputs(), True),
        (
            {"all": [{"persona": ["a"]}, {"score": "r", "gte": 1}]},
            _inputs(persona="a", scores={"r": 1}),
            True,
        ),
        ({"all": [{"persona": ["a"]}, {"score": "r", "gte": 1}]}, _inputs(persona="a"), False),
        ({"any": [{"persona": ["a"]}, {"score": "r", "gte": 1}]}, _inputs(scores={"r": 1}), True),
        ({"not": {"persona": ["a"]}}, _inputs(), True),
    ],
)
def test_holds(when: dict[str, Any], inputs: BuyerInputs, expected: bool) -> None:
    condition = parse_when(when)
    assert holds(condition, facts(inputs)) is expected
    assert conditions.evaluate(condition, facts(inputs).values) is expected


def test_policy_limits_count_every_condition_of_the_policy() -> None:
    many = "{any: [" + ", ".join(f"{{score: r{i}, gte: 1}}" for i in range(400)) + "]}"
    sections = "".join(f"  - {{key: s{n}, title: S, intro: hi, when: {many}}}\n" for n in range(3))
    found = problems("id: p\ntitle: T\nsections:\n" + sections)
    assert found == ["policy.yaml:6: sections[2].when: too many conditions (at most 1000 in a policy)"]


def test_recursive_and_exploding_aliases_are_bounded() -> None:
    recursive = "id: p\ntitle: T\nsections:\n  - {key: a, title: A, intro: hi, when: &c {not: *c}}\n"
    assert problems(recursive) == [
        "policy.yaml:4: sections[0].when" + ".not" * 17 + ": nested deeper than 16 levels"
    ]

    def bomb(depth: int) -> str:
        levels = ["c0: &c0 {score: r, gte: 1}"]
        levels += [f"c{n}: &c{n} {{all: [*c{n - 1}, *c{n - 1}]}}" for n in range(1, depth + 1)]
        # The anchors are defined under an unknown key, so that key is reported too.
        text = "id: p\ntitle: T\nx:\n" + "".join(f"  {line}\n" for line in levels)
        return text + f"sections:\n  - {{key: a, title: A, intro: hi, when: *c{depth}}}\n"

    # 2**11 - 1 condition nodes: the condition language's own bound.
    found = problems(bomb(10))
    assert found[0].startswith("policy.yaml:3: x: unknown key")
    assert found[1].endswith(": more than 1000 conditions")
    assert len(found) == 2
    # Billions of nodes: refused by the reader before anything walks them.
    assert problems(bomb(30)) == [
        "policy.yaml:1: aliases (*name) expand the document to more than 10 times its size"
    ]
