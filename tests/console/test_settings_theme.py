"""The documents' theme edited from Settings: an owner saves colours, fonts, a creator name and a logo (the
assembly domain's checks refuse a bad colour, an unknown font or a logo with a script, naming the field, and keep
the theme as it was); other roles and requests without the CSRF token change nothing."""

from __future__ import annotations

import re

import pytest
from tests.console.helpers import sign_in_as

from offerloop.assembly import service as assembly_service
from offerloop.db.uow import Database

LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="#123456"/></svg>'
FORM = {
    "name": "Rowan", "primary": "#112233", "accent": "#aa5500", "text": "#101010", "body_font": "Open Sans",
    "heading_font": "Libertinus Serif", "mono_font": "DejaVu Sans Mono", "creator_name": "Rowan Vale",
    "logo_svg": LOGO,
}  # fmt: skip


def _theme(db: Database, workspace_id: str):
    with db.read() as session:
        return assembly_service.theme_for(session=session, workspace_id=workspace_id)


def test_an_owner_saves_the_theme_and_sees_it(client, db, workspace) -> None:
    csrf = sign_in_as(client, db, workspace.id, "owner")
    page = client.get("/console/settings")
    assert 'id="theme-editor"' in page.text and "<option selected>Libertinus Serif</option>" in page.text
    r = client.post("/console/settings/theme", data={"csrf_token": csrf, **FORM}, follow_redirects=False)
    assert r.status_code == 303 and re.fullmatch(
        r"/console/settings\?done=theme-v\d+#theme-title", r.headers["location"]
    )
    theme = _theme(db, workspace.id)
    assert (theme.name, theme.primary, theme.accent, theme.text) == ("Rowan", "#112233", "#aa5500", "#101010")
    assert (theme.body_font, theme.creator_name, theme.logo_svg) == ("Open Sans", "Rowan Vale", LOGO)
    shown = client.get(r.headers["location"]).text
    assert (
        "Saved: theme version" in shown and "<code>#112233</code>" in shown and "<dd>Rowan Vale</dd>" in shown
    )
    # clearing the optional fields clears them (the cover then names the workspace); an empty colour is the default
    r = client.post("/console/settings/theme", data={"csrf_token": csrf, **FORM, "logo_svg": "", "creator_name": "",
                                                     "primary": ""}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    theme = _theme(db, workspace.id)
    assert (theme.logo_svg, theme.creator_name, theme.primary) == (None, "Test Creator", "#1f3a5f")


@pytest.mark.parametrize(
    ("change", "field"),
    [({"primary": "red; background:url(x)"}, "primary"), ({"logo_svg": "<svg><script>alert(1)</script></svg>"}, "logo_svg"),
     ({"logo_svg": '<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/x.png"/></svg>'}, "logo_svg"),
     ({"body_font": "Comic Sans"}, None), ({"name": "x" * 101}, "name")],
)  # fmt: skip
def test_a_bad_theme_is_refused_and_the_old_one_kept(client, db, workspace, change, field) -> None:
    csrf = sign_in_as(client, db, workspace.id, "owner")
    before = _theme(db, workspace.id)
    r = client.post(
        "/console/settings/theme", data={"csrf_token": csrf, **FORM, **change}, follow_redirects=False
    )
    assert r.status_code == 422 and 'data-code="' in r.text
    if field:
        assert field in r.text
    assert _theme(db, workspace.id) == before


@pytest.mark.parametrize("role", ["reviewer", "analyst"])
def test_only_an_owner_changes_the_theme(client, db, workspace, role) -> None:
    csrf = sign_in_as(client, db, workspace.id, role)
    assert 'id="theme-editor"' not in client.get("/console/settings").text
    r = client.post("/console/settings/theme", data={"csrf_token": csrf, **FORM}, follow_redirects=False)
    assert r.status_code == 403
    assert _theme(db, workspace.id).name == "default"


def test_without_the_csrf_token_nothing_changes(client, db, workspace) -> None:
    sign_in_as(client, db, workspace.id, "owner")
    r = client.post("/console/settings/theme", data=FORM, follow_redirects=False)
    assert r.status_code == 403 and _theme(db, workspace.id).name == "default"
