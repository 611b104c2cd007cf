"""Errors of the reports domain."""

from __future__ import annotations

from typing import Any

from offerloop.core.errors import OfferloopError, RateLimited, ValidationFailed


class StoredError(OfferloopError):
    """The domain error a report's last computation raised, shown again with its status and code until the
    report is computed anew (a background refresh cannot answer the request that asked for it)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(
            str(error.get("message", "")), details=error.get("details"), code=str(error.get("code"))
        )
        self.status_code = int(error.get("status", 400))


class TooManyReports(RateLimited):
    code = "too_many_reports"


class BadReport(ValidationFailed):
    code = "bad_report"
