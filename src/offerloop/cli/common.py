"""What every command needs: settings, an engine at the current schema, output helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import typer
from pydantic import BaseModel

from offerloop.config import Settings
from offerloop.core.errors import OfferloopError
from offerloop.db import migrate
from offerloop.db.engine import WalCheckpointer, make_engine
from offerloop.db.uow import Database
from offerloop.pipeline import log as pipeline_log
from offerloop.worker import pools as worker_pools


def settings() -> Settings:
    return Settings()


@contextmanager
def database(
    cfg: Settings | None = None, *, inline: bool = True, long_running: bool = False
) -> Iterator[Database]:
    """The database at the current schema. A command is a short-lived process with no consumer threads,
    so by default what it appends to the event log is processed inline, right after its commit (a server
    or worker running at the same time shares the partitions through their leases). A ``long_running``
    process (the worker) checkpoints a SQLite WAL from a background thread, as the server does, which
    keeps the WAL file bounded under sustained load."""
    cfg = cfg or settings()
    background_checkpoint = long_running and cfg.is_sqlite
    engine = make_engine(
        cfg.database_url,
        sqlite_synchronous=cfg.sqlite_synchronous,
        background_checkpoint=background_checkpoint,
    )
    checkpointer: WalCheckpointer | None = None
    try:
        migrate.upgrade(engine)
        db = Database(engine)
        if inline:
            worker_pools.prepare(cfg)
            pipeline_log.set_inline(db)
        if background_checkpoint:
            checkpointer = WalCheckpointer(engine)
            checkpointer.start()
        yield db
    finally:
        try:
            if checkpointer is not None:
                checkpointer.stop()
        finally:
            engine.dispose()


def print_json(data: Any) -> None:
    # services answer with read models (as the API does): printed as the API would send them
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list) and data and isinstance(data[0], BaseModel):
        data = [item.model_dump(mode="json") for item in data]
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
    """The online lift report (learned model vs holdout, overall then by persona) as aligned text lines.

    A lift is printed as a finding only when the report's verdict is "significant" (both groups large
    enough and the interval excluding 0); otherwise the line says "not enough data" and why, with no point
    estimate."""

    def line(label: str, row: dict[str, Any]) -> str:
        sizes = f"model n={row['model_n']}, holdout n={row['holdout_n']}"
        if row.get("verdict") != "significant":
            why = row.get("reason", "")
            if row.get("lift") is not None:
                why += f": [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
            return f"  {label:28} {sizes}: not enough data ({why})"
        return (f"  {label:28} model {row['model']:.4f} (n={row['model_n']}) vs holdout {row['holdout']:.4f} "
                f"(n={row['holdout_n']}): lift {row['lift']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] "
                "SIGNIFICANT")  # fmt: skip

    return [line("overall", online["overall"])] + [line(p, row) for p, row in online["by_persona"].items()]


def evaluation_lines(report: dict[str, Any]) -> list[str]:
    """The offline table of an evaluation report: which method, and per policy the rows it was scored on,
    the matched (and rewarded) decisions, ESS and the three estimates with their intervals."""
    if not report["policies"]:
        return ["not enough rewarded decisions to evaluate yet"]
    level = report.get("online", {}).get("level", 0.95)
    out = [
        f"{report['method']} (each decision scored by the model snapshot that existed before it; baselines and "
        "DR's reward model fitted on earlier decisions only)",
        f"{'policy':12} {'scored':>7} {'matched':>8} {'rewarded':>8} {'ESS':>7}  "
        f"{'SNIPS [' + format(level, '.0%') + ']':>24} {'IPS':>24} {'DR':>24}",
    ]
    for name, est in report["policies"].items():
        cells = [
            f"{est[k]['value']:.4f} [{est[k]['ci_low']:.4f}, {est[k]['ci_high']:.4f}]"
            for k in ("snips", "ips", "dr")
        ]
        flag = "" if est["enough_data"] else "  not enough data"
        out.append(
            f"{name:12} {est['scored']:>7} {est['matched']:>8} {est['matched_rewarded']:>8} "
            f"{est['effective_sample_size']:>7.0f}  {cells[0]:>24} {cells[1]:>24} {cells[2]:>24}{flag}"
        )
        if est.get("snapshots"):
            out.append(
                "  scored by snapshots: " + ", ".join(f"{k} ({v})" for k, v in est["snapshots"].items())
            )
            if est["scored"] < report["decisions"]:
                since = est["first_decision_at"].isoformat()
                out.append(f"  the model is scored only on decisions made after a snapshot; to compare every "
                           f"policy on those rows: --since {since}")  # fmt: skip
    out.append(
        'matched: decisions whose logged action is the policy\'s most likely one; "not enough data": fewer '
        "than 30 matched or an ESS below 30, the estimate is no finding."
    )
    return out
