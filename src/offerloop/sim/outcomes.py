"""Ground-truth responses of simulated buyers to the demo creator's actions (examples/demo/actions.yaml).

The demo uses it to close the loop for real: decisions are made by the running engine, each buyer's true
persona decides whether they act on what they were shown, and the outcome goes back in as an ordinary
tracked event. An action "fits" a persona when the creator declared it so (``persona_fit``); fitting
actions convert far more often, so a policy that learns persona-by-action crosses beats the fixed order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

BASE_RATE = 0.04  # any buyer, any action
FIT_LIFT = 0.40  # added when the action was made for the buyer's persona
DEFAULT_PRICE_MINOR = 4_900  # an order's value when the action names no price


def success_probability(persona: str, action: Mapping[str, Any]) -> float:
    """Chance that a buyer whose true persona is ``persona`` completes ``action``'s outcome."""
    fits = persona in (action.get("persona_fit") or [])
    return BASE_RATE + (FIT_LIFT if fits else 0.0)


def respond(
    persona: str, action: Mapping[str, Any], *, user_id: str, rng: random.Random, message_id: str
) -> dict[str, Any] | None:
    """The outcome event (a Segment track message) if the buyer acts on ``action``, else None."""
    outcome = action.get("outcome")
    if not outcome or rng.random() >= success_probability(persona, action):
        return None
    properties: dict[str, Any] = {}
    if outcome.get("match_property"):
        properties[outcome["match_property"]] = action["key"]
    if outcome.get("value_property"):
        properties[outcome["value_property"]] = int(action.get("price_minor") or DEFAULT_PRICE_MINOR)
        properties["currency"] = "USD"
    return {
        "type": "track",
        "userId": user_id,
        "event": outcome["event"],
        "messageId": message_id,
        "properties": properties,
    }
