"""Every SQL statement of the features domain."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.db.types import UTCDateTime
from offerloop.models import BuyerFeatures, BuyerScore, Event, Touchpoint


def states(session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = driver.select_in(
        session.connection(), "SELECT buyer_id, state FROM buyer_features WHERE workspace_id = ?", [workspace_id],
        "buyer_id", sorted(set(buyer_ids)),
    )  # fmt: skip
    return {buyer_id: driver.read_json(state) for buyer_id, state in rows}


def marked_states(
    session: Session, workspace_id: str, buyer_ids: Iterable[str]
) -> dict[str, tuple[dict[str, Any], int, bool]]:
    """(state, applied seq, rebuild due) of each buyer that has a row. On PostgreSQL the rows are locked
    (in buyer order): two partitions folding events into one merged buyer must not overwrite each other."""
    conn = session.connection()
    wanted = sorted(set(buyer_ids))
    if not wanted:
        return {}
    sql = "SELECT buyer_id, state, applied_seq, rebuild FROM buyer_features WHERE workspace_id = "
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(
            sql + "%s AND buyer_id = ANY(%s) ORDER BY buyer_id FOR UPDATE", (workspace_id, wanted)
        ).fetchall()
    else:
        found = driver.select_in(conn, sql + "?", [workspace_id], "buyer_id", wanted)
    return {b: (driver.read_json(state), int(seq), bool(flag)) for b, state, seq, flag in found}


def marks(session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> dict[str, tuple[int, bool]]:
    """(applied seq, rebuild due) of each buyer that has a row: what :func:`marked_states` says of it, without
    loading its state."""
    rows = driver.select_in(
        session.connection(), "SELECT buyer_id, applied_seq, rebuild FROM buyer_features WHERE workspace_id = ?",
        [workspace_id], "buyer_id", sorted(set(buyer_ids)),
    )  # fmt: skip
    return {b: (int(seq), bool(flag)) for b, seq, flag in rows}


def merged_away(session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> set[str]:
    """The buyers among ``buyer_ids`` that were merged into another (their events are the winner's now)."""
    rows = driver.select_in(
        session.connection(), "SELECT id FROM buyers WHERE workspace_id = ? AND merged_into_id IS NOT NULL",
        [workspace_id], "id", sorted(set(buyer_ids)),
    )  # fmt: skip
    return {r[0] for r in rows}


# Both databases: a row inserted first by a concurrent transaction keeps its state and is flagged for a rebuild.
_FLAG_ON_CONFLICT = "ON CONFLICT (buyer_id) DO UPDATE SET rebuild = TRUE"


def save_states(
    session: Session,
    workspace_id: str,
    states: dict[str, dict[str, Any]],
    marks: dict[str, int],
    existing: set[str],
    version: int,
    at: dict[str, datetime],
    event_at: dict[str, datetime | None],
) -> None:
    """Insert new rows and update existing ones (state, watermark, rebuild done), one executemany each.
    ``event_at`` only ever moves a row's event time forward (an older event arriving late leaves it)."""
    new = [b for b in states if b not in existing]
    old = [b for b in states if b in existing]
    if new:
        # A row that did not exist when it was read may have been made since by a merge that flags its winner
        # (identity resolution commits while this step runs, on PostgreSQL): that row is kept, flagged, and
        # the buyer rebuilt from every stored event, these included, at its next apply (the merging event
        # is the winner's, later in its partition). Before, the conflict failed the step into its backoff,
        # and reads in the meantime saw the flagged, empty row.
        driver.insert_many(
            session.connection(), "buyer_features",
            ("buyer_id", "workspace_id", "state", "spec_version", "updated_at", "event_at", "applied_seq", "rebuild"),
            [(b, workspace_id, states[b], version, at[b], event_at.get(b), marks[b], False) for b in new],
            on_conflict=_FLAG_ON_CONFLICT,
        )  # fmt: skip
    if old:
        later = bindparam("b_event_at", type_=UTCDateTime())
        stmt = (
            scoped_update(BuyerFeatures, workspace_id)
            .where(BuyerFeatures.buyer_id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"), spec_version=bindparam("b_version"), updated_at=bindparam("b_at"),
                applied_seq=bindparam("b_seq"), rebuild=False,
                event_at=case(
                    (BuyerFeatures.event_at.is_(None), later),
                    (later > BuyerFeatures.event_at, later),
                    else_=BuyerFeatures.event_at,
                ),
            )
        )  # fmt: skip
        session.connection().execute(
            stmt,
            [
                {"b_id": b, "b_state": states[b], "b_version": version, "b_at": at[b], "b_seq": marks[b],
                 "b_event_at": event_at.get(b)}
                for b in old
            ],
        )  # fmt: skip


def mark_rebuild(
    session: Session,
    workspace_id: str,
    buyer_ids: set[str],
    version: int,
    empty: dict[str, Any],
    at: datetime,
) -> None:
    """Flag these buyers' state for a rebuild, creating an empty flagged row where there is none yet.

    One upsert per buyer, never "update, then insert the rows not found": on PostgreSQL a features step
    inserting a buyer's first row (not visible to the update) could commit between the two, so the row was found
    on the second look and never flagged; the step's next apply then skipped the merged events below its
    watermark (CI saw a merged buyer count 4 of its 11 lessons for good). The upsert waits for such an insert
    and flags the row it made."""
    if not buyer_ids:
        return
    _insert_empty(
        session, workspace_id, buyer_ids, version, empty, at, flagged=True, on_conflict=_FLAG_ON_CONFLICT
    )


def forget_merged(
    session: Session,
    workspace_id: str,
    buyer_ids: list[str],
    version: int,
    empty: dict[str, Any],
    at: datetime,
) -> None:
    """:func:`forget` for buyers just merged away. On PostgreSQL each row's key is claimed first (an insert that
    does nothing on conflict): a features step inserting one of these rows (the buyer's first events, read before
    the merge) is waited for, and its row deleted with the rest; one that inserts after the claim waits for this
    transaction, and then finds the buyer merged away (``save_states``'s caller forgets it). Before, the delete
    did not see the step's uncommitted row, which outlived the merge: a merged-away buyer counted twice."""
    if buyer_ids and session.get_bind().dialect.name == "postgresql":
        _insert_empty(
            session, workspace_id, buyer_ids, version, empty, at, flagged=False,
            on_conflict="ON CONFLICT (buyer_id) DO NOTHING",
        )  # fmt: skip
    forget(session, workspace_id, buyer_ids)


def forget_merged_away(session: Session, workspace_id: str, new: set[str]) -> set[str]:
    """After ``save_states`` inserted the first rows of ``new`` buyers: forget those a merge committed away in the
    meantime (on PostgreSQL the insert waited for the merge's claim on the key, see :func:`forget_merged`); the
    events are the winner's now. Returns the buyers forgotten. SQLite's one writer cannot interleave the two."""
    if not new or session.get_bind().dialect.name != "postgresql":
        return set()
    gone = merged_away(session, workspace_id, new)
    if gone:
        forget(session, workspace_id, sorted(gone))
    return gone


def _insert_empty(
    session: Session,
    workspace_id: str,
    buyer_ids: Iterable[str],
    version: int,
    empty: dict[str, Any],
    at: datetime,
    *,
    flagged: bool,
    on_conflict: str,
) -> None:
    driver.insert_many(
        session.connection(), "buyer_features",
        ("buyer_id", "workspace_id", "state", "spec_version", "updated_at", "applied_seq", "rebuild"),
        [(b, workspace_id, empty, version, at, 0, flagged) for b in sorted(buyer_ids)],
        on_conflict=on_conflict,
    )  # fmt: skip


def forget(session: Session, workspace_id: str, buyer_ids: list[str]) -> None:
    session.execute(scoped_delete(BuyerFeatures, workspace_id).where(BuyerFeatures.buyer_id.in_(buyer_ids)))
    session.execute(scoped_delete(BuyerScore, workspace_id).where(BuyerScore.buyer_id.in_(buyer_ids)))


_SCORES_SQL = "SELECT name, value FROM buyer_scores WHERE workspace_id = ? AND buyer_id = ?"


def scores(session: Session, workspace_id: str, buyer_id: str) -> dict[str, float]:
    """The buyer's batch-computed scores (name -> value): on the decide path, so at the driver level."""
    rows = driver.fetch_all(session.connection(), _SCORES_SQL, [workspace_id, buyer_id])
    return {name: float(value) for name, value in rows}


def replace_scores(
    session: Session,
    workspace_id: str,
    names: list[str],
    rows: Iterable[tuple[str, str, float]],
    at: datetime,
) -> None:
    """Drop every score named in ``names`` and store ``rows`` (buyer_id, name, value) instead."""
    session.execute(scoped_delete(BuyerScore, workspace_id).where(BuyerScore.name.in_(names)))
    driver.insert_many(
        session.connection(), "buyer_scores", ("workspace_id", "buyer_id", "name", "value", "computed_at"),
        ((workspace_id, buyer_id, name, value, at) for buyer_id, name, value in rows),
    )  # fmt: skip


def events_for_replay(
    session: Session, workspace_id: str, buyer_ids: Iterable[str]
) -> Iterator[tuple[Event, str | None]]:
    """Buyers' events (buyer by buyer, each in time order) with their touchpoint channel, to rebuild
    features after a merge."""
    stmt = (
        scoped_select(Event, workspace_id, Event, Touchpoint.channel)
        .outerjoin(
            Touchpoint, (Touchpoint.workspace_id == Event.workspace_id) & (Touchpoint.event_id == Event.id)
        )
        .where(Event.buyer_id.in_(sorted(set(buyer_ids))))
        .order_by(Event.buyer_id, Event.timestamp, Event.id)
    )
    yield from (
        (event, channel) for event, channel in session.execute(stmt.execution_options(yield_per=1000))
    )


def event_ids(session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> dict[str, list[int]]:
    """Each buyer's stored events (their seqs, in order; an empty list for a buyer with none)."""
    wanted = sorted(set(buyer_ids))
    out: dict[str, list[int]] = {buyer_id: [] for buyer_id in wanted}
    rows = driver.select_in(
        session.connection(), "SELECT buyer_id, id FROM events WHERE workspace_id = ?", [workspace_id], "buyer_id",
        wanted,
    )  # fmt: skip
    for buyer_id, seq in sorted(rows, key=lambda r: r[1]):
        out[buyer_id].append(int(seq))
    return out


def states_updated(
    session: Session, workspace_id: str, start: datetime, end: datetime, limit: int
) -> list[tuple[dict[str, Any], datetime]]:
    """(state, event_at) of the ``limit`` buyers whose latest event (its bounded event time) is most recent in
    [start, end)."""
    stmt = (
        scoped_select(BuyerFeatures, workspace_id, BuyerFeatures.state, BuyerFeatures.event_at)
        .where(BuyerFeatures.event_at >= start, BuyerFeatures.event_at < end)
        .order_by(BuyerFeatures.event_at.desc(), BuyerFeatures.buyer_id)
        .limit(limit)
    )
    return [(state, at) for state, at in session.execute(stmt)]


def iter_states(session: Session, workspace_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    stmt = scoped_select(BuyerFeatures, workspace_id, BuyerFeatures.buyer_id, BuyerFeatures.state)
    yield from ((b, s) for b, s in session.execute(stmt.execution_options(yield_per=2000)))
