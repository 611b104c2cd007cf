"""What every command needs: settings, an engine at the current schema, output helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import typer

from offerloop.config import Settings
from offerloop.core.errors import OfferloopError
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database


def settings() -> Settings:
    return Settings()


@contextmanager
def database(cfg: Settings | None = None) -> Iterator[Database]:
    cfg = cfg or settings()
    engine = make_engine(cfg.database_url, sqlite_synchronous=cfg.sqlite_synchronous)
    try:
        migrate.upgrade(engine)
        yield Database(engine)
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


@contextmanager
def domain_errors() -> Iterator[None]:
    """Show a domain error as one clear line and exit 1, never as a traceback."""
    try:
        yield
    except OfferloopError as exc:
        typer.secho(f"error [{exc.code}]: {exc.message}", err=True, fg="red")
        if exc.details:
            typer.echo(orjson.dumps(exc.details, option=orjson.OPT_INDENT_2).decode(), err=True)
        raise typer.Exit(1) from exc
