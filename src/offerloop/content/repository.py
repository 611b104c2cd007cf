"""Every SQL statement of the content domain: atom versions, quizzes, composition policies."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select, scoped_update
from offerloop.models import ContentAtom, QuizDefinition


def current_atoms(session: Session, workspace_id: str) -> list[ContentAtom]:
    stmt = scoped_select(ContentAtom, workspace_id).where(ContentAtom.current.is_(True))
    return list(session.scalars(stmt.order_by(ContentAtom.atom_id)))


def corpus_version(session: Session, workspace_id: str) -> tuple[Any, int]:
    """Changes whenever an atom version is added or retired (keys the per-process corpus cache)."""
    stmt = scoped_select(ContentAtom, workspace_id, func.max(ContentAtom.id), func.count()).where(
        ContentAtom.current.is_(True)
    )
    latest, count = session.execute(stmt).one()
    return latest, int(count)


def atom_versions(session: Session, workspace_id: str, atom_id: str) -> list[ContentAtom]:
    stmt = scoped_select(ContentAtom, workspace_id).where(ContentAtom.atom_id == atom_id)
    return list(session.scalars(stmt.order_by(ContentAtom.id)))


def atom_version(session: Session, workspace_id: str, atom_id: str, version: str) -> ContentAtom | None:
    stmt = scoped_select(ContentAtom, workspace_id).where(
        ContentAtom.atom_id == atom_id,
        ContentAtom.version == version,
    )
    return session.scalars(stmt).one_or_none()


def retire_atoms(session: Session, workspace_id: str, atom_ids: Iterable[str], at: datetime) -> None:
    ids = list(atom_ids)
    if ids:
        session.execute(
            scoped_update(ContentAtom, workspace_id)
            .where(
                ContentAtom.atom_id.in_(ids),
                ContentAtom.current.is_(True),
            )
            .values(current=False, retired_at=at)
        )


def add(session: Session, obj: Any) -> None:
    session.add(obj)


def flush(session: Session) -> None:
    session.flush()


def quizzes(session: Session, workspace_id: str) -> list[QuizDefinition]:
    stmt = scoped_select(QuizDefinition, workspace_id).where(QuizDefinition.current.is_(True))
    return list(session.scalars(stmt.order_by(QuizDefinition.quiz_id)))


def quiz(
    session: Session, workspace_id: str, quiz_id: str, version: str | None = None
) -> QuizDefinition | None:
    stmt = scoped_select(QuizDefinition, workspace_id).where(QuizDefinition.quiz_id == quiz_id)
    stmt = (
        stmt.where(QuizDefinition.version == version)
        if version
        else stmt.where(QuizDefinition.current.is_(True))
    )
    return session.scalars(stmt).one_or_none()


def retire_quiz(session: Session, workspace_id: str, quiz_id: str) -> None:
    session.execute(
        scoped_update(QuizDefinition, workspace_id)
        .where(QuizDefinition.quiz_id == quiz_id)
        .values(current=False)
    )
