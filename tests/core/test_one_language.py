"""One condition language: every config kind evaluates the same condition the same way as
:func:`offerloop.core.conditions.evaluate` does on the same facts (issue 11).

Each kind gets random conditions over the roots it reads and random subjects, goes through its own
code path (a real parsed config, evaluated where the product evaluates it) and must agree with core.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from offerloop.assembly.composer import compose
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import parse_policy
from offerloop.assembly.selector import CorpusIndex
from offerloop.core import conditions

# -- shared pieces -------------------------------------------------------------------------------------

NUMBERS = st.sampled_from([-1, 0, 1, 2, 2.5, 3])
PATTERNS = st.sampled_from(["i.*", "s.*g", ".*", "[0-9]+"])
DURATIONS = st.sampled_from(["1d", "7d", "12h"])


def general(
    paths: st.SearchStrategy[str], ops: list[str], operands: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """``{path: p, op: operand}`` leaves: the general form."""
    return st.builds(
        lambda path, op, operand: {"path": path, op: operand}, paths, st.sampled_from(ops), operands
    )


def combined(leaves: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Trees of ``leaves`` under all / any / not, a few levels deep."""
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda item: {"not": item}, inner),
        ),
        max_leaves=6,
    )


# -- assembly: composition policies (answers, scores, persona) ------------------------------------------

QUESTIONS = ("stage", "goal", "channels")
DIMENSIONS = ("readiness", "pricing")
PERSONAS = ("a", "b", "superfan")
TODAY = date(2024, 5, 1)
# 18 hours before the buyer's today starts (within 1d, not within 12h), 3 days, and months before it.
EDGE, RECENT, OLD = "2024-04-30T06:00:00+00:00", "2024-04-28T09:00:00+00:00", "2024-01-02T09:00:00+00:00"
CHOICES = st.sampled_from(["idea", "building", "selling", "", 0, 1, 2.5, True, EDGE, RECENT])
# What buyers answer, unanswered forms ("", blanks, [], None) included.
ANSWERS = st.sampled_from(
    [
        "idea",
        "selling",
        0,
        1,
        2.5,
        True,
        EDGE,
        RECENT,
        OLD,
        "123",
        None,
        "",
        "  ",
        [],
        ["idea", "email"],
        ["selling"],
    ]
)
SCORES = st.sampled_from([-1, 0, 1, 2, 2.5, 3, 3.0, "high", True, None])
question = st.sampled_from(QUESTIONS)
dimension = st.sampled_from(DIMENSIONS)
persona = st.sampled_from(PERSONAS)
answer_paths = st.sampled_from([f"answers.{q}" for q in QUESTIONS])
score_paths = st.sampled_from([f"scores.{d}" for d in DIMENSIONS])

policy_leaves = st.one_of(
    # the short forms of the old policy language ...
    st.builds(lambda q, v: {"answer": q, "in": v}, question, st.lists(CHOICES, min_size=1, max_size=3)),
    st.builds(lambda q, v: {"answer": q, "equals": v}, question, CHOICES),
    st.builds(lambda q, b: {"answer": q, "answered": b}, question, st.booleans()),
    st.builds(
        lambda d, op, n: {"score": d, op: n}, dimension, st.sampled_from(["gt", "gte", "lt", "lte"]), NUMBERS
    ),
    st.builds(lambda names: {"persona": names}, st.lists(persona, min_size=1, max_size=2)),
    # ... and every operator of the general form
    general(answer_paths, ["eq", "ne", "contains"], CHOICES),
    general(answer_paths, ["not_in"], st.lists(CHOICES, min_size=1, max_size=2)),
    general(answer_paths, ["matches"], PATTERNS),
    general(answer_paths, ["within", "older_than"], DURATIONS),
    general(answer_paths, ["exists"], st.booleans()),
    general(score_paths, ["eq", "ne", "gte"], NUMBERS),
    general(score_paths, ["between"], st.lists(NUMBERS, min_size=2, max_size=2).map(sorted)),
    general(score_paths, ["exists"], st.booleans()),
    st.builds(lambda p: {"persona": p}, persona),
    general(st.just("persona"), ["exists"], st.booleans()),
    general(st.just("persona"), ["not_in"], st.lists(persona, min_size=1, max_size=2)),
)

buyers = st.builds(
    lambda answers, scores, name: BuyerInputs(today=TODAY, answers=answers, scores=scores, persona=name),
    st.dictionaries(question, ANSWERS, max_size=4),
    st.dictionaries(dimension, SCORES, max_size=2),
    st.sampled_from([None, "", *PERSONAS]),
)


def _number_or_zero(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def documented_facts(buyer: BuyerInputs) -> dict[str, Any]:
    """The policy facts as policy.py documents them, built here independently of it."""
    answered = {
        k: v
        for k, v in buyer.answers.items()
        if v is not None and v != [] and not (isinstance(v, str) and not v.strip())
    }
    scores = {d: _number_or_zero(buyer.scores.get(d)) for d in DIMENSIONS}
    facts: dict[str, Any] = {"answers": answered, "scores": scores}
    if buyer.persona:
        facts["persona"] = buyer.persona
    return facts


INDEX = CorpusIndex([])


@settings(max_examples=500)
@given(combined(policy_leaves), st.lists(buyers, min_size=2, max_size=6))
def test_assembly_policies_evaluate_as_core_does(data: dict[str, Any], people: list[BuyerInputs]) -> None:
    text = yaml.safe_dump(
        {
            "id": "p",
            "title": "T",
            "sections": [
                {"key": "always", "title": "Always", "intro": "hi"},
                {"key": "tested", "title": "Tested", "intro": "hi", "when": data},
            ],
        }
    )
    policy = parse_policy(text)  # the YAML a creator writes, through the policy's own parser
    condition = conditions.parse(data)
    assert policy.sections[1].when == condition
    now = datetime(2024, 5, 1, tzinfo=UTC)  # the buyer's today: the composer's clock
    for buyer in people:
        composition = compose(policy, INDEX, buyer)
        status = next(e.status for e in composition.provenance if e.location == "sections[1]")
        expected = conditions.evaluate(condition, documented_facts(buyer), now=now)
        assert status == ("rendered" if expected else "skipped"), (data, buyer)
