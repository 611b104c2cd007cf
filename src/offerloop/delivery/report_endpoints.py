"""HTTP API of delivery reports: a bounce (DSN), a complaint (ARF) or a plain bounce posted as the raw e-mail
(``message/rfc822``) and applied to the workspace's message it names; the reports stored so far."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from offerloop.core.errors import OfferloopError, ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.delivery import feedback
from offerloop.delivery.email import reports
from offerloop.delivery.email.reports import Kind, MalformedReport, NotAnEmail, ReportRefused, ReportTooLarge
from offerloop.delivery.feedback import ReportApplied, ReportMessageNotFound, ReportNotSigned, ReportRead
from offerloop.events import service as event_service
from offerloop.workspaces import service as workspace_service
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1/delivery", tags=["delivery"])
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
MEDIA_TYPES = ("message/rfc822", "application/octet-stream")


class UnsupportedReportType(OfferloopError):
    status_code = 415
    code = "unsupported_media_type"


@router.post(
    "/reports",
    summary="Apply a bounce (DSN), complaint (ARF) or plain bounce, posted as the raw e-mail",
    description="The body is the e-mail as it arrived at the bounce address (`message/rfc822`, at most 2 MiB). "
    "It is matched to the workspace's message by the VERP bounce address or (VERP off) the original's "
    "Message-ID, "
    "stored once, and applied: a hard bounce suppresses the address, a complaint suppresses marketing, each "
    "recorded as an event on the buyer. A body that is no report is quarantined (details.quarantine_id).",
    responses=error_responses(
        *_KEY,
        UnsupportedReportType,
        ReportRefused,
        NotAnEmail,
        MalformedReport,
        ReportTooLarge,
        ReportMessageNotFound,
        ReportNotSigned,
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA_TYPES},
        }
    },
)
async def post_report(request: Request, db: DB, principal: SecretKey) -> ReportApplied:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedReportType(f"send the raw e-mail as message/rfc822, not {media or 'no media type'!r}",
                                    details={"accepted": list(MEDIA_TYPES)})  # fmt: skip
    raw = await request.body()
    workspace_id, settings = principal.workspace_id, get_settings(request)
    configured, verp = settings.secret, settings.verp_enabled

    def apply() -> ReportApplied:
        try:
            report = reports.parse(raw)
            with db.write() as session:
                secret = workspace_service.signing_secret(session=session, configured=configured)
                return feedback.apply(
                    session=session, report=report, secret=secret, workspace_id=workspace_id, verp=verp
                )[1]
        except ReportRefused as exc:  # kept, as refused events are: nothing sent is lost
            with db.write() as session:
                qid = event_service.quarantine_raw(session=session, workspace_id=workspace_id,
                                                   raw=raw.decode("utf-8", "replace"), code=exc.code,
                                                   reason=exc.message)  # fmt: skip
            exc.details = {**(exc.details or {}), "quarantine_id": qid}
            raise

    return await run_in_threadpool(apply)


@router.get("/reports", summary="Bounces, delays, delivery notices and complaints received, newest first",
            responses=error_responses(*_KEY, InvalidCursor))  # fmt: skip
def list_reports(
    db: DB,
    principal: SecretKey,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="The next_cursor of the previous page")] = None,
    kind: Annotated[Kind | None, Query(description="Only reports of this kind")] = None,
    recipient: Annotated[
        str | None, Query(max_length=320, description="Only reports about this address")
    ] = None,
) -> Page[ReportRead]:
    with db.read() as session:
        return feedback.list_reports(session=session, workspace_id=principal.workspace_id, limit=limit,
                                     cursor=cursor, kind=kind, recipient=recipient)  # fmt: skip
