"""The base of every domain error: an HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class OfferloopError(Exception):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def with_status(self, status_code: int) -> OfferloopError:
        self.status_code = status_code
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFound(OfferloopError):
    status_code = 404
    code = "not_found"


class Unauthorized(OfferloopError):
    status_code = 401
    code = "unauthorized"


class Forbidden(OfferloopError):
    status_code = 403
    code = "forbidden"


class Conflict(OfferloopError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(OfferloopError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(OfferloopError):
    status_code = 422
    code = "validation_failed"


class RateLimited(OfferloopError):
    """429: too many requests from one client; ``details.retry_after_s`` (and the Retry-After header) say
    when to try again."""

    status_code = 429
    code = "rate_limited"


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable; see the route's documented codes")
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


def error_responses(*errors: type[OfferloopError]) -> dict[int | str, dict[str, Any]]:
    """A route's documented error responses, grouped by status, each naming its codes, for
    ``@router.get(..., responses=error_responses(BuyerNotFound, Conflict))``."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        codes = by_status.setdefault(error.status_code, [])
        if error.code not in codes:
            codes.append(error.code)
    return {
        status: {"model": ErrorBody, "description": "code: " + ", ".join(f"`{c}`" for c in codes)}
        for status, codes in sorted(by_status.items())
    }
