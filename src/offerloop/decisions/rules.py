"""Eligibility rules over buyer state. Pure: the service gathers the state, this decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"})


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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _equal(a: Any, b: Any) -> bool:
    # True is not 1 here: a boolean feature only equals a boolean operand.
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def holds(value: Any, condition: Any, *, present: bool = True) -> bool:
    """Does a feature value satisfy ``condition`` ({op: operand, …} or a bare value meaning eq)?"""
    ops = (
        condition
        if isinstance(condition, Mapping) and condition and set(condition) <= OPERATORS
        else {"eq": condition}
    )
    for op, operand in ops.items():
        if op == "exists":
            if bool(operand) != present:
                return False
            continue
        if not present:
            if op in ("ne", "not_in"):
                continue
            return False
        if op == "eq" and not _equal(value, operand):
            return False
        if op == "ne" and _equal(value, operand):
            return False
        if op in ("in", "not_in"):
            inside = isinstance(operand, list | tuple) and value in operand
            if inside != (op == "in"):
                return False
        if op in ("gt", "gte", "lt", "lte"):
            a, b = _number(value), _number(operand)
            if a is None or b is None:
                return False
            if not {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]:
                return False
    return True


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
    for feature, condition in (action.get("requires") or {}).items():
        present = feature in buyer.features
        if not holds(buyer.features.get(feature), condition, present=present):
            return f"requires:{feature}"
    return None
