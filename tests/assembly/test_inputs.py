"""Buyer inputs and {{ placeholder }} filling."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from offerloop.assembly.inputs import BuyerInputs, fill, format_number, make_filler, placeholder_values

TODAY = date(2024, 5, 1)


def inputs(**kwargs: Any) -> BuyerInputs:
    return BuyerInputs(today=TODAY, **kwargs)


ADA = inputs(
    name="Ada Lovelace",
    persona="deal_seeker",
    persona_confidence=0.8,
    answers={"stage": "building", "channels": ["email", "social"], "confidence": 4, "goal": ""},
    scores={"readiness": 2.0, "pricing_confidence": 3.5, "third": 1 / 3},
    level=2,
)


def test_placeholder_values() -> None:
    assert placeholder_values(ADA) == {
        "buyer": {"name": "Ada Lovelace", "first_name": "Ada", "level": "2"},
        "answers": {"stage": "building", "channels": "email, social", "confidence": "4", "goal": ""},
        "scores": {"readiness": "2", "pricing_confidence": "3.5", "third": "0.33"},
        "date": {"today": "2024-05-01", "year": "2024"},
        "persona": {"name": "deal_seeker", "confidence": "0.8"},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi {{ buyer.first_name }}!", "Hi Ada!"),
        ("Hi {{buyer.name}}", "Hi Ada Lovelace"),
        ("{{ buyer.first_name | there }}", "Ada"),
        ("You are {{ answers.stage }} via {{ answers.channels }}.", "You are building via email, social."),
        ("Confidence {{ answers.confidence }}/5", "Confidence 4/5"),
        (
            "Readiness {{ scores.readiness }}, pricing {{ scores.pricing_confidence }}",
            "Readiness 2, pricing 3.5",
        ),
        ("On {{ date.today }}", "On 2024-05-01"),
        ("As a {{ persona.name }}", "As a deal_seeker"),
        ("Goal: {{ answers.goal | none yet }}", "Goal: none yet"),  # empty answer -> default
        ("[{{ answers.missing }}]", "[]"),
        ("[{{ answers.missing | n/a }}]", "[n/a]"),
        ("[{{ nowhere.thing }}]", "[]"),
        ("[{{ nowhere.thing | x }}]", "[x]"),
        ("[{{ scores }}]", "[]"),
        ("[{{ }}]", "[]"),
        ("no placeholders at all", "no placeholders at all"),
        ("{ single braces } stay", "{ single braces } stay"),
        ("{{ buyer.first_name }} and {{ buyer.first_name | x }}", "Ada and Ada"),
    ],
)
def test_fill(text: str, expected: str) -> None:
    assert fill(text, ADA) == expected
    assert make_filler(ADA)(text) == expected


def test_first_name_and_defaults_for_an_anonymous_buyer() -> None:
    anonymous = inputs()
    assert (
        fill("Hi {{ buyer.first_name | there }}, {{ persona.name | friend }}", anonymous)
        == "Hi there, friend"
    )
    assert fill("{{ buyer.first_name }}|{{ buyer.level }}|{{ persona.confidence }}", anonymous) == "||"
    assert fill("{{ buyer.first_name }}", inputs(name="  Grace  Hopper ")) == "Grace"
    assert fill("{{ buyer.first_name }}", inputs(name="Grace Hopper", first_name="Amazing")) == "Amazing"


def test_fill_never_raises_on_odd_values() -> None:
    odd = inputs(answers={"a": {"nested": 1}, "b": None, "c": [1, None, "x"], "d": True, "e": float("nan")})
    assert fill(
        "{{ answers.a }}|{{ answers.b | -}}|{{ answers.c }}|{{ answers.d }}|{{ answers.e }}", odd
    ) == ("{'nested': 1}|-|1, x|yes|")


def test_format_number() -> None:
    assert [format_number(v) for v in (2.0, 2.5, -1.0, 0.1 + 0.2, 10, 1e6)] == [
        "2",
        "2.5",
        "-1",
        "0.3",
        "10",
        "1000000",
    ]


def test_inputs_are_copied_and_serialisable() -> None:
    answers: dict[str, Any] = {"stage": "idea"}
    frozen = inputs(answers=answers, goal_text="ship")
    answers["stage"] = "selling"
    assert frozen.answers == {"stage": "idea"}
    assert frozen.to_dict() == {
        "name": None,
        "first_name": None,
        "persona": None,
        "persona_confidence": None,
        "answers": {"stage": "idea"},
        "scores": {},
        "level": None,
        "goal_text": "ship",
        "today": "2024-05-01",
    }
    with pytest.raises(AttributeError):
        frozen.goal_text = "x"  # type: ignore[misc]
    assert inputs(answers={"stage": "idea"}) == inputs(answers={"stage": "idea"})
