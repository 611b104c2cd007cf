"""What every command needs: settings, an engine at the current schema, output helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

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


WorkspaceOpt = Annotated[
    str, typer.Option("--workspace", "-w", help="Workspace id", envvar="OFFERLOOP_WORKSPACE")
]


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


def lift_lines(online: dict[str, Any]) -> list[str]:
    """The online lift report (model vs holdout, overall then by persona) as aligned text lines."""

    def line(label: str, row: dict[str, Any]) -> str:
        if row.get("lift") is None:
            return f"  {label:28} model n={row['model_n']}, holdout n={row['holdout_n']}: not enough data"
        return (f"  {label:28} model {row['model']:.4f} (n={row['model_n']}) vs holdout {row['holdout']:.4f} "
                f"(n={row['holdout_n']}): lift {row['lift']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]")  # fmt: skip

    return [line("overall", online["overall"])] + [line(p, row) for p, row in online["by_persona"].items()]
