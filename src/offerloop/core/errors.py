"""The base of every domain error: an HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any


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
