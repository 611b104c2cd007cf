"""The offers catalog: parsing with every problem at file:line, the demo catalog, the model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from offerloop.core.money import Money
from offerloop.offers.catalog import Catalog, Component, Offer, load_catalog, parse_catalog
from offerloop.offers.exceptions import CatalogError

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml"

MINIMAL = """\
offers:
  - key: playbook
    kind: product
    title: "Playbook"
    prices: {USD: 2700, EUR: 2500}
"""


def problems(text: str, path: str = "offers.yaml") -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, path=path)
    return info.value.problems


def offers_yaml(body: str) -> str:
    """A catalog whose first offer is a valid product (lines 2-5) followed by ``body`` (from line 6)."""
    return MINIMAL + body


# --------------------------------------------------------------------------------------------------
# The demo catalog


def test_demo_catalog_parses_without_problems() -> None:
    catalog = load_catalog(DEMO)
    assert [(o.key, o.kind) for o in catalog.offers] == [
        ("pricing-playbook", "product"),
        ("launch-workbook", "product"),
        ("sales-page-teardown", "micro_offer"),
        ("membership-monthly", "subscription"),
        ("membership-annual", "subscription"),
        ("bundle-gift", "bundle"),
        ("drop-limited-print", "drop"),
        ("inner-circle", "tier"),
    ]
    for offer in catalog.offers:
        assert offer.currencies == ("EUR", "USD"), offer.key
    assert len(catalog.version) == 16
    assert catalog.path == str(DEMO)


def test_demo_catalog_offers() -> None:
    catalog = load_catalog(DEMO)
    playbook = catalog.offer("pricing-playbook")
    assert playbook is not None
    assert playbook.price("USD") == Money("USD", 2700)
    assert playbook.price("eur") == Money("EUR", 2500)
    assert playbook.price("GBP") is None
    assert playbook.order_bumps == ("sales-page-teardown",)
    assert playbook.upsells == ("membership-monthly",)
    assert playbook.components[0] == Component(component="download", ref="pricing-playbook-pdf")

    teardown = catalog.offer("sales-page-teardown")
    assert teardown is not None
    assert (teardown.deliverable_policy, teardown.turnaround_hours, teardown.daily_capacity) == (
        "pricing-audit",
        72,
        5,
    )

    monthly = catalog.offer("membership-monthly")
    assert monthly is not None
    assert (monthly.interval, monthly.trial_days, dict(monthly.quotas)) == (
        "month",
        7,
        {"coaching_session": 2},
    )
    assert monthly.recurring
    annual = catalog.offer("membership-annual")
    assert annual is not None
    assert (annual.interval, annual.trial_days, annual.prices["USD"]) == ("year", 0, Money("USD", 39000))

    bundle = catalog.offer("bundle-gift")
    assert bundle is not None
    assert bundle.includes == ("pricing-playbook", "launch-workbook")

    drop = catalog.offer("drop-limited-print")
    assert drop is not None
    assert drop.inventory == 100
    assert drop.per_buyer_limit == 2
    assert drop.requires_signoff is True
    # 17:00 at +01:00 is 16:00 UTC.
    assert drop.opens_at == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
    assert drop.closes_at == datetime(2030, 12, 31, 16, 0, tzinfo=UTC)

    tier = catalog.offer("inner-circle")
    assert tier is not None
    assert tier.recurring
    assert dict(tier.quotas) == {"coaching_session": 2, "launch_review": 1}
    assert [c.ref for c in tier.components if c.component == "community_space"] == [
        "inner-circle",
        "creator-circle",
    ]

    coupon = catalog.coupon("launch20")
    assert coupon is not None
    assert coupon.code == "LAUNCH20"
    assert coupon.percent_off == Decimal(20)
    assert coupon.once_per_buyer is True
    assert coupon.max_redemptions == 500
    assert coupon.expires_at == datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert coupon.applies("bundle-gift")
    assert not coupon.applies("membership-monthly")
    assert catalog.coupon("NOPE") is None
    assert catalog.offer("nope") is None


def test_offers_are_immutable() -> None:
    offer = parse_catalog(MINIMAL).offers[0]
    with pytest.raises(TypeError):
        offer.prices["USD"] = Money("USD", 1)  # type: ignore[index]


# --------------------------------------------------------------------------------------------------
# Multi-currency prices, JSON


def test_prices_in_several_currencies_including_zero_decimal_ones() -> None:
    catalog = parse_catalog(
        """\
offers:
  - {key: free-guide, kind: product, title: "Free guide", prices: {USD: 0}}
  - {key: playbook, kind: product, title: "Playbook", prices: {USD: 2700, EUR: 2500, JPY: 4000, KWD: 8500}}
"""
    )
    playbook = catalog.offer("playbook")
    assert playbook is not None
    assert dict(playbook.prices) == {
        "USD": Money("USD", 2700),
        "EUR": Money("EUR", 2500),
        "JPY": Money("JPY", 4000),
        "KWD": Money("KWD", 8500),
    }
    assert playbook.prices["KWD"].format() == "KWD 8.500"
    guide = catalog.offer("free-guide")
    assert guide is not None and guide.prices["USD"] == Money("USD", 0)


def test_json_catalog_equals_the_yaml_one() -> None:
    text = DEMO.read_text(encoding="utf-8")
    from_yaml = parse_catalog(text, path="offers.yaml")
    as_json = json.dumps(yaml.safe_load(text), default=str, indent="\t")
    from_json = parse_catalog(as_json, path="offers.json")
    assert from_json == from_yaml
    assert from_json.version == from_yaml.version


def test_json_problems_have_lines() -> None:
    text = '{\n\t"offers": [\n\t\t{"key": "a", "kind": "product", "title": "A",\n\t\t "prices": {"USD": 1e3}}\n\t]\n}'
    assert problems(text, "offers.json") == [
        "offers.json:4: offers[0].prices.USD: must be an integer amount in minor units "
        "(e.g. 4900 for USD 49.00), got 1000.0",
    ]
    assert problems('{"offers": [', "offers.json") == [
        "offers.json:1: invalid JSON (column 13): Expecting value"
    ]


def test_version_ignores_formatting_but_not_meaning() -> None:
    flow = (
        "offers: [{key: playbook, kind: product, title: Playbook, prices: {EUR: 2500, USD: 2700}}]  # same\n"
    )
    assert parse_catalog(flow).version == parse_catalog(MINIMAL).version
    assert parse_catalog(MINIMAL.replace("2700", "2900")).version != parse_catalog(MINIMAL).version


# --------------------------------------------------------------------------------------------------
# Problems, all at once, with file:line

BROKEN = """\
offers:
  - key: Bad_Key
    kind: product
    title: "Bad key"
    prices: {USD: 49.0, eur: 100, EUR: -5}
  - key: course
    kind: course
    title: "Unknown kind"
    prices: {USD: 100}
  - key: no-prices
    kind: product
    title: "No prices"
    quotas: {coaching_session: 2}
    prise: 3
  - key: circle
    kind: subscription
    title: "Circle"
    prices: {USD: 3900}
  - key: kit
    kind: bundle
    title: "Kit"
    prices: {USD: 5000}
    includes: [kit, ghost, circle]
    order_bumps: [kit, nowhere]
    upsells: [circel]
  - key: print
    kind: drop
    title: "Print"
    prices: {USD: 4900}
    inventory: 0
    opens_at: "2026-03-02T17:00:00+01:00"
    closes_at: "2026-03-02T16:00:00Z"
    requires_signoff: false
  - key: print
    kind: product
    title: "Dupe"
    prices: {}
coupons:
  - code: half
    percent_off: 120
    applies_to: [ghost]
  - code: BOTH
    percent_off: 10
    amount_off: {USD: 500}
"""


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(BROKEN, path="demo/offers.yaml")
    error = info.value
    assert error.status_code == 422
    assert error.code == "invalid_catalog"
    # Each entry is checked on its own; references between entries are checked once every entry is valid
    # (test_bundles, test_drop_windows_limits_and_tiers, test_bumps_and_upsells).
    assert error.problems == [
        "demo/offers.yaml:2: offers[0].key: must be an offer key (lowercase letters, digits and '-', "
        "e.g. 'pricing-playbook'), got 'Bad_Key'",
        "demo/offers.yaml:5: offers[0].prices.USD: must be an integer amount in minor units "
        "(e.g. 4900 for USD 49.00), got 49.0",
        "demo/offers.yaml:5: offers[0].prices.eur: not an ISO 4217 currency code "
        "(three capital letters, e.g. USD), got 'eur'",
        "demo/offers.yaml:5: offers[0].prices.EUR: must be at least 0, got -5",
        "demo/offers.yaml:7: offers[1].kind: must be one of product, micro_offer, subscription, bundle, "
        "drop, tier, got 'course'",
        "demo/offers.yaml:10: offers[2]: missing required key 'prices' "
        "(an amount in minor units per currency, e.g. {USD: 4900})",
        "demo/offers.yaml:13: offers[2].quotas: unknown key 'quotas' for kind product "
        "(only for kind subscription and tier)",
        "demo/offers.yaml:14: offers[2].prise: unknown key 'prise' (did you mean 'prices'?)",
        "demo/offers.yaml:15: offers[3]: missing required key 'interval' (month or year) for kind subscription",
        "demo/offers.yaml:30: offers[5].inventory: must be at least 1, got 0",
        "demo/offers.yaml:33: offers[5].requires_signoff: must be true (a drop cannot go live without "
        "sign-off), got false",
        "demo/offers.yaml:37: offers[6].prices: must map at least one currency to an amount, e.g. {USD: 4900}",
        "demo/offers.yaml:39: coupons[0].code: must be a coupon code (capital letters, digits, '_' and '-', "
        "e.g. LAUNCH20), got 'half'",
        "demo/offers.yaml:40: coupons[0].percent_off: must be more than 0 and at most 100, got 120",
        "demo/offers.yaml:42: coupons[1]: give either percent_off or amount_off, not both",
    ]
    assert str(error) == "\n".join(error.problems)
    assert error.details[0] == {
        "path": "demo/offers.yaml",
        "line": 2,
        "location": "offers[0].key",
        "message": "must be an offer key (lowercase letters, digits and '-', e.g. 'pricing-playbook'), "
        "got 'Bad_Key'",
    }


def test_amount_types_are_refused_with_a_minor_units_message() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: other
    kind: product
    title: "Other"
    prices:
      USD: "49.00"
      EUR: true
      JPY: 49.5
      KWD: 1.5
"""
        )
    ) == [
        "offers.yaml:10: offers[1].prices.USD: must be an integer amount in minor units (e.g. 4900 for "
        "USD 49.00), got '49.00'",
        "offers.yaml:11: offers[1].prices.EUR: must be an integer amount in minor units (e.g. 4900 for "
        "USD 49.00), got True",
        "offers.yaml:12: offers[1].prices.JPY: must be an integer amount in minor units (e.g. 4900 for "
        "USD 49.00), got 49.5",
        "offers.yaml:13: offers[1].prices.KWD: must be an integer amount in minor units (e.g. 4900 for "
        "USD 49.00), got 1.5",
    ]


def test_bad_currencies_and_missing_prices() -> None:
    assert problems(
        offers_yaml(
            """\
  - {key: a, kind: product, title: A, prices: {US: 100, DOLLARS: 100, 840: 100}}
  - {key: b, kind: product, title: B, prices: 2700}
  - {key: c, kind: product, title: C}
"""
        )
    ) == [
        "offers.yaml:6: offers[1].prices.US: not an ISO 4217 currency code (three capital letters, "
        "e.g. USD), got 'US'",
        "offers.yaml:6: offers[1].prices.DOLLARS: not an ISO 4217 currency code (three capital "
        "letters, e.g. USD), got 'DOLLARS'",
        "offers.yaml:6: offers[1].prices.840: not an ISO 4217 currency code (three capital letters, "
        "e.g. USD), got 840",
        "offers.yaml:7: offers[2].prices: must be a mapping, got 2700",
        "offers.yaml:8: offers[3]: missing required key 'prices' (an amount in minor units per "
        "currency, e.g. {USD: 4900})",
    ]


def test_required_keys_kinds_and_slugs() -> None:
    assert problems(
        offers_yaml(
            """\
  - kind: product
    title: "   "
    prices: {USD: 100}
  - key: x
    prices: {USD: 100}
    active: "yes"
    tags: [Launch, ok]
    persona_fit: [deal_seeker, Deal-Seeker]
    description: 5
"""
        )
    ) == [
        "offers.yaml:6: offers[1]: missing required key 'key'",
        "offers.yaml:7: offers[1].title: must not be empty, got '   '",
        "offers.yaml:9: offers[2]: missing required key 'kind' (one of product, micro_offer, "
        "subscription, bundle, drop, tier)",
    ]


def test_components() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: kit
    kind: product
    title: "Kit"
    prices: {USD: 100}
    components:
      - {component: video, ref: intro}
      - {component: module}
      - {component: download, ref: "two words", quantity: 0, access_days: -1, size: 3}
      - just-a-string
"""
        )
    ) == [
        "offers.yaml:11: offers[1].components[0].component: must be one of assessment, module, "
        "community_space, certification, coaching_quota, download, deliverable, got 'video'",
        "offers.yaml:12: offers[1].components[1]: missing required key 'ref'",
        "offers.yaml:13: offers[1].components[2].ref: must be a non-empty reference without spaces, "
        "got 'two words'",
        "offers.yaml:13: offers[1].components[2].quantity: must be at least 1, got 0",
        "offers.yaml:13: offers[1].components[2].access_days: must be at least 1, got -1",
        "offers.yaml:13: offers[1].components[2].size: unknown key 'size' (allowed: component, ref, "
        "quantity, access_days)",
        "offers.yaml:14: offers[1].components[3]: must be a mapping, got 'just-a-string'",
    ]


def test_micro_offer_needs_its_terms() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: teardown
    kind: micro_offer
    title: "Teardown"
    prices: {USD: 9900}
    turnaround_hours: 0
    daily_capacity: 2.5
    interval: month
"""
        )
    ) == [
        "offers.yaml:6: offers[1]: missing required key 'deliverable_policy' (the policy id of its "
        "deliverable) for kind micro_offer",
        "offers.yaml:10: offers[1].turnaround_hours: must be at least 1, got 0",
        "offers.yaml:11: offers[1].daily_capacity: must be an integer, got 2.5",
        "offers.yaml:12: offers[1].interval: unknown key 'interval' for kind micro_offer (only for "
        "kind subscription and tier)",
    ]


def test_subscriptions_and_tiers() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: circle
    kind: subscription
    title: "Circle"
    prices: {USD: 3900}
    interval: week
    trial_days: 400
    quotas: {coaching_session: 0, "Live Call": 1}
  - key: superfans
    kind: tier
    title: "Superfans"
    prices: {USD: 9900}
    interval: year
    quotas: [coaching_session]
    components: [{component: download, ref: wallpaper}]
"""
        )
    ) == [
        "offers.yaml:10: offers[1].interval: must be one of month, year, got 'week'",
        "offers.yaml:11: offers[1].trial_days: must be at most 365, got 400",
        "offers.yaml:12: offers[1].quotas.coaching_session: must be at least 1, got 0",
        "offers.yaml:12: offers[1].quotas.Live Call: must be a quota name (lowercase letters, digits "
        "and '_'), got 'Live Call'",
        "offers.yaml:18: offers[2].quotas: must be a mapping, got ['coaching_session']",
    ]


def test_quotas_only_on_recurring_offers() -> None:
    assert problems(
        offers_yaml(
            """\
  - {key: kit, kind: bundle, title: Kit, prices: {USD: 1}, includes: [playbook, teardown], quotas: {a: 1}}
  - {key: teardown, kind: micro_offer, title: T, prices: {USD: 1}, deliverable_policy: pricing-audit,
     turnaround_hours: 72, daily_capacity: 5, trial_days: 7}
  - {key: print, kind: drop, title: P, prices: {USD: 1}, inventory: 5, opens_at: "2026-01-01T00:00:00Z",
     closes_at: "2026-01-02T00:00:00Z", quotas: {a: 1}}
"""
        )
    ) == [
        "offers.yaml:6: offers[1].quotas: unknown key 'quotas' for kind bundle (only for kind "
        "subscription and tier)",
        "offers.yaml:8: offers[2].trial_days: unknown key 'trial_days' for kind micro_offer (only for "
        "kind subscription and tier)",
        "offers.yaml:10: offers[3].quotas: unknown key 'quotas' for kind drop (only for kind "
        "subscription and tier)",
    ]


def test_bundles() -> None:
    # Every entry has a valid shape, so the checks between entries run and report everything at once.
    assert problems(
        offers_yaml(
            """\
  - {key: solo, kind: bundle, title: Solo, prices: {USD: 100}, includes: [playbook, playbook]}
  - {key: empty, kind: bundle, title: Empty, prices: {USD: 100}, includes: []}
  - {key: nested, kind: bundle, title: Nested, prices: {USD: 100}, includes: [playbook, solo]}
  - {key: print, kind: drop, title: P, prices: {USD: 1}, inventory: 5, opens_at: "2026-01-01T00:00:00Z",
     closes_at: "2026-01-02T00:00:00Z"}
  - {key: with-drop, kind: bundle, title: With drop, prices: {USD: 100}, includes: [playbook, print]}
  - {key: kit, kind: bundle, title: Kit, prices: {USD: 100}, includes: [kit, ghost]}
"""
        )
    ) == [
        "offers.yaml:6: offers[1].includes: a bundle needs at least 2 different offers, got 1",
        "offers.yaml:6: offers[1].includes[1]: 'playbook' is listed twice",
        "offers.yaml:7: offers[2].includes: a bundle needs at least 2 different offers, got 0",
        "offers.yaml:8: offers[3].includes[1]: a bundle holds product and micro_offer offers; 'solo' is a bundle",
        "offers.yaml:11: offers[5].includes[1]: a bundle holds product and micro_offer offers; 'print' is a drop",
        "offers.yaml:12: offers[6].includes[0]: a bundle cannot contain itself",
        "offers.yaml:12: offers[6].includes[1]: unknown offer 'ghost'",
    ]
    assert problems(
        offers_yaml("  - {key: no-list, kind: bundle, title: No list, prices: {USD: 100}}\n")
    ) == [
        "offers.yaml:6: offers[1]: missing required key 'includes' (the offer keys it contains) for kind bundle",
    ]


def test_drop_fields() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: print
    kind: drop
    title: "Print"
    prices: {USD: 4900}
    inventory: 10
    opens_at: "2026-03-02T17:00:00"
    closes_at: "next tuesday"
  - key: poster
    kind: drop
    title: "Poster"
    prices: {USD: 4900}
    opens_at: 2026-03-02
    closes_at: 1767225600
"""
        )
    ) == [
        "offers.yaml:11: offers[1].opens_at: needs a time zone (add Z or an offset such as +01:00), "
        "got '2026-03-02T17:00:00'",
        "offers.yaml:12: offers[1].closes_at: must be an ISO 8601 date-time with a time zone (e.g. "
        "2026-03-02T17:00:00+01:00 or 2026-03-02T16:00:00Z), got 'next tuesday'",
        "offers.yaml:13: offers[2]: missing required key 'inventory' (how many units exist) for kind drop",
        "offers.yaml:17: offers[2].opens_at: needs a time zone (add Z or an offset such as +01:00), "
        "got '2026-03-02'",
        "offers.yaml:18: offers[2].closes_at: must be an ISO 8601 date-time with a time zone (e.g. "
        "2026-03-02T17:00:00+01:00 or 2026-03-02T16:00:00Z), got 1767225600",
    ]


def test_drop_windows_limits_and_tiers() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: print
    kind: drop
    title: "Print"
    prices: {USD: 4900}
    inventory: 10
    opens_at: "2026-03-02T17:00:00+01:00"
    closes_at: "2026-03-02T16:00:00+00:00"
    per_buyer_limit: 11
    exclusive_to: [playbook, vip]
"""
        )
    ) == [
        "offers.yaml:12: offers[1].closes_at: must be after opens_at (2026-03-02T16:00:00Z), "
        "got 2026-03-02T16:00:00Z",
        "offers.yaml:13: offers[1].per_buyer_limit: must not exceed inventory (10), got 11",
        "offers.yaml:14: offers[1].exclusive_to[0]: exclusive_to names tiers; 'playbook' is a product",
        "offers.yaml:14: offers[1].exclusive_to[1]: unknown offer 'vip'",
    ]


def test_drop_defaults_and_tier_exclusivity() -> None:
    catalog = parse_catalog(
        """\
offers:
  - {key: vip, kind: tier, title: VIP, prices: {USD: 9900}, interval: month,
     components: [{component: community_space, ref: vip-lounge}]}
  - {key: print, kind: drop, title: Print, prices: {USD: 4900}, inventory: 5,
     opens_at: "2026-01-01T09:00:00-05:00", closes_at: "2026-01-02T00:00:00Z", exclusive_to: [vip]}
"""
    )
    drop = catalog.offer("print")
    assert drop is not None
    assert drop.per_buyer_limit == 1
    assert drop.requires_signoff is True
    assert drop.opens_at == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    assert catalog.exclusive_drops("vip") == (drop,)
    assert catalog.exclusive_drops("print") == ()


def test_bumps_and_upsells() -> None:
    assert problems(
        offers_yaml(
            """\
  - key: teardown
    kind: product
    title: "Teardown"
    prices: {USD: 9900}
    order_bumps: [playbok, teardown]
    upsells: [teardwn]
"""
        )
    ) == [
        "offers.yaml:10: offers[1].order_bumps[0]: unknown offer 'playbok' (did you mean 'playbook'?)",
        "offers.yaml:10: offers[1].order_bumps[1]: an offer cannot be its own order bump",
        "offers.yaml:11: offers[1].upsells[0]: unknown offer 'teardwn' (did you mean 'teardown'?)",
    ]
    assert problems(
        offers_yaml(
            '  - {key: b, kind: product, title: B, prices: {USD: 1}, order_bumps: ["Not A Key"],\n'
            "     upsells: teardown}\n"
        )
    ) == [
        "offers.yaml:6: offers[1].order_bumps[0]: must be an offer key (lowercase letters, digits and '-', "
        "e.g. 'pricing-playbook'), got 'Not A Key'",
        "offers.yaml:7: offers[1].upsells: must be a list, got 'teardown'",
    ]


def test_coupons() -> None:
    assert problems(
        offers_yaml(
            """\
coupons:
  - {code: ZERO, percent_off: 0}
  - {code: WHAT, percent_off: "a lot"}
  - {code: NONE}
  - {code: FLAT, amount_off: {USD: 0, EUR: 5.0}, applies_to: [], max_redemptions: 0}
  - {code: LATE, percent_off: 10, expires_at: "2026-01-01", once_per_buyer: 1, discount: 3}
  - {code: LATE, percent_off: "12.5", applies_to: everything}
  - {code: OK, percent_off: 10}
  - {code: OK, amount_off: {USD: 500}}
  - not-a-mapping
"""
        )
    ) == [
        "offers.yaml:7: coupons[0].percent_off: must be more than 0 and at most 100, got 0",
        "offers.yaml:8: coupons[1].percent_off: must be a number such as 20 or '12.5', got 'a lot'",
        "offers.yaml:9: coupons[2]: a coupon needs percent_off or amount_off",
        "offers.yaml:10: coupons[3].amount_off.USD: must be at least 1, got 0",
        "offers.yaml:10: coupons[3].amount_off.EUR: must be an integer amount in minor units (e.g. "
        "4900 for USD 49.00), got 5.0",
        "offers.yaml:10: coupons[3].applies_to: must be all or a non-empty list of offer keys, got []",
        "offers.yaml:10: coupons[3].max_redemptions: must be at least 1, got 0",
        "offers.yaml:11: coupons[4].expires_at: needs a time zone (add Z or an offset such as +01:00), "
        "got '2026-01-01'",
        "offers.yaml:11: coupons[4].once_per_buyer: must be true or false, got 1",
        "offers.yaml:11: coupons[4].discount: unknown key 'discount' (allowed: code, percent_off, "
        "amount_off, applies_to, max_redemptions, expires_at, once_per_buyer)",
        "offers.yaml:12: coupons[5].applies_to: must be all or a non-empty list of offer keys, got "
        "'everything'",
        "offers.yaml:15: coupons[8]: must be a mapping, got 'not-a-mapping'",
    ]


def test_coupon_values() -> None:
    catalog = parse_catalog(
        offers_yaml(
            """\
coupons:
  - {code: HALF, percent_off: "12.5"}
  - {code: FLOAT, percent_off: 33.3, applies_to: [playbook]}
  - {code: FIVE, amount_off: {USD: 500, EUR: 450}, max_redemptions: 10, expires_at: "2026-02-01T00:00:00+01:00"}
"""
        )
    )
    half, flt, five = catalog.coupons
    assert (half.percent_off, half.applies_to, half.once_per_buyer) == (Decimal("12.5"), None, False)
    assert (flt.percent_off, flt.applies_to) == (Decimal("33.3"), ("playbook",))
    assert dict(five.amount_off) == {"USD": Money("USD", 500), "EUR": Money("EUR", 450)}
    assert five.expires_at == datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    assert five.max_redemptions == 10


def test_yaml_level_problems() -> None:
    assert problems("offers:\n  - key: a\n   kind: x\n") == [
        "offers.yaml:3: invalid YAML (column 4): expected <block end>, but found '<block mapping start>'"
    ]
    assert problems("") == [
        "offers.yaml:1: the catalog is empty (expected a mapping with offers and coupons)"
    ]
    assert problems("- 1\n") == ["offers.yaml:1: must be a mapping, got [1]"]
    assert problems("offers: []\nextra: 1\n") == [
        "offers.yaml:1: offers: must have at least 1 item, got 0",
        "offers.yaml:2: extra: unknown key 'extra' (allowed: offers, coupons)",
    ]
    # A duplicate key is reported, and the rest is still checked.
    assert problems(MINIMAL + "    title: Again\n    kind: nope\n") == [
        "offers.yaml:6: offers[0].title: duplicate key 'title' (first at line 4)",
        "offers.yaml:7: offers[0].kind: duplicate key 'kind' (first at line 3)",
        "offers.yaml:7: offers[0].kind: must be one of product, micro_offer, subscription, bundle, drop, tier, "
        "got 'nope'",
    ]


def test_catalog_built_in_code() -> None:
    offer = Offer(key="guide", kind="product", title="Guide", prices={"USD": Money("USD", 900)})
    catalog = Catalog(offers=(offer,))
    assert catalog.offer("guide") is offer
    assert offer.to_dict()["prices"] == {"USD": 900}


def test_duplicate_offer_keys_and_coupon_codes_name_the_first_line() -> None:
    assert problems(
        offers_yaml(
            """\
  - {key: playbook, kind: product, title: Again, prices: {USD: 1}}
coupons:
  - {code: OK, percent_off: 10, applies_to: [playbok]}
  - {code: OK, amount_off: {USD: 500}}
"""
        )
    ) == [
        "offers.yaml:6: offers[1].key: duplicate offer key 'playbook' (first at line 2)",
        "offers.yaml:8: coupons[0].applies_to[0]: unknown offer 'playbok' (did you mean 'playbook'?)",
        "offers.yaml:9: coupons[1].code: duplicate coupon code 'OK' (first at line 8)",
    ]
