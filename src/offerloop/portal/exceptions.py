"""Buyer portal errors, each with its HTTP status (rendered as an HTML page of the portal)."""

from __future__ import annotations

from offerloop.core.errors import Forbidden, NotFound, OfferloopError, RateLimited, ValidationFailed


class PortalSignInRequired(OfferloopError):
    status_code = 401
    code = "sign_in_required"


class LinkNotValid(OfferloopError):
    """Unknown, used, expired or forged: one answer for all (which of them it was helps no one guessing)."""

    status_code = 401
    code = "link_not_valid"


class PortalNotFound(NotFound):
    code = "not_found"


class PortalCsrfRefused(Forbidden):
    code = "csrf_refused"


class PortalRateLimited(RateLimited):
    code = "too_many_requests"


class InvalidPortalForm(ValidationFailed):
    code = "invalid_form"
