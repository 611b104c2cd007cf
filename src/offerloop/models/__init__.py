"""Every ORM table, one module per aggregate. Importing this package registers them all."""

from offerloop.models.artifact import Artifact, ArtifactFile, ArtifactVersion, AtomUse
from offerloop.models.audit import AuditEntry
from offerloop.models.buyer import Buyer, Identity, IdentityConflict, Merge
from offerloop.models.content import CompositionPolicy, ContentAtom, QuizDefinition
from offerloop.models.decision import Action, Decision, PolicySnapshot
from offerloop.models.event import Event, QuarantinedEvent, Touchpoint
from offerloop.models.features import BuyerFeatures, BuyerPersona, PersonaChange
from offerloop.models.workspace import ApiKey, Workspace

__all__ = [
    "Action",
    "ApiKey",
    "Artifact",
    "ArtifactFile",
    "ArtifactVersion",
    "AtomUse",
    "AuditEntry",
    "Buyer",
    "BuyerFeatures",
    "BuyerPersona",
    "CompositionPolicy",
    "ContentAtom",
    "Decision",
    "Event",
    "Identity",
    "IdentityConflict",
    "Merge",
    "PersonaChange",
    "PolicySnapshot",
    "QuarantinedEvent",
    "QuizDefinition",
    "Touchpoint",
    "Workspace",
]
