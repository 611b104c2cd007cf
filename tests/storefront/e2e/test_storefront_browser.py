"""A visitor in a real browser: opens the offer page, buys through the manual provider, lands on the
thank-you page, which shows the deliverable's preview once the creator marks the order paid, then the link
to the full file once it is rendered — the page updating itself (its shipped script, under its CSP)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, bearer
from tests.console.e2e.test_accessibility import violations
from tests.storefront.helpers import setup

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_a_visitor_buys_and_gets_the_preview_then_the_file(
    page: Any, live_server: LiveServer, shots: Path
) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Hosted pages", "--json").stdout)
    with httpx.Client(base_url=live_server.url, headers=bearer(ws["secret_key"]), timeout=60) as http:
        setup(http)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.goto(f"/o/{ws['id']}/starter-kit")
        assert page.locator("h1").inner_text() == "Starter kit"
        assert page.locator(".price").text_content() == "Price: USD 15.00"
        page.screenshot(path=str(shots / "1-offer.png"), full_page=True)
        page.get_by_label("Your e-mail address").fill("ana@example.com")
        page.keyboard.press("Enter")  # the keyboard submits the form
        page.wait_for_url(re.compile(r".*/o/[^/]+/thanks/[A-Za-z0-9_-]{43}$"))
        status = page.locator(".status")
        assert status.get_attribute("data-status") == "pending"
        page.screenshot(path=str(shots / "2-thanks-pending.png"), full_page=True)
        order_id = page.locator("code").inner_text()
        # the creator marks it paid, as they would after a bank transfer
        assert http.post(f"/v1/orders/{order_id}/paid", json={"reference": "INV-1"}).status_code == 200
        page.locator('.status[data-status="paid"] #preview-title').wait_for(timeout=60_000)
        assert "Start here" in page.locator(".preview").inner_text()
        page.screenshot(path=str(shots / "3-thanks-preview.png"), full_page=True)
        link = page.get_by_role("link", name="Download the PDF")
        link.wait_for(timeout=90_000)
        assert page.locator(".status").get_attribute("data-done") == "true"
        page.screenshot(path=str(shots / "4-thanks-ready.png"), full_page=True)
        href = link.get_attribute("href")
        assert href is not None and href.startswith("/v1/files/")
        pdf = httpx.get(live_server.url + href)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_the_hosted_pages_have_no_serious_accessibility_violation(
    browser: Any, live_server: LiveServer, shots: Path
) -> None:
    """axe-core (shipped with the console's tests) on the offer page, the checkout link with a refused e-mail,
    and the thank-you page, on a phone-sized screen."""
    ws = json.loads(live_server.cli("workspace", "create", "Hosted a11y", "--json").stdout)
    with httpx.Client(base_url=live_server.url, headers=bearer(ws["secret_key"]), timeout=60) as http:
        setup(http)
    # the test's own script runs in this context only: the pages' CSP allows no injected script
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, bypass_csp=True
    )
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        found: dict[str, list[str]] = {}
        page.goto(f"/o/{ws['id']}/playbook")
        found["offer"] = violations(page)
        page.goto(f"/o/{ws['id']}/starter-kit/buy")
        page.get_by_label("Your e-mail address").fill("not an address")
        page.get_by_role("button").click()
        page.get_by_role("alert").wait_for()
        found["buy-refused"] = violations(page)
        page.screenshot(path=str(shots / "buy-refused.png"), full_page=True)
        page.get_by_label("Your e-mail address").fill("ana@example.com")
        page.get_by_role("button").click()
        page.wait_for_url(re.compile(r".*/thanks/.*"))
        found["thanks"] = violations(page)
        page.goto(f"/o/{ws['id']}/nope")
        found["not-found"] = violations(page)
        assert found == {"offer": [], "buy-refused": [], "thanks": [], "not-found": []}
    finally:
        context.close()
