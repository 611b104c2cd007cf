"""`offerloop ledger payout`: a payout recorded from the CLI moves the creator's balance to paid out, once per
reference (issue 8, item 7)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import _db, _invoke, _workspace, cli_env

from offerloop.checkout import service as checkout_service
from offerloop.ledger import service as ledger_service
from offerloop.ledger.postings import Account, balance

__all__ = ["cli_env"]  # the fixture

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml"


def test_a_payout_is_recorded_once_from_the_cli(cli_env: str) -> None:
    ws = _workspace()["id"]
    assert _invoke("offers", "load", "-w", ws, str(CATALOG)).exit_code == 0
    db = _db(cli_env)
    with db.write() as session:
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="ada")
        order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="pricing-playbook",
                                       currency="USD")  # fmt: skip
    assert _invoke("orders", "mark-paid", "-w", ws, order.id).exit_code == 0
    args = ("ledger", "payout", "-w", ws, "--reference", "tr_001", "--amount", "2500", "--currency", "USD")
    first = _invoke(*args)
    assert first.exit_code == 0 and "USD 25.00 recorded; pending USD 2.00" in first.stdout, first.stdout
    again = _invoke(*args)
    assert again.exit_code == 0 and "already recorded" in again.stdout
    over = _invoke("ledger", "payout", "-w", ws, "--reference", "tr_002", "--amount", "201")
    assert over.exit_code != 0
    with db.read() as session:
        entries = [e for e, _ in ledger_service.entries(session=session, workspace_id=ws)]
        bal = balance(entries, currency="USD")
        assert (bal[Account.PAYOUTS_PAID].amount, bal[Account.PAYOUTS_PENDING].amount) == (2500, 200)
        assert ledger_service.unbalanced_orders(session=session, workspace_id=ws) == []
