"""The console's Offers and Analytics sections over HTTP (TestClient, real database): the catalog with prices
from minor units, drops with their live stock and the owner's sign-off; attribution under each model, the
cohort heatmap, the LTV fit on request, experiments with CUPED, Bayesian and SRM figures. Roles, CSRF,
another workspace (404) and bad parameters (4xx, never 500)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from tests.analytics.helpers import add_buyers, add_order, buyer_of
from tests.analytics.test_customer_analytics import build
from tests.assembly.test_artifacts_api import buyer as artifact_buyer
from tests.assembly.test_artifacts_api import setup_workspace
from tests.attribution.test_store import _journeys
from tests.checkout.test_checkout_flow import buy, pay, setup
from tests.console.helpers import sign_in_as
from tests.experiments.helpers import experiment, order, send, track

from offerloop.assembly import service as assembly_service
from offerloop.db.uow import Database
from offerloop.models import AuditEntry
from offerloop.models import Offer as OfferRow
from offerloop.workspaces.schemas import WorkspaceCreated

DROP = "drop-limited-print"
ROLES = ("owner", "reviewer", "analyst")


def _cells(html: str, table: str) -> list[list[str]]:
    """The text of each body row's cells of table ``id=table`` (tags dropped, spaces squeezed)."""
    body = re.search(rf'<table id="{table}"[^>]*>.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body is not None, table
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
             for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)] for r in rows]  # fmt: skip


def _signed_off(db: Database, workspace_id: str) -> str | None:
    """Who signed the drop off (None: no one), read from its row."""
    with db.read() as session:
        row = session.scalars(
            select(OfferRow).where(OfferRow.workspace_id == workspace_id, OfferRow.key == DROP)
        ).one()
        assert (row.signed_off_by is None) == (row.signed_off_at is None)
        return row.signed_off_by


@pytest.fixture
def catalog(client, secret_headers, write_headers) -> str:
    """The demo catalog, ada's two held units of the drop, one of them paid; the drop signed off by the API."""
    setup(client, secret_headers, write_headers)
    assert client.post(f"/v1/offers/{DROP}/signoff", headers=secret_headers).status_code == 200
    first = buy(client, secret_headers, DROP)
    buy(client, secret_headers, DROP)
    pay(client, secret_headers, first["id"])
    return DROP


# -- offers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_catalog_shows_prices_variants_and_live_stock_to_every_role(
    client, db, workspace, catalog, role
) -> None:
    sign_in_as(client, db, workspace.id, role)
    page = client.get("/console/offers")
    assert page.status_code == 200
    assert 'aria-current="page">Offers<' in page.text
    rows = {r[0].split()[-1]: r for r in _cells(page.text, "catalog")}
    assert rows["pricing-playbook"][1:4] == ["product", "active", "USD 27.00 EUR 25.00"] or rows[
        "pricing-playbook"
    ][1:4] == ["product", "active", "EUR 25.00 USD 27.00"]
    assert 'data-price="USD:2700"' in page.text and 'data-price="EUR:2500"' in page.text
    drops = _cells(page.text, "drops-table")
    assert [d[:7] for d in drops] == [[
        f"Signed launch-planner print (limited to 100) {DROP}", "live", "2026-11-02 16:00 → 2030-12-31 16:00",
        "98", "1", "1", "100",
    ]]  # fmt: skip
    assert drops[0][7].startswith("signed off by key_")
    assert 'hx-get="/console/offers/drops" hx-trigger="every 10s"' in page.text
    fragment = client.get("/console/offers/drops", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<nav" not in fragment.text
    assert [d[3:7] for d in _cells(fragment.text, "drops-table")] == [["98", "1", "1", "100"]]


def test_the_owner_signs_a_drop_off_with_the_form(
    client, db, workspace, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers)
    csrf = sign_in_as(client, db, workspace.id, "owner")
    page = client.get("/console/offers")
    assert f'action="/console/offers/{DROP}/signoff"' in page.text
    assert 'data-signoff="no"' in page.text and "awaiting sign-off" in page.text
    assert [d[1] for d in _cells(page.text, "drops-table")] == ["draft"]
    r = client.post(f"/console/offers/{DROP}/signoff", data={"csrf_token": csrf}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/console/offers?done=signed_off&key={DROP}#drops-title",
    )
    done = client.get(r.headers["location"])
    assert 'id="done"' in done.text and f"Signed off: <code>{DROP}</code>" in done.text
    assert [d[1] for d in _cells(done.text, "drops-table")] == ["live"]
    assert f'action="/console/offers/{DROP}/signoff"' not in done.text
    who = f"owner-{workspace.id[-6:]}@example.com"
    assert f"signed off by console:{who}" in done.text
    with db.read() as session:
        actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.workspace_id == workspace.id,
                                                                AuditEntry.action == "offers.signoff")).all()  # fmt: skip
    assert _signed_off(db, workspace.id) == f"console:{who}" and actors == [f"console:{who}"]


@pytest.mark.parametrize("role", ["reviewer", "analyst"])
def test_only_an_owner_signs_off(client, db, workspace, secret_headers, write_headers, role) -> None:
    setup(client, secret_headers, write_headers)
    csrf = sign_in_as(client, db, workspace.id, role)
    assert f'action="/console/offers/{DROP}/signoff"' not in client.get("/console/offers").text
    r = client.post(f"/console/offers/{DROP}/signoff", data={"csrf_token": csrf})
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    assert _signed_off(db, workspace.id) is None


def test_sign_off_needs_the_csrf_token_and_a_known_offer(
    client, db, workspace, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers)
    csrf = sign_in_as(client, db, workspace.id, "owner")
    assert client.post(f"/console/offers/{DROP}/signoff").status_code == 403
    assert client.post(f"/console/offers/{DROP}/signoff", data={"csrf_token": "forged"}).status_code == 403
    cross = client.post(f"/console/offers/{DROP}/signoff", data={"csrf_token": csrf},
                        headers={"Origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403
    assert client.post("/console/offers/nope/signoff", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/console/offers/bad%20key/signoff", data={"csrf_token": csrf}).status_code == 422
    assert _signed_off(db, workspace.id) is None


def test_another_workspaces_drop_is_not_found(
    client, db, workspace, other_workspace: WorkspaceCreated, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers)
    csrf = sign_in_as(client, db, other_workspace.id, "owner")
    assert 'id="no-catalog"' in client.get("/console/offers").text
    r = client.post(f"/console/offers/{DROP}/signoff", data={"csrf_token": csrf})
    assert r.status_code == 404
    assert _signed_off(db, workspace.id) is None


def test_bad_offers_parameters_are_4xx(client, db, workspace) -> None:
    sign_in_as(client, db, workspace.id, "analyst")
    assert client.get("/console/offers", params={"done": "<script>"}).status_code == 422
    assert client.get("/console/offers", params={"key": "x" * 500}).status_code == 422


# -- analytics ---------------------------------------------------------------------------------------------

PERIOD = {"start": "2026-11-01", "end": "2026-11-30"}


@pytest.mark.parametrize("role", ROLES)
def test_attribution_by_channel_and_by_post(client, db, workspace, role) -> None:
    _journeys(client, workspace)
    sign_in_as(client, db, workspace.id, role)
    page = client.get("/console/analytics", params={"model": "linear", **PERIOD})
    assert page.status_code == 200
    assert 'aria-current="page">Analytics<' in page.text
    assert '<option value="linear" selected>' in page.text
    assert re.search(r'data-figure="conversions">3<', page.text)
    # linear: u1 (social, cpc) $50 halves; u2's e-mail click $30; u4's $20 without a touch
    assert _cells(page.text, "attr-channel") == [
        ["email", "1.00", "USD 30.00"], ["paid", "0.50", "USD 25.00"], ["social", "0.50", "USD 25.00"],
        ["(none)", "1.00", "USD 20.00"],
    ]  # fmt: skip
    content = {r[0]: r[1:] for r in _cells(page.text, "attr-content")}
    assert content == {
        "(none)": ["1.50", "USD 45.00"],
        "step1": ["1.00", "USD 30.00"],
        "reel1": ["0.50", "USD 25.00"],
    }
    svg = re.search(r'<svg [^>]*id="attr-channel"[^>]*>(.*?)</svg>', page.text, re.S)
    assert (
        svg is not None
        and '<title id="attr-channel-t">Credited value by channel (linear)</title>' in svg.group(0)
    )
    assert svg.group(1).count("<rect ") == 4


@pytest.mark.parametrize("model", ["first", "last", "linear", "time_decay", "position", "markov", "shapley"])
def test_every_attribution_model_renders(client, db, workspace, model) -> None:
    _journeys(client, workspace)
    sign_in_as(client, db, workspace.id, "analyst")
    page = client.get("/console/analytics", params={"model": model, **PERIOD})
    assert page.status_code == 200 and f'data-figure="model">{model}<' in page.text
    credited = sum(float(r[1]) for r in _cells(page.text, "attr-channel"))
    assert credited == pytest.approx(3.0, abs=0.011)


@pytest.mark.parametrize(
    "params",
    [{"model": "nope"}, {"start": "2026-13-01"}, {"start": "yesterday"}, {"start": "2026-12-01", "end": "2026-11-01"},
     {"start": "1900-01-01"}, {"end": "x" * 40}],
)  # fmt: skip
def test_bad_attribution_parameters_are_4xx(client, db, workspace, params) -> None:
    sign_in_as(client, db, workspace.id, "analyst")
    r = client.get("/console/analytics", params=params)
    assert 400 <= r.status_code < 500 and 'data-code="' in r.text


def test_cohort_heatmap_and_its_table(client, db, workspace) -> None:
    build(db, workspace.id)
    sign_in_as(client, db, workspace.id, "reviewer")
    page = client.get("/console/analytics/cohorts", params={"periods": 3})
    assert page.status_code == 200
    assert _cells(page.text, "cohorts") == [
        ["2026-01", "3", "33.3%", "33.3%", "0.0%"], ["2026-02", "2", "0.0%", "0.0%", ""],
        ["2026-03", "1", "0.0%", "", ""], ["2026-04", "1", "", "", ""],
    ]  # fmt: skip
    svg = re.search(r'<svg [^>]*id="cohort-heat".*?</svg>', page.text, re.S)
    assert svg is not None
    # one cell per observable (cohort, month): 3 + 2 + 1 + 0
    assert svg.group(0).count("<rect ") == 6 and "<title>2026-01, month 1: 33%</title>" in svg.group(0)


def test_cohorts_empty_and_bad_parameters(client, db, workspace) -> None:
    sign_in_as(client, db, workspace.id, "analyst")
    assert 'id="no-cohorts"' in client.get("/console/analytics/cohorts").text
    for params in ({"periods": 0}, {"periods": 25}, {"periods": "x"}, {"by": "zodiac"}):
        assert client.get("/console/analytics/cohorts", params=params).status_code == 422


def _purchases(db: Database, workspace_id: str) -> int:
    """40 buyers with 1 to 5 purchases each over 2026-01..2026-06 (seeded); how many bought by 2026-03-31."""
    rng = random.Random(14)
    ids = [f"l{i:02d}" for i in range(40)]
    add_buyers(db, workspace_id, *ids)
    early = 0
    for buyer in ids:
        days = sorted(rng.sample(range(180), rng.randint(1, 5)))
        early += days[0] < 90
        for n, day in enumerate(days):
            when = (datetime(2026, 1, 1) + timedelta(days=day, hours=n)).strftime("%Y-%m-%dT%H:%M")
            add_order(db, workspace_id, buyer, when, 1000 + 500 * rng.randint(0, 4))
    return early


def test_ltv_fits_only_when_asked(client, db, workspace) -> None:
    early = _purchases(db, workspace.id)
    sign_in_as(client, db, workspace.id, "analyst")
    page = client.get("/console/analytics/ltv")
    assert page.status_code == 200 and 'id="ltv-note"' in page.text and 'id="ltv-params"' not in page.text
    fitted = client.get("/console/analytics/ltv", params={
        "fit": 1, "calibration_end": "2026-03-31", "observation_end": "2026-06-30", "time_unit": "week"})  # fmt: skip
    assert fitted.status_code == 200, fitted.text
    assert re.search(rf'data-figure="buyers">{early} \(\d+ with a repeat purchase\)<', fitted.text)
    holdout = _cells(fitted.text, "ltv-holdout")
    assert holdout and all(len(r) == 4 for r in holdout)
    assert sum(int(r[1]) for r in holdout) == early
    svg = re.search(r'<svg [^>]*id="ltv-holdout".*?</svg>', fitted.text, re.S)
    assert svg is not None and svg.group(0).count("<rect ") == 2 + 2 * len(holdout)


@pytest.mark.parametrize(
    "params",
    [{"fit": 1}, {"fit": 2}, {"fit": 1, "calibration_end": "2999-01-01"}, {"calibration_end": "bad"},
     {"fit": 1, "calibration_end": "2026-02-28", "time_unit": "year"}],
)  # fmt: skip
def test_bad_ltv_parameters_are_4xx(client, db, workspace, params) -> None:
    sign_in_as(client, db, workspace.id, "analyst")
    assert client.get("/console/analytics/ltv", params=params).status_code == 422


def test_ltv_without_purchases_is_a_clear_4xx(client, db, workspace) -> None:
    sign_in_as(client, db, workspace.id, "analyst")
    r = client.get("/console/analytics/ltv", params={"fit": 1, "calibration_end": "2026-02-28"})
    assert 400 <= r.status_code < 500 and 'data-code="' in r.text


@pytest.fixture
def trial(client, secret_headers, write_headers) -> str:
    """60 buyers in a 1:1 experiment (seeded by their ids); treatment converts twice as often."""
    r = client.post("/v1/experiments", headers=secret_headers, json=experiment("price"))
    assert r.status_code == 201, r.text
    send(
        client,
        write_headers,
        [track(f"u{i}", "Viewed", datetime.now(UTC) - timedelta(days=3), 0) for i in range(60)],
    )
    arms = {}
    for i in range(60):
        got = client.post("/v1/experiments/price/assign", headers=secret_headers, json={"user_id": f"u{i}"})
        assert got.status_code == 200, got.text
        arms[f"u{i}"] = got.json()["arm"]
    now = datetime.now(UTC)
    messages = [order(u, now, 1, 2000) for i, (u, a) in enumerate(sorted(arms.items()))
                 if (a == "treatment" and i % 2 == 0) or (a == "control" and i % 4 == 0)]  # fmt: skip
    send(client, write_headers, messages)
    return "price"


def test_experiments_list_and_results(client, db, workspace, secret_headers, trial) -> None:
    sign_in_as(client, db, workspace.id, "reviewer")
    listing = client.get("/console/analytics/experiments")
    assert listing.status_code == 200
    assert _cells(listing.text, "experiments")[0][:4] == [
        "price price",
        "offer course",
        "control, treatment",
        "running",
    ]
    page = client.get(f"/console/analytics/experiments/{trial}")
    assert page.status_code == 200
    api = client.get(f"/v1/experiments/{trial}/results", headers=secret_headers).json()
    arms = {a["arm"]: a for a in api["arms"]}
    rows = {r[0].split()[0]: r for r in _cells(page.text, "arms")}
    for arm in ("control", "treatment"):
        assert rows[arm][1:3] == [str(arms[arm]["exposed"]), str(arms[arm]["conversions"])]
    assert sum(a["exposed"] for a in api["arms"]) == 60
    variant = _cells(page.text, "variants")[0]
    v = api["variants"][0]
    assert variant[0] == "treatment"
    assert variant[2].startswith(f"{v['conversion_cuped']['difference']:+.4f}")
    assert variant[4] == f"{v['bayes_conversion']['chance_to_beat_control'] * 100:.1f}%"
    srm = "mismatch" if api["srm"]["mismatch"] else "ok"
    assert f'data-srm="{srm}"' in page.text
    assert re.search(r'<svg [^>]*id="exp-lift"', page.text)


def test_experiments_of_another_workspace_and_bad_keys(client, db, other_workspace, trial) -> None:
    sign_in_as(client, db, other_workspace.id, "owner")
    assert _cells(client.get("/console/analytics/experiments").text, "experiments") == [["No experiments."]]
    assert client.get(f"/console/analytics/experiments/{trial}").status_code == 404
    assert client.get("/console/analytics/experiments/a%20b").status_code == 422
    assert client.get("/console/analytics/experiments", params={"cursor": "garbage"}).status_code in (
        400,
        422,
    )


def test_sections_need_a_session(client) -> None:
    for path in ("/console/offers", "/console/analytics", "/console/analytics/cohorts", "/console/analytics/ltv",
                 "/console/analytics/experiments"):  # fmt: skip
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")


# -- the buyer's timeline: decisions and artifacts ---------------------------------------------------------


def test_the_buyer_page_shows_decisions_with_reasons_and_artifacts_newest_first(
    client, db, workspace, secret_headers, write_headers
) -> None:
    setup_workspace(client, secret_headers, review="always")
    artifact_buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    made = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assert made.status_code == 202, made.text
    art = made.json()["id"]
    assert assembly_service.run_pending(db=db) == [(art, 1, "awaiting_review")]
    setup(client, secret_headers, write_headers)  # the offers catalog (and ada)
    shown = [client.get("/v1/offers", headers=secret_headers, params={"user_id": "ana", "placement": p}).json()
             for p in ("offers", "thank-you")]  # fmt: skip
    assert all(s["decision_id"] for s in shown)
    buyer_id = buyer_of(db, workspace.id, "ana")
    sign_in_as(client, db, workspace.id, "reviewer")
    page = client.get(f"/console/buyers/{buyer_id}")
    assert page.status_code == 200
    assert re.findall(r'data-decision="([^"]+)"', page.text) == [
        shown[1]["decision_id"],
        shown[0]["decision_id"],
    ]
    rows = _cells(page.text, "decisions")
    assert [r[1].split()[0] for r in rows] == ["thank-you", "offers"]
    for row, s in zip(rows, reversed(shown), strict=True):
        d = client.get(f"/v1/decisions/{s['decision_id']}", headers=secret_headers).json()
        assert d["items"] or d["excluded"]
        for item in d["items"]:
            assert f"{item['id']}" in row[2] and "; ".join(item["reasons"]) in row[2]
        for left in d["excluded"][:5]:
            assert f"{left['id']} : {left['reason']}" in row[3]
    arts = _cells(page.text, "artifacts")
    assert len(arts) == 1 and arts[0][2:6] == [
        "v1",
        "awaiting review",
        "policy requires review",
        "\N{EN DASH}",
    ]
    assert f'href="/console/assembly/reviews/{art}?version=1"' in page.text
