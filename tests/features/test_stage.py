"""Outcome stages: the highest stage reached, whatever the order."""

from __future__ import annotations

from offerloop.features.spec import DEFAULT_FEATURE_SPEC

from .helpers import at, ev, run, spec_of


def stage_after(*events: object) -> str:
    value = run(DEFAULT_FEATURE_SPEC, events)["stage"]  # type: ignore[arg-type]
    assert isinstance(value, str)
    return value


def test_default_stage_progression() -> None:
    visit = ev("Home", at(30), type="page")
    identify_anonymous = ev(None, at(29), type="identify", props={"name": "Ann"})
    identify = ev(None, at(29), type="identify", props={"email": "ann@example.com"})
    quiz = ev("Quiz Completed", at(28))
    order1, order2, order3 = (ev("Order Completed", at(d)) for d in (20, 15, 10))
    subscribed = ev("Subscription Started", at(9))
    post = ev("Community Post Created", at(8))

    assert stage_after() == "visitor"
    assert stage_after(visit) == "visitor"
    assert stage_after(visit, identify_anonymous) == "visitor"  # identify without an e-mail
    assert stage_after(visit, ev(None, type="identify", props={"email": ""})) == "visitor"
    assert stage_after(visit, identify) == "lead"
    assert stage_after(visit, identify, quiz) == "engaged"
    assert stage_after(visit, ev("Assessment Completed")) == "engaged"
    assert stage_after(visit, identify, quiz, order1) == "customer"
    assert stage_after(visit, identify, quiz, order1, order2) == "repeat_customer"
    assert stage_after(visit, identify, quiz, order1, order2, subscribed) == "subscriber"
    assert stage_after(visit, identify, quiz, order1, order2, order3, subscribed) == "subscriber"
    assert stage_after(visit, identify, quiz, order1, order2, order3, subscribed, post) == "superfan"
    # the highest stage reached counts, even when lower ones were skipped
    assert stage_after(order1) == "customer"
    assert stage_after(order1, order2, order3, post) == "superfan"
    assert stage_after(order1, order2, post) == "repeat_customer"
    assert stage_after(ev("Subscription Renewed")) == "subscriber"
    # order does not matter
    assert stage_after(post, order3, order2, order1) == "superfan"


def test_custom_stages_with_requirements() -> None:
    spec = spec_of(
        {
            "name": "journey",
            "kind": "stage",
            "stages": [
                {"name": "new", "match": {"type": "page"}},
                {"name": "reader", "match": {"type": "page"}, "min_count": 3},
                {
                    "name": "fan",
                    "all": [{"match": {"event": "Post *"}, "min_count": 2}, {"match": {"event": "Follow"}}],
                },
            ],
            "default": "nobody",
        }
    )
    assert run(spec, [])["journey"] == "nobody"
    assert run(spec, [ev("A", type="page")])["journey"] == "new"
    assert run(spec, [ev("A", type="page")] * 3)["journey"] == "reader"
    assert run(spec, [ev("Post Liked"), ev("Post Shared")])["journey"] == "nobody"
    assert run(spec, [ev("Post Liked"), ev("Post Shared"), ev("Follow")])["journey"] == "fan"
