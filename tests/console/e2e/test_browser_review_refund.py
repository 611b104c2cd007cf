"""The review queue, refunds and the ledger in a real headless Chromium against `offerloop serve`: approve an
artifact after viewing its PDF; refund an order and see the ledger change; an analyst can neither refund nor
approve; a forged refund form is refused (CSRF). Renders run by `offerloop worker --once`, not by a wait."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from sqlalchemy import Engine
from tests.assembly.test_artifacts_api import ATOMS, POLICY, QUIZ
from tests.checkout.test_checkout_flow import CATALOG
from tests.conftest import LiveServer, basic, bearer, msg
from tests.worker.test_jobs_live import _server

from .conftest import Team
from .test_console_browser import PASSWORD, sign_in

pytestmark = [pytest.mark.server, pytest.mark.browser]


@pytest.fixture
def live_server(
    tmp_path: Path, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    # no worker threads in the server: renders run when the test runs `offerloop worker --once`
    yield from _server(tmp_path, engine, database_url, monkeypatch, threads=0)


class KeyedTeam(Team):
    """A Team that also keeps its workspace's secret key (the API calls that set the scene need it)."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        created = json.loads(server.cli("workspace", "create", "Browser Creator", "--json").stdout)
        self.id, self.write_key, self.secret_key = created["id"], created["write_key"], created["secret_key"]

    def identify(self, user_id: str, **traits: str) -> None:
        ident = msg(userId=user_id, messageId=f"{user_id}-id", traits=traits)
        sent = httpx.post(f"{self.server.url}/v1/identify", headers=basic(self.write_key), json=ident)
        assert sent.status_code == 200, sent.text

    def member(self, role: str) -> str:
        """A team member with ``role``; their e-mail, unique to this workspace (on PostgreSQL the database is
        shared, and an e-mail with the same password in an earlier test's workspace would open that one)."""
        email = f"{role}-{self.id[-8:]}@example.com"
        self.user(email, role, PASSWORD)
        return email

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers=bearer(self.secret_key), timeout=60)


@pytest.fixture
def team(live_server: LiveServer) -> KeyedTeam:
    return KeyedTeam(live_server)


def held_artifact(team: KeyedTeam) -> str:
    """Ana's workbook, held for review (the policy says always) and rendered by the worker."""
    with team.api() as api:
        atoms = [{"text": t, "path": f"{k}.md"} for k, t in ATOMS.items()]
        assert api.post("/v1/content/sync", json={"atoms": atoms}).status_code == 200
        assert api.put("/v1/quizzes", json={"text": QUIZ}).status_code == 200
        assert api.put("/v1/policies", json={"text": POLICY.replace("{REVIEW}", "always")}).status_code == 200
        team.identify("ana", name="Ana Lima")
        made = api.post("/v1/artifacts", json={"user_id": "ana", "policy": "starter-workbook"})
        assert made.status_code == 202, made.text
    assert team.server.cli("worker", "--once").stdout.startswith("1 artifact")
    return str(made.json()["id"])


def paid_order(team: KeyedTeam) -> str:
    """Ada's order of the pricing playbook (USD 27.00), paid by hand (the manual provider)."""
    with team.api() as api:
        assert api.put("/v1/offers/catalog", json={"text": CATALOG}).status_code == 200
        team.identify("ada", email="ada@example.com")
        order = api.post("/v1/checkout", json={"user_id": "ada", "offer": "pricing-playbook"})
        assert order.status_code == 201, order.text
        paid = api.post(f"/v1/orders/{order.json()['id']}/paid", json={"reference": "INV-1"})
        assert paid.status_code == 200 and paid.json()["status"] == "paid"
        return str(order.json()["id"])


def nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name=name).click()


def test_approve_an_artifact_in_the_review_queue_after_viewing_its_pdf(
    page: Any, team: KeyedTeam, live_server: LiveServer, shots: Path
) -> None:
    art = held_artifact(team)
    sign_in(page, team.member("reviewer"))
    page.wait_for_url(re.compile(r"/console$"))
    nav(page, "Assembly")
    page.get_by_role("link", name=f"{art} v1").click()
    page.wait_for_url(re.compile(rf"/console/assembly/reviews/{art}\?version=1$"))
    document = page.frame_locator("#document")
    document.get_by_text("Anchor your price").first.wait_for()  # the rendered HTML, inline
    page.screenshot(path=shots / "01-review.png", full_page=True)
    link = page.get_by_role("link", name="View the PDF")
    response = page.request.get(link.get_attribute("href"))  # with the session's cookie, as the link is
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    (shots / "02-viewed.pdf").write_bytes(response.body())
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(response.body())).pages)
    assert "Ana" in text and "Anchor your price" in text
    outside = httpx.get(f"{live_server.url}{link.get_attribute('href')}", follow_redirects=False)
    assert (
        outside.status_code == 303 and "/console/login" in outside.headers["location"]
    )  # no session: no PDF
    page.get_by_label("Note (optional, kept with the decision)").fill("read the PDF: good to go")
    page.get_by_role("button", name="Approve v1").click()
    page.wait_for_url(re.compile(r"done=ready$"))
    assert page.get_by_role("status").inner_text() == "Approved: the buyer gets this version."
    assert "read the PDF: good to go" in page.locator("#versions").inner_text()
    page.screenshot(path=shots / "03-approved.png", full_page=True)
    with team.api() as api:
        got = api.get(f"/v1/artifacts/{art}").json()
    assert (got["status"], got["downloadable_version"]) == ("ready", 1)
    nav(page, "Assembly")
    assert page.locator("#queue-empty").inner_text() == "Nothing is waiting for review."


def _refunds_balance(page: Any) -> str:
    cell = page.locator('#balances tr[data-account="refunds"] td[data-amount]')
    return str(cell.inner_text()) if cell.count() else "none"


def test_refund_an_order_and_see_the_ledger_change(
    page: Any, team: KeyedTeam, live_server: LiveServer, shots: Path
) -> None:
    order = paid_order(team)
    sign_in(page, team.member("owner"))
    page.wait_for_url(re.compile(r"/console$"))
    nav(page, "Ledger and payouts")
    assert _refunds_balance(page) == "none"
    page.get_by_role("button", name="Show").click()  # this month's payout totals
    assert page.locator("#totals [data-figure=net]").inner_text() == "USD 27.00"
    page.screenshot(path=shots / "01-ledger-before.png", full_page=True)
    nav(page, "Orders and subscriptions")
    page.get_by_role("link", name=order).click()
    page.get_by_label("Part of it").check()
    page.get_by_label("Amount to refund, in USD (for a partial refund)").fill("7.00")
    page.get_by_label("I confirm this refund: it cannot be undone").check()
    page.screenshot(path=shots / "02-refund-form.png", full_page=True)
    page.get_by_role("button", name="Refund").click()
    page.wait_for_url(re.compile(r"done=refunded$"))
    assert page.locator("[data-figure=refunded]").inner_text() == "USD 7.00"
    assert page.locator("[data-figure=refundable]").inner_text() == "USD 20.00"
    nav(page, "Ledger and payouts")
    assert _refunds_balance(page) == "USD 7.00"
    page.get_by_role("button", name="Show").click()
    assert page.locator("#totals [data-figure=refunds]").inner_text() == "USD 7.00"
    assert page.locator("#totals [data-figure=net]").inner_text() == "USD 20.00"
    assert page.locator("table.entries tbody tr").first.get_attribute("data-kind") == "refund"  # newest first
    page.screenshot(path=shots / "03-ledger-after.png", full_page=True)


def test_an_analyst_can_neither_refund_nor_approve(
    page: Any, team: KeyedTeam, live_server: LiveServer, shots: Path
) -> None:
    order, art = paid_order(team), held_artifact(team)
    sign_in(page, team.member("analyst"))
    page.wait_for_url(re.compile(r"/console$"))
    nav(page, "Orders and subscriptions")
    page.get_by_role("link", name=order).click()
    assert page.locator("form#refund").count() == 0  # not offered
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forced = page.request.post(f"/console/orders/{order}/refund", form={"csrf_token": token, "mode": "full",
                                                                        "confirm": "yes"})  # fmt: skip
    assert forced.status == 403 and 'data-code="role_refused"' in forced.text()
    forced = page.request.post(f"/console/assembly/reviews/{art}", form={"csrf_token": token, "action": "approve",
                                                                        "version": "1"})  # fmt: skip
    assert forced.status == 403 and 'data-code="role_refused"' in forced.text()
    nav(page, "Assembly")
    assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    page.screenshot(path=shots / "analyst-refused.png", full_page=True)
    with team.api() as api:
        assert api.get(f"/v1/orders/{order}").json()["status"] == "paid"
        assert api.get(f"/v1/artifacts/{art}").json()["status"] == "awaiting_review"


def test_a_forged_refund_form_is_refused(
    page: Any, team: KeyedTeam, live_server: LiveServer, shots: Path
) -> None:
    order = paid_order(team)
    sign_in(page, team.member("owner"))
    page.wait_for_url(re.compile(r"/console$"))
    page.goto(f"/console/orders/{order}")
    page.evaluate("document.querySelector('form#refund input[name=csrf_token]').value = 'forged'")
    page.get_by_label("I confirm this refund: it cannot be undone").check()
    page.get_by_role("button", name="Refund").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert page.locator('[data-code="csrf_refused"]').count() == 1
    page.screenshot(path=shots / "refund-csrf-refused.png", full_page=True)
    with team.api() as api:
        assert api.get(f"/v1/orders/{order}").json()["status"] == "paid"
