"""The console's editor of a declarative config (persona templates, signal rules): the text is checked by
the domain's own loader — every problem by line, shown next to the text — and saved only by an owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.console.schemas import SignedIn
from offerloop.db.uow import Database
from offerloop.declarative import ConfigError

SOURCE_CHARS = 60_000
ACTIONS = ("lint", "save")


def read(user: SignedIn, form: dict[str, str]) -> tuple[str, str]:
    """(action, text) of an editor's form; saving is refused (403) below owner, checking is for everyone."""
    action = form.get("action", "")
    if action not in ACTIONS:
        raise InvalidUser(f"action must be one of {', '.join(ACTIONS)}", details={"field": "action"})
    if action == "save":
        web.refuse_unless(user, "owner")
    return action, web.field(form, "source", max_length=SOURCE_CHARS)


def problems(load: Callable[[str], Any], source: str) -> list[str]:
    """Every problem the domain's loader finds in ``source`` (``file:line: path: message``); [] when none."""
    try:
        load(source)
    except ConfigError as exc:
        return list(exc.problems)
    return []


async def submit(
    db: Database, user: SignedIn, form: dict[str, str], *, load: Callable[[str], Any], save: Callable[..., int],
    redisplay: Callable[..., Awaitable[Response]], done: str,
) -> Response:  # fmt: skip
    """Check the posted text; redisplay it with its problems (422) or the all-clear, or save it with the domain's
    ``save(session=, workspace_id=, source=, actor=)`` and go to ``done`` (``{version}``: the new version)."""
    action, source = read(user, form)
    found = problems(load, source)
    if found or action == "lint":
        return await redisplay(source=source, problems=found, checked=True, status_code=422 if found else 200)

    def store() -> int:
        with db.write() as session:
            return save(session=session, workspace_id=user.workspace_id, source=source,
                        actor=f"console:{user.user_id}")  # fmt: skip

    version = await run_in_threadpool(store)
    return RedirectResponse(done.format(version=version), status_code=303)
