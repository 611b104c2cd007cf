"""Eligibility rules over buyer state. Pure: the service gathers the state, this decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from offerloop.core.conditions import MISSING, Check, Scope, compile_condition, describe, parse, parse_where


@dataclass(frozen=True, slots=True)
class BuyerView:
    features: Mapping[str, Any]
    completed: frozenset[str] = frozenset()
    impressions: Mapping[str, Sequence[datetime]] = field(
        default_factory=dict
    )  # action key -> times shown first
    stage_order: Sequence[str] = ()
    now: datetime | None = None
    entitlements: frozenset[str] = frozenset()  # "component:ref" the buyer can use now
    persona: str | None = None

    def facts(self) -> dict[str, Any]:
        """What an action's conditions read: ``features.*``, ``persona`` and ``entitlements``."""
        return {
            "features": self.features,
            "persona": self.persona if self.persona is not None else MISSING,
            "entitlements": sorted(self.entitlements),
        }


# An action's ``when:`` reads the buyer's features, persona and entitlements.
WHEN_SCOPE = Scope(roots=frozenset({"features", "persona", "entitlements"}))


@lru_cache(maxsize=4096)
def _requirements(canonical: str) -> tuple[tuple[str, Check], ...]:
    requires = orjson.loads(canonical)
    return tuple(
        (feature, compile_condition(parse_where({feature: condition}, root="features")))
        for feature, condition in requires.items()
    )


@lru_cache(maxsize=4096)
def _when(canonical: str) -> tuple[str, Check]:
    condition = parse(orjson.loads(canonical), scope=WHEN_SCOPE)
    return describe(condition), compile_condition(condition)


def requirements(requires: Mapping[str, Any]) -> tuple[tuple[str, Check], ...]:
    """``requires: {feature: condition}`` compiled once per distinct mapping: one check per feature."""
    return _requirements(orjson.dumps(dict(requires), option=orjson.OPT_SORT_KEYS).decode())


def holds(value: Any, condition: Any, *, present: bool = True) -> bool:
    """Does a feature value satisfy ``condition`` ({op: operand, ...} or a bare value meaning eq)?"""
    ((_, check),) = requirements({"value": condition})
    return check({"features": {"value": value} if present else {}}, None)


def ineligible_reason(
    action: Mapping[str, Any], buyer: BuyerView, *, placement: str, exclude: frozenset[str] = frozenset()
) -> str | None:
    """None when the buyer may be shown ``action`` here and now; otherwise a machine-readable reason.

    ``action`` holds the catalog fields (key, active and the attributes of decisions.schemas.ActionIn).
    """
    key = action["key"]
    if key in exclude:
        return "excluded_by_request"
    if not action.get("active", True):
        return "inactive"
    placements = action.get("placements") or []
    if placements and placement not in placements:
        return "other_placement"
    if key in buyer.completed:
        return "already_completed"
    for needed in action.get("prerequisites") or []:
        if needed not in buyer.completed:
            return f"missing_prerequisite:{needed}"
    min_stage = action.get("min_stage")
    if min_stage:
        order = list(buyer.stage_order)
        current = buyer.features.get("stage")
        if min_stage in order and (current not in order or order.index(current) < order.index(min_stage)):
            return f"stage_below:{min_stage}"
    cap = action.get("frequency_cap")
    if cap and buyer.now is not None:
        since = buyer.now - timedelta(days=float(cap["days"]))
        shown = sum(1 for at in buyer.impressions.get(key, ()) if at >= since)
        if shown >= int(cap["max"]):
            return "frequency_cap"
    for needed in action.get("requires_entitlement") or []:
        if needed not in buyer.entitlements:
            return f"missing_entitlement:{needed}"
    for owned in action.get("unless_entitled") or []:
        if owned in buyer.entitlements:
            return f"already_entitled:{owned}"
    requires, when = action.get("requires"), action.get("when")
    if requires or when is not None:
        facts = buyer.facts()
        for feature, check in requirements(requires or {}):
            if not check(facts, buyer.now):
                return f"requires:{feature}"
        if when is not None:
            words, check = _when(orjson.dumps(when, option=orjson.OPT_SORT_KEYS).decode())
            if not check(facts, buyer.now):
                return f"when:{words}"  # the reason in words: "when:features.orders >= 2"
    return None
