"""Persona inference: exact posteriors computed by hand from the documented model."""

from __future__ import annotations

import math
from typing import Any

import pytest

from offerloop.personas.inference import (
    EPSILON,
    Contribution,
    PersonaPosterior,
    infer,
    log_likelihood_ratio,
    match_degree,
    signal_confidence_from,
)
from offerloop.personas.templates import Signal, load_templates

TEMPLATES = """
threshold: 0.6
personas:
  - name: collector
    prior: 0.2
    signals:
      - {feature: drop_orders, gte: 2, weight: 2.0}                       # softness 0.5 (floor)
      - {feature: weekend_share, gte: 0.6, weight: 1.5, softness: 0.1}
  - name: loyalist
    prior: 0.3
    signals:
      - {feature: subscription_active, is: true, weight: 2.5}
      - {feature: renewals, between: [1, 10], weight: 1.0}                # softness 0.5 and 1.0
  - name: browser
    prior: 0.5
    signals:
      - {feature: orders, lt: 1, weight: 2.0}                             # softness 0.5
      - {feature: first_touch_channel, in: [search, social], weight: 1.0}
      - {feature: page_views_30d, gt: 30, weight: 1.0}                    # softness 3.0
"""
PS = load_templates(TEMPLATES)
BUYER: dict[str, Any] = {
    "drop_orders": 3,
    "weekend_share": 0.58,
    "subscription_active": False,
    "renewals": 0,
    "orders": 3,
    "first_touch_channel": "social",
    "page_views_30d": 33.0,
}


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def llr(m: float) -> float:
    return math.log(0.05 + m) - math.log(0.05 + 0.5)


def softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    total = sum(math.exp(v - top) for v in scores.values())
    return {k: math.exp(v - top) / total for k, v in scores.items()}


def hand_scores(c: float = 1.0) -> dict[str, float]:
    """BUYER's log scores, written out term by term from the model in the inference docstring."""
    return {
        # drop_orders 3 >= 2: sigma(2 + 4 (3 - 2) / 0.5); weekend_share 0.58 >= 0.6: sigma(2 + 4 (-0.02) / 0.1)
        "collector": math.log(0.2) + c * (2.0 * llr(sig(10.0)) + 1.5 * llr(sig(1.2))),
        # False is not true: m = 0; renewals 0 in [1, 10]: sigma(2 + 4 (0 - 1) / 0.5) * sigma(2 + 4 (10 - 0) / 1)
        "loyalist": math.log(0.3) + c * (2.5 * llr(0.0) + 1.0 * llr(sig(-6.0) * sig(42.0))),
        # orders 3 < 1: sigma(-2 + 4 (1 - 3) / 0.5); "social" in the list: 1; 33 > 30: sigma(-2 + 4 (3) / 3)
        "browser": math.log(0.5) + c * (2.0 * llr(sig(-18.0)) + 1.0 * llr(1.0) + 1.0 * llr(sig(2.0))),
    }


def test_exact_posterior_and_label() -> None:
    result = infer(BUYER, PS)
    expected = softmax(hand_scores())
    assert list(result.posterior) == ["collector", "loyalist", "browser"]
    for name, p in expected.items():
        assert result.posterior[name] == pytest.approx(p, abs=1e-9)
    # The numbers themselves, so a change to the formula cannot hide in both sides of the test.
    assert result.posterior == pytest.approx(
        {
            "collector": 0.9899588047200202,
            "loyalist": 5.3355276474693765e-05,
            "browser": 0.009987840003505282,
        },
        abs=1e-12,
    )
    assert result.name == "collector"
    assert result.top == "collector"
    assert result.assigned
    assert result.confidence == result.posterior["collector"]
    assert math.fsum(result.posterior.values()) == pytest.approx(1.0, abs=1e-12)
    for name, score in hand_scores().items():
        assert result.log_scores[name] == pytest.approx(score, abs=1e-9)


def test_contributions_are_the_top_personas_reasons_sorted_and_summing_to_the_log_score() -> None:
    result = infer(BUYER, PS)
    assert [c.persona for c in result.contributions] == ["collector", "collector"]
    assert result.contributions == [
        Contribution(
            persona="collector",
            feature="drop_orders",
            condition="drop_orders >= 2",
            value=3,
            weight=2.0,
            match=pytest.approx(sig(10.0), abs=1e-12),  # type: ignore[arg-type]
            log_contribution=pytest.approx(2.0 * llr(sig(10.0)), abs=1e-12),  # type: ignore[arg-type]
        ),
        Contribution(
            persona="collector",
            feature="weekend_share",
            condition="weekend_share >= 0.6",
            value=0.58,
            weight=1.5,
            match=pytest.approx(sig(1.2), abs=1e-12),  # type: ignore[arg-type]
            log_contribution=pytest.approx(1.5 * llr(sig(1.2)), abs=1e-12),  # type: ignore[arg-type]
        ),
    ]
    magnitudes = [abs(c.log_contribution) for c in result.contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert result.log_prior == pytest.approx(math.log(0.2), abs=1e-12)
    total = result.log_prior + math.fsum(c.log_contribution for c in result.contributions)
    assert total == pytest.approx(result.log_score, abs=1e-12)
    assert result.log_score == pytest.approx(hand_scores()["collector"], abs=1e-12)


def test_reasons_sort_by_magnitude_not_sign() -> None:
    # browser: orders 3 (a miss, -2 * 2.398) outweighs the channel match (+0.647) and the page views.
    result = infer({**BUYER, "drop_orders": 0, "weekend_share": 0.1}, PS)
    scores = {**hand_scores()}
    scores["collector"] = (
        math.log(0.2) + 2.0 * llr(sig(2.0 + 4.0 * (0 - 2) / 0.5)) + 1.5 * llr(sig(2.0 - 20.0))
    )
    expected = softmax(scores)
    assert result.top == "browser"
    assert result.posterior["browser"] == pytest.approx(expected["browser"], abs=1e-9)
    assert [c.feature for c in result.contributions] == ["orders", "first_touch_channel", "page_views_30d"]
    assert result.contributions[0].log_contribution < 0 < result.contributions[1].log_contribution


def test_empty_features_give_the_prior_and_stay_unassigned() -> None:
    result = infer({}, PS)
    assert result.posterior == pytest.approx({"collector": 0.2, "loyalist": 0.3, "browser": 0.5}, abs=1e-12)
    assert result.name == "unassigned"
    assert not result.assigned
    assert result.top == "browser"
    assert result.confidence == pytest.approx(0.5, abs=1e-12)
    assert all(c.log_contribution == 0.0 and c.match == 0.5 and c.value is None for c in result.contributions)


def test_uniform_priors_and_no_evidence_is_unassigned() -> None:
    data = PS.to_mapping()
    for persona in data["personas"]:
        del persona["prior"]
    result = infer({}, load_templates(data))
    assert result.posterior == pytest.approx(
        {"collector": 1 / 3, "loyalist": 1 / 3, "browser": 1 / 3}, abs=1e-12
    )
    assert result.name == "unassigned"
    assert result.top == "collector"  # ties go to the persona listed first


def test_conflicting_evidence_under_the_threshold_is_unassigned() -> None:
    buyer = {"drop_orders": 2, "subscription_active": True}
    result = infer(buyer, PS)
    scores = {
        "collector": math.log(0.2) + 2.0 * llr(sig(2.0)),
        "loyalist": math.log(0.3) + 2.5 * llr(1.0),
        "browser": math.log(0.5),
    }
    expected = softmax(scores)
    assert result.posterior == pytest.approx(expected, abs=1e-9)
    assert result.top == "loyalist"
    assert result.confidence == pytest.approx(expected["loyalist"], abs=1e-9)
    assert result.confidence < 0.6
    assert result.name == "unassigned"


def test_missing_features_are_neutral() -> None:
    partial = {"drop_orders": 3, "subscription_active": False}
    result = infer(partial, PS)
    scores = {
        "collector": math.log(0.2) + 2.0 * llr(sig(10.0)),
        "loyalist": math.log(0.3) + 2.5 * llr(0.0),
        "browser": math.log(0.5),
    }
    assert result.posterior == pytest.approx(softmax(scores), abs=1e-9)
    # None, NaN, unknown keys and unreadable values are all "missing".
    noisy = {**partial, "weekend_share": None, "renewals": float("nan"), "orders": "n/a", "colour": "red"}
    assert infer(noisy, PS).posterior == result.posterior
    weekend = next(c for c in result.contributions if c.feature == "weekend_share")
    assert (weekend.match, weekend.log_contribution) == (0.5, 0.0)


def test_signal_confidence_zero_gives_the_prior() -> None:
    result = infer(BUYER, PS, signal_confidence=0.0)
    assert result.posterior == pytest.approx({"collector": 0.2, "loyalist": 0.3, "browser": 0.5}, abs=1e-12)
    assert all(c.log_contribution == 0.0 for c in result.contributions)


def test_signal_confidence_scales_the_evidence() -> None:
    result = infer(BUYER, PS, signal_confidence=0.4)
    expected = softmax(hand_scores(0.4))
    assert result.posterior == pytest.approx(expected, abs=1e-9)
    full = infer(BUYER, PS)
    assert result.confidence < full.confidence


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan")])
def test_signal_confidence_must_be_a_share(bad: float) -> None:
    with pytest.raises(ValueError, match="signal_confidence"):
        infer(BUYER, PS, signal_confidence=bad)


def test_signal_confidence_from_suppressed_share() -> None:
    assert signal_confidence_from({"suppressed_share": 0.1}) == pytest.approx(0.9, abs=1e-15)
    assert signal_confidence_from({}) == 1.0
    assert signal_confidence_from({"suppressed_share": 1.7}) == 0.0


def test_prior_strength_is_an_exponent_on_the_prior() -> None:
    data = PS.to_mapping()
    data["prior_strength"] = 2.0
    result = infer(BUYER, load_templates(data))
    squares = {"collector": 0.04, "loyalist": 0.09, "browser": 0.25}
    log_norm = math.log(sum(squares.values()))
    scores = {
        k: v - math.log(PS.priors()[k]) + math.log(squares[k]) - log_norm for k, v in hand_scores().items()
    }
    assert result.posterior == pytest.approx(softmax(scores), abs=1e-9)


def test_deterministic() -> None:
    assert infer(BUYER, PS) == infer(dict(reversed(list(BUYER.items()))), PS)


def _signal(**condition: Any) -> Signal:
    return Signal.model_validate({"feature": "x", **condition})


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ({"gte": 10}, 10, sig(2.0)),  # softness 1.0 (10% of 10)
        ({"gte": 10}, 9, sig(-2.0)),
        ({"gte": 10}, 12, sig(10.0)),
        ({"gt": 10}, 10, sig(-2.0)),
        ({"gt": 10}, 11, sig(2.0)),
        ({"lte": 10}, 10, sig(2.0)),
        ({"lte": 10}, 11, sig(-2.0)),
        ({"lt": 10}, 10, sig(-2.0)),
        ({"lt": 10}, 9, sig(2.0)),
        ({"gte": 60, "softness": 30}, 45, sig(0.0)),
        # the condition language's types: a boolean or text is not a number, so it is no evidence either way
        ({"gte": 1}, True, 0.5),
        ({"gte": 1}, "1", 0.5),
        ({"between": [20, 40]}, 30, sig(2.0 + 4.0 * 10 / 2.0) * sig(2.0 + 4.0 * 10 / 4.0)),
        ({"between": [20, 40]}, 18, sig(2.0 - 4.0) * sig(2.0 + 4.0 * 22 / 4.0)),
        ({"eq": "social"}, "social", 1.0),
        ({"eq": "social"}, "Social", 0.0),
        ({"eq": 3}, 3.0, 1.0),
        ({"eq": 3}, "3", 0.0),
        ({"eq": True}, True, 1.0),
        ({"eq": True}, 1, 0.0),
        ({"eq": 1}, True, 0.0),
        ({"in": ["a", 2]}, 2, 1.0),
        ({"in": ["a", 2]}, "b", 0.0),
        ({"is": True}, True, 1.0),
        ({"is": True}, False, 0.0),
        ({"is": True}, 2, 0.5),  # only a boolean says yes or no
        ({"is": False}, 0, 0.5),
        ({"is": True}, "yes", 0.5),
        ({"is": True}, "perhaps", 0.5),
        ({"gte": 10}, None, 0.5),
        ({"gte": 10}, float("nan"), 0.5),
        ({"gte": 10}, "lots", 0.5),
        ({"eq": "a"}, None, 0.5),
        ({"is": True}, None, 0.5),
    ],
)
def test_match_degree(condition: dict[str, Any], value: Any, expected: float) -> None:
    assert match_degree(_signal(**condition), value) == pytest.approx(expected, abs=1e-15)


def test_log_likelihood_ratio_constants() -> None:
    assert EPSILON == 0.05
    assert log_likelihood_ratio(0.5) == 0.0
    assert log_likelihood_ratio(1.0) == pytest.approx(math.log(1.05 / 0.55), abs=1e-15)
    assert log_likelihood_ratio(0.0) == pytest.approx(math.log(0.05 / 0.55), abs=1e-15)


def test_extreme_values_do_not_overflow() -> None:
    result = infer({"drop_orders": 1e300, "orders": -1e300, "page_views_30d": 1e308}, PS)
    assert math.isfinite(result.confidence)
    assert math.fsum(result.posterior.values()) == pytest.approx(1.0, abs=1e-12)


def test_to_dict_is_plain_data() -> None:
    data = infer(BUYER, PS).to_dict()
    assert data["name"] == "collector"
    assert data["contributions"][0]["feature"] == "drop_orders"
    assert isinstance(infer(BUYER, PS), PersonaPosterior)
