"""A workspace's document theme: colours, fonts and a logo, checked before they reach a renderer."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

from sqlalchemy.orm import Session

from offerloop.assembly.document import (
    Theme,
)
from offerloop.assembly.exceptions import (
    AssemblyError,
)
from offerloop.assembly.render.fonts import SUPPORTED_FONTS, canonical_font
from offerloop.assembly.render.markup import css_color
from offerloop.assembly.schemas import (
    ThemeRead,
)
from offerloop.workspaces import service as workspace_service


def set_theme(
    *, session: Session, workspace_id: str, theme: Mapping[str, Any], actor: str = "api"
) -> ThemeRead:
    allowed = {f.name for f in dataclasses.fields(Theme)}
    unknown = sorted(set(theme) - allowed)
    if unknown:
        raise AssemblyError(f"unknown theme field(s): {', '.join(unknown)}", code="invalid_theme",
                            details={"allowed": sorted(allowed)})  # fmt: skip
    bad = [k for k, v in theme.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise AssemblyError(f"theme fields must be strings: {', '.join(sorted(bad))}", code="invalid_theme")
    _check_theme(theme)
    theme = {**theme, **_theme_fonts(theme)}
    version = workspace_service.set_config(
        session=session, workspace_id=workspace_id, field="theme", value=dict(theme)
    )
    workspace_service.audit(session, workspace_id, actor=actor, action="theme.update", target_type="workspace",
                            target_id=workspace_id, details={"version": version})  # fmt: skip
    return ThemeRead(
        version=version, **dataclasses.asdict(theme_for(session=session, workspace_id=workspace_id))
    )


LOGO_MAX_BYTES = 200_000


# Elements that run code, load or restyle things, or rewrite attributes (an <animate> of href) have no place in
# a logo; raster images inside it may only be inline PNG/JPEG/GIF/WebP (an inline SVG could hide a script).
_LOGO_REFUSED = frozenset(("script", "foreignObject", "iframe", "object", "embed", "style", "animate", "set",
                           "animateTransform", "animateMotion", "handler", "listener"))  # fmt: skip


_RASTER_URI = re.compile(r"data:image/(?:png|jpeg|gif|webp);", re.I)


def _check_theme(theme: Mapping[str, Any]) -> None:
    """Colours are hex colours and the logo is a self-contained SVG: refused with the field, never ignored."""
    for key in ("primary", "accent", "text"):
        value = theme.get(key)
        if value is not None and css_color(value, "") != value:
            raise AssemblyError(f"{key}: {str(value)[:40]!r} is not a hex colour such as #1f3a5f", code="invalid_theme",
                                details={"field": key})  # fmt: skip
    logo = theme.get("logo_svg")
    if logo is not None:
        problem = _logo_problem(logo)
        if problem:
            raise AssemblyError(f"logo_svg: {problem}", code="invalid_theme", details={"field": "logo_svg"})


def _logo_problem(svg: str) -> str | None:
    if len(svg.encode("utf-8")) > LOGO_MAX_BYTES:
        return f"larger than {LOGO_MAX_BYTES:,} bytes"
    if "<!" in svg:  # no DOCTYPE, ENTITY or CDATA: nothing to expand, nothing hidden
        return "declarations (<!DOCTYPE, <!ENTITY, <![CDATA[) are not accepted"
    if re.search(r"<\?(?!xml[\s?])", svg, re.I):  # only the XML declaration; no xml-stylesheet
        return "processing instructions are not accepted"
    try:
        root = ElementTree.fromstring(svg)
    except ElementTree.ParseError as exc:
        return f"not well-formed XML ({exc})"
    if root.tag.rsplit("}", 1)[-1] != "svg":
        return "the root element must be <svg>"
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag in _LOGO_REFUSED:
            return f"<{tag}> is not accepted in a logo"
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1]
            if local.lower().startswith("on"):
                return f"event attribute {local!r} is not accepted"
            if local == "href" and not (value.startswith("#") or _RASTER_URI.match(value)):
                return "links are not accepted (only #fragment or a data: PNG, JPEG, GIF or WebP image)"
            if re.search(r"url\(\s*['\"]?(?!#)", value, re.I) or "@import" in value.lower():
                return f"attribute {local!r} refers to an outside resource"
    return None


def _theme_fonts(theme: Mapping[str, Any]) -> dict[str, str]:
    """The theme's font fields as supported family names; an unknown family is a 422 listing them."""
    fonts: dict[str, str] = {}
    for key in ("body_font", "heading_font", "mono_font"):
        if theme.get(key) is None:
            continue
        name = canonical_font(theme[key])
        if name is None:
            given = str(theme[key])[:100]  # a huge value is not echoed back whole
            raise AssemblyError(
                f"{key}: font {given!r} is not shipped with offerloop; use one of: {', '.join(SUPPORTED_FONTS)}",
                code="unsupported_font", details={"field": key, "font": given, "supported": list(SUPPORTED_FONTS)},
            )  # fmt: skip
        fonts[key] = name
    return fonts


def theme_for(*, session: Session, workspace_id: str) -> Theme:
    ws = workspace_service.get_workspace(session=session, workspace_id=workspace_id)
    values = {k: v for k, v in (ws.theme or {}).items() if v is not None}  # None: the default
    values.setdefault("creator_name", ws.name)
    return Theme(**values)
