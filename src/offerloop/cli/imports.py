"""`offerloop import buyers|orders FILE.csv`: CSV through the same ingestion path as the API."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from offerloop.cli.common import database, domain_errors, settings
from offerloop.core.clock import utcnow
from offerloop.events import service as event_service
from offerloop.events.imports import ImportKind, MappingError, RowError, iter_rows, parse_mapping
from offerloop.workspaces import service as workspace_service

app = typer.Typer(help="Import buyers or orders from CSV (idempotent: re-running stores nothing twice).")

CHUNK = 500


def _run(
    kind: ImportKind,
    file: Path,
    workspace: str,
    mapping: str | None,
    dry_run: bool,
    report: Path | None,
    revision: str,
) -> None:
    cfg = settings()
    try:
        parsed_mapping = parse_mapping(mapping, kind) if mapping else None
    except MappingError as exc:
        typer.secho(f"error [invalid_mapping]: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc
    with file.open(encoding="utf-8-sig", newline="") as lines:
        total_rows = max(sum(1 for _ in lines) - 1, 0)
    errors: list[RowError] = []
    stats = {"rows": 0, "stored": 0, "already_imported": 0, "refused": 0}

    with domain_errors(), database(cfg) as db:
        with db.read() as session:
            workspace_service.get_workspace(session=session, workspace_id=workspace)
        with file.open(encoding="utf-8-sig", newline="") as handle:
            try:
                rows = iter_rows(
                    kind,
                    handle,
                    mapping=parsed_mapping,
                    source=file.name,
                    workspace_salt=workspace,
                    revision=revision,
                )
            except MappingError as exc:
                typer.secho(f"error [invalid_mapping]: {exc}", err=True, fg="red")
                raise typer.Exit(2) from exc
            pending: list[tuple[int, dict[str, Any]]] = []
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, transient=False) as progress:
                task = progress.add_task(f"{'checking' if dry_run else 'importing'} {kind}", total=total_rows)
                for result in rows:
                    stats["rows"] += 1
                    if result.message is None:
                        errors.extend(result.errors)
                        stats["refused"] += 1
                    else:
                        pending.append((result.row, result.message))
                    if len(pending) >= CHUNK:
                        _flush(db, workspace, pending, dry_run, stats, errors, cfg.max_event_bytes)
                        progress.update(task, completed=stats["rows"])
                        pending = []
                _flush(db, workspace, pending, dry_run, stats, errors, cfg.max_event_bytes)
                progress.update(task, completed=stats["rows"])

    verb = "would store" if dry_run else "stored"
    typer.echo(
        f"{stats['rows']} rows: {verb} {stats['stored']}, already imported {stats['already_imported']}, "
        f"refused {stats['refused']}" + ("  (dry run: nothing was written)" if dry_run else "")
    )
    for err in errors[:20]:
        typer.echo(f"  row {err.row}: {err.column or '-'}: [{err.code}] {err.message}", err=True)
    if len(errors) > 20:
        typer.echo(f"  … {len(errors) - 20} more", err=True)
    if report is not None:
        with report.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "column", "code", "message"])
            for err in errors:
                writer.writerow([err.row, err.column or "", err.code, err.message])
        typer.echo(f"per-row error report: {report}")
    if errors:
        raise typer.Exit(1)


def _flush(
    db: Any,
    workspace: str,
    pending: list[tuple[int, dict[str, Any]]],
    dry_run: bool,
    stats: dict[str, int],
    errors: list[RowError],
    max_event_bytes: int,
) -> None:
    if not pending:
        return
    messages = [m for _, m in pending]
    now = utcnow()
    if dry_run:
        with db.read() as session:
            existing = event_service.existing_message_ids(
                session=session,
                workspace_id=workspace,
                message_ids=[str(m.get("messageId")) for m in messages],
            )
        prepared = event_service.prepare_batch(
            messages, received_at=now, max_event_bytes=max_event_bytes, origin="creator"
        )
        for refused in prepared.refused:
            errors.append(RowError(pending[refused.index][0], None, refused.code, refused.message))
            stats["refused"] += 1
        for accepted in prepared.accepted:
            stats["already_imported" if accepted.message_id in existing else "stored"] += 1
        return
    prepared = event_service.prepare_batch(
        messages, received_at=now, max_event_bytes=max_event_bytes, origin="creator"
    )
    with db.write() as session:
        result = event_service.ingest(session=session, workspace_id=workspace, batch=prepared)
    for item in result.items:
        row = pending[item.index][0]
        if item.status == "accepted":
            stats["stored"] += 1
        elif item.status == "duplicate":
            stats["already_imported"] += 1
        else:
            stats["refused"] += 1
            errors.append(
                RowError(
                    row, None, item.code or "refused", f"{item.message} (quarantined as {item.quarantine_id})"
                )
            )


Workspace = Annotated[
    str, typer.Option("--workspace", "-w", help="Workspace id", envvar="OFFERLOOP_WORKSPACE")
]
Mapping = Annotated[str | None, typer.Option("--map", help="field=CSV header pairs, comma separated")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing")]
Report = Annotated[Path | None, typer.Option("--report", help="Write every row error to this CSV")]
Revision = Annotated[str, typer.Option("--revision", help="Re-import changed rows as new events")]
CsvFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


@app.command("buyers")
def import_buyers(
    file: CsvFile,
    workspace: Workspace,
    map: Mapping = None,
    dry_run: DryRun = False,
    report: Report = None,
    revision: Revision = "",
) -> None:
    """Import buyers (user_id, email, phone, names, platform ids, consent; other columns become traits)."""
    _run("buyers", file, workspace, map, dry_run, report, revision)


@app.command("orders")
def import_orders(
    file: CsvFile,
    workspace: Workspace,
    map: Mapping = None,
    dry_run: DryRun = False,
    report: Report = None,
    revision: Revision = "",
) -> None:
    """Import orders (order_id, user_id or email, amount, currency, product, status, date)."""
    _run("orders", file, workspace, map, dry_run, report, revision)
