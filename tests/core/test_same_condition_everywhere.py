"""Every config kind evaluates the same condition the same way: signal rules, feature filters, decision
eligibility and persona signals each go through their own loader and their own code path, and must agree
with ``offerloop.core.conditions.evaluate`` on random conditions and random values (missing ones included).
Assembly policies have their own case in ``test_one_language.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from offerloop.core.conditions import MISSING, evaluate, parse_where
from offerloop.decisions.rules import BuyerView, ineligible_reason
from offerloop.events.signals import load_signal_config, score_event
from offerloop.features.spec import load_feature_spec
from offerloop.features.state import FeatureEvent, apply_event, new_state, read_features
from offerloop.personas.inference import match_degree
from offerloop.personas.templates import Signal

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.5, -1.5]),
    st.sampled_from(["a", "b", "ab", "2026-12-01"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.just(MISSING))
ordered_operands = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.5, "a", "b"]))
operators = st.one_of(
    st.tuples(st.sampled_from(["eq", "ne", "contains"]), scalars),
    st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), ordered_operands),
    st.tuples(st.sampled_from(["in", "not_in"]), st.lists(scalars, min_size=1, max_size=3)),
    st.tuples(st.just("exists"), st.booleans()),
    st.tuples(st.just("between"), st.tuples(st.integers(-3, 0), st.integers(0, 3)).map(list)),
    st.tuples(st.just("matches"), st.sampled_from(["a.*", "b", "[0-9-]+"])),
)


def _properties(value: Any) -> dict[str, Any]:
    return {} if value is MISSING else {"x": value}


def _expected(op: str, operand: Any, value: Any) -> bool:
    return evaluate(parse_where({"x": {op: operand}}, root="properties"), {"properties": _properties(value)})


@given(operators, values)
def test_signal_rules_agree(op_operand: tuple[str, Any], value: Any) -> None:
    op, operand = op_operand
    config = load_signal_config(
        {
            "rules": [
                {
                    "event": "Thing",
                    "where": {"x": {op: operand}},
                    "weight": 1,
                    "confidence": 1,
                    "label": "hit",
                }
            ]
        }
    )
    hit = score_event(config, event_type="track", name="Thing", properties=_properties(value)).rule == "hit"
    assert hit is _expected(op, operand, value)


@given(operators, values)
def test_feature_filters_agree(op_operand: tuple[str, Any], value: Any) -> None:
    op, operand = op_operand
    spec = load_feature_spec(
        {
            "features": [
                {"name": "n", "kind": "count", "match": {"event": "Thing", "where": {"x": {op: operand}}}}
            ]
        }
    )
    event = FeatureEvent(
        type="track", name="Thing", timestamp=NOW, properties=_properties(value), context={},
        weight=1.0, confidence=1.0, suppressed=False, high_signal=False,
    )  # fmt: skip
    counted = read_features(apply_event(new_state(), event, spec), spec, now=NOW)["n"] == 1
    assert counted is _expected(op, operand, value)


@given(operators, values)
def test_decision_requirements_agree(op_operand: tuple[str, Any], value: Any) -> None:
    op, operand = op_operand
    buyer = BuyerView(features=_properties(value))
    eligible = (
        ineligible_reason({"key": "k", "requires": {"x": {op: operand}}}, buyer, placement="home") is None
    )
    assert eligible is _expected(op, operand, value)
    when = {"key": "k", "when": {"path": "features.x", op: operand}}
    assert (ineligible_reason(when, buyer, placement="home") is None) is _expected(op, operand, value)


persona_operators = st.one_of(
    st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(-3, 3)),
    st.tuples(st.just("between"), st.tuples(st.integers(-3, 0), st.integers(0, 3)).map(list)),
    st.tuples(st.just("eq"), st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b"]))),
    st.tuples(
        st.just("in"),
        st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"])), min_size=1, max_size=3),
    ),
    st.tuples(st.just("is"), st.booleans()),
)


@given(persona_operators, values)
@example(("in", ["a"]), ["b", "a"])
@example(("eq", "a"), ["a"])
def test_persona_signals_agree_when_their_ramp_is_sharp(op_operand: tuple[str, Any], value: Any) -> None:
    """A persona signal is evidence: it leans towards the persona (degree above 0.5) exactly when the
    condition holds; a value it cannot judge (missing, null, another type) is neutral, 0.5."""
    op, operand = op_operand
    signal = Signal.model_validate(
        {"feature": "x", op: operand, **({"softness": 1e-9} if op not in ("eq", "in", "is") else {})}
    )
    language_op = "eq" if op == "is" else op
    holds = _expected(language_op, operand, value)
    degree = match_degree(signal, None if value is MISSING else value)
    assert (degree > 0.5) is holds
    if value is MISSING or value is None:
        assert degree == 0.5
