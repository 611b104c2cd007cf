"""Every SQL statement of the identity domain (but erasure's: ``identity.erasure_repository``).

The identity graph decides which buyer an event belongs to, so this module also re-points the
``buyer_id`` of events and touchpoints when buyers merge or a merge is undone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.db.scoped import scoped_select, scoped_update
from offerloop.models import (
    Buyer,
    Event,
    Identity,
    IdentityConflict,
    Merge,
    Touchpoint,
)


def find_owners(
    session: Session, workspace_id: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = driver.select_pairs(
        session.connection(),
        "t.kind, t.value, t.buyer_id",
        "identities",
        workspace_id,
        sorted(wanted),
        ("kind", "value"),
    )
    return {(k, v): b for k, v, b in rows if (k, v) in wanted}


def buyer_rows(
    session: Session, workspace_id: str, ids: set[str], columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Buyer rows as plain dicts, read at the driver level (the resolver loads dozens per batch)."""
    if not ids:
        return []
    rows = driver.select_in(
        session.connection(), f"SELECT {', '.join(columns)} FROM buyers WHERE workspace_id = ?", [workspace_id],
        "id", sorted(ids),
    )  # fmt: skip
    readers = [_BUYER_READERS.get(name) for name in columns]
    return [
        {
            name: (read(value) if read else value)
            for name, read, value in zip(columns, readers, row, strict=True)
        }
        for row in rows
    ]


RECORD_COLUMNS = (
    "id", "user_id", "traits", "trait_times", "consent_marketing", "consent_personalization",
    "consent_ai_rewrite", "first_seen_at", "last_seen_at", "event_count", "deleted_at", "merged_into_id",
)  # fmt: skip
TOUCH_COLUMNS = (
    "occurred_at", "channel", "source", "medium", "campaign", "content", "term", "click_id_type",
    "referrer_host", "flags",
)  # fmt: skip


def _convert(columns: tuple[str, ...], row: Any) -> dict[str, Any]:
    return {
        name: (read(v) if (read := _BUYER_READERS.get(name)) else v)
        for name, v in zip(columns, row, strict=False)
    }


def buyer_record(
    session: Session,
    workspace_id: str,
    *,
    buyer_id: str | None = None,
    identity: tuple[str, str] | None = None,
) -> tuple[dict[str, Any], list[list[str]]] | None:
    """A buyer row and all its identifiers in one statement (the lookup path), by id or by identifier."""
    cols = ", ".join(f"b.{c}" for c in RECORD_COLUMNS)
    if identity is not None:
        sql = (
            f"SELECT {cols}, i2.kind, i2.value FROM identities i "
            "JOIN buyers b ON b.workspace_id = i.workspace_id AND b.id = i.buyer_id "
            "LEFT JOIN identities i2 ON i2.workspace_id = b.workspace_id AND i2.buyer_id = b.id "
            "WHERE i.workspace_id = ? AND i.kind = ? AND i.value = ? ORDER BY i2.id"
        )
        params: list[Any] = [workspace_id, *identity]
    else:
        sql = (
            f"SELECT {cols}, i2.kind, i2.value FROM buyers b "
            "LEFT JOIN identities i2 ON i2.workspace_id = b.workspace_id AND i2.buyer_id = b.id "
            "WHERE b.workspace_id = ? AND b.id = ? ORDER BY i2.id"
        )
        params = [workspace_id, buyer_id]
    rows = driver.fetch_all(session.connection(), sql, params)
    if not rows:
        return None
    n = len(RECORD_COLUMNS)
    return _convert(RECORD_COLUMNS, rows[0][:n]), [[r[n], r[n + 1]] for r in rows if r[n] is not None]


Touch = dict[str, Any]
FullRecord = tuple[dict[str, Any], list[list[str]], Touch | None, Touch | None]


# PostgreSQL: the buyer, its identifiers and its first and last touch in one statement (one round trip).
_TOUCH = (
    "LEFT JOIN LATERAL (SELECT {cols} FROM touchpoints t WHERE t.workspace_id = b.workspace_id "
    "AND t.buyer_id = b.id ORDER BY t.occurred_at {order}, t.id {order} LIMIT 1) AS {alias} ON true"
)
_PG_RECORD = ", ".join(
    [f"b.{c}" for c in RECORD_COLUMNS]
    + [
        "ARRAY(SELECT ARRAY[i2.kind, i2.value] FROM identities i2 "
        "WHERE i2.workspace_id = b.workspace_id AND i2.buyer_id = b.id ORDER BY i2.id)"
    ]
    + [f"f.{c}" for c in TOUCH_COLUMNS]
    + [f"l.{c}" for c in TOUCH_COLUMNS]
)
_PG_TOUCHES = " ".join(
    _TOUCH.format(cols=", ".join(TOUCH_COLUMNS), order=order, alias=alias)
    for order, alias in (("ASC", "f"), ("DESC", "l"))
)
_PG_BY_IDENTITY = (
    f"SELECT {_PG_RECORD} FROM identities i "
    f"JOIN buyers b ON b.workspace_id = i.workspace_id AND b.id = i.buyer_id {_PG_TOUCHES} "
    "WHERE i.workspace_id = %s AND i.kind = %s AND i.value = %s"
)
_PG_BY_ID = f"SELECT {_PG_RECORD} FROM buyers b {_PG_TOUCHES} WHERE b.workspace_id = %s AND b.id = %s"


def full_record(
    session: Session,
    workspace_id: str,
    *,
    buyer_id: str | None = None,
    identity: tuple[str, str] | None = None,
) -> FullRecord | None:
    """A buyer row, its identifiers and its first and last touch: one statement on PostgreSQL, two on
    SQLite (whose statements cost no round trip)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        record = buyer_record(session, workspace_id, buyer_id=buyer_id, identity=identity)
        if record is None:
            return None
        return (*record, *first_and_last_touch(session, workspace_id, record[0]["id"]))
    if identity is not None:
        row = conn.exec_driver_sql(_PG_BY_IDENTITY, (workspace_id, *identity)).first()
    else:
        row = conn.exec_driver_sql(_PG_BY_ID, (workspace_id, buyer_id)).first()
    if row is None:
        return None
    n, t = len(RECORD_COLUMNS), len(TOUCH_COLUMNS)
    first = _convert(TOUCH_COLUMNS, row[n + 1 : n + 1 + t]) if row[n + 1] is not None else None
    last = _convert(TOUCH_COLUMNS, row[n + 1 + t :]) if row[n + 1 + t] is not None else None
    return _convert(RECORD_COLUMNS, row[:n]), [list(pair) for pair in row[n] or ()], first, last


_BRIEF_SQL = (
    "SELECT b.id, b.consent_personalization FROM identities i "
    "JOIN buyers b ON b.workspace_id = i.workspace_id AND b.id = i.buyer_id "
    "WHERE i.workspace_id = ? AND i.kind = ? AND i.value = ?"
)


def buyer_brief(
    session: Session, workspace_id: str, identity: tuple[str, str]
) -> tuple[str, bool | None] | None:
    """The id and personalization consent of the buyer an identifier belongs to: one indexed statement."""
    rows = driver.fetch_all(session.connection(), _BRIEF_SQL, [workspace_id, *identity])
    return (rows[0][0], driver.read_bool(rows[0][1])) if rows else None


def first_and_last_touch(
    session: Session, workspace_id: str, buyer_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    cols = ", ".join(TOUCH_COLUMNS)
    sql = (
        f"SELECT 0, {cols} FROM (SELECT {cols} FROM touchpoints WHERE workspace_id = ? AND buyer_id = ? "
        "ORDER BY occurred_at, id LIMIT 1) AS f "
        f"UNION ALL SELECT 1, {cols} FROM (SELECT {cols} FROM touchpoints WHERE workspace_id = ? AND buyer_id = ? "
        "ORDER BY occurred_at DESC, id DESC LIMIT 1) AS l"
    )
    found: dict[int, dict[str, Any]] = {}
    params = [workspace_id, buyer_id, workspace_id, buyer_id]
    for row in driver.fetch_all(session.connection(), sql, params):
        found[row[0]] = _convert(TOUCH_COLUMNS, row[1:])
    return found.get(0), found.get(1)


_BUYER_READERS: dict[str, Any] = {
    "occurred_at": driver.read_datetime,
    "flags": driver.read_json,
    "created_at": driver.read_datetime,
    "first_seen_at": driver.read_datetime,
    "last_seen_at": driver.read_datetime,
    "deleted_at": driver.read_datetime,
    "traits": driver.read_json,
    "trait_times": driver.read_json,
    "consent_marketing": driver.read_bool,
    "consent_personalization": driver.read_bool,
}


def insert_buyers(session: Session, workspace_id: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = (*rows[0], "workspace_id")
        driver.insert_many(
            session.connection(), "buyers", columns, [[*r.values(), workspace_id] for r in rows]
        )


def update_buyers(session: Session, workspace_id: str, rows: list[dict[str, Any]]) -> None:
    """Write back the resolver's buyer state: one executemany for the whole batch."""
    if not rows:
        return
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}") for name in rows[0] if name not in ("id", "workspace_id")
    }
    stmt = scoped_update(Buyer, workspace_id).where(Buyer.id == bindparam("v_id")).values(values)
    session.connection().execute(stmt, [{f"v_{k}": v for k, v in row.items()} for row in rows])


IDENTITY_COLUMNS = ("workspace_id", "buyer_id", "kind", "value", "created_at")


def insert_identities(session: Session, rows: list[dict[str, Any]]) -> None:
    driver.insert_many(
        session.connection(), "identities", IDENTITY_COLUMNS, [[r[c] for c in IDENTITY_COLUMNS] for r in rows]
    )


def identities_of(session: Session, workspace_id: str, buyer_id: str) -> list[list[str]]:
    stmt = (
        scoped_select(Identity, workspace_id, Identity.kind, Identity.value)
        .where(Identity.buyer_id == buyer_id)
        .order_by(Identity.id)
    )
    return [[k, v] for k, v in session.execute(stmt)]


# The log's partition column (by buyer) is set together with the buyer where the schema has it.
_HAS_PARTITION = "partition" in Event.__table__.c


def assign_events(session: Session, workspace_id: str, rows: list[tuple[int, str, int]]) -> None:
    """Give logged events ``(seq, buyer_id, partition)`` their buyer: one executemany by seq."""
    if not rows:
        return
    conn = session.connection()
    m = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if _HAS_PARTITION:
        sql = f'UPDATE events SET buyer_id = {m}, "partition" = {m} WHERE workspace_id = {m} AND id = {m}'
        conn.exec_driver_sql(sql, [(b, p, workspace_id, seq) for seq, b, p in rows])
    else:
        sql = f"UPDATE events SET buyer_id = {m} WHERE workspace_id = {m} AND id = {m}"
        conn.exec_driver_sql(sql, [(b, workspace_id, seq) for seq, b, _ in rows])


TOUCHPOINT_COLUMNS = (
    "workspace_id", "buyer_id", "event_id", "occurred_at", "channel", "source", "medium", "campaign",
    "content", "term", "click_id_type", "click_id", "referrer_host", "landing_url", "flags",
)  # fmt: skip


def insert_touchpoints(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Rows are tuples in TOUCHPOINT_COLUMNS order."""
    if rows:
        driver.insert_many(session.connection(), "touchpoints", TOUCHPOINT_COLUMNS, rows)


def move_buyer_rows(session: Session, workspace_id: str, loser_id: str, winner_id: str) -> list[int]:
    """Move identities, events and touchpoints of ``loser`` to ``winner``; return the moved event ids."""
    session.execute(
        scoped_update(Identity, workspace_id).where(Identity.buyer_id == loser_id).values(buyer_id=winner_id)
    )
    moved = session.execute(
        scoped_update(Event, workspace_id)
        .where(Event.buyer_id == loser_id)
        .values(buyer_id=winner_id)
        .returning(Event.id)
    )
    event_ids = sorted(moved.scalars())
    session.execute(
        scoped_update(Touchpoint, workspace_id)
        .where(Touchpoint.buyer_id == loser_id)
        .values(buyer_id=winner_id)
    )
    return event_ids


def move_back(
    session: Session,
    workspace_id: str,
    *,
    winner_id: str,
    loser_id: str,
    identities: list[list[str]],
    event_ids: list[int],
    message_ids: list[str],
) -> None:
    for kind, value in identities:
        session.execute(
            scoped_update(Identity, workspace_id)
            .where(
                Identity.kind == kind,
                Identity.value == value,
                Identity.buyer_id == winner_id,
            )
            .values(buyer_id=loser_id)
        )
    for chunk in _chunks(event_ids):
        session.execute(
            scoped_update(Event, workspace_id)
            .where(Event.buyer_id == winner_id, Event.id.in_(chunk))
            .values(buyer_id=loser_id)
        )
        session.execute(
            scoped_update(Touchpoint, workspace_id)
            .where(Touchpoint.event_id.in_(chunk))
            .values(buyer_id=loser_id)
        )
    for chunk in _chunks(message_ids):
        moved = session.execute(
            scoped_update(Event, workspace_id)
            .where(Event.buyer_id == winner_id, Event.message_id.in_(chunk))
            .values(buyer_id=loser_id)
            .returning(Event.id)
        )
        ids = list(moved.scalars())
        if ids:
            session.execute(
                scoped_update(Touchpoint, workspace_id)
                .where(Touchpoint.event_id.in_(ids))
                .values(buyer_id=loser_id)
            )


def event_span(
    session: Session, workspace_id: str, buyer_id: str
) -> tuple[int, datetime | None, datetime | None]:
    stmt = scoped_select(
        Event, workspace_id, func.count(Event.id), func.min(Event.timestamp), func.max(Event.timestamp)
    ).where(Event.buyer_id == buyer_id)
    count, first, last = session.execute(stmt).one()
    return int(count), first, last


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def get_buyer(session: Session, workspace_id: str, buyer_id: str) -> Buyer | None:
    stmt = scoped_select(Buyer, workspace_id).where(Buyer.id == buyer_id)
    return session.scalars(stmt).one_or_none()


def touchpoints_of(session: Session, workspace_id: str, buyer_id: str) -> list[Touchpoint]:
    stmt = (
        scoped_select(Touchpoint, workspace_id)
        .where(Touchpoint.buyer_id == buyer_id)
        .order_by(Touchpoint.occurred_at, Touchpoint.id)
    )
    return list(session.scalars(stmt))


def events_of(
    session: Session, workspace_id: str, buyer_id: str, *, before: int | None, limit: int
) -> list[Event]:
    stmt = scoped_select(Event, workspace_id).where(Event.buyer_id == buyer_id)
    if before is not None:
        stmt = stmt.where(Event.id < before)
    return list(session.scalars(stmt.order_by(Event.id.desc()).limit(limit)))


def latest_named(session: Session, workspace_id: str, buyer_id: str, name: str, limit: int) -> list[Event]:
    stmt = scoped_select(Event, workspace_id).where(Event.buyer_id == buyer_id, Event.name == name)
    return list(session.scalars(stmt.order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit)))


def iter_events_of(session: Session, workspace_id: str, buyer_id: str) -> Iterator[Event]:
    stmt = scoped_select(Event, workspace_id).where(Event.buyer_id == buyer_id)
    yield from session.scalars(stmt.order_by(Event.id))


def merges(
    session: Session,
    workspace_id: str,
    *,
    buyer_id: str | None,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[Merge]:
    """Newest first; ``after``: the (created_at, id) of the last merge of the previous page."""
    stmt = scoped_select(Merge, workspace_id)
    if buyer_id:
        stmt = stmt.where((Merge.winner_id == buyer_id) | (Merge.loser_id == buyer_id))
    if after is not None:
        at, merge_id = after
        stmt = stmt.where((Merge.created_at < at) | ((Merge.created_at == at) & (Merge.id < merge_id)))
    return list(session.scalars(stmt.order_by(Merge.created_at.desc(), Merge.id.desc()).limit(limit)))


def merge_undone_around(session: Session, workspace_id: str, winner_id: str, at: datetime) -> bool:
    """Whether a merge into ``winner_id`` was in effect at ``at`` and has been undone since."""
    stmt = scoped_select(Merge, workspace_id, Merge.id).where(
        Merge.winner_id == winner_id,
        Merge.created_at <= at,
        Merge.undone_at.is_not(None),
        Merge.undone_at >= at,
    )
    return session.execute(stmt.limit(1)).first() is not None


def get_merge(
    session: Session, workspace_id: str, merge_id: str, *, for_update: bool = False
) -> Merge | None:
    """The merge; ``for_update`` locks its row until the transaction ends (PostgreSQL; SQLite's one writer
    already orders two undos), so of two concurrent undos the second sees the first's ``undone_at``."""
    stmt = scoped_select(Merge, workspace_id).where(Merge.id == merge_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def conflicts(
    session: Session, workspace_id: str, *, buyer_id: str | None, limit: int, before: int | None = None
) -> list[IdentityConflict]:
    stmt = scoped_select(IdentityConflict, workspace_id)
    if buyer_id:
        stmt = stmt.where(
            (IdentityConflict.buyer_id == buyer_id) | (IdentityConflict.other_buyer_id == buyer_id)
        )
    if before is not None:
        stmt = stmt.where(IdentityConflict.id < before)
    return list(session.scalars(stmt.order_by(IdentityConflict.id.desc()).limit(limit)))


# Built once and run on the Core connection: it is on every access check (entitlements, orders, portal).
_MERGED_INTO = select(Buyer.id).where(
    Buyer.workspace_id == bindparam("w"), Buyer.merged_into_id.in_(bindparam("f", expanding=True))
)
MAX_CHAIN = 50  # as the reads that follow merged_into_id upwards


def merged_losers(session: Session, workspace_id: str, winner_id: str) -> list[str]:
    """Buyers folded into ``winner`` (directly or through a chain), nearest first: one probe of the
    (workspace_id, merged_into_id) index per step of the chain, so one for a buyer never merged. An undone
    merge cleared its loser's ``merged_into_id``: that loser and the buyers merged into it are not found."""
    conn = session.connection()
    found: list[str] = []
    seen = {winner_id}
    frontier = [winner_id]
    for _ in range(MAX_CHAIN):
        if not frontier:
            break
        rows = conn.execute(_MERGED_INTO, {"w": workspace_id, "f": frontier}).scalars().all()
        frontier = sorted(r for r in set(rows) if r not in seen)
        seen.update(frontier)
        found.extend(frontier)
    return found


def survivor_id(session: Session, workspace_id: str, buyer_id: str) -> str | None:
    """The live buyer ``buyer_id`` answers with (itself, or the end of its chain of merges); None when the
    workspace has no buyer by that id."""
    for _ in range(MAX_CHAIN):
        stmt = scoped_select(Buyer, workspace_id, Buyer.merged_into_id).where(Buyer.id == buyer_id)
        row = session.execute(stmt).first()
        if row is None:
            return None
        if row[0] is None:
            return buyer_id
        buyer_id = row[0]
    return buyer_id


def buyers_at_least(session: Session, workspace_id: str, n: int) -> bool:
    """Whether the workspace holds at least ``n`` buyers (merged and erased ones included): steps over at most
    ``n`` index entries, however large the workspace."""
    if n <= 0:
        return True
    return session.scalar(scoped_select(Buyer, workspace_id, Buyer.id).offset(n - 1).limit(1)) is not None


def count_buyers(session: Session, workspace_id: str) -> dict[str, int]:
    live = Buyer.merged_into_id.is_(None) & Buyer.deleted_at.is_(None)
    total = session.scalar(scoped_select(Buyer, workspace_id, func.count()).where(live)) or 0
    identified = (
        session.scalar(
            scoped_select(Buyer, workspace_id, func.count()).where(live & Buyer.user_id.is_not(None))
        )
        or 0
    )
    n_merges = (
        session.scalar(scoped_select(Merge, workspace_id, func.count()).where(Merge.undone_at.is_(None))) or 0
    )
    n_conflicts = session.scalar(scoped_select(IdentityConflict, workspace_id, func.count())) or 0
    return {"buyers": total, "identified": identified, "merges": n_merges, "conflicts": n_conflicts}


def iter_buyers(session: Session, workspace_id: str) -> Iterator[Buyer]:
    stmt = scoped_select(Buyer, workspace_id).order_by(Buyer.id)
    yield from session.scalars(stmt.execution_options(yield_per=1000))


def identities_by_buyer(
    session: Session, workspace_id: str, buyer_ids: list[str]
) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {b: [] for b in buyer_ids}
    for chunk in _chunks(buyer_ids):
        stmt = scoped_select(Identity, workspace_id, Identity.buyer_id, Identity.kind, Identity.value).where(
            Identity.buyer_id.in_(chunk)
        )
        for buyer_id, kind, value in session.execute(stmt.order_by(Identity.id)):
            out[buyer_id].append([kind, value])
    return out


def live_buyer_ids(session: Session, workspace_id: str, after: str | None, limit: int) -> list[str]:
    """Ids of live buyers (not merged away, not erased) after ``after``, in id order."""
    stmt = scoped_select(Buyer, workspace_id, Buyer.id).where(
        Buyer.merged_into_id.is_(None), Buyer.deleted_at.is_(None)
    )
    if after is not None:
        stmt = stmt.where(Buyer.id > after)
    return list(session.scalars(stmt.order_by(Buyer.id).limit(limit)))


def new_buyers_since(session: Session, workspace_id: str, since: datetime) -> int:
    """Buyers created since ``since`` (merged or erased ones too: they were new that day)."""
    stmt = scoped_select(Buyer, workspace_id, func.count()).where(Buyer.created_at >= since)
    return int(session.scalar(stmt) or 0)
