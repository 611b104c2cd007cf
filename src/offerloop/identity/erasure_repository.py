"""Every SQL statement of erasure (GDPR): the buyer's identifiers and personal fields dropped, and their
rows found and deleted across the other stores (the plan is in ``identity.erasure``, the steps in the service).
The rest of the identity domain's SQL is in ``identity.repository``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.identity.repository import _chunks
from offerloop.models import (
    Artifact,
    ArtifactFile,
    ArtifactVersion,
    AtomUse,
    AttributionCredit,
    Buyer,
    DeliveryReport,
    Entitlement,
    Event,
    EventDedup,
    FulfilmentTask,
    Identity,
    IdentityConflict,
    JourneyRun,
    Merge,
    Order,
    OutboxMessage,
    ParkedEvent,
    PaymentEvent,
    PortalLoginToken,
    PortalSession,
    PushSubscription,
    QuarantinedEvent,
    ReportSnapshot,
    Suppression,
    Touchpoint,
    WebhookAttempt,
    WebhookDelivery,
)


def erase_buyer(session: Session, workspace_id: str, buyer_ids: list[str], at: datetime) -> dict[str, int]:
    """GDPR erasure: drop identifiers and personal fields, keep anonymised event facts for aggregates."""
    idents = session.execute(
        scoped_select(Identity, workspace_id, Identity.kind, Identity.value).where(
            Identity.buyer_id.in_(buyer_ids)
        )
    ).all()
    anon_values = [v for k, v in idents if k == "anonymous_id"]
    user_values = [v for k, v in idents if k == "user_id"]
    quarantined = 0
    for column, values in (
        (QuarantinedEvent.anonymous_id, anon_values),
        (QuarantinedEvent.user_id, user_values),
    ):
        for chunk in _chunks(values):
            res = session.execute(scoped_delete(QuarantinedEvent, workspace_id).where(column.in_(chunk)))
            quarantined += res.rowcount or 0  # type: ignore[attr-defined]
    removed = session.execute(scoped_delete(Identity, workspace_id).where(Identity.buyer_id.in_(buyer_ids)))
    events = session.execute(
        scoped_update(Event, workspace_id)
        .where(Event.buyer_id.in_(buyer_ids))
        .values(user_id=None, anonymous_id=None, traits=None, context=None, previous_id=None)
    )
    session.execute(
        scoped_update(Touchpoint, workspace_id)
        .where(Touchpoint.buyer_id.in_(buyer_ids))
        .values(click_id=None, landing_url=None)
    )
    session.execute(
        scoped_update(Buyer, workspace_id)
        .where(Buyer.id.in_(buyer_ids))
        .values(
            user_id=None,
            traits={},
            trait_times={},
            consent_marketing=None,
            consent_personalization=None,
            consent_ai_rewrite=None,
            deleted_at=at,
        )
    )
    return {
        "identities": removed.rowcount or 0,  # type: ignore[attr-defined]
        "events_anonymised": events.rowcount or 0,  # type: ignore[attr-defined]
        "quarantined_deleted": quarantined,
    }


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def rows_for_erasure(
    session: Session,
    model: Any,
    workspace_id: str,
    *,
    keyed: Any = None,
    text_columns: Iterable[Any] = (),
    needle_forms: Iterable[str] = (),
) -> list[Any]:
    """Rows of ``model`` in the workspace that are the buyer's (``keyed``) or whose text columns mention
    one of ``needle_forms`` (lower-cased; JSON is compared as its stored text)."""
    found: dict[Any, Any] = {}
    ws = model.workspace_id == workspace_id
    if model is PaymentEvent:  # a webhook not matched to an order has no workspace yet
        ws = ws | model.workspace_id.is_(None)
    if keyed is not None:
        for row in session.scalars(select(model).where(ws, keyed)):
            found[row.id] = row
    forms = list(needle_forms)
    columns = list(text_columns)
    if forms and columns:
        for chunk in _chunks(forms, 50):
            clause = or_(
                *(func.lower(cast(col, Text)).like(_like(f), escape="\\") for col in columns for f in chunk)
            )
            for row in session.scalars(select(model).where(ws, clause)):
                found[row.id] = row
    return list(found.values())


def touchpoints_of(session: Session, workspace_id: str, buyer_ids: list[str]) -> list[Touchpoint]:
    return list(
        session.scalars(scoped_select(Touchpoint, workspace_id).where(Touchpoint.buyer_id.in_(buyer_ids)))
    )


def credits_of(session: Session, workspace_id: str, buyer_ids: list[str]) -> list[AttributionCredit]:
    stmt = scoped_select(AttributionCredit, workspace_id).where(AttributionCredit.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt))


def order_ids_of(session: Session, workspace_id: str, buyer_ids: list[str]) -> list[str]:
    stmt = scoped_select(Order, workspace_id, Order.id).where(Order.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt))


def delete_rows(session: Session, rows: Iterable[Any]) -> int:
    count = 0
    for row in rows:
        session.delete(row)
        count += 1
    session.flush()
    return count


def delete_buyer_stores(session: Session, workspace_id: str, buyer_ids: list[str]) -> dict[str, int]:
    """Delete the stores that are personal through and through: artifacts (versions, files, atom uses),
    entitlements, fulfilment tasks, merges and refused merges naming the buyer."""
    counts: dict[str, int] = {}
    artifact_ids = list(
        session.scalars(
            scoped_select(Artifact, workspace_id, Artifact.id).where(Artifact.buyer_id.in_(buyer_ids))
        )
    )
    for chunk in _chunks(artifact_ids):
        for child in (AtomUse, ArtifactFile, ArtifactVersion):
            session.execute(scoped_delete(child, workspace_id).where(child.artifact_id.in_(chunk)))
        session.execute(scoped_delete(Artifact, workspace_id).where(Artifact.id.in_(chunk)))
    counts["artifacts"] = len(artifact_ids)
    deletes = {
        "entitlements": scoped_delete(Entitlement, workspace_id).where(Entitlement.buyer_id.in_(buyer_ids)),
        "fulfilment_tasks": scoped_delete(FulfilmentTask, workspace_id).where(
            FulfilmentTask.buyer_id.in_(buyer_ids)
        ),
        "portal_sessions": scoped_delete(PortalSession, workspace_id).where(
            PortalSession.buyer_id.in_(buyer_ids)
        ),
        "portal_login_tokens": scoped_delete(PortalLoginToken, workspace_id).where(
            PortalLoginToken.buyer_id.in_(buyer_ids)
        ),
        "merges": scoped_delete(Merge, workspace_id).where(
            Merge.winner_id.in_(buyer_ids) | Merge.loser_id.in_(buyer_ids)
        ),
        "identity_conflicts": scoped_delete(IdentityConflict, workspace_id).where(
            IdentityConflict.buyer_id.in_(buyer_ids) | IdentityConflict.other_buyer_id.in_(buyer_ids)
        ),
        # the workspace's report snapshots: aggregates that counted the person (an attribution by post may name a
        # personal utm_content); the next view computes them again without them
        "report_snapshots": scoped_delete(ReportSnapshot, workspace_id),
    }
    for name, stmt in deletes.items():
        counts[name] = session.execute(stmt).rowcount or 0  # type: ignore[attr-defined]
    return counts


def erase_delivery(
    session: Session, workspace_id: str, buyer_ids: list[str], addresses: list[str]
) -> dict[str, int]:
    """Journey runs go; messages stay for counts with their address and content erased; suppressions of
    the buyer's addresses go (the buyer is gone, so nothing is sent to them again)."""
    runs = session.execute(scoped_delete(JourneyRun, workspace_id).where(JourneyRun.buyer_id.in_(buyer_ids)))
    # Webhook deliveries of their messages (the payload carries the rendered text) and their push subscriptions.
    sent = scoped_select(OutboxMessage, workspace_id, OutboxMessage.message_id).where(
        OutboxMessage.buyer_id.in_(buyer_ids), OutboxMessage.channel == "webhook"
    )
    hooks = list(session.scalars(scoped_select(WebhookDelivery, workspace_id, WebhookDelivery.id).where(
        WebhookDelivery.idempotency_key.in_(sent))))  # fmt: skip
    for chunk in _chunks(hooks):
        session.execute(
            scoped_delete(WebhookAttempt, workspace_id).where(WebhookAttempt.delivery_id.in_(chunk))
        )
        session.execute(scoped_delete(WebhookDelivery, workspace_id).where(WebhookDelivery.id.in_(chunk)))
    pushes = session.execute(
        scoped_delete(PushSubscription, workspace_id).where(PushSubscription.buyer_id.in_(buyer_ids))
    )
    outbox = session.execute(
        scoped_update(OutboxMessage, workspace_id)
        .where(OutboxMessage.buyer_id.in_(buyer_ids))
        .values(recipient=None, subject=None, body={}, detail=None)
    )
    reports = session.execute(
        scoped_delete(DeliveryReport, workspace_id).where(DeliveryReport.buyer_id.in_(buyer_ids))
    )
    suppressions = session.execute(
        scoped_delete(Suppression, workspace_id).where(
            Suppression.address.in_([a.lower() for a in addresses] + addresses)
        )
    )
    return {
        "journey_runs": runs.rowcount or 0,  # type: ignore[attr-defined]
        "delivery_outbox": outbox.rowcount or 0,  # type: ignore[attr-defined]
        "delivery_suppressions": suppressions.rowcount or 0,  # type: ignore[attr-defined]
        "delivery_reports": reports.rowcount or 0,  # type: ignore[attr-defined]
        "webhook_deliveries": len(hooks),
        "push_subscriptions": pushes.rowcount or 0,  # type: ignore[attr-defined]
    }


def rename_dedup(session: Session, workspace_id: str, renamed: dict[str, str]) -> None:
    """Give the exactly-once records of pseudonymised events their new message ids."""
    for old, new in renamed.items():
        session.execute(
            scoped_update(EventDedup, workspace_id).where(EventDedup.message_id == old).values(message_id=new)
        )


def parked_of(session: Session, workspace_id: str, seqs: list[int]) -> Iterator[ParkedEvent]:
    for chunk in _chunks(seqs):
        yield from session.scalars(scoped_select(ParkedEvent, workspace_id).where(ParkedEvent.seq.in_(chunk)))


def buyer_events_for_erasure(session: Session, workspace_id: str, buyer_ids: list[str]) -> Iterator[Event]:
    for chunk in _chunks(buyer_ids):
        stmt = scoped_select(Event, workspace_id).where(Event.buyer_id.in_(chunk))
        yield from session.scalars(stmt.order_by(Event.id))
