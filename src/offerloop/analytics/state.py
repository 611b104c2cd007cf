"""The analytics state, kept by the ``analytics`` consumer (``analytics.consumers``) and rebuilt on demand.

``refresh`` recomputes the rows of a set of buyers from what the store says about them now — their paid
orders, their order events, touchpoints, current persona and persona history — and rewrites only the buyers
whose rows changed. Recomputing (instead of folding each event in) makes it idempotent, indifferent to the
order events arrive in (a late event with an older timestamp moves the first purchase back), and merge-
and erasure-aware:

* a merged buyer (``merged_into_id`` set) has no rows: the refresh goes to the survivor, whose purchases
  include the orders still keyed by the buyers merged into it (a merge moves events and touchpoints, not
  orders), whose first assignments fold theirs in;
* an erased buyer has no rows either (``forget`` deletes them at erasure; a refresh afterwards writes none).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy.orm import Session

from offerloop.analytics import purchases as definition
from offerloop.analytics import state_repository as repository
from offerloop.analytics.state_repository import Rows
from offerloop.db import locks
from offerloop.decisions import service as decision_service

MAX_CHAIN: Final = 50


def _survivors(session: Session, workspace_id: str, ids: set[str]) -> tuple[set[str], set[str], set[str]]:
    """(live survivors, erased survivors, merged-away ids) reached from ``ids`` by following merges."""
    live: set[str] = set()
    erased: set[str] = set()
    gone: set[str] = set()
    frontier = set(ids)
    for _ in range(MAX_CHAIN):
        if not frontier:
            break
        links = repository.buyer_links(session, workspace_id, frontier)
        nxt: set[str] = set()
        for buyer_id in frontier:
            merged, is_erased = links.get(buyer_id, (None, False))
            if merged:
                gone.add(buyer_id)
                if merged not in gone and merged not in live and merged not in erased:
                    nxt.add(merged)
            elif is_erased:
                erased.add(buyer_id)
            else:
                live.add(buyer_id)  # a buyer the store does not know is taken as it is
        frontier = nxt
    return live, erased, gone


def _losers(session: Session, workspace_id: str, survivors: set[str]) -> dict[str, str]:
    """loser -> survivor for every buyer merged (directly or through a chain) into one of ``survivors``."""
    owner: dict[str, str] = {}
    frontier = {s: s for s in survivors}
    for _ in range(MAX_CHAIN):
        if not frontier:
            break
        nxt: dict[str, str] = {}
        for winner, loser in repository.merged_into(session, workspace_id, frontier):
            root = frontier[winner]
            if loser not in owner and loser not in survivors:
                owner[loser] = nxt[loser] = root
        frontier = nxt
    return owner


def _rows(
    session: Session, workspace_id: str, live: set[str], owner: dict[str, str], *, whole: bool = False
) -> list[Rows]:
    """The rows the live survivors should have, per table of ``repository.TABLES`` (tuples without
    workspace_id), by survivor. ``whole``: ``live`` and ``owner`` cover the workspace, so each source is read
    in one statement over the workspace instead of by chunks of buyer ids."""
    everyone = None if whole else live | set(owner)

    def root(buyer_id: str) -> str:
        return owner.get(buyer_id, buyer_id)

    orders: dict[str, list[definition.OrderRow]] = defaultdict(list)
    for buyer_id, order in repository.orders_of(session, workspace_id, everyone):
        orders[root(buyer_id)].append(order)
    events: dict[str, list[definition.EventRow]] = defaultdict(list)
    named: set[str] = set()
    for buyer_id, event in repository.order_events_of(session, workspace_id, everyone):
        events[root(buyer_id)].append(event)
        order_id = (event.properties or {}).get("order_id") if isinstance(event.properties, dict) else None
        if isinstance(order_id, str) and order_id:
            named.add(order_id)
    checkout = repository.checkout_orders(session, workspace_id, None if whole else named) if named else set()
    touches: dict[str, list[Any]] = defaultdict(list)
    for buyer_id, at, touch_id, touch_channel in repository.touches_of(session, workspace_id, everyone):
        touches[root(buyer_id)].append((at, touch_id, touch_channel))
    personas = repository.personas_of(session, workspace_id, None if whole else live)
    history: dict[str, list[Any]] = defaultdict(list)
    for buyer_id, persona, at in repository.persona_firsts_of(session, workspace_id, everyone):
        history[root(buyer_id)].append((persona, at))

    bought: Rows = {}
    summaries: Rows = {}
    firsts: Rows = {}
    spent: Rows = {}
    for buyer_id in live:
        rows = definition.purchases(orders.get(buyer_id, ()), events.get(buyer_id, ()), checkout)
        summary = definition.summarize(rows)
        assigned = definition.first_assignments(history.get(buyer_id, ()))
        firsts[buyer_id] = {
            (
                buyer_id,
                name,
                us,
                definition.day_of(us),
                summary is not None,
                definition.bought_day(rows, us),
            )
            for name, us in assigned.items()
        }
        if summary is None:
            continue
        touch = definition.first_touch(touches.get(buyer_id, ()))
        current = personas.get(buyer_id)
        segment = current[: definition.SEGMENT_LENGTH] if current else None
        channel = touch[0] if touch else None
        first_persona = min(assigned.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        bought[buyer_id] = {
            (p.key, buyer_id, p.at_us, definition.day_of(p.at_us), definition.month_of(p.at_us), summary.first_month,
             p.amount_minor, p.refunded_minor, p.currency, p.source, channel, segment)
            for p in rows
        }  # fmt: skip
        spent[buyer_id] = {
            (buyer_id, name, p.key, p.currency, definition.day_of(p.at_us), p.amount_minor)
            for name, us in assigned.items()
            for p in rows
            if p.at_us >= us
        }
        summaries[buyer_id] = {(
            buyer_id, summary.first_at_us, summary.first_day, summary.second_day, summary.first_month,
            summary.purchases, decision_service.holdout_draw(workspace_id, buyer_id), channel,
            touch[1] if touch else None, segment, first_persona[0] if first_persona else None,
            first_persona[1] if first_persona else None,
        )}  # fmt: skip
    return [bought, summaries, firsts, spent]


def refresh(*, session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> int:
    """Recompute the analytics rows of these buyers (and of the survivors they were merged into); returns how
    many buyers' rows were rewritten."""
    ids = {b for b in buyer_ids if b}
    if not ids:
        return 0
    # Another transaction may refresh one of these buyers meanwhile (PostgreSQL): the analytics consumer and a
    # features step whose persona change refreshes the buyer run in different steps of a partition, and a merged
    # buyer's events lie in several partitions. Whichever inserts second waits for the first to commit, then hits
    # its rows: it reads the store again (which now shows the other's commit) and writes what it says. Before,
    # the unique violation failed the step into its backoff.
    return locks.retry_on_conflict(session, lambda: _refresh(session, workspace_id, ids))


def _refresh(session: Session, workspace_id: str, ids: set[str]) -> int:
    live, erased, gone = _survivors(session, workspace_id, ids)
    owner = _losers(session, workspace_id, live)
    # merged-away and erased buyers keep no rows of their own
    dropped = (gone | erased | set(owner)) - live
    want = _rows(session, workspace_id, live, owner)
    have = repository.stored(session, workspace_id, live | dropped)
    changed = {
        b for b in live if any(w.get(b, set()) != h.get(b, set()) for w, h in zip(want, have, strict=True))
    }
    stale = {b for b in dropped if any(b in h for h in have)}
    if not changed and not stale:
        return 0
    repository.delete_buyers(session, workspace_id, changed | stale)
    repository.insert(
        session,
        [[(workspace_id, *row) for b in sorted(changed) for row in sorted(w.get(b, ()))] for w in want],
    )
    return len(changed | stale)


def forget(*, session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> None:
    """Erasure: the buyers' analytics rows go with them."""
    repository.delete_buyers(session, workspace_id, buyer_ids)


def rebuild(*, session: Session, workspace_id: str) -> int:
    """Recompute the workspace's whole state (a backfill after upgrading, or a repair); returns the buyers
    with rows. One pass: each source (paid orders, order events, touchpoints, personas and their history,
    merges) is read once over the workspace — not buyer by buyer — and folded by the same definition the
    consumer's refresh uses, so both give the same rows (tests/analytics/test_state.py compares them). Memory
    grows with the workspace's buyers (a few hundred bytes each)."""
    repository.delete_workspace(session, workspace_id)
    gone, erased = repository.workspace_links(session, workspace_id)
    candidates = set(repository.candidate_buyers(session, workspace_id))
    winners: dict[str, list[str]] = defaultdict(list)
    for winner, loser in repository.workspace_merges(session, workspace_id):
        winners[winner].append(loser)
    # every merged-away buyer belongs to the root of its chain of merges (a loser is never a root)
    live = {b for b in candidates | set(winners) if b not in gone and b not in erased}
    owner: dict[str, str] = {}
    for root in live:
        frontier = [root]
        for _ in range(MAX_CHAIN):
            nxt = [lo for w in frontier for lo in winners.get(w, ()) if lo not in owner and lo not in live]
            if not nxt:
                break
            owner.update(dict.fromkeys(nxt, root))
            frontier = nxt
    # a candidate merged into a buyer the store no longer lists as its survivor still reaches a live root
    stray = {b for b in candidates & gone if b not in owner}
    if stray:
        reached, _, _ = _survivors(session, workspace_id, stray)
        live |= reached
        owner.update(_losers(session, workspace_id, reached))
    want = _rows(session, workspace_id, live, owner, whole=True)
    repository.insert(
        session,
        [[(workspace_id, *row) for b in sorted(w) for row in sorted(w[b])] for w in want],
    )
    return len(candidates)
