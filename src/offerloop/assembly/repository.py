"""Every SQL statement of the assembly domain: policies, artifacts, their versions, files and atom use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.models import Artifact, ArtifactFile, ArtifactVersion, AtomUse, CompositionPolicy, ContentAtom


def add(session: Session, obj: Any) -> None:
    session.add(obj)


def flush(session: Session) -> None:
    session.flush()


def policies(session: Session, workspace_id: str) -> list[CompositionPolicy]:
    stmt = scoped_select(CompositionPolicy, workspace_id).where(CompositionPolicy.current.is_(True))
    return list(session.scalars(stmt.order_by(CompositionPolicy.policy_id)))


def policy(
    session: Session, workspace_id: str, policy_id: str, version: str | None = None
) -> CompositionPolicy | None:
    stmt = scoped_select(CompositionPolicy, workspace_id).where(CompositionPolicy.policy_id == policy_id)
    stmt = (
        stmt.where(CompositionPolicy.version == version)
        if version
        else stmt.where(CompositionPolicy.current.is_(True))
    )
    return session.scalars(stmt).one_or_none()


def first_provenances(
    session: Session, workspace_id: str, buyer_ids: set[str], policy_ids: set[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(buyer, policy, provenance of version 1) of the artifacts of these buyers from these policies."""
    stmt = (
        scoped_select(
            Artifact, workspace_id, Artifact.buyer_id, Artifact.policy_id, ArtifactVersion.provenance
        )
        .join(
            ArtifactVersion,
            and_(
                ArtifactVersion.workspace_id == workspace_id,
                ArtifactVersion.artifact_id == Artifact.id,
                ArtifactVersion.version == 1,
            ),
        )
        .where(Artifact.buyer_id.in_(sorted(buyer_ids)), Artifact.policy_id.in_(sorted(policy_ids)))
    )
    return [(b, p, prov or {}) for b, p, prov in session.execute(stmt)]


def retire_policy(session: Session, workspace_id: str, policy_id: str) -> None:
    session.execute(
        scoped_update(CompositionPolicy, workspace_id)
        .where(CompositionPolicy.policy_id == policy_id)
        .values(current=False)
    )


def _locked(session: Session, stmt: Any) -> Any:
    """Row locks for read-modify-write (PostgreSQL); SQLite serialises writers already."""
    return stmt.with_for_update() if session.get_bind().dialect.name == "postgresql" else stmt


def artifact(session: Session, workspace_id: str, artifact_id: str, *, lock: bool = False) -> Artifact | None:
    stmt = scoped_select(Artifact, workspace_id).where(Artifact.id == artifact_id)
    return session.scalars(_locked(session, stmt) if lock else stmt).one_or_none()


def artifact_for_signed_link(session: Session, artifact_id: str, *, lock: bool = False) -> Artifact | None:
    """The artifact a download link names. The link carries no key: its HMAC over the artifact id is the
    authority, and everything read after this uses the artifact's own workspace."""
    stmt = select(Artifact).where(Artifact.id == artifact_id)
    return session.scalars(_locked(session, stmt) if lock else stmt).one_or_none()


def artifacts_of_buyer(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], *, limit: int
) -> list[Artifact]:
    """The artifacts of any of ``buyer_ids`` (a buyer's lineage), newest first (the table's (workspace_id,
    buyer_id) index)."""
    stmt = scoped_select(Artifact, workspace_id).where(Artifact.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt.order_by(Artifact.created_at.desc(), Artifact.id.desc()).limit(limit)))


def versions(session: Session, workspace_id: str, artifact_id: str) -> list[ArtifactVersion]:
    stmt = scoped_select(ArtifactVersion, workspace_id).where(ArtifactVersion.artifact_id == artifact_id)
    return list(session.scalars(stmt.order_by(ArtifactVersion.version)))


def last_reviewed_for(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], policy_id: str
) -> ArtifactVersion | None:
    """The version a human reviewed last among the artifacts of this policy of any of ``buyer_ids`` (a
    buyer's lineage)."""
    artifacts = scoped_select(Artifact, workspace_id, Artifact.id).where(
        Artifact.buyer_id.in_(buyer_ids), Artifact.policy_id == policy_id
    )
    stmt = scoped_select(ArtifactVersion, workspace_id).where(
        ArtifactVersion.artifact_id.in_(artifacts), ArtifactVersion.reviewed_at.is_not(None)
    )
    return session.scalars(
        stmt.order_by(ArtifactVersion.reviewed_at.desc(), ArtifactVersion.version.desc()).limit(1)
    ).first()


def version(
    session: Session, workspace_id: str, artifact_id: str, number: int, *, lock: bool = False
) -> ArtifactVersion | None:
    stmt = scoped_select(ArtifactVersion, workspace_id).where(
        ArtifactVersion.artifact_id == artifact_id, ArtifactVersion.version == number
    )
    return session.scalars(_locked(session, stmt) if lock else stmt).one_or_none()


def files(session: Session, workspace_id: str, artifact_id: str, number: int) -> list[ArtifactFile]:
    stmt = scoped_select(ArtifactFile, workspace_id).where(
        ArtifactFile.artifact_id == artifact_id, ArtifactFile.version == number
    )
    return list(session.scalars(stmt.order_by(ArtifactFile.format)))


def file(session: Session, workspace_id: str, artifact_id: str, number: int, fmt: str) -> ArtifactFile | None:
    stmt = scoped_select(ArtifactFile, workspace_id).where(
        ArtifactFile.artifact_id == artifact_id, ArtifactFile.version == number, ArtifactFile.format == fmt
    )
    return session.scalars(stmt).one_or_none()


def awaiting_review(
    session: Session, workspace_id: str, *, after: int | None = None, limit: int | None = None
) -> list[ArtifactVersion]:
    """Current versions waiting for a human (an older one left waiting by a regeneration is not reviewable),
    oldest first; ``after``: the row id of the last one of the previous page."""
    stmt = (
        scoped_select(ArtifactVersion, workspace_id)
        .join(
            Artifact,
            and_(
                Artifact.workspace_id == ArtifactVersion.workspace_id,
                Artifact.id == ArtifactVersion.artifact_id,
                Artifact.current_version == ArtifactVersion.version,
            ),
        )
        .where(ArtifactVersion.status == "awaiting_review")
    )
    if after is not None:
        stmt = stmt.where(ArtifactVersion.id > after)
    return list(session.scalars(stmt.order_by(ArtifactVersion.id).limit(limit)))


def stale_uses(
    session: Session, workspace_id: str, atom_id: str | None = None
) -> list[tuple[str, int, str, str, str]]:
    """(artifact id, version, atom id, used version, current version) for current artifact versions that
    used an atom version which is no longer the atom's current one."""
    stmt = (
        scoped_select(
            AtomUse,
            workspace_id,
            AtomUse.artifact_id,
            AtomUse.version,
            AtomUse.atom_id,
            AtomUse.atom_version,
            ContentAtom.version,
        )
        .join(
            Artifact,
            and_(
                Artifact.workspace_id == AtomUse.workspace_id,
                Artifact.id == AtomUse.artifact_id,
                Artifact.current_version == AtomUse.version,
            ),
        )
        .join(
            ContentAtom,
            and_(
                ContentAtom.workspace_id == AtomUse.workspace_id,
                ContentAtom.atom_id == AtomUse.atom_id,
                ContentAtom.current.is_(True),
            ),
        )
        .where(AtomUse.atom_version != ContentAtom.version)
    )
    if atom_id is not None:
        stmt = stmt.where(AtomUse.atom_id == atom_id)
    return [tuple(r) for r in session.execute(stmt.order_by(AtomUse.artifact_id, AtomUse.atom_id))]


def delete_files(session: Session, workspace_id: str, artifact_id: str, number: int) -> None:
    """A re-render replaces the version's files."""
    session.execute(
        scoped_delete(ArtifactFile, workspace_id).where(
            ArtifactFile.artifact_id == artifact_id, ArtifactFile.version == number
        )
    )
