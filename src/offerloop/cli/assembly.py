"""`offerloop content|quiz|policy|artifacts|worker`: the corpus, quizzes, composition policies, artifacts
and the render worker from the command line."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from offerloop.assembly import service as assembly_service
from offerloop.assembly.lint import lint_policy
from offerloop.assembly.policy import parse_policy
from offerloop.checkout import service as checkout_service
from offerloop.cli.common import WorkspaceOpt, database, domain_errors, print_json, settings
from offerloop.content import service as content_service
from offerloop.content.atoms import load_corpus
from offerloop.content.quizzes import parse_quiz
from offerloop.worker.fulfilment import FulfilmentWorkers
from offerloop.worker.renderer import RenderWorkers, rewriter_config

content_app = typer.Typer(
    help="The content corpus (Markdown atoms with YAML front matter).", no_args_is_help=True
)
quiz_app = typer.Typer(help="Intake quizzes.", no_args_is_help=True)
policy_app = typer.Typer(help="Composition policies.", no_args_is_help=True)
artifacts_app = typer.Typer(help="Personalized deliverables.", no_args_is_help=True)


@content_app.command("sync")
def content_sync(
    workspace: WorkspaceOpt,
    directory: Annotated[
        Path, typer.Argument(help="Folder of *.md atoms (recursive)", exists=True, file_okay=False)
    ],
    keep: Annotated[bool, typer.Option("--keep", help="Do not retire atoms missing from the folder")] = False,
) -> None:
    """Load every atom under DIRECTORY; a changed atom gets a new version, an invalid one stops the sync."""
    with domain_errors(), database() as db, db.write() as session:
        report = content_service.sync_directory(
            session=session, workspace_id=workspace, directory=directory, prune=not keep
        )
    typer.echo(
        f"{len(report['added'])} added, {len(report['changed'])} changed, {report['unchanged']} unchanged, "
        f"{len(report['retired'])} retired"
    )
    for change in report["changed"]:
        typer.echo(f"  changed {change['id']}: {change['from']} -> {change['to']}")


@content_app.command("check")
def content_check(directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """Validate a corpus folder without storing it; each problem names its file and line."""
    atoms, problems = load_corpus(directory)
    for problem in problems:
        typer.secho(problem, err=True, fg="red")
    typer.echo(f"{len(atoms)} atoms valid, {len(problems)} problems")
    if problems:
        raise typer.Exit(1)


@quiz_app.command("load")
def quiz_load(
    workspace: WorkspaceOpt, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Store an intake quiz (YAML)."""
    with domain_errors(), database() as db, db.write() as session:
        quiz = content_service.put_quiz(
            session=session, workspace_id=workspace, text=file.read_text(), actor="cli"
        )
    typer.echo(f"quiz {quiz.id} version {quiz.version}: {len(quiz.questions)} questions")


@policy_app.command("load")
def policy_load(
    workspace: WorkspaceOpt,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    trigger: Annotated[
        list[str] | None, typer.Option(help="Event that generates the deliverable (repeatable)")
    ] = None,
) -> None:
    """Store a composition policy and print its lint findings on the workspace's corpus."""
    with domain_errors(), database() as db, db.write() as session:
        out = assembly_service.put_policy(session=session, workspace_id=workspace, text=file.read_text(),
                                          triggers=[{"event": t} for t in trigger or []], actor="cli")  # fmt: skip
    typer.echo(f"policy {out['id']} version {out['version']}")
    for f in out["findings"]:
        typer.echo(f"  {f['severity']}: {f['location']}: {f['message']}")


@policy_app.command("lint")
def policy_lint(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus folder (else the workspace's stored corpus)")
    ] = None,
    quiz: Annotated[Path | None, typer.Option(help="Quiz YAML the conditions refer to")] = None,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", envvar="OFFERLOOP_WORKSPACE")] = None,
) -> None:
    """Find unreachable sections and slots that can never be filled; exit 1 when there are errors."""
    with domain_errors():
        policy = parse_policy(file.read_text(), path=str(file))
        parsed_quiz = parse_quiz(quiz.read_text(), path=str(quiz)) if quiz else None
        if corpus is not None:
            atoms, problems = load_corpus(corpus)
            for problem in problems:
                typer.secho(f"corpus: {problem}", err=True, fg="yellow")
            findings = lint_policy(policy, atoms, parsed_quiz)
        elif workspace:
            with database() as db, db.read() as session:
                findings = assembly_service.lint(
                    session=session, workspace_id=workspace, policy=policy, quiz=parsed_quiz
                )
        else:
            typer.secho("give --corpus DIR or --workspace ID", err=True, fg="red")
            raise typer.Exit(2)
    for f in findings:
        where = f"{file}:{f.line}" if f.line else str(file)
        typer.echo(f"{where}: {f.severity}: {f.location}: {f.message}")
    errors = sum(f.severity == "error" for f in findings)
    typer.echo(f"{errors} errors, {len(findings) - errors} warnings")
    if errors:
        raise typer.Exit(1)


@artifacts_app.command("show")
def artifacts_show(workspace: WorkspaceOpt, artifact_id: str) -> None:
    """Status, provenance, files and versions of an artifact (JSON)."""
    with domain_errors(), database() as db, db.read() as session:
        print_json(
            assembly_service.get_artifact(session=session, workspace_id=workspace, artifact_id=artifact_id)
        )


@artifacts_app.command("save")
def artifacts_save(
    workspace: WorkspaceOpt, artifact_id: str, out: Annotated[Path, typer.Argument(help="File to write")],
    fmt: Annotated[str, typer.Option("--format", help="pdf, html, email or markdown")] = "pdf",
) -> None:  # fmt: skip
    """Write the current version's file (once it is ready)."""
    cfg = settings()
    with domain_errors(), database(cfg) as db, db.read() as session:
        link = assembly_service.download_link(session=session, workspace_id=workspace, artifact_id=artifact_id,
                                              fmt=fmt, secret=cfg.secret)  # fmt: skip
        content, _, _ = assembly_service.open_link(session=session, artifact_id=artifact_id, version=link["version"],
                                                   fmt=fmt, expires=link["expires"], sig=link["url"].rsplit("sig=", 1)[1],
                                                   secret=cfg.secret, public_url=cfg.public_url)  # fmt: skip
    out.write_bytes(content)
    typer.echo(f"{out} ({len(content):,} bytes)")


@artifacts_app.command("affected")
def artifacts_affected(
    workspace: WorkspaceOpt, atom: Annotated[str | None, typer.Option(help="Only this atom")] = None
) -> None:
    """Artifacts built from atom versions that have changed since."""
    with domain_errors(), database() as db, db.read() as session:
        print_json(assembly_service.affected_by(session=session, workspace_id=workspace, atom_id=atom))


@artifacts_app.command("regenerate")
def artifacts_regenerate(
    workspace: WorkspaceOpt, atom: Annotated[str | None, typer.Option(help="Only this atom")] = None
) -> None:
    """Queue a new version of every affected artifact (rendered by the server's or a worker's threads)."""
    with domain_errors(), database() as db, db.write() as session:
        done = assembly_service.regenerate_affected(session=session, workspace_id=workspace, atom_id=atom)
    for d in done:
        typer.echo(f"{d['id']} -> version {d['version']} (queued)")
    typer.echo(f"{len(done)} artifacts regenerated")


def worker(
    threads: Annotated[int, typer.Option(help="Render threads in this process")] = 2,
    fulfilment_threads: Annotated[int, typer.Option(help="Fulfilment threads in this process")] = 1,
    once: Annotated[bool, typer.Option("--once", help="Do what is queued now, then exit")] = False,
) -> None:
    """Render queued artifacts and deliver paid orders' components, next to (or instead of) the server's own threads."""
    cfg = settings()
    with database(cfg) as db:
        if once:
            delivered = checkout_service.run_fulfilment(db=db)  # first: it may queue deliverables to render
            done = assembly_service.run_pending(db=db, rewriter=rewriter_config(cfg))
            typer.echo(f"{len(done)} artifact versions rendered, {len(delivered)} fulfilment tasks run")
            return
        pools: list[RenderWorkers | FulfilmentWorkers] = [
            RenderWorkers(db, cfg, threads=threads),
            FulfilmentWorkers(db, threads=fulfilment_threads),
        ]
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        for pool in pools:
            pool.start()
        typer.echo(
            f"worker: {threads} render threads, {fulfilment_threads} fulfilment threads; Ctrl-C to stop"
        )
        stop.wait()
        for pool in pools:
            pool.stop()
