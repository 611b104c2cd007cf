"""`offerloop worker` and `offerloop jobs`: run background jobs in this process, list and replay them."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from typing import Annotated, Any

import typer

from offerloop.assembly.tasks import rewriter_config
from offerloop.cli.common import database, print_json, settings
from offerloop.jobs import queue, runner
from offerloop.telemetry import configure_logging
from offerloop.worker import pools as worker_pools

app = typer.Typer(help="Background jobs: list them, replay a parked one.", no_args_is_help=True)


def worker(
    threads: Annotated[
        int | None, typer.Option(help="Job threads in this process (default: OFFERLOOP_WORKER_THREADS)")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run the jobs due now, then exit")] = False,
) -> None:
    """Run background jobs (renders, fulfilment, learning, due work) next to, or instead of, the server's
    own threads; any number of these, on any machine, share the work. SIGTERM finishes the current jobs."""
    cfg = settings()
    configure_logging(cfg.log_level, cfg.log_json)  # on stderr: stdout is the command's answer
    worker_pools.prepare(cfg)
    with database(cfg, inline=False, long_running=not once) as db:
        if once:
            ran: list[runner.Ran] = []
            owner = runner.owner_id(":once")
            deps = {"rewriter": rewriter_config(cfg), "settings": cfg}
            while batch := runner.run_due(db, owner=owner, deps=deps):
                ran += batch
            kinds = Counter(r.kind for r in ran)
            others = len(ran) - kinds["assembly.render"] - kinds["checkout.fulfil"]
            typer.echo(
                f"{kinds['assembly.render']} artifact versions rendered, {kinds['checkout.fulfil']} fulfilment "
                f"tasks run" + (f", {others} other jobs run" if others else "")
            )
            return
        count = max(1, cfg.worker_threads if threads is None else threads)
        background = worker_pools.pools(
            db,
            cfg,
            consumer_threads=max(1, cfg.pipeline_workers),
            job_threads=count,
            name="worker",
            serving=False,
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        for pool in background:
            pool.start()
        typer.echo(f"worker: {count} job threads, consumer threads beside them; Ctrl-C to stop", err=True)
        stop.wait()
        for pool in reversed(background):
            pool.stop()  # each thread finishes the job it is running


@app.command("list")
def list_jobs(
    state: Annotated[str | None, typer.Option(help="queued, done or parked")] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. assembly.render, checkout.fulfil")] = None,
    parked: Annotated[bool, typer.Option("--parked", help="Only parked jobs (gave up; replayable)")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Jobs by state and kind, most recently changed first."""
    with database() as db, db.read() as session:
        jobs = queue.listing(session, state="parked" if parked else state, kind=kind, limit=limit)
        rows: list[dict[str, Any]] = [{"id": j.id, "kind": j.kind, "key": j.key, "workspace_id": j.workspace_id, "state": j.state,
                 "run_at": j.run_at.isoformat(), "attempts": j.attempts, "lease_owner": j.lease_owner,
                 "last_error": j.last_error} for j in jobs]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    for r in rows:
        error = f"  {r['last_error'][:120]}" if r["last_error"] else ""
        typer.echo(f"{r['id']:>8}  {r['state']:<7} {r['kind']:<24} {r['key']:<40} {r['attempts']}{error}")
    typer.echo(f"{len(rows)} jobs")


@app.command("replay")
def replay(job_id: Annotated[int, typer.Argument(help="The job's id (as listed)")]) -> None:
    """Queue a parked job again now, with fresh attempts."""
    with database() as db, db.write() as session:
        job = queue.replay(session, job_id)
        if job is None:
            typer.secho(f"error [job_not_found]: no job {job_id}", err=True, fg="red")
            raise typer.Exit(1)
        typer.echo(f"job {job.id} ({job.kind} {job.key}) queued")
