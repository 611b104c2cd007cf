from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from offerloop.core.conditions import ConditionError, parse, parse_where
from offerloop.core.pages import Page
from offerloop.decisions.rules import WHEN_SCOPE

ActionKind = Literal["lesson", "module", "offer", "coaching", "prompt"]
Condition = Any  # {"gte": 3} | {"in": [...]} | a bare value meaning eq: see offerloop.core.conditions


class Outcome(BaseModel):
    """Which event means success, what it is worth, and how long after the decision it may come."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=255, examples=["Module Completed"])
    match_property: str | None = Field(
        default=None, description="Only an event whose property of this name equals the action key counts"
    )
    value: float | None = Field(default=1.0, description="Reward of a success (None: use value_property)")
    value_property: str | None = Field(
        default=None, description="Reward read from this event property, e.g. total_minor"
    )
    value_scale: float = Field(
        default=1.0, gt=0, description="Divide value_property by this (rewards are kept near [0, 1])"
    )
    window_days: float = Field(default=7.0, gt=0, le=365)
    default_reward: float = 0.0


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max: int = Field(ge=1)
    days: float = Field(gt=0, le=36500)  # a timedelta holds no more than that, with room


class CompletedWhen(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str
    property: str = Field(description="The event property holding the action key")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    kind: ActionKind
    title: str = Field(min_length=1, max_length=300)
    tags: list[str] = Field(default_factory=list, max_length=30)
    level: int = Field(default=1, ge=0, le=10)
    format: str = Field(default="text", max_length=40)
    price_band: str = Field(default="free", max_length=40)
    price_minor: int | None = Field(default=None, ge=0)
    persona_fit: list[str] = Field(default_factory=list)
    placements: list[str] = Field(default_factory=list, description="Empty: every placement")
    prerequisites: list[str] = Field(
        default_factory=list, description="Action keys the buyer must have completed"
    )
    min_stage: str | None = Field(default=None, description="Outcome stage the buyer must have reached")
    frequency_cap: FrequencyCap | None = None
    requires: dict[str, Condition] = Field(
        default_factory=dict,
        description="Feature conditions, all must hold: {feature: {op: operand} | value}",
    )
    when: Any = Field(
        default=None,
        description="A condition on the buyer's features, persona and entitlements (the condition language: "
        "all/any/not, {path: features.orders, gte: 1}, {persona: [a, b]}, ...)",
    )
    completed_when: CompletedWhen | None = None
    requires_entitlement: list[str] = Field(
        default_factory=list, description='Entitlements the buyer must hold, as "component:ref"'
    )
    unless_entitled: list[str] = Field(
        default_factory=list, description='Not shown to buyers who already hold these ("component:ref")'
    )
    outcome: Outcome
    priority: int = Field(default=0, description="Rules-only order: higher first")
    active: bool = True

    @field_validator("requires", mode="after")
    @classmethod
    def _requires_is_a_condition(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_where(value, root="features")
        except ConditionError as exc:
            raise ValueError(f"invalid condition: {exc}") from None
        return value

    @field_validator("when", mode="after")
    @classmethod
    def _when_is_a_condition(cls, value: Any) -> Any:
        if value is not None:
            try:
                parse(value, scope=WHEN_SCOPE)
            except ConditionError as exc:
                raise ValueError(f"invalid condition: {exc}") from None
        return value


class ActionRead(ActionIn):
    id: str
    created_at: datetime
    updated_at: datetime


class ActionPage(Page[ActionRead]):
    """The action catalog in rules order: priority (highest first), then key."""


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None
    anonymous_id: str | None = None
    placement: str = Field(min_length=1, max_length=64)
    k: int = Field(default=3, ge=1, le=50)
    candidates: list[str] | None = Field(
        default=None, max_length=200, description="Action keys; default: the catalog"
    )
    exclude: list[str] = Field(default_factory=list, max_length=200)
    context: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Request-time features"
    )

    @model_validator(mode="after")
    def _one_identity(self) -> DecideRequest:
        if not (self.user_id or self.anonymous_id):
            raise ValueError("give user_id or anonymous_id")
        return self


class DecidedItem(BaseModel):
    id: str
    score: float = Field(
        description="Ranking score: higher is ranked first. Not a probability: it may be negative and, for "
        "UCB policies, includes an exploration bonus; rules order gives -position. Use expected_reward for "
        "a reward estimate."
    )
    expected_reward: float | None = Field(
        default=None,
        description="Calibrated estimate of this item's reward (for 0/1 outcomes: the probability of "
        "success, in [0, 1]), fit on the model's own out-of-sample predictions of logged rewards; null "
        "when no model has learned from a reward yet, and for the holdout and rules order.",
    )
    propensity: float
    reasons: list[str]


class PersonaBrief(BaseModel):
    name: str
    confidence: float


class ExperimentArm(BaseModel):
    """The placement's policy experiment and the buyer's arm in it, which chose the policy."""

    key: str
    arm: str


class DecideResponse(BaseModel):
    decision_id: str
    items: list[DecidedItem]
    persona: PersonaBrief | None
    model_version: int
    holdout: bool
    policy: str
    experiment: ExperimentArm | None = Field(
        default=None, description="The placement's policy experiment and the buyer's arm (null: none)"
    )


class DecisionRead(BaseModel):
    """Why a decision was made (what the model saw, what was excluded and why) and what happened after."""

    id: str
    buyer_id: str | None
    placement: str
    created_at: datetime
    policy: str = Field(description="model, or rules (holdout, no consent, cold model)")
    holdout: bool
    model_version: int
    persona: PersonaBrief | None
    items: list[dict[str, Any]] = Field(description="The items shown, in order, with scores and reasons")
    excluded: list[dict[str, Any]] = Field(description="Candidates left out, each with the reason")
    chosen: str | None = Field(description="The action logged as chosen (its propensity below)")
    propensity: float | None
    context: dict[str, Any] = Field(description="The features the model saw")
    outcome: dict[str, Any] | None = Field(description="The outcome the decision is meant to move")
    window_ends_at: datetime | None
    reward: float | None
    reward_at: datetime | None
    reward_source: str | None = Field(description="The message id of the rewarding event, or default")
    experiment: ExperimentArm | None = Field(
        default=None, description="The placement's policy experiment and the buyer's arm (null: none)"
    )


class ModelVersionRead(BaseModel):
    """One learned snapshot of a placement's model (its payload is not part of the read)."""

    placement: str
    version: int
    kind: str
    rewards_learned: int
    created_at: datetime
    note: str | None
