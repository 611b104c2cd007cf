"""`offerloop offers|orders|ledger`: the catalog, manual payments and refunds, and the books."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from offerloop.checkout import service as checkout_service
from offerloop.cli.common import WorkspaceOpt, database, domain_errors, print_json, settings
from offerloop.ledger import service as ledger_service
from offerloop.offers import service as offers_service

offers_app = typer.Typer(help="The offers catalog.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders: manual payments, refunds, fulfilment.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger: orders, payouts, CSV export.", no_args_is_help=True)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@offers_app.command("load")
def offers_load(
    workspace: WorkspaceOpt, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Load the offers catalog (YAML); every problem is reported with its line."""
    with domain_errors(), database() as db, db.write() as session:
        out = offers_service.load_catalog(
            session=session, workspace_id=workspace, text=file.read_text(), actor="cli"
        )
    typer.echo(
        f"catalog version {out['version']}: {len(out['offers'])} offers, {len(out['coupons'])} coupons"
    )


@offers_app.command("signoff")
def offers_signoff(workspace: WorkspaceOpt, key: str) -> None:
    """Sign off a drop so it can go live in its sale window."""
    with domain_errors(), database() as db, db.write() as session:
        out = offers_service.sign_off(session=session, workspace_id=workspace, key=key, actor="cli")
    typer.echo(f"{key}: {out['state']}")


@offers_app.command("list")
def offers_list(workspace: WorkspaceOpt) -> None:
    with domain_errors(), database() as db, db.read() as session:
        for o in offers_service.list_offers(session=session, workspace_id=workspace):
            stock = f" stock {o['stock']['sold']}/{o['stock']['total']} sold" if o["stock"] else ""
            typer.echo(f"{o['key']:24} {o['kind']:12} {o['state']:10}{stock}")


@orders_app.command("mark-paid")
def orders_mark_paid(
    workspace: WorkspaceOpt,
    order_id: str,
    reference: Annotated[str | None, typer.Option(help="Invoice/bank ref")] = None,
) -> None:
    """Manual provider: record payment of an order (idempotent), then deliver its components."""
    cfg = settings()
    with domain_errors(), database(cfg) as db:
        with db.write() as session:
            out = checkout_service.mark_paid(session=session, workspace_id=workspace, order_id=order_id, actor="cli",
                                             provider_ref=reference, platform_fee_percent=cfg.platform_fee_percent)  # fmt: skip
        done = checkout_service.run_fulfilment(db=db)
    typer.echo(f"{order_id}: {out.status} ({out.formatted_total}); {len(done)} components delivered now")


@orders_app.command("refund")
def orders_refund(
    workspace: WorkspaceOpt, order_id: str,
    amount: Annotated[int | None, typer.Option(help="Minor units; omit for a full refund")] = None,
) -> None:  # fmt: skip
    cfg = settings()
    with domain_errors(), database(cfg) as db, db.write() as session:
        # an order paid through Stripe is refunded in Stripe first (the settings' account), then booked
        out = checkout_service.refund(
            session=session,
            workspace_id=workspace,
            order_id=order_id,
            amount=amount,
            actor="cli",
            provider=checkout_service.stripe_provider(cfg),
        )
    typer.echo(f"{order_id}: {out.status}, refunded {out.refunded} of {out.total}")


@orders_app.command("fulfil")
def orders_fulfil() -> None:
    """Run the fulfilment tasks that are due now (the server does this continuously)."""
    with domain_errors(), database() as db:
        for order_id, component, status in checkout_service.run_fulfilment(db=db):
            typer.echo(f"{order_id} {component}: {status}")


@orders_app.command("show")
def orders_show(workspace: WorkspaceOpt, order_id: str) -> None:
    with domain_errors(), database() as db, db.read() as session:
        print_json(
            ledger_service.order_ledger(
                session=session, workspace_id=workspace, order_id=order_id
            ).model_dump(mode="json")
        )


@ledger_app.command("export")
def ledger_export(
    workspace: WorkspaceOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file")] = Path("ledger.csv"),
) -> None:
    """Every posting as CSV (one row per posting; debits and credits)."""
    with domain_errors(), database() as db, db.read() as session:
        text = ledger_service.export_csv(session=session, workspace_id=workspace)
    out.write_text(text, newline="")
    typer.echo(f"{out}: {text.count(chr(10)) - 1} postings")


@ledger_app.command("payouts")
def ledger_payouts(
    workspace: WorkspaceOpt, start: Annotated[datetime, typer.Option()], end: Annotated[datetime, typer.Option()],
    currency: str = "USD",
) -> None:  # fmt: skip
    """The period's payout report: gross, discounts, refunds, tax, fees and net."""
    with domain_errors(), database() as db, db.read() as session:
        print_json(ledger_service.payouts(session=session, workspace_id=workspace, start=_utc(start), end=_utc(end),
                                          currency=currency).model_dump(mode="json"))  # fmt: skip


@ledger_app.command("payout")
def ledger_payout(
    workspace: WorkspaceOpt,
    reference: Annotated[str, typer.Option(help="The bank transfer's id (repeating it changes nothing)")],
    amount: Annotated[int, typer.Option(help="Minor units")],
    currency: str = "USD",
    paid_at: Annotated[datetime | None, typer.Option(help="When it was paid out (default: now)")] = None,
) -> None:
    """Record a payout: the amount moves from the creator's pending balance to paid out."""
    with domain_errors(), database() as db, db.write() as session:
        out = ledger_service.record_payout(session=session, workspace_id=workspace, reference=reference,
                                           amount=amount, currency=currency, actor="cli",
                                           paid_at=_utc(paid_at) if paid_at else None)  # fmt: skip
    state = "recorded" if out.created else "already recorded"
    typer.echo(f"payout {reference}: {out.formatted} {state}; pending {out.pending_balance.formatted}")
