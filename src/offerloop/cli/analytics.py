"""`offerloop analytics rebuild`: recompute the analytics state (purchases, buyer summaries, first persona
assignments) from the store — the backfill after upgrading, or a repair. The ``analytics`` consumer keeps it
from then on."""

from __future__ import annotations

from typing import Annotated

import typer

from offerloop.analytics import service
from offerloop.cli.common import database, domain_errors, print_json, settings
from offerloop.workspaces import service as workspace_service

app = typer.Typer(help="Customer analytics state.", no_args_is_help=True)


@app.command("rebuild")
def rebuild(
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", help="Workspace id (default: every workspace)", envvar="OFFERLOOP_WORKSPACE"
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Recompute the analytics state of a workspace (or every one), each in one transaction."""
    done: dict[str, int] = {}
    with database(settings()) as db:
        if workspace is None:
            with db.read() as session:
                ids = [w.id for w in workspace_service.list_workspaces(session=session)]
        else:
            with domain_errors(), db.read() as session:
                workspace_service.get_workspace(session=session, workspace_id=workspace)  # unknown: exit 2
            ids = [workspace]
        for workspace_id in ids:
            with db.write() as session:
                done[workspace_id] = service.rebuild(session=session, workspace_id=workspace_id)
    if json:
        print_json({"workspaces": done})
    else:
        for workspace_id, buyers in done.items():
            typer.echo(f"{workspace_id}: {buyers} buyers recomputed")
