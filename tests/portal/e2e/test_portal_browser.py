"""A buyer in a real headless Chromium against `offerloop serve`: asks for a sign-in link, opens the one the
real SMTP server received, downloads the workbook they bought and cancels their plan at the period's end."""

from __future__ import annotations

import email
import json
import re
import time
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, basic, bearer
from tests.console.e2e.test_accessibility import violations
from tests.delivery.email.smtpd import Server

from ..helpers import LINK, buyer_buys, setup_shop

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_a_buyer_signs_in_by_the_mailed_link_downloads_the_workbook_and_cancels_at_period_end(
    page: Any, live_server: LiveServer, smtp_sink: Server, shots: Path
) -> None:
    created = json.loads(live_server.cli("workspace", "create", "Rowan Vale", "--json").stdout)
    ws, secret, write = created["id"], bearer(created["secret_key"]), basic(created["write_key"])
    with httpx.Client(base_url=live_server.url, timeout=60) as api:
        setup_shop(api, secret)
        orders = buyer_buys(api, secret, write, "ada", "launch-workbook", "membership-monthly")
    assert live_server.cli("worker", "--once").stdout.startswith("1 artifact versions rendered, ")

    page.goto(f"/p/{ws}")
    page.wait_for_url(re.compile(rf"/p/{ws}/login$"))
    assert page.title() == "Sign in · Rowan Vale"
    page.get_by_label("E-mail address").fill("ada@example.com")
    page.screenshot(path=shots / "01-sign-in.png", full_page=True)
    # axe-core (shipped with the console's tests) on each portal page shown: no serious or critical violation
    checked = {"sign-in": violations(page)}
    page.get_by_role("button", name="Send me a sign-in link").click()
    assert (
        page.get_by_role("status").inner_text().startswith("If this address belongs to a buyer of Rowan Vale")
    )
    page.screenshot(path=shots / "02-link-sent.png", full_page=True)

    # the link is queued just after the answer (the same answer, at the same speed, for any address)
    with httpx.Client(base_url=live_server.url, headers=secret, timeout=60) as api:
        deadline = time.monotonic() + 20
        while not api.get("/v1/messages").json()["items"]:
            assert time.monotonic() < deadline, "the sign-in e-mail was never queued"
            time.sleep(0.1)
    live_server.cli("worker", "--once")  # the outbox's send job: the e-mail goes to the SMTP server
    (received,) = smtp_sink.recorder.messages
    assert received.rcpt_tos == ["ada@example.com"]
    mail = email.message_from_bytes(received.data, policy=policy.default)
    assert mail["Subject"] == "Your sign-in link for Rowan Vale"
    found = LINK.search(mail.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert found is not None and found.group(1).startswith(f"{live_server.url}/p/{ws}/auth?token=")
    page.goto(found.group(1))
    page.screenshot(path=shots / "03-confirm.png", full_page=True)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"/p/{ws}$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Your purchases"
    page.screenshot(path=shots / "04-purchases.png", full_page=True)
    checked["purchases"] = violations(page)

    with httpx.Client(base_url=live_server.url, headers=secret, timeout=60) as api:
        tasks = api.get(f"/v1/orders/{orders['launch-workbook']}").json()["fulfilment"]
        art = next(t for t in tasks if t["component"] == "deliverable")["result"]["artifact_id"]
        signed = api.get(f"/v1/artifacts/{art}/download", params={"format": "pdf"}).json()["url"]
        expected = api.get(signed).content
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download PDF of Ada starter workbook").click()
    download = downloading.value
    assert download.suggested_filename == f"{art}-v1.pdf"
    body = Path(download.path()).read_bytes()
    assert body == expected and body.startswith(b"%PDF")
    (shots / "05-downloaded.pdf").write_bytes(body)

    page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Subscription").click()
    page.wait_for_url(re.compile(rf"/p/{ws}/subscription$"))
    page.screenshot(path=shots / "06-subscription.png", full_page=True)
    checked["subscription"] = violations(page)
    page.get_by_role("button", name="Cancel at the end of the period").click()
    page.wait_for_url(re.compile(r"done=cancel$"))
    assert (
        page.get_by_role("status").inner_text() == "Your subscription ends at the end of the current period."
    )
    assert "ends at the end of this period" in page.locator("[data-field=status]").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=shots / "07-canceled-phone.png", full_page=True)
    checked["canceled, on a phone"] = violations(page)
    assert checked == {"sign-in": [], "purchases": [], "subscription": [], "canceled, on a phone": []}
    with httpx.Client(base_url=live_server.url, headers=secret, timeout=60) as api:
        ada = api.get("/v1/buyers/lookup", params={"user_id": "ada"}).json()["id"]
        (sub,) = api.get("/v1/subscriptions", params={"buyer_id": ada}).json()["items"]
    assert (sub["offer_key"], sub["status"], sub["state"]["cancel_at_period_end"]) == (
        "membership-monthly", "trialing", True,
    )  # fmt: skip
    # the link was used: opened again, it says so (no button), and posting it anyway signs no one in
    again = httpx.get(found.group(1))
    assert (
        again.status_code == 401 and "<form" not in again.text and "ask for a new one" in again.text.lower()
    )
    login = httpx.get(f"{live_server.url}/p/{ws}/login")
    token = re.search(r'name="form_token" value="([^"]+)"', login.text)
    assert token is not None
    replay = httpx.post(f"{live_server.url}/p/{ws}/auth", cookies=login.cookies,
                        data={"token": httpx.URL(found.group(1)).params["token"], "form_token": token.group(1)})  # fmt: skip
    assert replay.status_code == 401
