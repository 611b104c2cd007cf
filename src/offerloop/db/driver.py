"""Driver-level statements for the few hottest paths (ingest), bypassing SQLAlchemy's per-row
bind processing. Values are converted here exactly as the portable column types would store them,
so rows written this way read back through the ORM unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from offerloop.db.types import parse_stored_datetime


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DATETIME storage format (naive UTC), which UTCDateTime reads back as aware.
        # isoformat pads the year to four digits (strftime's %Y does not below 1000 on glibc).
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return value


def _pg_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode())
    return value


def insert_many(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    on_conflict: str | None = None,
) -> None:
    """INSERT rows (tuples in ``columns`` order): one executemany on SQLite, one COPY on PostgreSQL. With
    ``on_conflict`` (an ``ON CONFLICT ...`` clause, the same text on both databases), one executemany of
    ``INSERT ... ON CONFLICT`` on both: for rows a concurrent transaction may insert first (COPY has no
    conflict clause)."""
    if conn.dialect.name == "postgresql":
        if on_conflict is None:
            _copy_rows(conn, table, columns, rows)
            return
        values = [tuple(_pg_value(v) for v in row) for row in rows]
        if values:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            conn.exec_driver_sql(sql + on_conflict, values)
        return
    # A batch repeats its datetimes (received_at, mostly sent_at): each distinct one is formatted once.
    times: dict[datetime, str] = {}

    def convert(v: Any) -> Any:
        if isinstance(v, datetime):
            text = times.get(v)
            if text is None:
                text = times[v] = _sqlite_value(v)
            return text
        return _sqlite_value(v)

    params = [tuple(map(convert, row)) for row in rows]
    if not params:
        return
    mark = _placeholder(conn)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql if on_conflict is None else f"{sql} {on_conflict}", params)


def _copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    # COPY streams every row in one round trip; executemany would pay one per row.
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_pg_value(v) for v in row])


def select_in(
    conn: Connection, sql_prefix: str, prefix_params: Sequence[Any], column: str, values: Sequence[Any]
) -> list[Any]:
    """Run ``sql_prefix AND column IN (...)``; returns all rows. On PostgreSQL the list is one array
    parameter (``= ANY(%s)``), so the statement text never changes and is prepared once."""
    if conn.dialect.name == "postgresql":
        sql = f"{sql_prefix.replace('?', '%s')} AND {column} = ANY(%s)"
        return list(conn.exec_driver_sql(sql, (*prefix_params, list(values))).fetchall())
    mark = _placeholder(conn)
    sql_prefix = sql_prefix.replace("?", mark)
    out: list[Any] = []
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        sql = f"{sql_prefix} AND {column} IN ({', '.join([mark] * len(chunk))})"
        out.extend(conn.exec_driver_sql(sql, (*prefix_params, *chunk)).fetchall())
    return out


def select_pairs(
    conn: Connection,
    columns: str,
    table: str,
    workspace_id: str,
    pairs: Sequence[tuple[str, str]],
    names: tuple[str, str],
) -> list[Any]:
    """Rows of ``table`` in the workspace whose (names[0], names[1]) is one of ``pairs``.

    PostgreSQL joins an unnested pair list (one index descent per pair; 15 would otherwise try every
    combination of two = ANY lists); SQLite walks two IN lists and the exact pairs are kept by the caller.
    """
    a, b = names
    if conn.dialect.name == "postgresql":
        sql = (
            f"SELECT {columns} FROM {table} t JOIN unnest(%s::text[], %s::text[]) AS p(a, b) "
            f"ON t.{a} = p.a AND t.{b} = p.b WHERE t.workspace_id = %s"
        )
        return list(
            conn.exec_driver_sql(sql, ([x for x, _ in pairs], [y for _, y in pairs], workspace_id)).fetchall()
        )
    firsts = sorted({x for x, _ in pairs})
    prefix = f"SELECT {columns} FROM {table} t WHERE t.workspace_id = ? AND t.{a} IN ({', '.join('?' * len(firsts))})"
    return select_in(conn, prefix, [workspace_id, *firsts], f"t.{b}", sorted({y for _, y in pairs}))


_fromisoformat = datetime.fromisoformat


def read_datetime(value: Any) -> datetime | None:
    """A DATETIME as stored by either database, as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:  # SQLite's stored form, naive UTC text: one C call (``replace(tzinfo=...)`` costs 4x more)
            return _fromisoformat(value + "+00:00")
        except ValueError:  # an unpadded year written by an older version, or text with its own offset
            parsed = parse_stored_datetime(value)
    else:
        parsed = value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def read_json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def read_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def fetch_all(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Run ``sql`` written with ``?`` placeholders on either driver."""
    return list(conn.exec_driver_sql(sql.replace("?", _placeholder(conn)), tuple(params)).fetchall())
