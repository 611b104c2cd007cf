"""Every SQL statement of the ledger domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select
from offerloop.models import LedgerBalance, LedgerEntry, LedgerPosting


def add_entry(
    session: Session,
    workspace_id: str,
    *,
    order_id: str | None,
    kind: str,
    occurred_at: datetime,
    tags: dict[str, Any],
    reference: str | None = None,
) -> LedgerEntry:
    """Insert an entry row (flushed: its id is set)."""
    row = LedgerEntry(
        workspace_id=workspace_id, order_id=order_id, kind=kind, occurred_at=occurred_at, tags=tags,
        reference=reference,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def entry_by_reference(session: Session, workspace_id: str, reference: str) -> LedgerEntry | None:
    stmt = scoped_select(LedgerEntry, workspace_id).where(LedgerEntry.reference == reference)
    return session.scalars(stmt).one_or_none()


def postings_of(session: Session, workspace_id: str, entry_id: int) -> list[LedgerPosting]:
    stmt = scoped_select(LedgerPosting, workspace_id).where(LedgerPosting.entry_id == entry_id)
    return list(session.scalars(stmt))


def lock_payouts(session: Session, workspace_id: str) -> None:
    """Serialise payouts of one workspace (each checks the pending balance the others draw from). SQLite
    already has a single writer (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"payout:{workspace_id}"})


def add_posting(
    session: Session,
    workspace_id: str,
    *,
    entry_id: int,
    account: str,
    amount: int,
    currency: str,
    memo: str = "",
    balance: bool = True,
) -> LedgerPosting:
    """Insert one posting row as given: no balance check (the service checks; ops tests break it on purpose).
    The account's running balance in that currency moves with it, in the same transaction (unless ``balance`` is
    False: the caller moves it, see ``add_to_balances``)."""
    row = LedgerPosting(
        workspace_id=workspace_id,
        entry_id=entry_id,
        account=account,
        amount=amount,
        currency=currency,
        memo=memo,
    )
    session.add(row)
    session.flush()
    if balance:
        _add_to_balance(session, workspace_id, account, currency, amount)
    return row


def add_to_balances(session: Session, workspace_id: str, moves: list[tuple[str, str, int]]) -> None:
    """Move running balances by (account, currency, amount), one upsert per balance in (account, currency)
    order: two transactions moving the same balances lock their rows in the same order, so they wait for each
    other instead of deadlocking (a sale and a refund post to the same accounts in opposite orders)."""
    totals: dict[tuple[str, str], int] = {}
    for account, currency, amount in moves:
        totals[(account, currency)] = totals.get((account, currency), 0) + amount
    for (account, currency), amount in sorted(totals.items()):
        _add_to_balance(session, workspace_id, account, currency, amount)


def _add_to_balance(session: Session, workspace_id: str, account: str, currency: str, amount: int) -> None:
    """One atomic upsert: concurrent postings to the same account add up (the row is locked until commit)."""
    dialect = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = dialect(LedgerBalance).values(
        workspace_id=workspace_id, account=account, currency=currency, amount=amount
    )
    session.execute(stmt.on_conflict_do_update(
        index_elements=["workspace_id", "account", "currency"],
        set_={"amount": LedgerBalance.amount + stmt.excluded.amount},
    ))  # fmt: skip


def rebuild_balances(session: Session, workspace_id: str) -> int:
    """Recompute the workspace's running balances from its postings (rows written around add_posting, such as
    a bulk load); the number of balances."""
    session.execute(scoped_delete(LedgerBalance, workspace_id))
    p = LedgerPosting
    sums = scoped_select(p, workspace_id, p.workspace_id, p.account, p.currency, func.sum(p.amount)).group_by(
        p.workspace_id, p.account, p.currency
    )
    columns = ["workspace_id", "account", "currency", "amount"]
    session.execute(insert(LedgerBalance).from_select(columns, sums))
    return len(account_balances(session, workspace_id))


def entries_with_postings(
    session: Session,
    workspace_id: str,
    *,
    order_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    currency: str | None = None,
) -> list[tuple[LedgerEntry, list[LedgerPosting]]]:
    """Entries (``start <= occurred_at < end``; of one order; touching ``currency``) with all their postings,
    by time then id, postings in insertion order."""
    stmt = (
        scoped_select(LedgerEntry, workspace_id, LedgerEntry, LedgerPosting)
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerPosting.workspace_id == workspace_id)
    )
    if order_id is not None:
        # the postings of the order's entries only: without it SQLite (no statistics) drove the join from every
        # posting of the workspace (0.3 s at 100k orders), not from the order's few entries
        of_order = scoped_select(LedgerEntry, workspace_id, LedgerEntry.id).where(
            LedgerEntry.order_id == order_id
        )
        stmt = stmt.where(LedgerEntry.order_id == order_id, LedgerPosting.entry_id.in_(of_order))
    if start is not None:
        stmt = stmt.where(LedgerEntry.occurred_at >= start)
    if end is not None:
        stmt = stmt.where(LedgerEntry.occurred_at < end)
    if currency is not None:
        touching = scoped_select(LedgerPosting, workspace_id, LedgerPosting.entry_id).where(
            LedgerPosting.currency == currency
        )
        stmt = stmt.where(LedgerEntry.id.in_(touching))
    stmt = stmt.order_by(LedgerEntry.occurred_at, LedgerEntry.id, LedgerPosting.id)
    out: list[tuple[LedgerEntry, list[LedgerPosting]]] = []
    for entry, posting in session.execute(stmt):
        if not out or out[-1][0].id != entry.id:
            out.append((entry, []))
        out[-1][1].append(posting)
    return out


def unbalanced(session: Session, workspace_id: str) -> list[tuple[int, str | None, str, int]]:
    """(entry id, order id, currency, sum) of every entry whose postings do not sum to zero in a currency."""
    total = func.sum(LedgerPosting.amount)
    stmt = (
        scoped_select(
            LedgerEntry, workspace_id, LedgerEntry.id, LedgerEntry.order_id, LedgerPosting.currency, total
        )
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerPosting.workspace_id == workspace_id)
        .group_by(LedgerEntry.id, LedgerEntry.order_id, LedgerPosting.currency)
        .having(total != 0)
        .order_by(LedgerEntry.id, LedgerPosting.currency)
    )
    return [(int(i), o, c, int(s)) for i, o, c, s in session.execute(stmt)]


def account_balances(session: Session, workspace_id: str) -> list[tuple[str, str, int]]:
    """(account, currency, sum of its postings) of every account used, by account then currency: the running
    balances kept with each posting (a few rows, whatever the size of the ledger)."""
    stmt = scoped_select(
        LedgerBalance, workspace_id, LedgerBalance.account, LedgerBalance.currency, LedgerBalance.amount
    ).order_by(LedgerBalance.account, LedgerBalance.currency)
    return [(a, c, int(s)) for a, c, s in session.execute(stmt)]


def entries_page(
    session: Session, workspace_id: str, *, limit: int, after_id: int | None, kind: str | None,
    order_id: str | None, start: datetime | None, end: datetime | None, newest_first: bool = False,
) -> list[tuple[LedgerEntry, list[LedgerPosting]]]:  # fmt: skip
    """Up to ``limit`` entries by id after ``after_id`` (before it, ``newest_first``; of one kind or order;
    ``start <= occurred_at < end``), each with its postings in insertion order."""
    stmt = scoped_select(LedgerEntry, workspace_id)
    if after_id is not None:
        stmt = stmt.where(LedgerEntry.id < after_id if newest_first else LedgerEntry.id > after_id)
    if kind is not None:
        stmt = stmt.where(LedgerEntry.kind == kind)
    if order_id is not None:
        stmt = stmt.where(LedgerEntry.order_id == order_id)
    if start is not None:
        stmt = stmt.where(LedgerEntry.occurred_at >= start)
    if end is not None:
        stmt = stmt.where(LedgerEntry.occurred_at < end)
    by_id = LedgerEntry.id.desc() if newest_first else LedgerEntry.id
    entries = list(session.scalars(stmt.order_by(by_id).limit(limit)))
    if not entries:
        return []
    postings = scoped_select(LedgerPosting, workspace_id).where(
        LedgerPosting.entry_id.in_([e.id for e in entries])
    )
    by_entry: dict[int, list[LedgerPosting]] = {e.id: [] for e in entries}
    for posting in session.scalars(postings.order_by(LedgerPosting.id)):
        by_entry[posting.entry_id].append(posting)
    return [(e, by_entry[e.id]) for e in entries]


def period_sums(
    session: Session, workspace_id: str, *, start: datetime, end: datetime, currency: str
) -> tuple[dict[str, int], int]:
    """The payout report's figures as two aggregates: (account -> sum of its postings in ``currency`` over
    the entries of ``[start, end)``, how many orders have a sale entry in the period touching ``currency``).
    The entries come by their ``(workspace_id, occurred_at)`` index, their postings by ``(workspace_id,
    entry_id)``."""
    e, p = LedgerEntry, LedgerPosting
    in_period = (e.occurred_at >= start, e.occurred_at < end)
    sums = (
        scoped_select(p, workspace_id, p.account, func.sum(p.amount))
        .join(e, e.id == p.entry_id)
        .where(e.workspace_id == workspace_id, *in_period, p.currency == currency)
        .group_by(p.account)
    )
    touching = scoped_select(p, workspace_id, p.entry_id).where(p.currency == currency, p.entry_id == e.id)
    orders = scoped_select(e, workspace_id, func.count(func.distinct(e.order_id))).where(
        *in_period, e.kind == "sale", touching.exists()
    )
    return {str(a): int(v or 0) for a, v in session.execute(sums)}, int(session.scalar(orders) or 0)
