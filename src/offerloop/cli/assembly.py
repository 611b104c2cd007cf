"""`offerloop content|quiz|policy|artifacts|review`: the corpus, quizzes, composition policies, artifacts
and their review from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from offerloop.assembly import service as assembly_service
from offerloop.assembly.lint import lint_policy
from offerloop.assembly.policy import parse_policy
from offerloop.cli.common import WorkspaceOpt, database, domain_errors, print_json, settings
from offerloop.content import service as content_service
from offerloop.content.atoms import load_corpus
from offerloop.content.quizzes import parse_quiz

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
        f"{len(report.added)} added, {len(report.changed)} changed, {report.unchanged} unchanged, "
        f"{len(report.retired)} retired"
    )
    for change in report.changed:
        typer.echo(f"  changed {change.id}: {change.from_} -> {change.to}")


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
    typer.echo(f"policy {out.id} version {out.version}")
    for f in out.findings:
        typer.echo(f"  {f.severity}: {f.location}: {f.message}")


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
        content, _, _ = assembly_service.open_link(session=session, artifact_id=artifact_id, version=link.version,
                                                   fmt=fmt, expires=link.expires, sig=link.url.rsplit("sig=", 1)[1],
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
        typer.echo(f"{d.id} -> version {d.version} (queued)")
    typer.echo(f"{len(done)} artifacts regenerated")


review_app = typer.Typer(
    help="The review queue: see the whole document, its reasons and diff; approve, edit or reject.",
    no_args_is_help=True,
)
ReviewerOpt = Annotated[
    str, typer.Option("--reviewer", "-r", help="Who decides", envvar="OFFERLOOP_REVIEWER")
]
VersionOpt = Annotated[
    int | None, typer.Option("--version", help="The version you reviewed (refused if not current)")
]


@review_app.command("list")
def review_list(workspace: WorkspaceOpt, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Versions waiting for a human: buyer, policy, reasons."""
    with domain_errors(), database() as db, db.read() as session:
        queue = [
            q.model_dump(mode="json")
            for q in assembly_service.review_queue(session=session, workspace_id=workspace)
        ]
    if as_json:
        print_json(queue)
        return
    for q in queue:
        ids = ", ".join(f"{i['kind']}={i['value']}" for i in q["buyer"]["identifiers"]) or q["buyer"]["id"]
        typer.echo(
            f"{q['artifact_id']} v{q['version']}  buyer {ids}  policy {q['policy']['id']}@{q['policy']['version']}"
        )
        for reason in q["reasons"]:
            typer.echo(f"    - {reason}")
    typer.echo(f"{len(queue)} waiting for review")


@review_app.command("show")
def review_show(
    workspace: WorkspaceOpt, artifact_id: str, version: Annotated[int | None, typer.Option(help="Another version")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Everything, as JSON (with the rendered HTML)")] = False,
    html: Annotated[Path | None, typer.Option(help="Write the rendered HTML to this file")] = None,
) -> None:  # fmt: skip
    """The whole document (every block's text and atom), the reasons, the reviewer edits and the diff."""
    cfg = settings()
    with domain_errors(), database(cfg) as db, db.read() as session:
        got = assembly_service.review_detail(session=session, workspace_id=workspace, artifact_id=artifact_id,
                                             secret=cfg.secret, version=version, public_url=cfg.public_url).model_dump(mode="json")  # fmt: skip
    if html is not None and got["html"] is not None:
        html.write_text(got["html"])
    if as_json:
        print_json(got)
        return
    for line in _review_lines(got):
        typer.echo(line)


def _review_lines(got: dict[str, Any]) -> list[str]:
    buyer = got["buyer"]
    ids = ", ".join(f"{i['kind']}={i['value']}" for i in buyer["identifiers"]) or buyer["id"]
    lines = [f"{got['artifact_id']} v{got['version']} ({got['status']}) for {buyer.get('name') or buyer['id']} [{ids}]",
             f"policy {got['policy']['id']}@{got['policy']['version']}; changelog: {got['changelog']}"]  # fmt: skip
    lines += [f"needs review: {r}" for r in got["reasons"]]
    lines.append(f"# {got['document']['title']}")
    for section in got["document"]["sections"]:
        lines.append(f"## {section['title']}")
        lines += [f"    {text}" for text in (section.get("intro") or "").splitlines()]
        for b in section["blocks"]:
            source = f"atom {b['atom_id']}@{b['atom_version']}" if b["atom_id"] else "policy text"
            flags = "".join(
                [" (AI-rewritten)" if b["ai_assisted"] else "", " (fallback)" if b["fallback"] else ""]
            )
            lines.append(f"[{b['block']}] {b['title'] or ''} — {source}{flags}")
            lines += [f"    {text}" for text in b["markdown"].splitlines()]
    for e in got["edits"]["in_effect"]:
        state = "kept" if e["kept"] else "CHANGED SINCE"
        lines.append(f"reviewer edit on {e['block']} by {e['reviewer']} (v{e['version']}): {state}")
        if e.get("atom_changed"):  # the edit hides the atom's new text: show it, so the reviewer can compare
            lines.append(
                f"  its atom changed since the edit (now v{e.get('new_atom_version')}); the atom now reads:"
            )
            lines += [f"    {text}" for text in str(e.get("replaces") or "").splitlines()]
    for e in got["edits"]["not_carried"]:
        lines.append(
            f"NOT CARRIED: edit on {e['block']} (atom {e['atom_id']}) by {e['reviewer']}: {e['text']!r}"
        )
    if got["diff"] is not None:
        d = got["diff"]
        lines.append(
            f"diff against v{d['against_version']} ({d['against_outcome']} by {d['against_reviewer']}):"
        )
        lines += [f"  atom {a['id']}: {a['change']} {a['from']} -> {a['to']}" for a in d["atoms"]]
        for b in d["blocks"]:
            lines.append(f"  block {b['block'] or b['was_block']}: {b['change']}")
            lines += [f"    {text}" for text in b["text_diff"].splitlines()]
    if got["preview_url"]:
        lines.append(f"preview (HTML, reviewer only): {got['preview_url']}")
    return lines


def _decide(workspace: str, artifact_id: str, action: str, reviewer: str, note: str | None, version: int | None,
            edits: dict[str, str] | None = None) -> None:  # fmt: skip
    with domain_errors(), database() as db, db.write() as session:
        done = assembly_service.review(session=session, workspace_id=workspace, artifact_id=artifact_id, action=action,
                                       reviewer=reviewer, note=note, edits=edits, version=version)  # fmt: skip
    typer.echo(f"{done.id} v{done.version}: {done.status}")


@review_app.command("approve")
def review_approve(
    workspace: WorkspaceOpt, artifact_id: str, reviewer: ReviewerOpt, version: VersionOpt = None,
    note: Annotated[str | None, typer.Option(help="Why")] = None,
) -> None:  # fmt: skip
    """Approve the version waiting: it becomes ready for the buyer."""
    _decide(workspace, artifact_id, "approve", reviewer, note, version)


@review_app.command("reject")
def review_reject(
    workspace: WorkspaceOpt, artifact_id: str, reviewer: ReviewerOpt,
    note: Annotated[str, typer.Option(help="Why (kept with the version)")], version: VersionOpt = None,
) -> None:  # fmt: skip
    """Reject the version waiting: it is never delivered, and a regeneration comes back to review."""
    _decide(workspace, artifact_id, "reject", reviewer, note, version)


@review_app.command("edit")
def review_edit(
    workspace: WorkspaceOpt, artifact_id: str, reviewer: ReviewerOpt,
    block: Annotated[list[str], typer.Option("--block", help="KEY=TEXT, e.g. path/0='New text' (repeatable)")],
    version: VersionOpt = None, note: Annotated[str | None, typer.Option(help="Why")] = None,
) -> None:  # fmt: skip
    """Replace blocks' text (KEY as listed by `review show`; TEXT may be @file.md); the version is rendered
    again and is then ready. Your edits are carried onto later regenerations."""
    edits: dict[str, str] = {}
    for item in block:
        key, sep, text = item.partition("=")
        if not sep or not key:
            typer.secho(f"--block wants KEY=TEXT, got {item!r}", err=True, fg="red")
            raise typer.Exit(2)
        try:
            edits[key.strip()] = Path(text[1:]).read_text() if text.startswith("@") else text
        except OSError as exc:
            typer.secho(f"cannot read {text[1:]}: {exc.strerror}", err=True, fg="red")
            raise typer.Exit(2) from exc
    _decide(workspace, artifact_id, "edit", reviewer, note, version, edits)
