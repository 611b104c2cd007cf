"""Pydantic shapes of model and data health (``/v1/health/...``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

AlertKind = Literal["feature_drift", "persona_mix", "reward_drop", "ope_drop"]
Severity = Literal["watch", "alert"]
OpePolicy = Literal["model", "rules_only", "popularity", "random"]
OpeEstimator = Literal["ips", "snips", "dr"]


class Alert(BaseModel):
    kind: AlertKind
    subject: str = Field(description="The feature, the placement, or 'persona_mix'")
    value: float = Field(
        description="PSI; or the relative change (-0.2: 20% lower) for reward_drop / ope_drop"
    )
    threshold: float = Field(
        description="The threshold crossed (PSI at or above it; a change at or below it)"
    )
    severity: Severity


class Thresholds(BaseModel):
    psi_watch: float
    psi_alert: float
    reward_drop: float = Field(
        description="Alert when the model's reward rate is this much below the holdout's"
    )
    ope_drop: float = Field(
        description="Alert when the OPE estimate falls this much against the window before"
    )
    min_decisions: int = Field(
        description="Fewer closed decisions in a group or window: no reward or OPE alert"
    )
    min_buyers: int = Field(description="Fewer buyers in a window: no drift alert")


class GroupRate(BaseModel):
    decisions: int = Field(description="Decisions made")
    closed: int = Field(description="Of those, with an outcome (reward) recorded; the others are still open")
    rewarded: int = Field(description="Closed decisions with a reward above 0")
    reward_sum: float
    rate: float | None = Field(description="Mean reward of the closed decisions (null: none closed)")


class DayRate(BaseModel):
    day: date = Field(description="UTC day the decisions were made")
    model: GroupRate
    holdout: GroupRate


class OpeEstimate(BaseModel):
    ips: float
    snips: float
    dr: float
    dr_ci_low: float
    dr_ci_high: float
    scored: int
    matched: int
    enough_data: bool = Field(description="At least 30 matched decisions and an effective sample size of 30")


class OpeWindow(BaseModel):
    start: datetime
    end: datetime
    decisions: int = Field(description="Rewarded decisions scored in the window")
    policies: dict[str, OpeEstimate]


class OpeReport(BaseModel):
    placement: str | None
    policy: OpePolicy
    estimator: OpeEstimator
    current: OpeWindow
    previous: OpeWindow = Field(description="The window of the same length just before the current one")
    change: float | None = Field(
        description="current / previous - 1 of the policy's estimate (null: not comparable)"
    )


class ModelsHealth(BaseModel):
    placement: str | None = Field(description="null: every placement together")
    days: int
    start: datetime
    end: datetime
    daily: list[DayRate] = Field(description="One row per UTC day of the period, oldest first")
    model: GroupRate = Field(description="Decisions served by a learned snapshot over the period")
    holdout: GroupRate = Field(description="Holdout decisions (rules only) over the period")
    relative_lift: float | None = Field(
        description="model rate / holdout rate - 1 (null: a rate is missing or 0)"
    )
    ope: OpeReport
    alerts: list[Alert]


class FeatureDrift(BaseModel):
    feature: str
    psi: float | None = Field(description="null: a window has no value of this feature")
    severity: Severity | None
    reference_n: int
    current_n: int
    bins: list[str] = Field(description="Upper cut point of each bin (reference quantiles); the last is +inf")
    reference_shares: list[float]
    current_shares: list[float]


class PersonaShare(BaseModel):
    persona: str
    reference: int
    current: int
    reference_share: float
    current_share: float


class PersonaMixDrift(BaseModel):
    psi: float | None
    severity: Severity | None
    reference_n: int
    current_n: int
    personas: list[PersonaShare]


class DriftWindow(BaseModel):
    start: datetime
    end: datetime


class DriftReport(BaseModel):
    reference: DriftWindow
    current: DriftWindow
    bins: int
    max_buyers: int = Field(description="At most this many buyers per window: the most recently updated")
    features: list[FeatureDrift] = Field(description="Numeric features, by name")
    persona_mix: PersonaMixDrift
    alerts: list[Alert]


class AlertsReport(BaseModel):
    generated_at: datetime
    thresholds: Thresholds
    alerts: list[Alert]
