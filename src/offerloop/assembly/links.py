"""Signed download links to a rendered artifact file, and opening them."""

from __future__ import annotations

import hashlib
import hmac
import time
from html import escape as html_escape

from sqlalchemy.orm import Session

from offerloop.assembly import repository
from offerloop.assembly import review as review_rules
from offerloop.assembly.exceptions import (
    ArtifactNotFound,
    BadLink,
    NotDeliverable,
)
from offerloop.assembly.render.html import FULL_VERSION_LINK
from offerloop.assembly.rendering import MEDIA_TYPES, deliverable_version, load_artifact
from offerloop.assembly.schemas import (
    DownloadLink,
)
from offerloop.identity import service as identity_service
from offerloop.workspaces import service as workspace_service

FULL_VERSION_TTL_S = 30 * 24 * 3600  # how long an e-mail summary's link to the full version works


def sign(secret: str, artifact_id: str, version: int, fmt: str, expires: int) -> str:
    message = f"{artifact_id}:{version}:{fmt}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def download_link(
    *,
    session: Session,
    workspace_id: str,
    artifact_id: str,
    fmt: str,
    secret: str,
    ttl_s: int = 900,
    now: float | None = None,
) -> DownloadLink:
    """A signed, expiring link to the current version's file; refused until the version is deliverable."""
    if fmt not in MEDIA_TYPES:
        raise NotDeliverable(f"unknown format {fmt!r}: {', '.join(MEDIA_TYPES)}", code="invalid_format")
    artifact = load_artifact(session, workspace_id, artifact_id)
    versions = repository.versions(session, workspace_id, artifact.id)
    current = next(v for v in versions if v.version == artifact.current_version)
    row = deliverable_version(versions, artifact.current_version)
    if row is None:
        status = (
            "awaiting_review" if current.status == "ready" else current.status
        )  # a held version not yet reviewed
        raise NotDeliverable(f"artifact {artifact_id} v{current.version} is {status}; delivery waits until it is ready",
                             details={"status": status})  # fmt: skip
    expires = int((now if now is not None else time.time()) + ttl_s)
    secret = workspace_service.signing_secret(session=session, configured=secret)
    sig = sign(secret, artifact.id, row.version, fmt, expires)
    return DownloadLink(url=f"/v1/files/{artifact.id}/{row.version}/{fmt}?expires={expires}&sig={sig}", expires=expires,
                        version=row.version, format=fmt)  # fmt: skip


def buyer_file(
    *, session: Session, workspace_id: str, buyer_id: str, artifact_id: str, fmt: str
) -> tuple[bytes, str, str, int]:
    """The file a buyer downloads of their own artifact, without a link: (content, media type, file name,
    version) of the latest deliverable version (never a rejected or unapproved one). ``buyer_id`` is a live
    buyer: an artifact of a buyer merged into it is its own. Another buyer's artifact is ArtifactNotFound,
    exactly as one that does not exist."""
    if fmt not in MEDIA_TYPES:
        raise NotDeliverable(f"unknown format {fmt!r}: {', '.join(MEDIA_TYPES)}", code="invalid_format")
    artifact = repository.artifact(session, workspace_id, artifact_id)
    if artifact is None or (
        artifact.buyer_id != buyer_id
        and artifact.buyer_id
        not in identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    ):
        raise ArtifactNotFound("this file is not available")
    row = deliverable_version(
        repository.versions(session, workspace_id, artifact.id), artifact.current_version
    )
    if row is None:
        raise NotDeliverable("this deliverable is not ready yet", details={"status": "not_ready"})
    f = repository.file(session, workspace_id, artifact.id, row.version, fmt)
    if f is None:
        raise ArtifactNotFound("this file is not available")
    ext = {"pdf": "pdf", "html": "html", "email": "email.html", "markdown": "md"}[fmt]
    return f.content, f.media_type, f"{artifact.id}-v{row.version}.{ext}", row.version


def open_link(
    *,
    session: Session,
    artifact_id: str,
    version: int,
    fmt: str,
    expires: int,
    sig: str,
    secret: str,
    now: float | None = None,
    public_url: str = "",
) -> tuple[bytes, str, str]:
    """The file behind a signed link: (content, media type, file name). An e-mail summary's link to the
    full version becomes a link to this version's web page, signed for ``FULL_VERSION_TTL_S``."""
    secret = workspace_service.signing_secret(session=session, configured=secret)
    expected = sign(secret, artifact_id, version, fmt, expires)
    if not hmac.compare_digest(
        expected.encode(), sig.encode("utf-8", "replace")
    ):  # bytes: any text a client sends
        raise BadLink("this link is not valid")
    if (now if now is not None else time.time()) > expires:
        raise BadLink("this link has expired", code="link_expired")
    artifact = repository.artifact_for_signed_link(session, artifact_id)
    if artifact is None:
        raise ArtifactNotFound("this file is not available")
    row = repository.version(session, artifact.workspace_id, artifact_id, version)
    f = repository.file(session, artifact.workspace_id, artifact_id, version, fmt)
    if (
        row is None or f is None or not review_rules.deliverable(row)
    ):  # never a rejected or unapproved version
        raise ArtifactNotFound("this file is not available")
    ext = {"pdf": "pdf", "html": "html", "email": "email.html", "markdown": "md"}[fmt]
    content = f.content
    marker = f'href="{FULL_VERSION_LINK}"'.encode()  # the summary's button only, never text in the e-mail
    if fmt == "email" and marker in content:
        expires_full = int((now if now is not None else time.time()) + FULL_VERSION_TTL_S)
        full = (
            f"{public_url.rstrip('/')}/v1/files/{artifact_id}/{version}/html?expires={expires_full}&sig="
            + sign(secret, artifact_id, version, "html", expires_full)
        )
        content = content.replace(marker, f'href="{html_escape(full)}"'.encode())
    return content, f.media_type, f"{artifact_id}-v{version}.{ext}"
