"""`offerloop drop open|close|status KEY`: a live drop, by hand (what POST /v1/drops/{key}/open does)."""

from __future__ import annotations

import typer

from offerloop.cli.common import WorkspaceOpt, database, domain_errors, print_json
from offerloop.live import service as live_service
from offerloop.live.schemas import DropStatus

drop_app = typer.Typer(help="Live drops: open and close them by hand.", no_args_is_help=True)


def _show(out: DropStatus, changed: bool | None = None) -> None:
    note = "" if changed is None else (" (changed)" if changed else " (already so)")
    typer.echo(
        f"{out.key}: {out.state}{note}, {out.units_left} of {out.inventory} left, closes {out.closes_at.isoformat()}"
    )


@drop_app.command("open")
def drop_open(workspace: WorkspaceOpt, key: str) -> None:
    """Make a signed-off drop live now, until its closes_at or until closed (idempotent)."""
    with domain_errors(), database() as db, db.write() as session:
        out = live_service.open_drop(session=session, workspace_id=workspace, key=key, actor="cli")
    _show(out, out.changed)


@drop_app.command("close")
def drop_close(workspace: WorkspaceOpt, key: str) -> None:
    """Stop selling a drop now (idempotent)."""
    with domain_errors(), database() as db, db.write() as session:
        out = live_service.close_drop(session=session, workspace_id=workspace, key=key, actor="cli")
    _show(out, out.changed)


@drop_app.command("status")
def drop_status(workspace: WorkspaceOpt, key: str, json: bool = typer.Option(False, "--json")) -> None:
    """A drop's state, window and units left."""
    with domain_errors(), database() as db, db.read() as session:
        out = live_service.status(session=session, workspace_id=workspace, key=key)
    if json:
        print_json(out.model_dump(mode="json"))
    else:
        _show(out)
