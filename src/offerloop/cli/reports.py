"""`offerloop delivery reports --maildir DIR | FILE…`: apply the bounces and complaints an MTA delivered to the
bounce address's mailbox (what POST /v1/delivery/reports does, for every workspace at once)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from offerloop.cli.common import database, print_json, settings
from offerloop.core.errors import OfferloopError
from offerloop.delivery import feedback
from offerloop.delivery.email.reports import MAX_REPORT_BYTES, ReportTooLarge
from offerloop.workspaces import service as workspace_service

delivery_app = typer.Typer(help="Delivery: bounces and complaints.", no_args_is_help=True)


@delivery_app.command("reports")
def reports(
    files: Annotated[list[Path] | None, typer.Argument(help="Report files (raw e-mails) to apply")] = None,
    maildir: Annotated[
        Path | None, typer.Option(help="A Maildir: apply every message in new/, then move it to cur/")
    ] = None,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only reports about this workspace's messages")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per report")] = False,
) -> None:
    """Apply delivery reports (DSN bounces, ARF complaints, plain bounces) to the messages they name.

    In a Maildir, each message of new/ is moved to cur/ once handled: seen (``:2,S``) when applied, also
    flagged (``:2,FS``) when it was refused or names no message here, so a person can look at it. A message
    whose handling failed for another reason (the database) stays in new/ for the next run (exit code 1)."""
    paths = list(files or [])
    if maildir is not None:
        if not (maildir / "new").is_dir() or not (maildir / "cur").is_dir():
            typer.echo(f"{maildir}: not a Maildir (no new/ and cur/)", err=True)
            raise typer.Exit(2)
        paths += sorted(p for p in (maildir / "new").iterdir() if p.is_file() and not p.name.startswith("."))
    if not paths:
        typer.echo("no reports to apply (give files or --maildir)", err=True)
        raise typer.Exit(2)
    cfg = settings()
    results: list[dict[str, Any]] = []
    failed = False
    with database(cfg) as db:
        for path in paths:
            result = _one(db, path, cfg.secret, workspace, cfg.verp_enabled)
            failed = failed or result["outcome"] == "error"
            if maildir is not None and result["outcome"] != "error":
                result["moved_to"] = str(_to_cur(maildir, path, flagged=result["outcome"] != "applied"))
            results.append(result)
            if not json:
                typer.echo(_line(result))
    if json:
        print_json(results)
    if failed:
        raise typer.Exit(1)


def _one(db: Any, path: Path, configured: str, workspace: str | None, verp: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"file": str(path)}
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise ReportTooLarge(
                f"the file is {path.stat().st_size} bytes; a report is at most {MAX_REPORT_BYTES}"
            )
        raw = path.read_bytes()
        with db.write() as session:
            secret = workspace_service.signing_secret(session=session, configured=configured)
            workspace_id, applied = feedback.receive(
                session=session, raw=raw, secret=secret, workspace_id=workspace, verp=verp
            )
    except OfferloopError as exc:
        return {**out, "outcome": "refused", "code": exc.code, "message": exc.message}
    except OSError as exc:
        return {**out, "outcome": "error", "message": str(exc)}
    except Exception as exc:  # the database or a bug: leave the file where it is, say why, go on
        return {**out, "outcome": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
    return {**out, "outcome": "applied", "workspace_id": workspace_id, **applied.model_dump(mode="json")}


def _to_cur(maildir: Path, path: Path, *, flagged: bool) -> Path:
    target = maildir / "cur" / f"{path.name.split(':', 1)[0]}:2,{'FS' if flagged else 'S'}"
    os.replace(path, target)
    return target


def _line(result: dict[str, Any]) -> str:
    name = Path(result["file"]).name
    if result["outcome"] != "applied":
        return f"{name}: {result['outcome']} {result.get('code', '')}: {result['message']}".replace("  ", " ")
    parts = []
    for o in result["outcomes"]:
        what = f"{o['kind']} {o['recipient']} {o['status'] or ''}".strip()
        if not o["applied"]:
            what += " (already applied)"
        elif o["suppressed"]:
            what += f" -> suppressed ({o['suppressed']})"
        parts.append(what)
    return (
        f"{name}: {result['format']} about message {result['outbox_id']} ({result['workspace_id']}): "
        + "; ".join(parts)
    )
