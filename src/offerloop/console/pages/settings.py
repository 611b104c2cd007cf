"""Settings: the workspace's API keys (prefixes only; rotate one, confirmed: owner only, the new key shown
once), signal weights (the rules that weigh each event; checked by line, saved by an owner), e-mail sending (the SMTP server without its
credentials, the From address, the verified sender domains), outgoing webhooks (enable or disable: owner
only) and the documents' theme (colours, fonts, creator name, logo). Every role reads; only an owner changes
anything."""

from __future__ import annotations

import functools
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.assembly import service as assembly_service
from offerloop.assembly.render.fonts import SUPPORTED_FONTS
from offerloop.config import Settings
from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.console.pages import editor
from offerloop.db.uow import Database
from offerloop.delivery import service as delivery_service
from offerloop.delivery.webhooks import service as webhooks_service
from offerloop.delivery.webhooks.schemas import EndpointUpdate
from offerloop.events import service as events_service
from offerloop.events.signals import load_signal_config
from offerloop.workspaces import service as workspace_service

router = web.router
KEYS_SHOWN = 100
WEBHOOKS_SHOWN = 50
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


def smtp_server(settings: Settings) -> str | None:
    """The SMTP server as scheme://host:port — never its user or password."""
    if not settings.smtp_url:
        return None
    parts = urlsplit(settings.smtp_url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def _settings(db: Database, workspace_id: str) -> dict[str, Any]:
    with db.read() as session:
        return {
            "keys": workspace_service.keys_page(session=session, workspace_id=workspace_id, limit=KEYS_SHOWN),
            "signals": events_service.get_signal_config(session=session, workspace_id=workspace_id),
            "rules": delivery_service.get_rules(session=session, workspace_id=workspace_id),
            "sender_domains": delivery_service.sender_domains(session=session, workspace_id=workspace_id),
            "webhooks": webhooks_service.list_endpoints(
                session=session, workspace_id=workspace_id, limit=WEBHOOKS_SHOWN, cursor=None
            ),
            "theme": assembly_service.theme_for(session=session, workspace_id=workspace_id),
        }


async def _page(
    request: Request, db: Database, workspace_id: str, *, done: str = "", new_key: Any = None,
    source: str | None = None, problems: list[str] | None = None, checked: bool = False, status_code: int = 200,
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_settings, db, workspace_id)
    settings: Settings = request.app.state.settings
    rules_text = yaml.safe_dump(found["signals"].model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    signals_editor = {
        "id": "signal-rules", "title": "Edit the signal rules", "action": "/console/settings/signals",
        "label": "Signal rules (YAML)", "source": rules_text if source is None else source, "version": None,
        "problems": problems or [], "checked": checked,
    }  # fmt: skip
    return web.render(request, "settings/index.html", {
        "current": "settings", "done": done, "new_key": new_key, "smtp": smtp_server(settings),
        "mail_from": settings.mail_from, "signals_editor": signals_editor, "fonts": SUPPORTED_FONTS, **found,
    }, status_code=status_code)  # fmt: skip


@router.get("/console/settings")
async def settings_page(
    request: Request, db: web.DB, user: web.User, done: Annotated[str, Query(max_length=40)] = ""
) -> Response:
    return await _page(request, db, user.workspace_id, done=done)


@router.post("/console/settings/signals")
async def signals(request: Request, db: web.DB, user: web.Posted, form: web.Form) -> Response:
    # the events domain's own loader checks the rules, by line; its service stores them
    return await editor.submit(
        db, user, form, load=load_signal_config, save=events_service.set_signal_config,
        redisplay=functools.partial(_page, request, db, user.workspace_id),
        done="/console/settings?done=signals-v{version}#signals",
    )  # fmt: skip


def _rotate(db: Database, workspace_id: str, key_id: str, actor: str) -> tuple[Any, str]:
    with db.write() as session:
        key, token = workspace_service.rotate_key(session=session, workspace_id=workspace_id, key_id=key_id,
                                                  actor=actor)  # fmt: skip
        return {"id": key.id, "kind": key.kind, "prefix": key.prefix, "replaces": key_id}, token


@router.post("/console/settings/keys/{key_id}/rotate")
async def rotate(request: Request, db: web.DB, user: web.Posted, form: web.Form, key_id: Id) -> Response:
    web.refuse_unless(user, "owner")
    if form.get("confirm") != "yes":
        raise InvalidUser(
            "tick the box to confirm: the old key stops working at once",
            details={"field": "confirm", "reason": "not_confirmed"},
        )
    key, token = await run_in_threadpool(_rotate, db, user.workspace_id, key_id, f"console:{user.user_id}")
    # the new key is shown on this answer only (no redirect: it must not travel in a URL or be cached)
    return await _page(request, db, user.workspace_id, done="rotated", new_key={**key, "token": token})


def _enable(db: Database, workspace_id: str, endpoint_id: str, enabled: bool, allow_private: bool) -> None:
    with db.write() as session:
        webhooks_service.update_endpoint(session=session, workspace_id=workspace_id, endpoint_id=endpoint_id,
                                         body=EndpointUpdate(enabled=enabled), allow_private=allow_private)  # fmt: skip


@router.post("/console/settings/webhooks/{endpoint_id}")
async def webhook(
    request: Request, db: web.DB, user: web.Posted, form: web.Form, endpoint_id: Id
) -> Response:
    web.refuse_unless(user, "owner")
    choice = form.get("enabled", "")
    if choice not in ("yes", "no"):
        raise InvalidUser("enabled must be yes or no", details={"field": "enabled"})
    allow = bool(request.app.state.settings.webhook_allow_private)
    await run_in_threadpool(_enable, db, user.workspace_id, endpoint_id, choice == "yes", allow)
    done = "webhook_enabled" if choice == "yes" else "webhook_disabled"
    return RedirectResponse(f"/console/settings?done={done}#webhooks", status_code=303)


THEME_COLOURS = ("primary", "accent", "text")
THEME_FONTS = ("body_font", "heading_font", "mono_font")
THEME_TEXTS = ("name", "creator_name", "logo_svg")


def _theme_of(form: dict[str, str]) -> dict[str, Any]:
    """The form's theme: every field given (an empty optional one cleared, an empty colour or font left to its
    default); the assembly domain checks the values and refuses what it cannot use, naming the field."""
    theme: dict[str, Any] = {}
    for name in (*THEME_COLOURS, *THEME_FONTS, "name"):
        value = web.field(form, name, max_length=100, required=False).strip()
        if value:
            theme[name] = value
    creator = web.field(form, "creator_name", max_length=200, required=False).strip()
    theme["creator_name"] = creator or None
    logo = web.field(form, "logo_svg", max_length=64 * 1024, required=False).strip()
    theme["logo_svg"] = logo or None
    return theme


def _save_theme(db: Database, workspace_id: str, theme: dict[str, Any], actor: str) -> int:
    with db.write() as session:
        return assembly_service.set_theme(session=session, workspace_id=workspace_id, theme=theme,
                                          actor=actor).version  # fmt: skip


@router.post("/console/settings/theme")
async def theme(db: web.DB, user: web.Posted, form: web.Form) -> Response:
    """The documents' theme (owner only); the next rendered deliverable uses it."""
    web.refuse_unless(user, "owner")
    version = await run_in_threadpool(
        _save_theme, db, user.workspace_id, _theme_of(form), f"console:{user.user_id}"
    )
    return RedirectResponse(f"/console/settings?done=theme-v{version}#theme-title", status_code=303)
