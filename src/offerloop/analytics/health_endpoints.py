"""HTTP API of model and data health (secret key): reward rate and OPE of the decision engine, drift of the
buyer features and the persona mix, and the alerts their thresholds raise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from offerloop.analytics import health
from offerloop.analytics.health_schemas import (
    AlertsReport,
    DriftReport,
    ModelsHealth,
    OpeEstimator,
    OpePolicy,
    Thresholds,
)
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.web import Decimal, Int
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1/health", tags=["health"])

_ERRORS = error_responses(InvalidKey, SecretKeyRequired, ValidationFailed)
D = health.DEFAULTS

Days = Annotated[Int, Query(ge=1, le=90, description="Reward rate: the last N UTC days (today included); OPE: "
                            "the last N days against the N days before")]  # fmt: skip
ReferenceDays = Annotated[Int, Query(ge=1, le=365, description="Length of the reference window, which ends "
                                     "where the current window starts")]  # fmt: skip
CurrentDays = Annotated[Int, Query(ge=1, le=90, description="Length of the current window, ending now")]
Policy = Annotated[OpePolicy, Query(description="Whose OPE estimate an ope_drop alert watches")]
Estimator = Annotated[OpeEstimator, Query(description="Which OPE estimator an ope_drop alert watches")]


def thresholds(
    psi_watch: Annotated[Decimal, Query(gt=0, le=100, description="PSI at or above: severity 'watch'")] = D.psi_watch,
    psi_alert: Annotated[Decimal, Query(gt=0, le=100, description="PSI at or above: severity 'alert'")] = D.psi_alert,
    reward_drop: Annotated[Decimal, Query(gt=0, le=1, description="Relative drop of the model's reward rate below "
                                        "the holdout's that raises reward_drop")] = D.reward_drop,
    ope_drop: Annotated[Decimal, Query(gt=0, le=1, description="Relative fall of the OPE estimate against the "
                                     "window before that raises ope_drop")] = D.ope_drop,
    min_decisions: Annotated[Int, Query(ge=1, le=1_000_000, description="Fewer closed decisions in a group: no "
                                        "reward_drop alert")] = D.min_decisions,
    min_buyers: Annotated[Int, Query(ge=1, le=1_000_000, description="Fewer buyers in a window: no drift "
                                     "alert")] = D.min_buyers,
) -> Thresholds:  # fmt: skip
    if psi_watch > psi_alert:
        raise ValidationFailed("psi_watch must not be above psi_alert", code="invalid_thresholds",
                               details={"psi_watch": psi_watch, "psi_alert": psi_alert})  # fmt: skip
    return Thresholds(psi_watch=psi_watch, psi_alert=psi_alert, reward_drop=reward_drop, ope_drop=ope_drop,
                      min_decisions=min_decisions, min_buyers=min_buyers)  # fmt: skip


Limits = Annotated[Thresholds, Depends(thresholds)]


@router.get(
    "/models",
    summary="Reward rate by day of the model vs the holdout, OPE over a moving window, and their alerts",
    responses=_ERRORS,
)
def models(
    db: DB, principal: SecretKey, limits: Limits, days: Days = health.DAYS, policy: Policy = "model",
    estimator: Estimator = "dr",
    placement: Annotated[str | None, Query(min_length=1, max_length=64, description="Default: every placement "
                                           "together")] = None,
) -> ModelsHealth:  # fmt: skip
    with db.read() as session:
        return health.models_health(session=session, workspace_id=principal.workspace_id, placement=placement,
                                    days=days, thresholds=limits, policy=policy, estimator=estimator)  # fmt: skip


@router.get(
    "/drift",
    summary="PSI of every numeric buyer feature and of the persona mix, reference window vs current window",
    responses=_ERRORS,
)
def drift(
    db: DB, principal: SecretKey, limits: Limits, reference_days: ReferenceDays = health.REFERENCE_DAYS,
    current_days: CurrentDays = health.CURRENT_DAYS,
    bins: Annotated[Int, Query(ge=2, le=50, description="Quantile bins of the reference")] = 10,
    max_buyers: Annotated[Int, Query(ge=1, le=100_000, description="At most this many buyers per window (the "
                                     "most recently updated)")] = health.MAX_BUYERS,
) -> DriftReport:  # fmt: skip
    with db.read() as session:
        return health.drift(session=session, workspace_id=principal.workspace_id, reference_days=reference_days,
                            current_days=current_days, thresholds=limits, bins=bins, max_buyers=max_buyers)  # fmt: skip


@router.get(
    "/alerts",
    summary="Every health alert of the workspace: feature drift, persona mix, reward drop, OPE drop",
    responses=_ERRORS,
)
def alerts(
    db: DB, principal: SecretKey, limits: Limits, days: Days = health.DAYS,
    reference_days: ReferenceDays = health.REFERENCE_DAYS, current_days: CurrentDays = health.CURRENT_DAYS,
    policy: Policy = "model", estimator: Estimator = "dr",
) -> AlertsReport:  # fmt: skip
    with db.read() as session:
        return health.check(session=session, workspace_id=principal.workspace_id, thresholds=limits, days=days,
                            reference_days=reference_days, current_days=current_days, policy=policy,
                            estimator=estimator).alerts  # fmt: skip
