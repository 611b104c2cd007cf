"""offerloop CLI: serve, migrate, workspaces, quarantine, imports, export, demo."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from offerloop.cli import analytics as analytics_cmds
from offerloop.cli import assembly as assembly_cmds
from offerloop.cli import attribution as attribution_cmds
from offerloop.cli import commerce as commerce_cmds
from offerloop.cli import config as config_cmds
from offerloop.cli import drops as drop_cmds
from offerloop.cli import imports as import_cmds
from offerloop.cli import jobs as jobs_cmds
from offerloop.cli import reports as report_cmds
from offerloop.cli import users as user_cmds
from offerloop.cli.common import (
    WorkspaceOpt,
    database,
    domain_errors,
    evaluation_lines,
    lift_lines,
    print_json,
    settings,
)
from offerloop.config import bind_host, is_loopback, is_placeholder_secret, local_url
from offerloop.core.clock import utcnow
from offerloop.decisions import service as decisions_service
from offerloop.delivery import service as delivery_service
from offerloop.events import service as event_service
from offerloop.features import service as features_service
from offerloop.identity import service as identity_service
from offerloop.personas import service as persona_service
from offerloop.workspaces import service as workspace_service

app = typer.Typer(
    help="offerloop: the creator's canonical buyer record and personalization layer.", no_args_is_help=True
)
workspace_app = typer.Typer(help="Workspaces (tenants) and their keys.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Refused events: list, replay, discard.", no_args_is_help=True)
merges_app = typer.Typer(help="Identity merges: list and undo.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(merges_app, name="merges")
app.add_typer(import_cmds.app, name="import")
app.add_typer(assembly_cmds.content_app, name="content")
app.add_typer(assembly_cmds.quiz_app, name="quiz")
app.add_typer(assembly_cmds.policy_app, name="policy")
app.add_typer(assembly_cmds.artifacts_app, name="artifacts")
app.add_typer(assembly_cmds.review_app, name="review")
app.command("worker")(jobs_cmds.worker)
app.add_typer(jobs_cmds.app, name="jobs")
app.add_typer(commerce_cmds.offers_app, name="offers")
app.add_typer(config_cmds.app, name="config")
app.add_typer(commerce_cmds.orders_app, name="orders")
app.add_typer(commerce_cmds.ledger_app, name="ledger")
app.add_typer(drop_cmds.drop_app, name="drop")
app.add_typer(report_cmds.delivery_app, name="delivery")
app.add_typer(attribution_cmds.app, name="attribution")
app.add_typer(analytics_cmds.app, name="analytics")
app.add_typer(user_cmds.app, name="user")
personas_app = typer.Typer(help="Micro-persona templates, distribution and discovery.", no_args_is_help=True)
features_app = typer.Typer(help="Feature definitions.", no_args_is_help=True)
app.add_typer(personas_app, name="personas")
app.add_typer(features_app, name="features")


WORKER_HEALTHCHECK_S = 60


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    loop: Annotated[
        str, typer.Option(help="Event loop: auto (uvloop when installed), uvloop, asyncio")
    ] = "auto",
    http: Annotated[
        str, typer.Option(help="HTTP parser: auto (httptools when installed), httptools, h11")
    ] = "auto",
    backlog: Annotated[int, typer.Option(help="Pending connections the listening socket queues")] = 2048,
) -> None:
    """Run the HTTP API (migrates the schema first if needed)."""
    import uvicorn

    if loop not in ("auto", "uvloop", "asyncio"):
        raise typer.BadParameter(f"{loop!r}: choose auto, uvloop or asyncio", param_hint="--loop")
    if http not in ("auto", "httptools", "h11"):
        raise typer.BadParameter(f"{http!r}: choose auto, httptools or h11", param_hint="--http")

    cfg = settings()
    if not is_loopback(host) and is_placeholder_secret(cfg.secret):
        typer.echo(
            f"refusing to listen on {host}: OFFERLOOP_SECRET is a placeholder, so anyone could sign "
            "download links. Set it to a long random value, e.g.\n"
            "  export OFFERLOOP_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            err=True,
        )
        raise typer.Exit(2)
    if "public_url" not in cfg.model_fields_set:
        # The workers read their settings from the environment: tell them where they are reachable.
        os.environ["OFFERLOOP_PUBLIC_URL"] = local_url(host, port)
    with database(cfg):
        pass  # migrate once here, before any worker starts
    uvicorn.run(
        "offerloop.api.app:app_from_env",
        factory=True,
        host=bind_host(host),
        port=port,
        workers=workers,
        loop=loop,
        http=http,
        backlog=backlog,
        access_log=False,
        log_level="warning",
        # uvicorn's supervisor kills a worker that does not answer its ping within this time, and a worker
        # starting on a busy machine (imports, the app factory) took longer than the 5 s default: with
        # --workers 2 the server restarted its workers in a loop and never served (`make demo` at load 10).
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


@app.command()
def migrate(
    check: Annotated[bool, typer.Option(help="Fail if models and migrations disagree")] = False,
) -> None:
    """Bring the database schema to the latest version."""
    from offerloop.db import migrate as migrations

    cfg = settings()
    if check:
        migrations.check(cfg.database_url)
        typer.echo("models and migrations agree")
        return
    with database(cfg):
        typer.echo(f"schema is current ({cfg.database_url.split('@')[-1]})")


@workspace_app.command("create")
def workspace_create(
    name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """Create a workspace with a write key and a secret key (shown once)."""
    with database() as db, db.write() as session:
        created = workspace_service.create_workspace(session=session, name=name)
    if as_json:
        print_json({"id": created.id, "write_key": created.write_key, "secret_key": created.secret_key})
    else:
        typer.echo(f"workspace  {created.id}  {created.name}")
        typer.echo(f"write key  {created.write_key}   (ingest only; safe in a web page)")
        typer.echo(f"secret key {created.secret_key}   (full API; keep it secret)")


@workspace_app.command("list")
def workspace_list() -> None:
    with database() as db, db.read() as session:
        for ws in workspace_service.list_workspaces(session=session):
            typer.echo(f"{ws.id}  {ws.name}  created {ws.created_at:%Y-%m-%d}")


senders_app = typer.Typer(
    help="Sender verification: the domains a workspace may send e-mail From (docs/delivery.md).",
    no_args_is_help=True,
)
workspace_app.add_typer(senders_app, name="senders")


@senders_app.command("allow")
def senders_allow(
    workspace: Annotated[str, typer.Argument(help="Workspace id")],
    domain: Annotated[str, typer.Argument(help="A domain, e.g. mail.example.com (its subdomains too)")],
) -> None:
    """Let the workspace send From DOMAIN and its subdomains."""
    with domain_errors(), database() as db, db.write() as session:
        workspace_service.get_workspace(session=session, workspace_id=workspace)
        name, new = delivery_service.allow_sender_domain(
            session=session, workspace_id=workspace, domain=domain
        )
    typer.echo(f"{workspace} may send From {name} and its subdomains" + ("" if new else " (already allowed)"))


@senders_app.command("deny")
def senders_deny(
    workspace: Annotated[str, typer.Argument(help="Workspace id")],
    domain: Annotated[str, typer.Argument(help="A domain allowed before")],
) -> None:
    """Withdraw DOMAIN: e-mail of the workspace still queued From it fails, with the reason."""
    with domain_errors(), database() as db, db.write() as session:
        workspace_service.get_workspace(session=session, workspace_id=workspace)
        name, was = delivery_service.deny_sender_domain(
            session=session, workspace_id=workspace, domain=domain
        )
    typer.echo(
        f"{workspace} may no longer send From {name}" if was else f"{name} was not allowed to {workspace}"
    )


@senders_app.command("list")
def senders_list(workspace: Annotated[str, typer.Argument(help="Workspace id")]) -> None:
    """The domains the workspace may send From (besides OFFERLOOP_SENDER_DOMAINS, listed for every one)."""
    cfg = settings()
    with domain_errors(), database(cfg) as db, db.read() as session:
        workspace_service.get_workspace(session=session, workspace_id=workspace)
        own = delivery_service.sender_domains(session=session, workspace_id=workspace)
    for name in own:
        typer.echo(f"{name}  (this workspace)")
    for name in sorted(cfg.sender_domain_list):
        typer.echo(f"{name}  (every workspace: OFFERLOOP_SENDER_DOMAINS)")
    if not cfg.senders_verified:
        typer.echo(
            "sender verification is off (no OFFERLOOP_SMTP_URL, no OFFERLOOP_SENDER_DOMAINS): any From goes"
        )


@workspace_app.command("signals")
def workspace_signals(
    workspace: WorkspaceOpt, file: Annotated[Path | None, typer.Argument(help="YAML rules")] = None
) -> None:
    """Show the signal weighting rules, or replace them from a YAML file."""
    with domain_errors(), database() as db, db.write() as session:
        if file is not None:
            version = event_service.set_signal_config(
                session=session, workspace_id=workspace, source=file.read_text(), actor="cli"
            )
            typer.echo(f"signal rules version {version}")
        print_json(event_service.get_signal_config(session=session, workspace_id=workspace))


@quarantine_app.command("list")
def quarantine_list(
    workspace: WorkspaceOpt,
    status: str = "open",
    reason: Annotated[str | None, typer.Option(help="Only this reason code")] = None,
    limit: int = 50,
) -> None:
    """Refused events, newest first, with their reasons."""
    with domain_errors(), database() as db, db.read() as session:
        page = event_service.list_quarantine(
            session=session, workspace_id=workspace, status=status or None, reason=reason, limit=limit
        )
    for item in page.items:
        typer.echo(
            f"{item.id}  {item.received_at:%Y-%m-%d %H:%M:%S}  {item.status:9}  {item.reason_code:20}  {item.reason}"
        )
    if not page.items:
        typer.echo("quarantine is empty")


@quarantine_app.command("show")
def quarantine_show(workspace: WorkspaceOpt, quarantine_id: str) -> None:
    with domain_errors(), database() as db, db.read() as session:
        print_json(
            event_service.get_quarantined(
                session=session, workspace_id=workspace, quarantine_id=quarantine_id
            ).model_dump(mode="json")
        )


@quarantine_app.command("replay")
def quarantine_replay(
    workspace: WorkspaceOpt,
    quarantine_id: str,
    payload: Annotated[
        Path | None, typer.Option(help="A JSON file with the corrected event ('-' for stdin)")
    ] = None,
) -> None:
    """Replay a refused event, as stored or corrected."""
    import orjson

    fixed = None
    if payload is not None:
        text = sys.stdin.read() if str(payload) == "-" else payload.read_text()
        fixed = orjson.loads(text)
    cfg = settings()
    with domain_errors(), database(cfg) as db, db.write() as session:
        result = event_service.replay(
            session=session, workspace_id=workspace, quarantine_id=quarantine_id, payload=fixed,
            max_event_bytes=cfg.max_event_bytes, actor="cli",
        )  # fmt: skip
    print_json(result.model_dump(mode="json"))
    if result.status == "open":
        raise typer.Exit(1)


@quarantine_app.command("discard")
def quarantine_discard(workspace: WorkspaceOpt, quarantine_id: str) -> None:
    with domain_errors(), database() as db, db.write() as session:
        event_service.discard(
            session=session, workspace_id=workspace, quarantine_id=quarantine_id, actor="cli"
        )
    typer.echo(f"{quarantine_id} discarded")


@merges_app.command("list")
def merges_list(
    workspace: WorkspaceOpt,
    buyer: Annotated[str | None, typer.Option(help="Buyer id")] = None,
    limit: int = 50,
) -> None:
    with domain_errors(), database() as db, db.read() as session:
        for m in identity_service.list_merges(
            session=session, workspace_id=workspace, buyer_id=buyer, limit=limit
        ):
            state = f"undone {m.undone_at:%Y-%m-%d}" if m.undone_at else "active"
            typer.echo(f"{m.id}  {m.loser_id} -> {m.winner_id}  {m.reason}  events={m.events_moved}  {state}")


@merges_app.command("undo")
def merges_undo(workspace: WorkspaceOpt, merge_id: str) -> None:
    """Split a merge again (admin)."""
    with domain_errors(), database() as db, db.write() as session:
        result = identity_service.undo_merge(
            session=session, workspace_id=workspace, merge_id=merge_id, actor="cli"
        )
    print_json(result.model_dump(mode="json"))


@personas_app.command("set")
def personas_set(
    workspace: WorkspaceOpt, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Replace the persona templates from a YAML file."""
    with domain_errors(), database() as db, db.write() as session:
        version = persona_service.set_templates(
            session=session, workspace_id=workspace, source=file.read_text(), actor="cli"
        )
    typer.echo(f"persona templates version {version}")


@personas_app.command("show")
def personas_show(workspace: WorkspaceOpt) -> None:
    """How many buyers hold each persona now."""
    with domain_errors(), database() as db, db.read() as session:
        rows = persona_service.distribution(session=session, workspace_id=workspace)
    total = sum(n for _, n in rows) or 1
    for persona, n in rows:
        typer.echo(f"{persona:28} {n:8,}  {n / total:6.1%}")


@personas_app.command("discover")
def personas_discover(
    workspace: WorkspaceOpt,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the proposed templates as YAML")
    ] = None,
    k_min: int = 4,
    k_max: int = 8,
    seed: int = 0,
) -> None:
    """Cluster buyers on their features and propose persona templates, with the statistics behind them."""
    from offerloop.personas.discover import discover, to_yaml

    with domain_errors(), database() as db, db.read() as session:
        rows = [feats for _, feats in features_service.iter_features(session=session, workspace_id=workspace)]
    if len(rows) < 2 * k_min:
        typer.secho(f"only {len(rows)} buyers have features: too few to cluster", err=True, fg="red")
        raise typer.Exit(1)
    proposals = discover(rows, k_range=(k_min, k_max), seed=seed)
    for p in proposals:
        typer.echo(f"{p.name}: {p.size:,} buyers ({p.share:.1%}) — {p.description}")
    text = to_yaml(proposals)
    if output is not None:
        output.write_text(text)
        typer.echo(f"proposed templates written to {output}")
    else:
        typer.echo(text)


@features_app.command("set")
def features_set(
    workspace: WorkspaceOpt, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Replace the feature definitions from a YAML file."""
    with domain_errors(), database() as db, db.write() as session:
        version = features_service.set_spec(
            session=session, workspace_id=workspace, source=file.read_text(), actor="cli"
        )
    typer.echo(f"feature definitions version {version}")


actions_app = typer.Typer(help="The action catalog.", no_args_is_help=True)
app.add_typer(actions_app, name="actions")


@actions_app.command("load")
def actions_load(
    workspace: WorkspaceOpt, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Create or update catalog actions from a YAML list."""
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from offerloop.decisions.schemas import ActionIn

    try:
        items = TypeAdapter(list[ActionIn]).validate_python(yaml.safe_load(file.read_text()))
    except (ValidationError, yaml.YAMLError) as exc:
        typer.secho(f"error [invalid_actions]: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc
    with domain_errors(), database() as db, db.write() as session:
        saved = decisions_service.upsert_actions(session=session, workspace_id=workspace, actions=items)
    typer.echo(f"{len(saved)} actions saved")


@app.command()
def learn(
    workspace: WorkspaceOpt,
    placement: Annotated[list[str], typer.Option(help="Placements to train (repeatable)")],
) -> None:
    """Close expired outcome windows (default rewards), then train each placement's policy: a new snapshot."""
    with domain_errors(), database() as db:
        with db.write() as session:
            closed = decisions_service.close_windows(session=session, workspace_id=workspace)
        typer.echo(f"{closed} decisions closed with their default reward")
        for name in placement:
            with db.write() as session:
                result = decisions_service.learn(session=session, workspace_id=workspace, placement=name)
            typer.echo(f"{name}: learned {result['learned']} rewards -> model version {result['version']}")


@app.command()
def evaluate(
    workspace: WorkspaceOpt,
    placement: Annotated[str | None, typer.Option(help="Only this placement")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only decisions made at or after this UTC time (ISO 8601)",
            # the hint `evaluate` prints carries an offset and microseconds: accepted by every typer version
            formats=[
                "%Y-%m-%d",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M:%S.%f%z",
            ],
        ),
    ] = None,
) -> None:
    """Estimate candidate policies out of sample on the logged decisions (progressive validation: IPS, SNIPS,
    DR) and print the lift report."""
    at = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    with domain_errors(), database() as db, db.read() as session:
        report = decisions_service.evaluate(
            session=session, workspace_id=workspace, placement=placement, since=at
        )
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"{report['decisions']:,} rewarded decisions" + (f" in placement {placement}" if placement else "")
    )
    for line in evaluation_lines(report):
        typer.echo(line)
    if not report["policies"]:
        return
    typer.echo("online lift (mean reward, learned model vs holdout):")
    for line in lift_lines(report["online"]):
        typer.echo(line)


@app.command()
def export(
    workspace: WorkspaceOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON lines file ('-' for stdout)")] = Path(
        "-"
    ),
) -> None:
    """Export the whole workspace as JSON lines (buyers, events, touchpoints, quarantine, merges)."""
    with domain_errors(), database() as db, db.read() as session:
        workspace_service.get_workspace(session=session, workspace_id=workspace)
        out = sys.stdout.buffer if str(output) == "-" else output.open("wb")
        lines = 0
        try:
            for line in event_service.export_workspace(session=session, workspace_id=workspace):
                out.write(line)
                lines += 1
        finally:
            if out is not sys.stdout.buffer:
                out.close()
    if str(output) != "-":
        typer.echo(f"{lines} lines written to {output} at {utcnow():%Y-%m-%d %H:%M:%S}Z")


@app.command()
def demo(
    buyers: Annotated[int, typer.Option(help="Synthetic buyers")] = 5000,
    events: Annotated[int, typer.Option(help="Synthetic events")] = 200_000,
    seed: int = 7,
    db_path: Annotated[Path, typer.Option("--db", help="SQLite file (recreated)")] = Path(
        "offerloop-demo.db"
    ),
) -> None:
    """Create a demo workspace, send a synthetic creator audience through the real HTTP API, show the result."""
    from offerloop.cli.demo import run_demo

    run_demo(buyers=buyers, events=events, seed=seed, db_path=db_path)


if __name__ == "__main__":
    app()
