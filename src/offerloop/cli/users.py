"""`offerloop user`: the console's team members."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from offerloop.cli.common import WorkspaceOpt, database, domain_errors
from offerloop.console import service as console_service
from offerloop.console.schemas import ROLES

app = typer.Typer(help="Console team members (owner, reviewer, analyst).", no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create")
def create(
    workspace: WorkspaceOpt,
    email: Annotated[str, typer.Option(help="The member's e-mail (their sign-in name)")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin")
    ] = False,
) -> None:
    """Create a console user; the password is asked for (twice), or read from stdin when piped."""
    password = _password(password_stdin)
    with domain_errors(), database() as db, db.write() as session:
        user = console_service.create_user(
            session=session, workspace_id=workspace, email=email, role=role, password=password
        )
    typer.echo(f"user {user.id}  {user.email}  {user.role}  (workspace {user.workspace_id})")


@app.command("list")
def list_users(workspace: WorkspaceOpt) -> None:
    with domain_errors(), database() as db, db.read() as session:
        for user in console_service.list_users(session=session, workspace_id=workspace):
            typer.echo(f"{user.id}  {user.email}  {user.role}  created {user.created_at:%Y-%m-%d}")
