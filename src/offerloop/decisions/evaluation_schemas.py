"""Pydantic shapes of the out-of-sample evaluation report (``GET /v1/evaluation``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class EstimateRead(BaseModel):
    estimator: Literal["ips", "snips", "dr"]
    value: float
    stderr: float | None = Field(description="Normal-approximation standard error (null: undefined)")
    ci_low: float
    ci_high: float
    interval: str = Field(description="How the interval was computed: empirical-bernstein | wilson-ess")
    n: int
    effective_sample_size: float
    max_weight: float


class PolicyEvaluation(BaseModel):
    ips: EstimateRead
    snips: EstimateRead
    dr: EstimateRead
    scored: int = Field(description="Rewarded decisions this policy was scored on (out of sample)")
    matched: int = Field(
        description="Of those, decisions whose logged action is the policy's most likely one"
    )
    matched_rewarded: int = Field(description="Matched decisions with a reward above 0")
    effective_sample_size: float
    enough_data: bool = Field(description="At least 30 matched decisions and an ESS of at least 30")
    snapshots: dict[str, int] | None = Field(
        default=None, description="Model only: decisions scored by each snapshot ('home v1': 812)"
    )
    first_decision_at: datetime | None = Field(
        default=None, description="Model only: the first decision it was scored on (made after a snapshot)"
    )


class LiftRead(BaseModel):
    model: float | None
    model_n: int
    holdout: float | None
    holdout_n: int
    lift: float | None = Field(description="null when a group is below the minimum")
    ci_low: float | None
    ci_high: float | None
    verdict: Literal["significant", "not enough data"]
    reason: str


class OnlineLiftRead(BaseModel):
    min_group: int
    level: float
    persona_level: float = Field(description="Bonferroni level of each per-persona comparison")
    overall: LiftRead
    by_persona: dict[str, LiftRead]


class EvaluationReport(BaseModel):
    decisions: int = Field(description="Rewarded decisions scored (made at or after `since`)")
    placement: str | None
    method: str = Field(examples=["out-of-sample: progressive validation over 1000 decisions"])
    policies: dict[str, PolicyEvaluation]
    online: OnlineLiftRead | None = None
