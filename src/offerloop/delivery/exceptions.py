"""Errors of the delivery domain, each with its HTTP status and stable ``code``."""

from __future__ import annotations

from offerloop.core.errors import Conflict, NotFound, OfferloopError
from offerloop.declarative import ConfigError


class JourneyError(ConfigError):
    """A journey definition that does not parse or validate (every problem as ``file:line: path: message``)."""

    code = "invalid_journey"


class JourneyNotFound(NotFound):
    code = "journey_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"


class BadLink(OfferloopError):
    """A tracking or unsubscribe link whose signature does not verify (tampered, or from another server)."""

    status_code = 403
    code = "invalid_link"


class InvalidDeliverySettings(ConfigError):
    code = "invalid_delivery_settings"


class SuppressionNotFound(NotFound):
    code = "suppression_not_found"


class JourneyConflict(Conflict):
    code = "journey_conflict"


class SenderNotAllowed(OfferloopError):
    """A From address outside the domains the operator allowed this workspace (sender verification)."""

    status_code = 422
    code = "sender_not_allowed"


class InvalidSenderDomain(OfferloopError):
    status_code = 422
    code = "invalid_sender_domain"
