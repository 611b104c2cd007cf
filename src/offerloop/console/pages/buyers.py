"""Buyers: find one by any identifier; one buyer's page (identities, merges with undo, persona and its
history, live features, consent, entitlements, the newest decisions with their reasons and artifacts with
their review, the event timeline paged newest first); GDPR export and
erasure (owner only, erasure confirmed by typing the buyer's id). Reviewers and owners see buyers;
analysts work with aggregates only."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop import pipeline
from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.core.errors import NotFound
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.delivery import service as delivery_service
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound, LookupNeedsOneIdentifier
from offerloop.identity.schemas import BuyerRead

router = web.router
BuyerId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
EVENTS_SHOWN = 50
MERGES_SHOWN = 50
RECENT_SHOWN = 10  # orders, messages, decisions and artifacts: the newest; the API pages through the rest


def _lookup(db: Database, workspace_id: str, query: str) -> list[tuple[str, BuyerRead]]:
    """Each reading of the query as an identifier that names a buyer: (how it matched, the buyer)."""
    text = query.strip()
    tries: list[tuple[str, dict[str, str]]] = []
    if text.startswith("byr_"):
        tries.append(("buyer id", {}))
    if "@" in text:
        tries.append(("e-mail", {"email": text}))
    tries += [("user id", {"user_id": text}), ("anonymous id", {"anonymous_id": text})]
    if any(c.isdigit() for c in text) and set(text) <= set("+0123456789 -().") and len(text) >= 7:
        tries.append(("phone", {"phone": text}))
    found: dict[str, tuple[str, BuyerRead]] = {}
    pipeline.catch_up(db, workspace_id=workspace_id)  # as the API: every event acknowledged before now
    with db.read() as session:
        for how, asked in tries:
            try:
                if not asked:
                    buyer = identity_service.get_buyer(
                        session=session, workspace_id=workspace_id, buyer_id=text
                    )
                else:
                    buyer = identity_service.lookup(session=session, workspace_id=workspace_id, **asked)
            except (BuyerNotFound, LookupNeedsOneIdentifier):
                continue
            found.setdefault(buyer.id, (how, buyer))
    return list(found.values())


@router.get("/console/buyers")
async def search(
    request: Request, db: web.DB, user: web.Reviewer, q: Annotated[str, Query(max_length=512)] = ""
) -> Response:
    results = await run_in_threadpool(_lookup, db, user.workspace_id, q) if q.strip() else []
    if len(results) == 1 and not request.headers.get("hx-request"):
        return RedirectResponse(f"/console/buyers/{results[0][1].id}", status_code=303)
    template = "buyers/results.html" if request.headers.get("hx-request") else "buyers/search.html"
    return web.render(request, template, {"current": "buyers", "q": q, "results": results})


def _page(db: Database, workspace_id: str, buyer_id: str, before: str | None) -> dict[str, Any]:
    pipeline.catch_up(db, workspace_id=workspace_id)
    with db.read() as session:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
        if buyer.deleted:
            return {"buyer": buyer, "erased": True}
        state = identity_service.buyer_state(session=session, workspace_id=workspace_id, buyer_id=buyer.id)
        return {
            "buyer": buyer,
            "erased": False,
            "state": state,
            "merges": identity_service.list_merges(
                session=session, workspace_id=workspace_id, buyer_id=buyer.id, limit=MERGES_SHOWN
            ),
            "events": identity_service.buyer_events(
                session=session,
                workspace_id=workspace_id,
                buyer_id=buyer.id,
                limit=EVENTS_SHOWN,
                cursor=before,
            ),
            "entitlements": entitlements_service.list_for_buyer(
                session=session, workspace_id=workspace_id, buyer_id=buyer.id
            ),
            "orders": checkout_service.list_orders(
                session=session, workspace_id=workspace_id, limit=RECENT_SHOWN, buyer_id=buyer.id
            ),
            "messages": delivery_service.list_messages(
                session=session, workspace_id=workspace_id, limit=RECENT_SHOWN, cursor=None, buyer_id=buyer.id
            ),
            "decisions": decisions_service.buyer_decisions(
                session=session, workspace_id=workspace_id, buyer_id=buyer.id, limit=RECENT_SHOWN
            ),
            "artifacts": assembly_service.buyer_artifacts(
                session=session, workspace_id=workspace_id, buyer_id=buyer.id, limit=RECENT_SHOWN
            ),
        }


@router.get("/console/buyers/{buyer_id}")
async def buyer_page(
    request: Request, db: web.DB, user: web.Reviewer, buyer_id: BuyerId,
    before: Annotated[str | None, Query(max_length=200)] = None, done: Annotated[str, Query(max_length=40)] = "",
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_page, db, user.workspace_id, buyer_id, before)
    if found["buyer"].id != buyer_id and not before:  # a merged-away id: show its survivor's page
        return RedirectResponse(f"/console/buyers/{found['buyer'].id}", status_code=303)
    return web.render(request, "buyers/buyer.html", {"current": "buyers", "done": done, **found})


def _undo(db: Database, workspace_id: str, buyer_id: str, merge_id: str, actor: str) -> str:
    pipeline.catch_up(db, workspace_id=workspace_id)
    with db.write() as session:
        merges = identity_service.list_merges(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id, limit=MERGES_SHOWN
        )
        if merge_id not in {m.id for m in merges}:
            raise NotFound(f"merge {merge_id} is not a merge of buyer {buyer_id}", code="merge_not_found")
        undone = identity_service.undo_merge(session=session, workspace_id=workspace_id, merge_id=merge_id,
                                             actor=actor)  # fmt: skip
        return undone.winner_id


@router.post("/console/buyers/{buyer_id}/merges/{merge_id}/undo")
async def undo_merge(
    db: web.DB, user: web.Posted, buyer_id: BuyerId,
    merge_id: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
) -> Response:  # fmt: skip
    web.refuse_unless(user, "owner")
    winner = await run_in_threadpool(
        _undo, db, user.workspace_id, buyer_id, merge_id, f"console:{user.user_id}"
    )
    return RedirectResponse(f"/console/buyers/{winner}?done=merge_undone", status_code=303)


def _export(db: Database, workspace_id: str, buyer_id: str, actor: str) -> bytes:
    pipeline.catch_up(db, workspace_id=workspace_id)  # every acknowledged event is in the export
    with db.write() as session:  # the export is audited
        exported = identity_service.export_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id,
                                                 actor=actor)  # fmt: skip
        return orjson.dumps(exported.model_dump(mode="json", by_alias=True), option=orjson.OPT_INDENT_2)


@router.post("/console/buyers/{buyer_id}/export")
async def export(db: web.DB, user: web.Posted, buyer_id: BuyerId) -> Response:
    web.refuse_unless(user, "owner")
    body = await run_in_threadpool(_export, db, user.workspace_id, buyer_id, f"console:{user.user_id}")
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="buyer-{buyer_id}.json"', "Cache-Control": "no-store",
    })  # fmt: skip


def _erase(db: Database, workspace_id: str, buyer_id: str, actor: str) -> None:
    pipeline.catch_up(db, workspace_id=workspace_id)  # nothing acknowledged escapes the erasure
    with db.write() as session:
        identity_service.delete_buyer(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id, actor=actor
        )


@router.post("/console/buyers/{buyer_id}/delete")
async def erase(db: web.DB, user: web.Posted, form: web.Form, buyer_id: BuyerId) -> Response:
    web.refuse_unless(user, "owner")
    if form.get("confirm", "").strip() != buyer_id:
        raise InvalidUser(
            "type the buyer's id to confirm the erasure",
            details={"field": "confirm", "reason": "not_confirmed"},
        )
    await run_in_threadpool(_erase, db, user.workspace_id, buyer_id, f"console:{user.user_id}")
    return RedirectResponse(f"/console/buyers/{buyer_id}?done=erased", status_code=303)
