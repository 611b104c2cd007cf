"""Pydantic I/O of the experiments domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from offerloop.core.conditions import PropertiesWhere, Where

Subject = Literal["offer", "variant", "journey", "policy"]
Status = Literal["running", "paused", "stopped"]
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# What a policy experiment's arm serves on /v1/decide: the learned policy (None means the same) or rules order.
POLICY_VALUES = (None, "model", "rules")


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN, examples=["control"])
    weight: float = Field(ge=0, le=1_000_000, description="Relative share of new buyers (0: no one new)")
    value: str | None = Field(
        default=None, max_length=200, description="What the arm shows: a variant key, a policy, a journey..."
    )


class Conversion(BaseModel):
    """The event that counts as converting, within ``window_days`` of a buyer's first exposure."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(default="Order Completed", min_length=1, max_length=255)
    where: PropertiesWhere = Field(
        default_factory=lambda: Where.of(None, "properties"),
        description="Conditions on the event's properties, e.g. {offer_key: course}",
    )
    window_days: int = Field(default=30, ge=1, le=365)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversion: Conversion = Field(default_factory=Conversion)
    revenue_property: str = Field(
        default="total_minor", min_length=1, max_length=120,
        description="Revenue: the sum of this numeric property of the conversion events (minor units)",
    )  # fmt: skip
    retention_days: int = Field(
        default=30, ge=1, le=365, description="Retained: any event N days or more after the first exposure"
    )
    covariate: Literal["revenue", "events"] = Field(
        default="revenue", description="CUPED's pre-period covariate: the buyer's revenue or event count"
    )
    pre_period_days: int = Field(default=30, ge=1, le=365, description="The pre-period before exposure")


class GuardrailIn(BaseModel):
    """A rate that must not get worse by more than ``threshold`` (absolute, e.g. 0.01 = one point): the
    share of exposed buyers with ``event`` within the conversion window."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN, examples=["refunds"])
    event: str = Field(min_length=1, max_length=255, examples=["Order Refunded"])
    where: PropertiesWhere = Field(default_factory=lambda: Where.of(None, "properties"))
    worse: Literal["higher", "lower"] = "higher"
    threshold: float = Field(default=0.0, ge=0, le=1)


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=120, pattern=KEY_PATTERN, examples=["checkout-price-test"])
    name: str | None = Field(default=None, max_length=200)
    subject: Subject
    subject_id: str = Field(min_length=1, max_length=200, description="The offer, variant, journey or policy")
    arms: list[ArmIn] = Field(min_length=2, max_length=20, description="The first arm is the control")
    metrics: Metrics = Field(default_factory=Metrics)
    guardrails: list[GuardrailIn] = Field(default_factory=list, max_length=20)
    starts_at: datetime | None = Field(default=None, description="No exposures before (default: now)")
    ends_at: datetime | None = Field(default=None, description="No new exposures after")

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentCreate:
        keys = [a.key for a in self.arms]
        if len(set(keys)) != len(keys):
            raise ValueError("arm keys must be distinct")
        if not sum(a.weight for a in self.arms) > 0:
            raise ValueError("arm weights must sum to a positive number")
        guards = [g.key for g in self.guardrails]
        if len(set(guards)) != len(guards):
            raise ValueError("guardrail keys must be distinct")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("starts_at and ends_at need a UTC offset")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.subject == "policy":
            odd = [a.key for a in self.arms if a.value not in POLICY_VALUES]
            if odd:
                raise ValueError(
                    f"a policy experiment's arm value is the policy it serves: one of model, rules or none (arm {odd[0]!r})"
                )
        return self


class WeightsUpdate(BaseModel):
    """New weights for new buyers; buyers already exposed keep their arm."""

    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(min_length=1, max_length=20)


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status = Field(description="paused: no new exposures (resumable); stopped: final")


class ArmRead(BaseModel):
    key: str
    weight: float
    value: str | None = None


class ExperimentRead(BaseModel):
    key: str
    name: str
    subject: Subject
    subject_id: str
    control: str
    arms: list[ArmRead]
    metrics: Metrics
    guardrails: list[GuardrailIn]
    status: Status
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AssignRequest(BaseModel):
    """Exactly one identifier of the buyer."""

    model_config = ConfigDict(extra="forbid")
    buyer_id: str | None = Field(default=None, max_length=40)
    user_id: str | None = Field(default=None, max_length=255)
    anonymous_id: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _one(self) -> AssignRequest:
        if sum(v is not None for v in (self.buyer_id, self.user_id, self.anonymous_id)) != 1:
            raise ValueError("give exactly one of buyer_id, user_id, anonymous_id")
        return self


@dataclass(frozen=True, slots=True)
class Arm:
    """A buyer's arm as a hook reads it, without writing: ``exposed`` says the buyer is in the experiment
    (exposed before, or now); ``expose`` that this is their first exposure, which the caller writes with
    ``experiments.service.expose`` when its unit of work writes. Not exposed: the control, outside its run."""

    experiment: str
    arm: str
    value: str | None
    exposed: bool
    expose: bool


class Assignment(BaseModel):
    experiment: str
    buyer_id: str
    arm: str = Field(description="The buyer's arm (the control while the experiment is not running)")
    value: str | None
    exposed: bool = Field(description="Whether the buyer is counted in the experiment (exposure logged)")
    first_exposure: bool = Field(description="True when this call logged the buyer's first exposure")
    exposed_at: datetime | None


class Difference(BaseModel):
    """variant - control at 95%; ``p_value_holm`` adjusts over the variants of an A/B/n test (Holm)."""

    control: float
    variant: float
    difference: float
    relative: float | None = Field(description="difference / control (null when control is 0)")
    ci_low: float
    ci_high: float
    p_value: float
    p_value_holm: float | None = None
    significant: bool | None = Field(default=None, description="p_value_holm < 0.05")


class BayesRead(BaseModel):
    chance_to_beat_control: float
    expected_loss_variant: float = Field(description="E[max(control - variant, 0)]: the risk of shipping it")
    expected_loss_control: float = Field(description="E[max(variant - control, 0)]: the risk of keeping it")


class GuardrailResult(BaseModel):
    key: str
    event: str
    worse: Literal["higher", "lower"]
    threshold: float
    control_rate: float
    variant_rate: float
    difference: Difference | None
    breached: bool = Field(description="The change in the worse direction exceeds the threshold")


class ArmResult(BaseModel):
    arm: str
    exposed: int
    conversions: int
    conversion_rate: float | None
    revenue_minor: int
    revenue_per_buyer: float | None = Field(description="Revenue over exposed buyers (zeros included)")
    retention_eligible: int = Field(description="Exposed at least retention_days ago")
    retained: int
    retention_rate: float | None


class VariantResult(BaseModel):
    arm: str
    conversion: Difference | None
    conversion_cuped: Difference | None
    revenue_per_buyer: Difference | None
    revenue_per_buyer_cuped: Difference | None
    retention: Difference | None
    bayes_conversion: BayesRead | None  # None while either arm has no exposed buyer
    bayes_revenue_per_buyer: BayesRead | None
    guardrails: list[GuardrailResult]


class SampleRatioRead(BaseModel):
    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float | None = Field(description="null when someone is in an arm planned to get no one")
    p_value: float
    mismatch: bool = Field(
        description="p < 0.001: the split is not the planned one; do not trust the results"
    )


class CupedRead(BaseModel):
    covariate: Literal["revenue", "events"]
    pre_period_days: int
    theta_conversion: dict[str, float] = Field(description="Per variant (pooled with the control)")
    theta_revenue: dict[str, float]


class PersonaArm(BaseModel):
    arm: str
    exposed: int
    conversions: int
    conversion_rate: float | None
    revenue_per_buyer: float | None


class PersonaResult(BaseModel):
    persona: str | None = Field(description="The buyer's current persona (null: none yet)")
    arms: list[PersonaArm]
    conversion: dict[str, Difference | None] = Field(description="Per variant, vs the control")


class ExperimentResults(BaseModel):
    experiment: str
    status: Status
    control: str
    computed_at: datetime
    exposed: int
    arms: list[ArmResult]
    variants: list[VariantResult]
    srm: SampleRatioRead | None
    cuped: CupedRead
    personas: list[PersonaResult]
