"""Every ORM table, one module per aggregate. Importing this package registers them all."""

from offerloop.models.audit import AuditEntry
from offerloop.models.buyer import Buyer, Identity, IdentityConflict, Merge
from offerloop.models.decision import Action, Decision, PolicySnapshot
from offerloop.models.event import Event, QuarantinedEvent, Touchpoint
from offerloop.models.features import BuyerFeatures, BuyerPersona, PersonaChange
from offerloop.models.workspace import ApiKey, Workspace

__all__ = [
    "Action",
    "ApiKey",
    "AuditEntry",
    "Buyer",
    "BuyerFeatures",
    "BuyerPersona",
    "Decision",
    "Event",
    "Identity",
    "IdentityConflict",
    "Merge",
    "PersonaChange",
    "PolicySnapshot",
    "QuarantinedEvent",
    "Touchpoint",
    "Workspace",
]
