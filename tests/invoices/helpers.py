"""Shared steps of the invoices tests: a catalog, a buyer, a paid order, the announce jobs run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from offerloop.checkout import service as checkout_service
from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.invoices import service as invoices_service
from offerloop.jobs import runner
from offerloop.models import Invoice
from offerloop.offers import service as offers_service

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()


def load_catalog(db: Database, workspace_id: str) -> None:
    with db.write() as session:
        offers_service.load_catalog(session=session, workspace_id=workspace_id, text=CATALOG)


def paid_order(
    db: Database, workspace_id: str, user: str, *, offer: str = "pricing-playbook", bumps: tuple[str, ...] = (),
    tax_percent: str = "0", email: str | None = None,
) -> str:  # fmt: skip
    """A paid order of ``offer`` (and ``bumps``) for the buyer ``user``; returns its id."""
    with db.write() as session:
        buyer = checkout_service.buyer_for(
            session=session, workspace_id=workspace_id, user_id=user, email=email
        )
        order = checkout_service.begin(session=session, workspace_id=workspace_id, buyer_id=buyer, offer_key=offer,
                                       currency="USD", bumps=bumps, tax_percent=tax_percent)  # fmt: skip
        checkout_service.mark_paid(
            session=session, workspace_id=workspace_id, order_id=order.id, actor="test"
        )
    return order.id


def documents(db: Database, workspace_id: str, kind: str | None = None) -> list[Invoice]:
    """Every document of the workspace, in the order they were numbered."""
    with db.read() as session:
        stmt = select(Invoice).where(Invoice.workspace_id == workspace_id)
        if kind is not None:
            stmt = stmt.where(Invoice.kind == kind)
        rows = list(session.scalars(stmt.order_by(Invoice.kind, Invoice.seq)))
        session.expunge_all()
        return rows


def announce_all(db: Database, settings: Settings, workspace_id: str) -> list[runner.Ran]:
    """Run the queued announce jobs, as a worker with these settings would; the workspace's runs (a job another
    test committed to the shared database runs too, but is not this test's)."""
    ran: list[runner.Ran] = []
    while batch := runner.run_due(db, owner="test", only=(invoices_service.ANNOUNCE_KIND,), limit=50,
                                  deps={"settings": settings}):  # fmt: skip
        ran.extend(r for r in batch if r.workspace_id == workspace_id)
    return ran
