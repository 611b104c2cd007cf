"""The content domain: the versioned corpus of atoms and the intake quizzes of a workspace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from offerloop.content import repository
from offerloop.content.atoms import load_corpus, parse_atom
from offerloop.content.exceptions import ContentError, NotFound
from offerloop.content.model import Atom, Quiz
from offerloop.content.quizzes import answers_to_track, default_quiz, parse_quiz
from offerloop.content.schemas import (
    AtomAdded,
    AtomChanged,
    AtomDetail,
    AtomPage,
    AtomRead,
    AtomStored,
    AtomSummary,
    AtomVersionRead,
    SyncReport,
)
from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.pages import decode_cursor, page_of
from offerloop.models import ContentAtom, QuizDefinition
from offerloop.workspaces import service as workspace_service

# Per workspace (and quiz) its current version: one bounded cache each (offerloop.core.cache).
_corpora: VersionedCache[list[Atom]] = VersionedCache(max_size=1024)
_quizzes: VersionedCache[Quiz] = VersionedCache(max_size=4096)


def _parsed_quiz(workspace_id: str, row: QuizDefinition) -> Quiz:
    """Parsed once per process per version (YAML parsing dominates a request otherwise)."""
    return _quizzes.get_or_load(
        (workspace_id, row.quiz_id), row.version, lambda: parse_quiz(row.source, path=f"quiz {row.quiz_id}")
    )


def _meta(atom: Atom) -> dict[str, Any]:
    return {
        "tags": list(atom.tags), "level": atom.level, "persona_fit": list(atom.persona_fit), "outcome": atom.outcome,
        "minutes": atom.minutes, "source": atom.source, "licence": atom.licence, "ai_rewrite": atom.ai_rewrite,
        "path": atom.path,
    }  # fmt: skip


def to_atom(row: ContentAtom) -> Atom:
    m = row.meta
    return Atom(
        id=row.atom_id, title=row.title, kind=row.kind, body=row.body, version=row.version,
        tags=tuple(m.get("tags") or ()), level=int(m.get("level") or 1), persona_fit=tuple(m.get("persona_fit") or ()),
        outcome=m.get("outcome"), minutes=m.get("minutes"), source=m.get("source"), licence=m.get("licence"),
        ai_rewrite=bool(m.get("ai_rewrite")), path=m.get("path"),
    )  # fmt: skip


def atom_summary(atom: Atom, *, current: bool = True) -> AtomSummary:
    return AtomSummary(
        id=atom.id, version=atom.version, title=atom.title, kind=atom.kind, **_meta(atom), current=current
    )


def atom_read(atom: Atom, *, current: bool = True) -> AtomRead:
    return AtomRead(**atom_summary(atom, current=current).model_dump(), body=atom.body)


def sync(
    *, session: Session, workspace_id: str, atoms: Iterable[Atom], prune: bool = False, actor: str = "api"
) -> SyncReport:
    """Store atoms: a new id or a changed content hash adds a version (the old one stays readable);
    identical atoms change nothing. With ``prune``, current atoms missing from ``atoms`` are retired."""
    workspace_service.get_workspace(session=session, workspace_id=workspace_id)
    now = utcnow()
    current = {row.atom_id: row for row in repository.current_atoms(session, workspace_id)}
    report = SyncReport()
    given: set[str] = set()
    for atom in atoms:
        given.add(atom.id)
        row = current.get(atom.id)
        if row is not None and row.version == atom.version:
            report.unchanged += 1
            continue
        old = repository.atom_version(session, workspace_id, atom.id, atom.version)
        if row is not None:
            row.current = False
            report.changed.append(AtomChanged(id=atom.id, from_=row.version, to=atom.version))
        else:
            report.added.append(AtomAdded(id=atom.id, version=atom.version))
        if old is not None:  # back to an earlier version: make that row current again
            old.current, old.retired_at = True, None
            continue
        repository.add(
            session,
            ContentAtom(
                workspace_id=workspace_id, atom_id=atom.id, version=atom.version, title=atom.title, kind=atom.kind,
                meta=_meta(atom), body=atom.body, current=True, created_at=now,
            ),
        )  # fmt: skip
        repository.flush(session)  # one current row per atom before the next statement
    if prune:
        gone = sorted(set(current) - given)
        repository.retire_atoms(session, workspace_id, gone, now)
        report.retired = gone
    repository.flush(session)
    if report.added or report.changed or report.retired:
        workspace_service.audit(
            session, workspace_id, actor=actor, action="content.sync", target_type="workspace",
            target_id=workspace_id, details=report.model_dump(mode="json", include={"added", "changed", "retired"}),
        )  # fmt: skip
    return report


def sync_directory(
    *, session: Session, workspace_id: str, directory: str | Path, prune: bool = True, actor: str = "cli"
) -> SyncReport:
    """Load every atom under ``directory``; any invalid file refuses the whole sync (nothing stored)."""
    atoms, problems = load_corpus(directory)
    if problems:
        raise ContentError(problems)
    return sync(session=session, workspace_id=workspace_id, atoms=atoms, prune=prune, actor=actor)


def put_atom(
    *, session: Session, workspace_id: str, text: str, path: str = "<api>", actor: str = "api"
) -> AtomStored:
    atom = parse_atom(text, path=path)
    report = sync(session=session, workspace_id=workspace_id, atoms=[atom], actor=actor)
    return AtomStored(**atom_read(atom).model_dump(), sync=report)


def corpus(*, session: Session, workspace_id: str) -> tuple[tuple[Any, int], list[Atom]]:
    """The current atoms, loaded once per process per corpus version (and the version key)."""
    version = repository.corpus_version(session, workspace_id)
    atoms = _corpora.get_or_load(
        workspace_id, version, lambda: [to_atom(r) for r in repository.current_atoms(session, workspace_id)]
    )
    return version, atoms


def atoms_page(
    *,
    session: Session,
    workspace_id: str,
    limit: int,
    cursor: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
) -> AtomPage:
    """The current corpus by atom id (it is in memory already: see ``corpus``), optionally one kind or tag."""
    after = decode_cursor(cursor, types=(str,))
    _, atoms = corpus(session=session, workspace_id=workspace_id)
    chosen = sorted(
        (a for a in atoms if (kind is None or a.kind == kind) and (tag is None or tag in a.tags)
         and (after is None or a.id > after[0])),
        key=lambda a: a.id,
    )  # fmt: skip
    return AtomPage(**dict(page_of(chosen, limit, key=lambda a: (a.id,), item=atom_summary)))


def get_atom(*, session: Session, workspace_id: str, atom_id: str, version: str | None = None) -> AtomDetail:
    rows = repository.atom_versions(session, workspace_id, atom_id)
    row = (
        next((r for r in rows if r.version == version), None)
        if version
        else next((r for r in rows if r.current), None)
    )
    if row is None:
        raise NotFound(f"atom {atom_id!r}" + (f" version {version}" if version else "") + " does not exist")
    return AtomDetail(
        **atom_read(to_atom(row), current=row.current).model_dump(),
        versions=[
            AtomVersionRead(version=r.version, created_at=r.created_at, current=r.current) for r in rows
        ],
    )


def atom_versions(*, session: Session, workspace_id: str, atom_id: str) -> list[Atom]:
    return [to_atom(r) for r in repository.atom_versions(session, workspace_id, atom_id)]


# -- quizzes -----------------------------------------------------------------------------------------


def put_quiz(*, session: Session, workspace_id: str, text: str, actor: str = "api") -> Quiz:
    quiz = parse_quiz(text, path="<quiz>")
    existing = repository.quiz(session, workspace_id, quiz.id)
    if existing is not None and existing.version == quiz.version:
        return quiz
    repository.retire_quiz(session, workspace_id, quiz.id)
    earlier = repository.quiz(session, workspace_id, quiz.id, quiz.version)
    if earlier is not None:
        earlier.current = True
    else:
        repository.add(session, QuizDefinition(workspace_id=workspace_id, quiz_id=quiz.id, version=quiz.version,
                                               source=text, current=True, created_at=utcnow()))  # fmt: skip
    repository.flush(session)
    workspace_service.audit(session, workspace_id, actor=actor, action="quiz.update", target_type="quiz",
                            target_id=quiz.id, details={"version": quiz.version})  # fmt: skip
    return quiz


def get_quiz(
    *, session: Session, workspace_id: str, quiz_id: str | None = None, version: str | None = None
) -> Quiz:
    """A stored quiz (current version unless asked); without an id, the workspace's only quiz, or the
    built-in default quiz when it has none."""
    if quiz_id is None:
        rows = repository.quizzes(session, workspace_id)
        if not rows:
            return default_quiz()
        if len(rows) > 1:
            raise ContentError(["this workspace has several quizzes: name one"], code="quiz_required")
        return _parsed_quiz(workspace_id, rows[0])
    row = repository.quiz(session, workspace_id, quiz_id, version)
    if row is None:
        builtin = default_quiz()
        if quiz_id == builtin.id and version in (None, builtin.version):
            return builtin
        raise NotFound(f"quiz {quiz_id!r} does not exist")
    return _parsed_quiz(workspace_id, row)


def list_quizzes(*, session: Session, workspace_id: str) -> list[Quiz]:
    return [_parsed_quiz(workspace_id, r) for r in repository.quizzes(session, workspace_id)]


def answers_message(
    *, quiz: Quiz, answers: Mapping[str, object], user_id: str | None, anonymous_id: str | None,
    message_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Validated answers → the "Quiz Completed" track message the ingestion API stores (ContentError if not)."""
    return answers_to_track(quiz, answers, user_id=user_id, anonymous_id=anonymous_id, message_id=message_id)
