"""Persona templates: loading from every source, defaults, and validation errors that name the field."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from offerloop.core.errors import ValidationFailed
from offerloop.declarative import show
from offerloop.personas.templates import (
    UNASSIGNED,
    PersonaSet,
    Signal,
    TemplateError,
    default_softness,
    load_templates,
    load_templates_file,
)

TWO = """
threshold: 0.6
prior_strength: 1.0
personas:
  - name: collector
    description: Buys drops.
    prior: 0.2
    signals:
      - {feature: drop_orders, gte: 2, weight: 2.0}
      - {feature: weekend_share, between: [0.5, 1], weight: 1.5, softness: 0.1}
  - name: browser
    signals:
      - {feature: orders, lt: 1}
      - {feature: first_touch_channel, in: [search, social], weight: 1.0}
      - {feature: quiz_completed, is: true, weight: 0.5}
      - {feature: plan, eq: pro, weight: 0.5}
"""


def _personas(*signals: dict[str, Any], count: int = 2) -> dict[str, Any]:
    first = {"name": "p0", "signals": list(signals) or [{"feature": "x", "gte": 1}]}
    rest = [{"name": f"p{i}", "signals": [{"feature": "x", "lte": 1}]} for i in range(1, count)]
    return {"personas": [first, *rest]}


def _error(source: Any) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        load_templates(source)
    return caught.value


def test_loads_yaml_text_and_reads_every_condition() -> None:
    ps = load_templates(TWO)
    assert ps.threshold == 0.6
    assert ps.names == ("collector", "browser")
    collector, browser = ps.personas
    assert collector.description == "Buys drops."
    assert [s.operator for s in collector.signals] == ["gte", "between"]
    assert collector.signals[0].operand == 2.0
    assert collector.signals[1].operand == (0.5, 1.0)
    assert [s.operator for s in browser.signals] == ["lt", "in", "is", "eq"]
    assert browser.signals[0].weight == 1.0  # default weight
    assert browser.signals[1].operand == ["search", "social"]
    assert browser.signals[2].operand is True
    assert [s.describe() for s in browser.signals] == [
        "orders < 1",
        "first_touch_channel in [search, social]",  # the condition language's words (core.conditions.describe)
        "quiz_completed == true",
        "plan == pro",
    ]
    assert collector.signals[1].describe() == "weekend_share between [0.5, 1]"


def test_every_source_gives_the_same_set(tmp_path: Path) -> None:
    path = tmp_path / "personas.yaml"
    path.write_text(TWO, encoding="utf-8")
    from_text = load_templates(TWO)
    assert load_templates_file(path) == from_text
    assert load_templates_file(str(path)) == from_text
    assert load_templates(from_text.to_mapping()) == from_text
    assert load_templates(from_text.to_yaml()) == from_text


def test_priors_default_to_one_over_n_and_are_normalised() -> None:
    ps = load_templates(TWO)
    # collector 0.2, browser 1/2 (no prior: 1/n); normalised by 0.7.
    assert ps.priors() == pytest.approx({"collector": 0.2 / 0.7, "browser": 0.5 / 0.7}, abs=1e-15)
    assert math.fsum(ps.priors().values()) == pytest.approx(1.0, abs=1e-15)
    assert ps.log_priors()["collector"] == pytest.approx(math.log(0.2 / 0.7), abs=1e-15)


def test_prior_strength_raises_priors_to_a_power() -> None:
    data = load_templates(TWO).to_mapping()
    data["prior_strength"] = 2.0
    ps = load_templates(data)
    a, b = (0.2 / 0.7) ** 2, (0.5 / 0.7) ** 2
    assert ps.priors() == pytest.approx({"collector": a / (a + b), "browser": b / (a + b)}, abs=1e-15)
    data["prior_strength"] = 0.0
    assert load_templates(data).priors() == pytest.approx({"collector": 0.5, "browser": 0.5}, abs=1e-15)


def test_default_softness_is_ten_percent_with_a_floor() -> None:
    assert default_softness(60) == 6.0
    assert default_softness(-20) == 2.0
    assert default_softness(1) == 0.5
    assert default_softness(0) == 0.5
    signal = Signal.model_validate({"feature": "x", "gte": 60})
    assert signal.softness_for(60) == 6.0
    assert Signal.model_validate({"feature": "x", "gte": 60, "softness": 2}).softness_for(60) == 2.0


def test_error_names_the_signal_field() -> None:
    err = _error(_personas({"feature": "x", "gte": 1, "weight": 0}))
    assert err.problems == ["personas[0].signals[0].weight: must be more than 0, got 0"]
    assert err.message == "personas[0].signals[0].weight: must be more than 0, got 0"
    assert err.details == [
        {
            "path": None,
            "line": None,
            "location": "personas[0].signals[0].weight",
            "message": "must be more than 0, got 0",
        }
    ]
    assert isinstance(err, ValidationFailed)
    assert isinstance(err, ValueError)
    assert err.status_code == 422
    assert err.code == "invalid_persona_templates"


ONE_OF = "needs exactly one condition out of gte, lte, gt, lt, eq, in, between, is"


@pytest.mark.parametrize(
    ("signal", "problem"),
    [
        ({"feature": "x", "gte": 1, "weight": -1}, "weight: must be more than 0, got -1"),
        ({"feature": "x", "gte": 1, "weight": 101}, "weight: must be at most 100, got 101"),
        ({"feature": "x", "gte": 1, "weight": "2"}, "weight: must be a number, got '2'"),
        ({"feature": "x", "gtee": 1}, "gtee: unknown key 'gtee' (did you mean 'gte'?)"),
        ({"feature": "x"}, f": {ONE_OF} (got none)"),
        ({"feature": "x", "gte": 1, "lte": 3}, f": {ONE_OF} (got gte, lte)"),
        ({"feature": "x", "gte": True}, "gte: must be a number, got True"),
        ({"feature": "x", "gte": "3"}, "gte: must be a number, got '3'"),
        ({"feature": "x", "between": [3, 1]}, "between: lower bound 3 is above upper bound 1"),
        (
            {"feature": "x", "eq": "a", "softness": 2},
            "softness: applies only to numeric conditions, not to `eq`",
        ),
        (
            {"feature": "x", "is": True, "softness": 2},
            "softness: applies only to numeric conditions, not to `is`",
        ),
        ({"feature": "x", "gte": 1, "softness": 0}, "softness: must be more than 0, got 0"),
        ({"feature": "x", "in": []}, "in: must have at least 1 item, got 0"),
        ({"feature": "x", "in": [None]}, "in[0]: must be a string, a number or a bool, got None"),
        ({"feature": "x", "eq": [1]}, "eq: must be a string, a number or a bool, got [1]"),
        ({"feature": "x", "is": "maybe"}, "is: must be true or false, got 'maybe'"),
        (
            {"feature": "", "gte": 1},
            "feature: must be a feature name (letters, digits, '_' and '.', not starting with a digit), got ''",
        ),
    ],
)
def test_signal_errors(signal: dict[str, Any], problem: str) -> None:
    err = _error(_personas(signal))
    at = "personas[0].signals[0]" + ("" if problem.startswith(":") else ".")
    assert err.problems == [at + problem]


def test_second_signal_of_third_persona_is_named() -> None:
    data = _personas(count=3)
    data["personas"][2]["signals"].append({"feature": "y", "lte": 2, "weight": "heavy"})
    assert _error(data).problems == ["personas[2].signals[1].weight: must be a number, got 'heavy'"]


def test_every_problem_is_reported() -> None:
    data = _personas({"feature": "x", "gte": 1, "weight": 0}, {"feature": "y"}, count=3)
    data["personas"][1]["name"] = UNASSIGNED
    data["personas"][2]["prior"] = 0
    assert _error(data).problems == [
        "personas[0].signals[0].weight: must be more than 0, got 0",
        f"personas[0].signals[1]: {ONE_OF} (got none)",
        "personas[1].name: 'unassigned' is reserved for buyers no persona fits",
        "personas[2].prior: must be more than 0, got 0",
    ]


def test_persona_level_errors() -> None:
    dup = _personas(count=3)
    dup["personas"][2]["name"] = "p0"
    assert _error(dup).problems == ["personas[2].name: duplicate persona name 'p0' (also personas[0])"]
    bad_name = _personas()
    bad_name["personas"][1]["name"] = "Deal Seeker"
    assert _error(bad_name).problems == [
        "personas[1].name: must be a persona name (lowercase letters, digits and '_', e.g. deal_seeker), "
        "got 'Deal Seeker'"
    ]
    no_signals = _personas()
    no_signals["personas"][1]["signals"] = []
    assert _error(no_signals).problems == ["personas[1].signals: must have at least 1 item, got 0"]
    unknown = _personas()
    unknown["personas"][0]["colour"] = "red"
    assert _error(unknown).problems == [
        "personas[0].colour: unknown key 'colour' (allowed: name, description, prior, signals)"
    ]


def test_two_to_twelve_personas() -> None:
    assert len(load_templates(_personas(count=2)).personas) == 2
    assert len(load_templates(_personas(count=12)).personas) == 12
    assert _error(_personas(count=1)).problems == ["personas: must have at least 2 items, got 1"]
    assert _error(_personas(count=13)).problems == ["personas: must have at most 12 items, got 13"]


@pytest.mark.parametrize(
    ("top", "problem"),
    [
        ({"threshold": 1.5}, "threshold: must be at most 1, got 1.5"),
        ({"threshold": "0.5"}, "threshold: must be a number, got '0.5'"),
        ({"prior_strength": -1}, "prior_strength: must be at least 0, got -1"),
        ({"personaz": []}, "personaz: unknown key 'personaz' (did you mean 'personas'?)"),
    ],
)
def test_top_level_errors(top: dict[str, Any], problem: str) -> None:
    assert _error({**_personas(), **top}).problems == [problem]


def test_unusable_sources(tmp_path: Path) -> None:
    assert _error("- just\n- a list\n").problems == [
        "<personas>:1: must be a mapping, got ['just', 'a list']"
    ]
    assert _error("personas: [\n").problems == [
        "<personas>:2: invalid YAML (column 1): expected the node content, but found '<stream end>'"
    ]
    assert _error("").problems == [
        "<personas>:1: persona templates are empty (expected a mapping with a `personas` list)"
    ]
    assert _error(None).problems == [
        "persona templates are empty (expected a mapping with a `personas` list)"
    ]
    # A string is content, never a path: it is not read, and says nothing about the file system.
    missing = str(tmp_path / "missing.yaml")
    assert _error(missing).problems == [f"<personas>:1: must be a mapping, got {show(missing)}"]
    assert _error(tmp_path / "missing.txt").problems == [
        f"cannot read persona templates {str(tmp_path / 'missing.txt')!r}: No such file or directory"
    ]


def test_a_file_names_every_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "personas.yaml"
    path.write_text(
        "threshold: 0.5\npersonas:\n  - name: fan\n    signals:\n      - {feature: orders, gte: 1, weight: -2}\n"
        "  - name: lurker\n    signals:\n      - feature: views\n        betwen: [1, 2]\n",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError) as caught:
        load_templates_file(path)
    assert caught.value.problems == [
        f"{path}:5: personas[0].signals[0].weight: must be more than 0, got -2",
        f"{path}:9: personas[1].signals[0].betwen: unknown key 'betwen' (did you mean 'between'?)",
    ]


def test_yaml_round_trip_keeps_every_field() -> None:
    ps = load_templates(TWO)
    text = ps.to_yaml()
    assert "- {feature: drop_orders, gte: 2.0, weight: 2.0}" in text  # one signal per line
    again = load_templates(text)
    assert again == ps
    assert isinstance(again, PersonaSet)
