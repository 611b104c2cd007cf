"""HTTP API of the assembly domain: policies, theme, artifacts (202 + preview), review and signed downloads."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from offerloop import pipeline
from offerloop.assembly import downloads, service
from offerloop.assembly.document import Theme
from offerloop.assembly.exceptions import (
    ArtifactNotFound,
    AssemblyError,
    BadLink,
    InvalidPolicy,
    InvalidReview,
    NotDeliverable,
    PolicyNotFound,
)
from offerloop.assembly.policy import parse_policy
from offerloop.assembly.render.fonts import SUPPORTED_FONTS
from offerloop.assembly.schemas import (
    AffectedPage,
    ArtifactRead,
    ArtifactRequest,
    ArtifactSummary,
    DownloadLink,
    LintFinding,
    PolicyPage,
    PolicyStored,
    PolicyText,
    Regenerated,
    RegeneratedRef,
    ReviewDetail,
    Reviewed,
    ReviewIn,
    ReviewPage,
    ThemeRead,
)
from offerloop.content.exceptions import NotFound as AtomNotFound
from offerloop.core.errors import error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerErased, BuyerNotFound
from offerloop.web import Cursor, Limit
from offerloop.workspaces.auth import DB, SecretKey, get_settings

router = APIRouter(prefix="/v1", tags=["assembly"])
# A file behind a signed link: its own media type (PDF, HTML, e-mail, Markdown), whole or a byte range.
_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in sorted(set(service.MEDIA_TYPES.values()))
        },
    },
    206: {"description": "The byte range asked for (Range: bytes=...)"},
    416: {"description": "The range is outside the file"},
    **error_responses(BadLink, ArtifactNotFound, NotDeliverable),
}


@router.put(
    "/policies",
    summary="Add or update a composition policy; answers with its lint findings",
    responses=error_responses(InvalidPolicy, AssemblyError),
)
def put_policy(db: DB, principal: SecretKey, body: PolicyText) -> PolicyStored:
    with db.write() as session:
        return service.put_policy(session=session, workspace_id=principal.workspace_id, text=body.text,
                                  triggers=body.triggers, actor=principal.key_id)  # fmt: skip


@router.get("/policies", summary="The workspace's current composition policies, by id")
def list_policies(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> PolicyPage:
    with db.read() as session:
        return service.list_policies(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor
        )


@router.post(
    "/policies/lint",
    summary="Lint a policy against this workspace's corpus and quiz, without storing it",
    responses=error_responses(InvalidPolicy),
)
def lint_policy(db: DB, principal: SecretKey, body: PolicyText) -> list[LintFinding]:
    policy = parse_policy(body.text, path="<policy>")
    with db.read() as session:
        findings = service.lint(session=session, workspace_id=principal.workspace_id, policy=policy)
    return [service.lint_finding(f) for f in findings]


@router.put(
    "/theme",
    summary="The deliverables' theme (colours, fonts shipped with offerloop, logo SVG)",
    description="Fields: "
    + ", ".join(f.name for f in dataclasses.fields(Theme))
    + ". `body_font`, `heading_font` and "
    "`mono_font` take one of: " + ", ".join(SUPPORTED_FONTS) + " (any other is a 422 `unsupported_font`).",
    responses=error_responses(AssemblyError),
)
def put_theme(db: DB, principal: SecretKey, body: dict[str, Any]) -> ThemeRead:
    with db.write() as session:
        return service.set_theme(
            session=session, workspace_id=principal.workspace_id, theme=body, actor=principal.key_id
        )


@router.post(
    "/artifacts",
    status_code=202,
    summary="Assemble a buyer's deliverable: 202 with a preview at once",
    responses=error_responses(BuyerNotFound, PolicyNotFound, BuyerErased, AssemblyError),
)
def create_artifact(request: Request, db: DB, principal: SecretKey, body: ArtifactRequest) -> ArtifactSummary:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.write() as session:
        buyer_id = body.buyer_id
        if buyer_id is None:
            ident = {"user_id": body.user_id} if body.user_id else {"anonymous_id": body.anonymous_id}
            buyer_id = identity_service.lookup(
                session=session, workspace_id=principal.workspace_id, **ident
            ).id
        else:
            identity_service.get_buyer(
                session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id
            )
        queued = service.request_artifact(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, policy_id=body.policy,
            offer_value_minor=body.offer_value_minor, quiz_id=body.quiz, ranking=body.ranking,
        )  # fmt: skip
    return ArtifactSummary.model_validate(queued)


@router.get(
    "/artifacts/{artifact_id}",
    summary="Status, provenance, files and versions of an artifact",
    responses=error_responses(ArtifactNotFound),
)
def get_artifact(db: DB, principal: SecretKey, artifact_id: str) -> ArtifactRead:
    with db.read() as session:
        return service.get_artifact(
            session=session, workspace_id=principal.workspace_id, artifact_id=artifact_id
        )


@router.get(
    "/artifacts/{artifact_id}/download",
    summary="A signed, expiring link to the file (once ready)",
    responses=error_responses(ArtifactNotFound, NotDeliverable),
)
def download(
    request: Request, db: DB, principal: SecretKey, artifact_id: str,
    format: Literal["pdf", "html", "email", "markdown"] = "pdf",
) -> DownloadLink:  # fmt: skip
    settings = get_settings(request)
    with db.read() as session:
        return service.download_link(session=session, workspace_id=principal.workspace_id, artifact_id=artifact_id,
                                     fmt=format, secret=settings.secret, ttl_s=settings.download_ttl_s)  # fmt: skip


@router.get(
    "/files/{artifact_id}/{version}/{fmt}",
    summary="The file behind a signed link (no key needed)",
    response_class=Response,
    responses=_FILE,
)
@router.head(
    "/files/{artifact_id}/{version}/{fmt}",
    summary="The headers of the file behind a signed link (not counted as an open)",
    operation_id="head_file",
    response_class=Response,
    responses=_FILE,
)
def open_file(
    request: Request, db: DB, artifact_id: str, version: int, fmt: str, expires: int, sig: str
) -> Response:
    """Each use of a link is one open on the buyer's record (an `Artifact Downloaded` event): range requests
    after byte 0, HEAD and retries of the same link are not counted again."""
    secret = get_settings(request).secret
    with db.read() as session:
        content, media_type, name = service.open_link(session=session, artifact_id=artifact_id, version=version,
                                                      fmt=fmt, expires=expires, sig=sig, secret=secret,
                                                      public_url=get_settings(request).public_url)  # fmt: skip
    span = downloads.byte_range(request.headers.get("range"), len(content))
    if downloads.counts_as_open(request.method, span):
        with db.write() as session:
            downloads.record_open(session=session, artifact_id=artifact_id, version=version, fmt=fmt, sig=sig)
    headers = {"Content-Disposition": f'inline; filename="{name}"', "Accept-Ranges": "bytes"}
    if request.method == "HEAD":  # what a link checker or download manager asks first: headers only, no open
        return Response(media_type=media_type, headers={**headers, "Content-Length": str(len(content))})
    if span is None:
        return Response(content, media_type=media_type, headers=headers)
    if span == (-1, -1):
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(content)}"})
    start, end = span
    return Response(content[start : end + 1], status_code=206, media_type=media_type,
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{len(content)}"})  # fmt: skip


@router.get(
    "/reviews", summary="Artifact versions waiting for a human, oldest first: buyer, policy, reasons, diff"
)
def reviews(db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> ReviewPage:
    with db.read() as session:
        return service.review_page(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor
        )


@router.get(
    "/reviews/{artifact_id}",
    summary="What a reviewer decides on: every block with its provenance, the rendered HTML, a preview link, the diff",
    responses=error_responses(ArtifactNotFound),
)
def review_detail(
    request: Request, db: DB, principal: SecretKey, artifact_id: str,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> ReviewDetail:  # fmt: skip
    settings = get_settings(request)
    with db.read() as session:
        return service.review_detail(session=session, workspace_id=principal.workspace_id, artifact_id=artifact_id,
                                     secret=settings.secret, version=version, ttl_s=settings.download_ttl_s,
                                     public_url=settings.public_url)  # fmt: skip


@router.get(
    "/reviews/{artifact_id}/{version}/{fmt}",
    summary="A reviewer's preview of a version's file through a signed link (works while awaiting review)",
    response_class=Response,
    responses={200: _FILE[200], **error_responses(BadLink, ArtifactNotFound)},
)
def review_preview(
    request: Request, db: DB, artifact_id: str, version: int, fmt: str, expires: int, sig: str
) -> Response:
    with db.read() as session:
        content, media_type = service.open_preview(session=session, artifact_id=artifact_id, version=version, fmt=fmt,
                                                   expires=expires, sig=sig, secret=get_settings(request).secret)  # fmt: skip
    # a preview is for the reviewer's eyes: not cached, not indexed
    return Response(
        content, media_type=media_type, headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    )


@router.post(
    "/artifacts/{artifact_id}/review",
    summary="Approve, edit or reject an artifact waiting for review",
    responses=error_responses(ArtifactNotFound, InvalidReview),
)
def review(request: Request, db: DB, principal: SecretKey, artifact_id: str, body: ReviewIn) -> Reviewed:
    with db.write() as session:
        done = service.review(session=session, workspace_id=principal.workspace_id, artifact_id=artifact_id,
                              action=body.action, reviewer=body.reviewer, note=body.note, edits=body.edits,
                              version=body.version)  # fmt: skip
    return done


@router.get(
    "/content/atoms/{atom_id}/affected",
    summary="Artifacts built from an earlier version of this atom",
    responses=error_responses(AtomNotFound),
)
def affected(
    db: DB, principal: SecretKey, atom_id: str, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> AffectedPage:
    with db.read() as session:
        return service.affected_page(
            session=session, workspace_id=principal.workspace_id, atom_id=atom_id, limit=limit, cursor=cursor
        )


@router.post(
    "/artifacts/regenerate",
    status_code=202,
    summary="Regenerate every artifact affected by changed atoms",
    responses=error_responses(AtomNotFound, PolicyNotFound),
)
def regenerate(request: Request, db: DB, principal: SecretKey, atom_id: str | None = None) -> Regenerated:
    with db.write() as session:
        done = service.regenerate_affected(
            session=session, workspace_id=principal.workspace_id, atom_id=atom_id
        )
    return Regenerated(regenerated=[RegeneratedRef(id=d.id, version=d.version) for d in done])
