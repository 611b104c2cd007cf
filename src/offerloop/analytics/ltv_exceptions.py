"""The LTV fit's errors."""

from __future__ import annotations

from offerloop.core.errors import ValidationFailed


class NotEnoughBuyers(ValidationFailed):
    """Too few buyers (or repeat buyers, or buyers with spend) before the calibration end to fit the models."""

    code = "ltv_not_enough_buyers"


class LTVFitFailed(ValidationFailed):
    """The data does not identify the model (the likelihood has no finite maximum)."""

    code = "ltv_fit_failed"


class BadLTVPeriod(ValidationFailed):
    """The observation end is before the calibration end."""

    code = "ltv_bad_period"
