"""Errors of the entitlements domain, each with its HTTP status and stable code."""

from offerloop.core.errors import Conflict, NotFound, ValidationFailed


class EntitlementNotFound(NotFound):
    code = "entitlement_not_found"


class InvalidComponent(ValidationFailed):
    code = "invalid_component"


class InvalidEntitlement(ValidationFailed):
    code = "invalid_entitlement"


class ReservedSource(ValidationFailed):
    code = "reserved_source"


class BuyerIdentifierRequired(ValidationFailed):
    code = "buyer_identifier_required"


class QuotaExhausted(Conflict):
    code = "quota_exhausted"


class NotEntitled(Conflict):
    code = "not_entitled"
