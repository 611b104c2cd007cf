"""Assembly: the review queue (oldest first, paged), one artifact version with the full document inline (its
rendered HTML in a sandboxed frame), its PDF, provenance, the diff against the last reviewed version and the
reviewer edits in effect; approve, edit or reject (owner or reviewer, CSRF-checked). The decision is the
assembly service's: a human's review stands. Files are read for the session's workspace by artifact id and
version, never by a path from the client."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.assembly import service as assembly_service
from offerloop.config import Settings
from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.db.uow import Database

router = web.router
ArtifactId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
Version = Annotated[int, Path(ge=1, le=1_000_000)]
Cursor = Annotated[str | None, Query(max_length=200)]
QUEUE_PAGE = 25
NOTE_CHARS = 10_000
EDIT_CHARS = 60_000  # a block's text; the whole form is bounded by web.MAX_FORM_BYTES
BLOCK_FIELD = "block:"
# The review page frames the version's HTML (served by this console): the console's policy plus frames
# from this server. The framed file itself runs nothing (sandbox) and may only be framed here.
REVIEW_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
FRAMED_FILE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _queue(db: Database, workspace_id: str, cursor: str | None) -> Any:
    with db.read() as session:
        return assembly_service.review_page(
            session=session, workspace_id=workspace_id, limit=QUEUE_PAGE, cursor=cursor
        )


@router.get("/console/assembly")
async def queue(request: Request, db: web.DB, user: web.Reviewer, cursor: Cursor = None) -> Response:
    page = await run_in_threadpool(_queue, db, user.workspace_id, cursor)
    return web.render(request, "assembly/queue.html", {"current": "assembly", "page": page, "cursor": cursor})


def _detail(
    db: Database, workspace_id: str, artifact_id: str, version: int | None, settings: Settings
) -> Any:
    with db.read() as session:
        return assembly_service.review_detail(
            session=session, workspace_id=workspace_id, artifact_id=artifact_id, secret=settings.secret,
            version=version, ttl_s=settings.download_ttl_s, public_url=settings.public_url,
        )  # fmt: skip


@router.get("/console/assembly/reviews/{artifact_id}")
async def detail(
    request: Request, db: web.DB, user: web.Reviewer, artifact_id: ArtifactId,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None, done: Annotated[str, Query(max_length=40)] = "",
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_detail, db, user.workspace_id, artifact_id, version, _settings(request))
    return web.render(
        request, "assembly/review.html", {"current": "assembly", "d": found, "done": done},
        headers={"Content-Security-Policy": REVIEW_PAGE_CSP},
    )  # fmt: skip


def _file(db: Database, workspace_id: str, artifact_id: str, version: int, fmt: str) -> tuple[bytes, str]:
    with db.read() as session:
        return assembly_service.review_file(
            session=session, workspace_id=workspace_id, artifact_id=artifact_id, version=version, fmt=fmt
        )


@router.get("/console/assembly/reviews/{artifact_id}/{version}/{fmt}")
async def review_file(
    db: web.DB, user: web.Reviewer, artifact_id: ArtifactId, version: Version,
    fmt: Literal["pdf", "html", "markdown"],
) -> Response:  # fmt: skip
    content, media_type = await run_in_threadpool(_file, db, user.workspace_id, artifact_id, version, fmt)
    extension = {"pdf": "pdf", "html": "html", "markdown": "md"}[fmt]
    headers = {
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex",
        "Content-Disposition": f'inline; filename="{artifact_id}-v{version}.{extension}"',
    }
    if fmt == "html":  # shown in the review page's frame: framed by this server only, and inert
        headers |= {"Content-Security-Policy": FRAMED_FILE_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return Response(content, media_type=media_type, headers=headers)


def _edits(form: dict[str, str], blocks: dict[str, str]) -> dict[str, str]:
    """The blocks whose text the reviewer changed (the form carries every block's text)."""
    sent = {k[len(BLOCK_FIELD) :]: v for k, v in form.items() if k.startswith(BLOCK_FIELD)}
    unknown = sorted(set(sent) - set(blocks))
    if unknown:
        raise InvalidUser(
            "the form names blocks this version does not have", details={"blocks": unknown[:20]}
        )
    edits = {}
    for key, text in sent.items():
        if len(text) > EDIT_CHARS or "\x00" in text:
            raise InvalidUser(
                f"block {key} is too long (at most {EDIT_CHARS} characters)", details={"field": key}
            )
        if text.replace("\r\n", "\n").strip() != blocks[key].strip():
            edits[key] = text.replace("\r\n", "\n")
    if not edits:
        raise InvalidUser(
            "change the text of at least one block to save an edit", details={"reason": "no_edits"}
        )
    return edits


def _decide(
    db: Database, workspace_id: str, artifact_id: str, form: dict[str, str], reviewer: str, settings: Settings
) -> Any:
    action = form.get("action", "")
    if action not in ("approve", "edit", "reject"):
        raise InvalidUser("choose approve, edit or reject", details={"field": "action"})
    raw = web.field(form, "version", max_length=8)
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise InvalidUser("version must be the version you reviewed", details={"field": "version"})
    note = web.field(form, "note", max_length=NOTE_CHARS, required=False).strip() or None
    with db.write() as session:
        edits = None
        if action == "edit":
            shown = assembly_service.review_detail(
                session=session, workspace_id=workspace_id, artifact_id=artifact_id, secret=settings.secret,
                version=int(raw),
            )  # fmt: skip
            blocks = {
                b["block"]: b.get("markdown") or "" for s in shown.document["sections"] for b in s["blocks"]
            }
            edits = _edits(form, blocks)
        return assembly_service.review(
            session=session, workspace_id=workspace_id, artifact_id=artifact_id, action=action,
            reviewer=reviewer, note=note, edits=edits, version=int(raw),
        )  # fmt: skip


@router.post("/console/assembly/reviews/{artifact_id}")
async def decide(
    request: Request, db: web.DB, user: web.Posted, form: web.Form, artifact_id: ArtifactId
) -> Response:
    web.refuse_unless(user, "owner", "reviewer")
    done = await run_in_threadpool(
        _decide, db, user.workspace_id, artifact_id, form, f"console:{user.email}", _settings(request)
    )
    return RedirectResponse(
        f"/console/assembly/reviews/{done.id}?version={done.version}&done={done.status}", status_code=303
    )
