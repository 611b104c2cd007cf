"""Alembic environment: runs on a connection handed in by offerloop.db.migrate, or on sqlalchemy.url."""

from __future__ import annotations

import re

from alembic import context
from sqlalchemy import create_engine

import offerloop.models  # noqa: F401  (registers every table on Base.metadata)
from offerloop.db.base import Base

config = context.config
target_metadata = Base.metadata


def _include_name(name, type_, parent_names) -> bool:  # type: ignore[no-untyped-def]
    # The monthly partitions of events (PostgreSQL) are made by the migration and a due job, not models.
    return not (type_ == "table" and re.fullmatch(r"events_(y\d{4}m\d{2}|default)", name or ""))


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///offerloop.db")
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
