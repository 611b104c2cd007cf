"""Offers and Analytics in a real headless Chromium against `offerloop serve`: an owner signs a drop off from
the Offers page and sees it go live with its stock; attribution under a chosen model by channel and by post,
its chart drawn as inline SVG with the same figures in a table; the other analytics views open. Screenshots
of each."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.attribution.test_store import GOOGLE, IG, _order, _page
from tests.checkout.test_checkout_flow import CATALOG
from tests.conftest import basic

from .test_browser_review_refund import KeyedTeam, team  # noqa: F401  (fixture)
from .test_console_browser import sign_in

pytestmark = [pytest.mark.server, pytest.mark.browser]
DROP = "drop-limited-print"


def _scene(team: KeyedTeam) -> None:  # noqa: F811
    """The demo catalog; two buyers' touches and orders in November 2026 (sent with the secret key)."""
    with team.api() as api:
        assert api.put("/v1/offers/catalog", json={"text": CATALOG}).status_code == 200
    batch = [
        _page("u1", IG, "2026-11-01T10:00:00Z", 1),
        _page("u1", GOOGLE, "2026-11-03T10:00:00Z", 2),
        _order("u1", "o1", 5000, "2026-11-04T10:00:00Z"),
        _page("u2", IG, "2026-11-02T10:00:00Z", 3),
        _order("u2", "o2", 3000, "2026-11-05T10:00:00Z"),
    ]
    sent = httpx.post(f"{team.server.url}/v1/batch", headers=basic(team.secret_key),
                      content=orjson.dumps({"batch": batch}), timeout=30)  # fmt: skip
    assert sent.status_code == 200, sent.text


def _rows(page: Any, table: str) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td, th").all_inner_texts()]
        for row in page.locator(f"#{table} tbody tr").all()
    ]


def test_offers_sign_off_and_analytics_in_a_browser(page: Any, team: KeyedTeam, shots: Path) -> None:  # noqa: F811
    _scene(team)
    owner = team.member("owner")
    sign_in(page, owner)
    page.wait_for_url(re.compile(r"/console$"))

    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Offers").click()
    page.wait_for_url(re.compile(r"/console/offers$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Offers"
    drop = page.locator(f'#drops-table tr[data-drop="{DROP}"]')
    assert drop.locator("td[data-state]").inner_text() == "draft"
    assert drop.locator('[data-figure="remaining"]').inner_text() == "100"
    assert (
        page.locator('#catalog tr[data-offer="pricing-playbook"] [data-price="USD:2700"]').inner_text()
        == "USD 27.00"
    )
    page.screenshot(path=shots / "01-offers-awaiting-sign-off.png", full_page=True)
    drop.get_by_role("button", name=re.compile("Sign off the drop")).click()
    page.wait_for_url(re.compile(r"/console/offers\?done=signed_off"))
    assert page.get_by_role("status").inner_text() == f"Signed off: {DROP} may go live in its sale window."
    drop = page.locator(f'#drops-table tr[data-drop="{DROP}"]')
    assert drop.locator("td[data-state]").inner_text() == "live"
    assert drop.locator('[data-signoff="yes"]').inner_text().startswith(f"signed off by console:{owner} on ")
    page.screenshot(path=shots / "02-offers-signed-off.png", full_page=True)

    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Analytics").click()
    page.wait_for_url(re.compile(r"/console/analytics$"))
    page.get_by_label("Model", exact=True).select_option("linear")
    page.get_by_label("From (UTC)").fill("2026-11-01")
    page.get_by_label("Until, included").fill("2026-11-30")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"model=linear"))
    assert page.locator('[data-figure="conversions"]').first.inner_text() == "2"
    # linear: u1's $50 halves between social and paid; u2's $30 is social's
    assert _rows(page, "attr-channel") == [["social", "1.50", "USD 55.00"], ["paid", "0.50", "USD 25.00"]]
    assert _rows(page, "attr-content") == [["reel1", "1.50", "USD 55.00"], ["(none)", "0.50", "USD 25.00"]]
    chart = page.get_by_role("img", name="Credited value by channel (linear)")
    assert chart.locator("rect").count() == 2
    page.screenshot(path=shots / "03-analytics-attribution.png", full_page=True)

    tabs = page.get_by_role("navigation", name="Analytics views")
    for name, heading, shot in (("Cohorts", "Cohorts", "04-cohorts"), ("LTV", "Lifetime value", "05-ltv"),
                                ("Experiments", "Experiments", "06-experiments")):  # fmt: skip
        tabs.get_by_role("link", name=name).click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=2).first.inner_text().startswith(heading)
        page.screenshot(path=shots / f"{shot}.png", full_page=True)
    assert page.locator("#ltv-note").count() == 0  # on the experiments view now
    assert _rows(page, "experiments") == [["No experiments."]]
