"""A signal's `missing` values are neutral; the confusion matrix's arithmetic (issue 9, item 12)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from offerloop.personas.confusion import PersonaConfusion
from offerloop.personas.inference import infer, match_degree
from offerloop.personas.templates import TemplateError, load_templates

TEMPLATES = """
personas:
  - name: fast
    signals:
      - {feature: minutes_to_first_drop_view, lte: 30, weight: 2, softness: 30, missing: [-1]}
  - name: slow
    signals:
      - {feature: minutes_to_first_drop_view, gt: 60, weight: 2, softness: 30, missing: [-1]}
"""


def test_missing_values_are_neutral_evidence() -> None:
    ps = load_templates(TEMPLATES)
    fast = ps.persona("fast").signals[0]
    assert match_degree(fast, -1) == 0.5
    assert match_degree(fast, -1.0) == 0.5
    assert match_degree(fast, None) == 0.5
    assert match_degree(fast, 0.0) == pytest.approx(1 / (1 + math.exp(-6)))
    never = infer({"minutes_to_first_drop_view": -1.0}, ps)
    assert never.posterior == {"fast": 0.5, "slow": 0.5}
    assert [c.log_contribution for c in never.contributions] == [0.0]
    assert infer({"minutes_to_first_drop_view": 3.0}, ps).name == "fast"
    assert infer({"minutes_to_first_drop_view": 600.0}, ps).name == "slow"


def test_without_missing_the_sentinel_reads_as_a_number() -> None:
    ps = load_templates(TEMPLATES.replace(", missing: [-1]", ""))
    assert infer({"minutes_to_first_drop_view": -1.0}, ps).name == "fast"  # "-1 minutes" is very fast


def test_missing_round_trips_and_is_validated() -> None:
    ps = load_templates(TEMPLATES)
    assert load_templates(ps.to_yaml()) == ps
    assert "missing: [-1]" in ps.to_yaml()
    with pytest.raises(TemplateError) as bad:
        load_templates(TEMPLATES.replace("missing: [-1]", "missing: []"))
    assert bad.value.problems == [
        "<personas>:5: personas[0].signals[0].missing: must have at least 1 item, got 0",
        "<personas>:8: personas[1].signals[0].missing: must have at least 1 item, got 0",
    ]
    with pytest.raises(TemplateError):
        load_templates(TEMPLATES.replace("missing: [-1]", "missing: [{a: 1}]"))


def test_confusion_matrix_arithmetic() -> None:
    pairs = [("a", "a")] * 6 + [("a", "b")] * 2 + [("a", "unassigned")] * 2 + [("b", "b")] * 3 + [("b", "a")]
    c = PersonaConfusion.from_pairs(pairs, ["a", "b"])
    assert c.total == 14
    assert c.accuracy == 9 / 14
    assert c.unassigned_share == 2 / 14
    assert (c.recall("a"), c.recall("b")) == (6 / 10, 3 / 4)
    assert (c.precision("a"), c.precision("b")) == (6 / 7, 3 / 5)
    assert c.support("a") == 10 and c.predicted("unassigned") == 2
    table = c.table()
    assert table[0] == ["true \\ inferred", "A", "B", "none", "buyers", "recall", "precision"]
    assert table[1] == ["a", "6", "2", "2", "10", "60.0%", "85.7%"]
    assert table[2] == ["b", "1", "3", "0", "4", "75.0%", "60.0%"]
    assert table[3] == ["inferred", "7", "5", "2", "14", "", ""]
    text = c.format()
    assert (
        text.splitlines()[-1]
        == "accuracy 64.3% of 14 identified buyers; unassigned 14.3%; lowest recall 60.0%"
    )
    assert "columns: A = a, B = b" in text


def test_confusion_adds_personas_it_was_not_told_about() -> None:
    c = PersonaConfusion.from_pairs([("a", "c"), ("d", "a")], ["a"])
    assert c.personas == ("a", "c", "d")
    assert c.accuracy == 0.0
    empty = PersonaConfusion.from_pairs([], ["a"])
    assert (empty.accuracy, empty.unassigned_share, empty.recall("a"), empty.precision("a")) == (0, 0, 0, 0)


def test_the_demo_prints_the_matrix_next_to_the_distribution() -> None:
    from offerloop.cli import demo

    pairs = [("weekend_collector", "weekend_collector")] * 3 + [("weekend_collector", "unassigned")]
    with demo.console.capture() as captured:
        demo._print_persona_truth(PersonaConfusion.from_pairs(pairs, ["weekend_collector", "deal_seeker"]))
    text = captured.get()
    assert "weekend_collector" in text and "75.0%" in text and "WC = weekend_collector" in text
    assert "accuracy 75.0% of 4 identified buyers; unassigned 25.0%; lowest recall 75.0%" in text


@pytest.mark.parametrize(
    ("missing", "loc", "message"),
    [
        ("5", "personas[0].signals[0].missing", "must be a list, got 5"),
        ("[]", "personas[0].signals[0].missing", "must have at least 1 item, got 0"),
        ("'x'", "personas[0].signals[0].missing", "must be a list, got 'x'"),
        ("[[1]]", "personas[0].signals[0].missing[0]", "must be a string, a number or a bool, got [1]"),
        (
            "[{a: 1}]",
            "personas[0].signals[0].missing[0]",
            "must be a string, a number or a bool, got {'a': 1}",
        ),
        ("[.nan]", "personas[0].signals[0].missing[0]", "must be a finite number, got nan"),
        ("[null]", "personas[0].signals[0].missing[0]", "must be a string, a number or a bool, got None"),
        (
            "[" + ",".join(["1"] * 21) + "]",
            "personas[0].signals[0].missing",
            "must have at most 20 items, got 21",
        ),
    ],
)
def test_bad_missing_values_over_http_are_422_with_their_path(
    client: Any, secret_headers: dict[str, str], missing: str, loc: str, message: str
) -> None:
    body = TWO % missing
    response = client.put("/v1/personas/templates", headers=secret_headers, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_persona_templates"
    assert response.json()["error"]["details"] == [
        {"path": "<personas>", "line": 3, "location": loc, "message": message}
    ]
    assert response.json()["error"]["message"] == f"<personas>:3: {loc}: {message}"


def test_missing_values_over_http(client: Any, secret_headers: dict[str, str]) -> None:
    response = client.put("/v1/personas/templates", headers=secret_headers, json=TWO % "[-1, 'none', true]")
    assert response.status_code == 200
    stored = client.get("/v1/personas/templates", headers=secret_headers).json()["templates"]
    assert stored["personas"][0]["signals"][0]["missing"] == [-1, "none", True]


TWO = (
    "personas:\n"
    "  - name: a\n    signals: [{feature: x, lte: 1, missing: %s}]\n"
    "  - name: b\n    signals: [{feature: y, is: true}]\n"
)
