"""A buyer could not cancel a paused subscription in the portal: the page offered no cancel, and a cancel posted
anyway was refused (409: at the period's end only when active or trialing). One the creator paused could then
be neither resumed nor cancelled by the buyer, and billing started again whenever the creator resumed it. A
paused subscription gives no access, so the buyer's cancel ends it now."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.portal import conftest as portal
from tests.portal.helpers import Mailer, csrf_of, sign_in

from offerloop.workspaces.schemas import WorkspaceCreated

mailer, shop = portal.mailer, portal.shop  # the portal tests' fixtures: a shop whose buyers bought a plan


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize("paused_by", ["creator", "buyer"])
def test_found_a_buyer_cancels_a_paused_subscription_in_the_portal(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, mailer: Mailer, paused_by: str
) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()["id"]
    (sub,) = client.get("/v1/subscriptions", headers=secret_headers, params={"buyer_id": buyer}).json()[
        "items"
    ]
    api = f"/v1/subscriptions/{sub['id']}/actions"
    trial_end = sub["state"]["current_period_end"]
    assert (
        client.post(api, headers=secret_headers, json={"action": "renew", "at": trial_end}).status_code == 200
    )
    page = f"/p/{workspace.id}/subscription"
    form = f"{page}/{sub['id']}"
    csrf = csrf_of(client.get(page).text)
    if paused_by == "creator":
        assert client.post(api, headers=secret_headers, json={"action": "pause"}).status_code == 200
    else:
        paused = client.post(form, data={"csrf_token": csrf, "action": "pause"}, follow_redirects=False)
        assert paused.status_code == 303, paused.text
    shown = client.get(page).text
    assert 'name="action" value="cancel"' in shown
    canceled = client.post(form, data={"csrf_token": csrf, "action": "cancel"}, follow_redirects=False)
    assert (canceled.status_code, canceled.headers["location"]) == (303, f"{page}?done=canceled"), (
        canceled.text
    )
    assert "Your subscription is canceled." in client.get(canceled.headers["location"]).text
    after = client.get(f"/v1/subscriptions/{sub['id']}", headers=secret_headers).json()
    assert (after["status"], after["state"]["cancel_at_period_end"]) == ("canceled", False)
