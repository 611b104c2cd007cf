"""Every ORM table, one module per aggregate. Importing this package registers them all."""

from offerloop.models.analytics import (
    AnalyticsBuyer,
    AnalyticsPersonaFirst,
    AnalyticsPersonaPurchase,
    AnalyticsPurchase,
)
from offerloop.models.artifact import Artifact, ArtifactFile, ArtifactVersion, AtomUse
from offerloop.models.attribution import AttributionCredit
from offerloop.models.audit import AuditEntry
from offerloop.models.buyer import Buyer, Identity, IdentityConflict, Merge
from offerloop.models.commerce import (
    BuyerClaim,
    Coupon,
    DropStock,
    Entitlement,
    FulfilmentTask,
    LedgerBalance,
    LedgerEntry,
    LedgerPosting,
    Offer,
    Order,
    PaymentEvent,
    StockHold,
    Subscription,
)
from offerloop.models.console import ConsoleSession, ConsoleUser
from offerloop.models.content import CompositionPolicy, ContentAtom, QuizDefinition
from offerloop.models.decision import Action, Decision, PolicySnapshot
from offerloop.models.delivery import (
    DeliverySettings,
    JourneyRun,
    JourneyVersion,
    OutboxMessage,
    SenderDomain,
    Suppression,
)
from offerloop.models.delivery_channels import (
    PushSubscription,
    VapidKey,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from offerloop.models.delivery_reports import DeliveryReport
from offerloop.models.event import (
    Event,
    EventDedup,
    ParkedEvent,
    PipelineOrigin,
    QuarantinedEvent,
    Touchpoint,
)
from offerloop.models.experiments import Experiment, Exposure
from offerloop.models.features import BuyerFeatures, BuyerPersona, PersonaChange
from offerloop.models.invoices import Invoice, InvoiceCounter
from offerloop.models.jobs import Job
from offerloop.models.ltv import BuyerScore
from offerloop.models.portal import PortalLoginToken, PortalSession
from offerloop.models.promises import JourneyTick, Promise
from offerloop.models.reports import ReportSnapshot
from offerloop.models.storefront import StorefrontCheckout
from offerloop.models.workspace import ApiKey, ServerSecret, Workspace

__all__ = [
    "Action",
    "AnalyticsBuyer",
    "AnalyticsPersonaFirst",
    "AnalyticsPersonaPurchase",
    "AnalyticsPurchase",
    "ApiKey",
    "Artifact",
    "ArtifactFile",
    "ArtifactVersion",
    "AtomUse",
    "AttributionCredit",
    "AuditEntry",
    "Buyer",
    "BuyerClaim",
    "BuyerFeatures",
    "BuyerPersona",
    "BuyerScore",
    "CompositionPolicy",
    "ConsoleSession",
    "ConsoleUser",
    "ContentAtom",
    "Coupon",
    "Decision",
    "DeliveryReport",
    "DeliverySettings",
    "DropStock",
    "Entitlement",
    "Event",
    "EventDedup",
    "Experiment",
    "Exposure",
    "FulfilmentTask",
    "Identity",
    "IdentityConflict",
    "Invoice",
    "InvoiceCounter",
    "Job",
    "JourneyRun",
    "JourneyTick",
    "JourneyVersion",
    "LedgerBalance",
    "LedgerEntry",
    "LedgerPosting",
    "Merge",
    "Offer",
    "Order",
    "OutboxMessage",
    "ParkedEvent",
    "PaymentEvent",
    "PersonaChange",
    "PipelineOrigin",
    "PolicySnapshot",
    "PortalLoginToken",
    "PortalSession",
    "Promise",
    "PushSubscription",
    "QuarantinedEvent",
    "QuizDefinition",
    "ReportSnapshot",
    "SenderDomain",
    "ServerSecret",
    "StockHold",
    "StorefrontCheckout",
    "Subscription",
    "Suppression",
    "Touchpoint",
    "VapidKey",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
]
