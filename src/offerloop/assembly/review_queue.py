"""The review queue: versions held for a human, their detail and preview, and the verdict (approve, edit,
reject)."""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import Mapping

from sqlalchemy.orm import Session

from offerloop.assembly import announce, repository
from offerloop.assembly import review as review_rules
from offerloop.assembly.document import (
    Document,
    Section,
    document_from_dict,
    document_to_dict,
)
from offerloop.assembly.exceptions import (
    ArtifactNotFound,
    BadLink,
    InvalidReview,
)
from offerloop.assembly.rendering import MEDIA_TYPES, enqueue_render, load_artifact
from offerloop.assembly.schemas import (
    PolicyRef,
    ReviewBuyer,
    ReviewDetail,
    Reviewed,
    ReviewItem,
    ReviewPage,
    ReviewVersion,
)
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.core.pages import decode_cursor, page_of
from offerloop.identity import service as identity_service
from offerloop.models import Artifact, ArtifactVersion
from offerloop.workspaces import service as workspace_service


def _buyer_view(session: Session, workspace_id: str, buyer_id: str) -> ReviewBuyer:
    try:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    except OfferloopError:
        return ReviewBuyer(id=buyer_id, user_id=None, identifiers=[], name=None, erased=True)
    return ReviewBuyer(id=buyer.id, user_id=buyer.user_id, identifiers=[{"kind": i.kind, "value": i.value} for i in buyer.identities],
                       name=buyer.traits.get("name") or buyer.traits.get("first_name"), erased=buyer.deleted)  # fmt: skip


def _queue_row(
    session: Session, artifact: Artifact, row: ArtifactVersion, versions: list[ArtifactVersion]
) -> ReviewItem:
    against = review_rules.last_reviewed(versions, below=row.version)
    held = row.provenance.get(review_rules.HELD) or {}
    return ReviewItem(
        artifact_id=row.artifact_id, version=row.version, status=row.status, reason=row.review_reason,
        reasons=review_rules.reasons(row), buyer=_buyer_view(session, row.workspace_id, artifact.buyer_id),
        policy=PolicyRef(id=artifact.policy_id, version=row.provenance.get("policy_version")),
        changelog=row.changelog, regenerated_after_review=held.get("against_version"),
        diff=review_rules.diff(against, row) if against is not None and held else None,
        edits=review_rules.edits_view(row), created_at=row.created_at,
    )  # fmt: skip


def _queued(session: Session, workspace_id: str, row: ArtifactVersion) -> ReviewItem:
    artifact = load_artifact(session, workspace_id, row.artifact_id)
    return _queue_row(session, artifact, row, repository.versions(session, workspace_id, artifact.id))


def review_queue(*, session: Session, workspace_id: str) -> list[ReviewItem]:
    """Versions waiting for a human, each with its buyer, policy, the reasons and (when regenerated) the diff."""
    return [_queued(session, workspace_id, row) for row in repository.awaiting_review(session, workspace_id)]


def review_page(*, session: Session, workspace_id: str, limit: int, cursor: str | None = None) -> ReviewPage:
    """The review queue a page at a time, oldest first."""
    after = decode_cursor(cursor, types=(int,))
    rows = repository.awaiting_review(
        session, workspace_id, after=after[0] if after else None, limit=limit + 1
    )
    page = page_of(rows, limit, key=lambda r: (r.id,), item=lambda r: _queued(session, workspace_id, r))
    return ReviewPage(**dict(page))


def review_detail(
    *, session: Session, workspace_id: str, artifact_id: str, secret: str, version: int | None = None,
    ttl_s: int = 900, now: float | None = None, public_url: str = "",
) -> ReviewDetail:  # fmt: skip
    """Everything a reviewer decides on: each block's text and provenance, the rendered HTML, a reviewer-only
    preview link, the reasons and, for a regenerated version, the diff against the last reviewed one."""
    artifact = load_artifact(session, workspace_id, artifact_id)
    versions = repository.versions(session, workspace_id, artifact.id)
    row = next((v for v in versions if v.version == (version or artifact.current_version)), None)
    if row is None:
        raise ArtifactNotFound(f"artifact {artifact_id} v{version} does not exist")
    guard = {g.get("atom_id"): g for g in row.provenance.get("guard") or []}
    document = {**row.document, "sections": [
        {**s, "blocks": [{**b, "block": review_rules.block_key(s["key"], i), "guard": guard.get(b.get("atom_id")) if b.get("atom_id") else None}
                         for i, b in enumerate(s["blocks"])]} for s in row.document["sections"]
    ]}  # fmt: skip
    html = repository.file(session, workspace_id, artifact.id, row.version, "html")
    expires = int((now if now is not None else time.time()) + ttl_s)
    key = workspace_service.signing_secret(session=session, configured=secret)
    sig = review_rules.preview_signature(key, artifact.id, row.version, "html", expires)
    return ReviewDetail(
        **dict(_queue_row(session, artifact, row, versions)), document=document,
        html=html.content.decode("utf-8") if html is not None else None,
        preview_url=f"{public_url.rstrip('/')}/v1/reviews/{artifact.id}/{row.version}/html?expires={expires}&sig={sig}" if html is not None else None,
        provenance={**row.provenance, "reviewer": row.reviewer},
        versions=[ReviewVersion(version=v.version, status=v.status, review_outcome=review_rules.review_outcome(v),
                                reviewer=v.reviewer, note=v.review_note, changelog=v.changelog) for v in versions],
    )  # fmt: skip


def open_preview(
    *, session: Session, artifact_id: str, version: int, fmt: str, expires: int, sig: str, secret: str,
    now: float | None = None,
) -> tuple[bytes, str]:  # fmt: skip
    """The file behind a reviewer preview link, whatever the version's status (buyer links stay refused)."""
    key = workspace_service.signing_secret(session=session, configured=secret)
    if fmt not in MEDIA_TYPES or not hmac.compare_digest(
        review_rules.preview_signature(key, artifact_id, version, fmt, expires).encode(),
        sig.encode("utf-8", "replace"),
    ):
        raise BadLink("this link is not valid")
    if (now if now is not None else time.time()) > expires:
        raise BadLink("this link has expired", code="link_expired")
    artifact = repository.artifact_for_signed_link(session, artifact_id)
    f = (
        repository.file(session, artifact.workspace_id, artifact_id, version, fmt)
        if artifact is not None
        else None
    )
    if f is None:
        raise ArtifactNotFound("this file is not available")
    return f.content, f.media_type


def review_file(
    *, session: Session, workspace_id: str, artifact_id: str, version: int, fmt: str
) -> tuple[bytes, str]:
    """A version's rendered file for a signed-in reviewer of the workspace (the console), whatever its status:
    (content, media type). ArtifactNotFound for another workspace's artifact or a file not rendered."""
    if fmt not in MEDIA_TYPES:
        raise ArtifactNotFound(f"there is no {fmt!r} rendering: {', '.join(MEDIA_TYPES)}")
    artifact = load_artifact(session, workspace_id, artifact_id)
    f = repository.file(session, workspace_id, artifact.id, version, fmt)
    if f is None:
        raise ArtifactNotFound(f"artifact {artifact_id} v{version} has no {fmt} file")
    return f.content, f.media_type


def review(
    *, session: Session, workspace_id: str, artifact_id: str, action: str, reviewer: str, note: str | None = None,
    edits: Mapping[str, str] | None = None, version: int | None = None,
) -> Reviewed:  # fmt: skip
    """approve → ready; reject → rejected; edit → the edited blocks replace the text and the version is
    rendered again, then ready (the reviewer approved it). Edits are keyed "<section key>/<block index>".
    ``version``, when given, must be the version waiting (a reviewer never approves what they did not see)."""
    if action not in review_rules.ACTIONS:
        raise InvalidReview(
            f"unknown review action {action!r}: approve, edit or reject", code="invalid_review_action"
        )
    if edits and action != "edit":
        raise InvalidReview("edits are only taken with action edit", code="invalid_edits")
    artifact = load_artifact(session, workspace_id, artifact_id, lock=True)  # two reviewers at once: one wins
    row = repository.version(session, workspace_id, artifact.id, artifact.current_version, lock=True)
    assert row is not None
    if version is not None and version != row.version:
        raise InvalidReview(f"artifact {artifact_id} v{version} is not the current version (v{row.version})",
                            code="stale_version", details={"current_version": row.version})  # fmt: skip
    if row.status != "awaiting_review":
        raise InvalidReview(f"artifact {artifact_id} v{row.version} is {row.status}, not awaiting review")
    provenance = {**row.provenance, "reviewer": reviewer, "review_action": review_rules.ACTIONS[action]}
    if action == "edit":
        document = document_from_dict(row.document)
        edited = _apply_edits(document, edits or {})
        records = review_rules.edit_records(document, edits or {}, reviewer=reviewer, version=row.version)
        provenance[review_rules.EDITS] = review_rules.merge_edits(
            provenance.get(review_rules.EDITS, []), records
        )
        row.document = document_to_dict(edited)
    row.status = {"approve": "ready", "reject": "rejected", "edit": "queued"}[action]
    row.reviewer, row.review_note, row.reviewed_at, row.provenance = reviewer, note, utcnow(), provenance
    if row.status == "queued":
        enqueue_render(session, row)
    elif row.status == "ready":
        announce.ready(session, workspace_id, artifact.id, row.version)
    workspace_service.audit(session, workspace_id, actor=reviewer, action=f"artifact.review.{action}",
                            target_type="artifact", target_id=artifact_id,
                            details={"version": row.version, "note": note, "blocks": sorted(edits or {})})  # fmt: skip
    repository.flush(session)
    return Reviewed(id=artifact.id, version=row.version, status=row.status)


def _apply_edits(document: Document, edits: Mapping[str, str]) -> Document:
    positions = {
        f"{s.key}/{i}": (si, i) for si, s in enumerate(document.sections) for i in range(len(s.blocks))
    }
    unknown = sorted(set(edits) - set(positions))
    if unknown or not edits:
        raise InvalidReview("edits must name blocks as '<section key>/<block index>'"
                            + (f"; unknown: {', '.join(unknown)}" if unknown else ""), code="invalid_edits",
                            details={"blocks": sorted(positions)})  # fmt: skip
    sections = [list(s.blocks) for s in document.sections]
    for key, markdown in edits.items():
        si, bi = positions[key]
        sections[si][bi] = dataclasses.replace(sections[si][bi], markdown=markdown, ai_assisted=False)
    return dataclasses.replace(document, sections=tuple(
        Section(key=s.key, title=s.title, intro=s.intro, blocks=tuple(blocks)) for s, blocks in zip(document.sections, sections, strict=True)
    ))  # fmt: skip
