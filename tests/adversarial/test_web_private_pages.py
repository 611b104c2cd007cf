"""Pages reached without a key but showing one buyer's data must not be kept by a shared cache (a proxy or CDN in
front of offerloop would serve them again, to anyone with the URL, after the buyer was erased): the console,
portal and storefront say ``no-store``; so must the web version of a message."""

from __future__ import annotations

from typing import Any

from tests.delivery.test_links import sent  # noqa: F401  (the fixture: one e-mail sent to Ann)

from offerloop.delivery import links
from offerloop.workspaces import service as workspace_service


def test_web_the_web_version_of_a_message_is_not_cached(client, db, settings, workspace, sent: Any) -> None:  # noqa: F811
    with db.read() as session:
        secret = workspace_service.signing_secret(session=session, configured=settings.secret)
    token = links.token(secret, "v", {"w": workspace.id, "m": sent["id"]})
    r = client.get(f"/v1/m/view/{token}")
    assert r.status_code == 200 and "Ann" in r.text
    assert r.headers["cache-control"] == "private, no-store"
