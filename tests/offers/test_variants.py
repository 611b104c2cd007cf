"""Offer variants: validated in the catalog, one decision-engine action each, chosen per buyer by
GET /v1/offers and logged with its propensity, sold by checkout at exactly the chosen variant's price, its
bundle granted, its action rewarded, and the ledger balanced."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import msg

from offerloop.checkout import service as checkout_service
from offerloop.core.money import Money
from offerloop.offers.catalog import parse_catalog, price_of
from offerloop.offers.exceptions import CatalogError, PricingError

CATALOG = """\
offers:
  - key: playbook
    kind: product
    title: "Playbook"
    description: "The pricing playbook"
    prices: {USD: 2700, EUR: 2500}
    components:
      - {component: download, ref: playbook-pdf}
    variants:
      - {key: launch, title: "Playbook (launch price)", price: {USD: 1900, EUR: 1700}}
      - key: deluxe
        description: "The playbook and its templates"
        price: {USD: 4900, EUR: 4500}
        bundle:
          - {component: download, ref: playbook-templates}
      - {key: plain}
  - key: guide
    kind: product
    title: "Guide"
    prices: {USD: 900}
"""
PRICE = {"launch": 1900, "deluxe": 4900, "plain": 2700}
TITLE = {"launch": "Playbook (launch price)", "deluxe": "Playbook", "plain": "Playbook"}


def setup(client: TestClient, secret: dict[str, str], write: dict[str, str], catalog: str = CATALOG) -> None:
    r = client.put("/v1/offers/catalog", headers=secret, json={"text": catalog})
    assert r.status_code == 200, r.text
    r = client.post("/v1/identify", headers=write, json=msg(userId="ada", messageId="ada-id"))
    assert r.status_code == 200, r.text


def offers(client: TestClient, secret: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/v1/offers", headers=secret, params={"user_id": "ada", "k": 5, **params})
    assert r.status_code == 200, r.text
    return r.json()


def checkout(client: TestClient, secret: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/checkout", headers=secret, json={"user_id": "ada", "offer": "playbook", **body})


# -- the catalog ------------------------------------------------------------------------------------------


def test_variants_are_read_with_their_price_points_and_bundles() -> None:
    catalog = parse_catalog(CATALOG)
    offer = catalog.offer("playbook")
    assert offer is not None
    assert [v.key for v in offer.variants] == ["launch", "deluxe", "plain"]
    assert offer.price_of_variant(offer.variant("deluxe"), "EUR") == Money("EUR", 4500)
    assert offer.price_of_variant(offer.variant("plain"), "usd") == Money("USD", 2700)  # none: the offer's
    assert offer.to_dict()["variants"][1] == {
        "key": "deluxe", "title": None, "description": "The playbook and its templates",
        "prices": {"EUR": 4500, "USD": 4900},
        "bundle": [{"component": "download", "ref": "playbook-templates", "quantity": None, "access_days": None}],
    }  # fmt: skip
    assert "variants" not in catalog.offer("guide").to_dict()  # type: ignore[union-attr]  # as before


def test_a_quote_of_a_variant_charges_its_price_and_names_it() -> None:
    from datetime import UTC, datetime

    catalog = parse_catalog(CATALOG)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    quote = price_of(catalog, "playbook", "EUR", variant="launch", now=now, quantity=2)
    assert (quote.total.amount, quote.lines[0].variant, quote.lines[0].to_dict()["variant"]) == (
        3400,
        "launch",
        "launch",
    )
    assert "variant" not in price_of(catalog, "playbook", "EUR", now=now).lines[0].to_dict()
    with pytest.raises(PricingError) as refused:
        price_of(catalog, "playbook", "EUR", variant="nope", now=now)
    assert refused.value.code == "unknown_variant"
    assert str(refused.value) == "'playbook' has no variant 'nope' (variants: launch, deluxe, plain)"
    with pytest.raises(PricingError) as none:
        price_of(catalog, "guide", "USD", variant="launch", now=now)
    assert str(none.value) == "'guide' has no variant 'launch' (variants: none)"


def test_bad_variants_are_reported_with_their_lines() -> None:
    shapes = """\
offers:
  - key: a
    kind: product
    title: A
    prices: {USD: 100}
    variants:
      - {key: Bad Key}
      - {key: y, colour: red}
      - {key: z, price: {USD: 1.5}}
"""
    with pytest.raises(CatalogError) as failed:
        parse_catalog(shapes)
    assert failed.value.problems == [
        "<string>:7: offers[0].variants[0].key: must be a variant key (lowercase letters, digits and '-', e.g. "
        "'launch-price'), got 'Bad Key'",
        "<string>:8: offers[0].variants[1].colour: unknown key 'colour' (allowed: key, title, description, price, "
        "bundle)",
        "<string>:9: offers[0].variants[2].price.USD: must be an integer amount in minor units (e.g. 4900 for USD "
        "49.00), got 1.5",
    ]
    across = """\
offers:
  - key: a
    kind: product
    title: A
    prices: {USD: 100, EUR: 90}
    variants:
      - {key: x, price: {USD: 50}}
      - {key: x}
  - key: m
    kind: subscription
    title: M
    prices: {USD: 900}
    interval: month
    variants:
      - {key: cheap, price: {USD: 500}}
      - {key: copy, title: "Membership, in other words"}
"""
    with pytest.raises(CatalogError) as failed:
        parse_catalog(across)
    assert failed.value.problems == [
        "<string>:7: offers[0].variants[0].price: must give a price in exactly the offer's currencies (EUR, USD), "
        "got USD",
        "<string>:8: offers[0].variants[1].key: duplicate variant key 'x' (first at line 7)",
        "<string>:15: offers[1].variants[0].price: a subscription's variants cannot change its price (renewals "
        "charge the plan's price): vary its copy or bundle",
    ]
    copy_only = across.replace("{key: cheap, price: {USD: 500}}", "{key: cheap}").replace(
        "{key: x, price: {USD: 50}}", "{key: w, price: {USD: 50, EUR: 45}}"
    )
    assert [v.key for v in parse_catalog(copy_only).offer("m").variants] == ["cheap", "copy"]  # type: ignore[union-attr]


# -- the decision engine chooses, checkout charges ---------------------------------------------------------


def test_each_variant_is_an_action_and_replaced_actions_are_retired(
    client: TestClient, secret_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    plain = CATALOG[: CATALOG.index("    variants:")] + CATALOG[CATALOG.index("  - key: guide") :]
    setup(client, secret_headers, write_headers, plain)

    def actions() -> dict[str, bool]:
        items = client.get("/v1/actions", headers=secret_headers, params={"limit": 50}).json()["items"]
        return {a["key"]: a["active"] for a in items}

    assert actions() == {"offer:guide": True, "offer:playbook": True}
    setup(client, secret_headers, write_headers)
    assert actions() == {"offer:guide": True, "offer:playbook": False, "offer:playbook:deluxe": True,
                         "offer:playbook:launch": True, "offer:playbook:plain": True}  # fmt: skip
    setup(client, secret_headers, write_headers, CATALOG.replace("      - {key: plain}\n", ""))
    assert actions()["offer:playbook:plain"] is False
    items = client.get("/v1/actions", headers=secret_headers, params={"limit": 50}).json()["items"]
    deluxe = next(a for a in items if a["key"] == "offer:playbook:deluxe")
    assert (deluxe["title"], deluxe["price_minor"], deluxe["price_band"], deluxe["tags"]) == (
        "Playbook",
        4500,
        "mid",
        ["variant:deluxe"],
    )


def test_offers_show_the_chosen_variant_and_log_the_decision(
    client: TestClient, secret_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    setup(client, secret_headers, write_headers)
    seen, holdout = set(), False
    for _ in range(40):  # each variant is drawn with probability 1/3 at cold start: all three, but for 3e-7
        body = offers(client, secret_headers)
        holdout = body["holdout"]
        assert [o["key"] for o in body["offers"]][:2] in (["playbook", "guide"], ["guide", "playbook"])
        shown = next(o for o in body["offers"] if o["key"] == "playbook")
        variant = shown["variant"]["key"]
        seen.add(variant)
        assert (shown["title"], shown["price"], shown["variant"]["price"]) == (
            TITLE[variant],
            PRICE[variant],
            PRICE[variant],
        )
        assert shown["variant"]["formatted"] == shown["formatted"] == Money("USD", PRICE[variant]).format()
        guide = next(o for o in body["offers"] if o["key"] == "guide")
        assert guide["variant"] is None and guide["price"] == 900
        decision = client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()
        # the log lists what was shown (one variant of the playbook, the guide), in order, with propensities
        assert [i["id"] for i in decision["items"]] == [
            f"offer:{o['key']}:{o['variant']['key']}" if o["variant"] else f"offer:{o['key']}"
            for o in body["offers"]
        ]
        assert decision["chosen"] == decision["items"][0]["id"]
        if decision["policy"] == "model":  # cold start: every variant and offer equally likely
            assert decision["propensity"] == pytest.approx(1 / 4)
    # the engine explores every variant; a buyer in the holdout gets the rules order (the first variant)
    assert seen == ({"launch"} if holdout else {"launch", "deluxe", "plain"})


def test_checkout_charges_the_variant_the_decision_presented_and_rewards_it(
    client: TestClient, db: Any, secret_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    # No holdout: a buyer in it (1 in 10 workspaces, by the hash of its random id) always gets the rules
    # order, which never shows "deluxe"; the model's exploration shows it within a few tries.
    client.app.state.settings.holdout_share = 0.0
    setup(client, secret_headers, write_headers)
    for _ in range(200):
        body = offers(client, secret_headers, currency="EUR")
        if next(o for o in body["offers"] if o["key"] == "playbook")["variant"]["key"] == "deluxe":
            break
    else:
        raise AssertionError("the decision engine never showed the deluxe variant in 200 tries")
    # a variant other than the one the decision presented is refused, a made-up one too: 422, never 500
    wrong = checkout(
        client, secret_headers, currency="EUR", decision_id=body["decision_id"], variant="launch"
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "variant_not_presented")
    for variant in ("nope", "x" * 41, ""):
        bad = checkout(client, secret_headers, currency="EUR", variant=variant)
        assert bad.status_code == 422, bad.text
    assert (
        checkout(client, secret_headers, currency="EUR", variant="nope").json()["error"]["code"]
        == "unknown_variant"
    )
    r = checkout(client, secret_headers, currency="EUR", decision_id=body["decision_id"])
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["subtotal"], order["total"], order["lines"][0]["variant"]) == (4500, 4500, "deluxe")
    assert order["lines"][0]["bundle"] == [
        {"component": "download", "ref": "playbook-templates", "quantity": None, "access_days": None}
    ]
    paid = client.post(f"/v1/orders/{order['id']}/paid", headers=secret_headers, json={})
    assert (paid.status_code, paid.json()["total"]) == (200, 4500)
    done = checkout_service.run_fulfilment(db=db)
    assert sorted((c, s) for _, c, s in done) == [("download", "done"), ("download", "done")]
    for ref in ("playbook-pdf", "playbook-templates"):  # the offer's components and the variant's bundle
        r = client.get("/v1/entitlements/check", headers=secret_headers,
                       params={"user_id": "ada", "component": "download", "ref": ref})  # fmt: skip
        assert r.json()["allowed"] is True, ref
    ledger = client.get(f"/v1/ledger/orders/{order['id']}", headers=secret_headers).json()
    assert ledger["summary"]["gross"]["amount"] == 4500
    assert client.get("/v1/ledger/check", headers=secret_headers).json() == {
        "balanced": True,
        "unbalanced_orders": [],
    }
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()
    events = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    completed = [e["properties"] for e in events if e["name"] == "Order Completed"]
    assert [(p["offer_key"], p["offer_action"], p["total_minor"]) for p in completed] == [
        ("playbook", "offer:playbook:deluxe", 4500)
    ]
    decision = client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()
    if decision["chosen"] == "offer:playbook:deluxe":  # the decision's first item is what an order rewards
        assert decision["reward"] == pytest.approx(0.45)


def test_checkout_names_a_variant_or_sells_the_offer_as_itself(
    client: TestClient, secret_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    setup(client, secret_headers, write_headers)
    named = checkout(client, secret_headers, variant="launch", quantity=2).json()
    assert (named["total"], named["lines"][0]["unit_amount"], named["lines"][0]["variant"]) == (
        3800,
        1900,
        "launch",
    )
    itself = checkout(client, secret_headers).json()
    assert (itself["total"], itself["lines"][0]["variant"]) == (2700, None)
    # a decision that is not in this workspace is not a presentation: the named variant is sold
    assert (
        checkout(client, secret_headers, variant="deluxe", decision_id="dec_unknown").json()["total"] == 4900
    )
