"""HTTP API of the content domain: the corpus, intake quizzes, the hosted quiz page and its answers."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from offerloop.content import service
from offerloop.content.atoms import parse_atom
from offerloop.content.exceptions import ContentError, NotFound
from offerloop.content.quiz_page import answers_url, form_errors, parse_form, render_quiz_page
from offerloop.content.schemas import AnswersAccepted, AtomDetail, AtomPage, AtomStored, QuizRead, SyncReport
from offerloop.core.clock import utcnow
from offerloop.core.errors import ErrorBody, error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.events import service as event_service
from offerloop.web import Cursor, Limit
from offerloop.workspaces.auth import DB, AnyKey, KeyOrQuery, SecretKey, get_settings

router = APIRouter(prefix="/v1", tags=["content"])


class AtomText(BaseModel):
    text: str = Field(description="The atom file: YAML front matter, then the Markdown body")
    path: str | None = Field(default=None, description="Shown in validation messages")


class SyncIn(BaseModel):
    atoms: list[AtomText]
    prune: bool = Field(default=False, description="Retire current atoms missing from this set")


class QuizText(BaseModel):
    text: str = Field(description="The quiz in YAML")


class AnswersIn(BaseModel):
    user_id: str | None = None
    anonymous_id: str | None = None
    answers: dict[str, Any]
    message_id: str | None = None


@router.put(
    "/content/atoms",
    summary="Add or update one atom (a changed atom gets a new version)",
    responses=error_responses(ContentError),
)
def put_atom(db: DB, principal: SecretKey, body: AtomText) -> AtomStored:
    with db.write() as session:
        return service.put_atom(session=session, workspace_id=principal.workspace_id, text=body.text,
                                path=body.path or "<api>", actor=principal.key_id)  # fmt: skip


@router.post(
    "/content/sync",
    summary="Store a whole corpus; any invalid atom refuses the sync, naming file and line",
    responses=error_responses(ContentError),
)
def sync(db: DB, principal: SecretKey, body: SyncIn) -> SyncReport:
    atoms, problems = [], []
    for i, item in enumerate(body.atoms):
        try:
            atoms.append(parse_atom(item.text, path=item.path or f"atoms[{i}]"))
        except ContentError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ContentError(problems)
    with db.write() as session:
        return service.sync(session=session, workspace_id=principal.workspace_id, atoms=atoms, prune=body.prune,
                            actor=principal.key_id)  # fmt: skip


@router.get("/content/atoms", summary="The current corpus (front matter only), by atom id")
def list_atoms(
    db: DB,
    principal: SecretKey,
    kind: Annotated[str | None, Query(max_length=40, description="Only atoms of this kind")] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Only atoms with this tag")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AtomPage:
    with db.read() as session:
        return service.atoms_page(
            session=session,
            workspace_id=principal.workspace_id,
            limit=limit,
            cursor=cursor,
            kind=kind,
            tag=tag,
        )


@router.get(
    "/content/atoms/{atom_id}",
    summary="One atom (current, or any earlier version) and its history",
    responses=error_responses(NotFound),
)
def get_atom(db: DB, principal: SecretKey, atom_id: str, version: str | None = None) -> AtomDetail:
    with db.read() as session:
        return service.get_atom(
            session=session, workspace_id=principal.workspace_id, atom_id=atom_id, version=version
        )


@router.put("/quizzes", summary="Add or update an intake quiz", responses=error_responses(ContentError))
def put_quiz(db: DB, principal: SecretKey, body: QuizText) -> QuizRead:
    with db.write() as session:
        quiz = service.put_quiz(
            session=session, workspace_id=principal.workspace_id, text=body.text, actor=principal.key_id
        )
    return QuizRead.model_validate(quiz)


@router.get(
    "/quizzes/{quiz_id}",
    summary="An intake quiz as JSON (write keys may read it)",
    responses=error_responses(NotFound),
)
def get_quiz(db: DB, principal: AnyKey, quiz_id: str) -> QuizRead:
    with db.read() as session:
        quiz = service.get_quiz(session=session, workspace_id=principal.workspace_id, quiz_id=quiz_id)
    return QuizRead.model_validate(quiz)


@router.get(
    "/quizzes/{quiz_id}/page",
    response_class=HTMLResponse,
    summary="The hosted quiz page (?key=WRITE_KEY)",
    responses=error_responses(NotFound),
)
def quiz_page(
    request: Request, db: DB, principal: KeyOrQuery, quiz_id: str, anonymous_id: str | None = None,
    user_id: str | None = None,
) -> HTMLResponse:  # fmt: skip
    with db.read() as session:
        quiz = service.get_quiz(session=session, workspace_id=principal.workspace_id, quiz_id=quiz_id)
    hidden = {k: v for k, v in {"anonymous_id": anonymous_id, "user_id": user_id}.items() if v}
    action = answers_url(get_settings(request).public_url, quiz_id, request.query_params.get("key", ""))
    return HTMLResponse(render_quiz_page(quiz, action_url=action, hidden=hidden))


@router.post(
    "/quizzes/{quiz_id}/answers",
    summary="Submit answers (JSON, or the hosted page's form)",
    description="JSON answers are answered with the scores. A form post (the hosted page) is answered "
    "with an HTML page: the thanks, or the form again with its errors (422). Refused answers are "
    "quarantined: `invalid_answers`, with details.quarantine_id.",
    response_model=AnswersAccepted,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **error_responses(NotFound),
        422: {"model": ErrorBody, "description": "code: `invalid_answers`"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": AnswersIn.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            },
        }
    },
)
async def submit_answers(
    request: Request, db: DB, principal: KeyOrQuery, quiz_id: str
) -> AnswersAccepted | HTMLResponse:
    raw = await request.body()
    is_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    with db.read() as session:
        quiz = service.get_quiz(session=session, workspace_id=principal.workspace_id, quiz_id=quiz_id)
    try:
        if is_form:
            pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            fields = dict(pairs)
            body = AnswersIn(user_id=fields.get("user_id") or None, anonymous_id=fields.get("anonymous_id") or None,
                             answers=parse_form(quiz, pairs))  # fmt: skip
        else:
            body = AnswersIn.model_validate_json(raw)
        message = service.answers_message(quiz=quiz, answers=body.answers, user_id=body.user_id,
                                          anonymous_id=body.anonymous_id, message_id=body.message_id)  # fmt: skip
    except (ContentError, ValueError) as exc:
        problems = exc.problems if isinstance(exc, ContentError) else [str(exc)]
        with db.write() as session:
            qid = event_service.quarantine_raw(session=session, workspace_id=principal.workspace_id,
                                               raw=raw.decode("utf-8", "replace"), code="invalid_answers",
                                               reason="; ".join(problems)[:2000])  # fmt: skip
        if is_form and isinstance(exc, ContentError):
            hidden = {k: v for k, v in fields.items() if k in ("anonymous_id", "user_id") and v}
            page = render_quiz_page(
                quiz,
                action_url=answers_url(
                    get_settings(request).public_url, quiz_id, request.query_params.get("key", "")
                ),
                hidden=hidden,
                answers=None,
                errors=form_errors(exc),
            )
            return HTMLResponse(page, status_code=422)
        details = exc.details if isinstance(exc, ContentError) else [{"message": str(exc)}]
        raise ContentError(
            problems, details={"problems": details, "quarantine_id": qid}, code="invalid_answers"
        ) from exc
    settings = get_settings(request)
    prepared = event_service.prepare_batch([message], received_at=utcnow(), max_event_bytes=settings.max_event_bytes,
                                           implied_type="track")  # fmt: skip
    with db.write() as session:
        result = event_service.ingest(session=session, workspace_id=principal.workspace_id, batch=prepared)
    item = result.items[0]
    if is_form:
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Thank you</title><p>Thank you: your answers were received.</p>"
        )
    return AnswersAccepted(
        status=item.status, message_id=item.message_id, scores=message["properties"]["scores"]
    )
