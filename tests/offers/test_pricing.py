"""Quotes (multi-currency prices, order bumps, coupons allocated across lines) and drop states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from offerloop.core.money import Money
from offerloop.offers.catalog import Catalog, Coupon, drop_state, load_catalog, parse_catalog, price_of
from offerloop.offers.exceptions import PricingError

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml"
NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)

CATALOG = """\
offers:
  - key: playbook
    kind: product
    title: "Playbook"
    prices: {USD: 999, EUR: 900}
    order_bumps: [workbook, teardown, circle, retired, usd-only]
  - {key: workbook, kind: product, title: "Workbook", prices: {USD: 1001, EUR: 1000}}
  - {key: teardown, kind: micro_offer, title: "Teardown", prices: {USD: 333, EUR: 300},
     deliverable_policy: pricing-audit, turnaround_hours: 72, daily_capacity: 5}
  - {key: circle, kind: subscription, title: "Circle", prices: {USD: 3900, EUR: 3500}, interval: month}
  - {key: retired, kind: product, title: "Retired", prices: {USD: 500}, active: false}
  - {key: usd-only, kind: product, title: "US only", prices: {USD: 700}}
  - {key: print, kind: drop, title: "Print", prices: {USD: 4900}, inventory: 100, per_buyer_limit: 2,
     opens_at: "2026-03-02T16:00:00Z", closes_at: "2026-03-16T16:00:00Z"}
  - {key: kit, kind: bundle, title: "Kit", prices: {USD: 1500}, includes: [playbook, workbook]}
coupons:
  - {code: SAVE15, percent_off: 15}
  - {code: PLAYBOOK10, amount_off: {USD: 1000, EUR: 500}, applies_to: [playbook]}
  - {code: BIG, amount_off: {USD: 5000}, applies_to: [playbook, workbook]}
  - {code: THREE, amount_off: {USD: 100}, applies_to: [playbook, workbook, teardown]}
  - {code: ONCE, percent_off: 50, once_per_buyer: true, max_redemptions: 3, expires_at: "2026-01-01T00:00:00Z"}
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return parse_catalog(CATALOG, path="offers.yaml")


def usd(amount: int) -> Money:
    return Money("USD", amount)


def pricing_error(catalog: Catalog, *args: str, **kwargs: object) -> PricingError:
    kwargs.setdefault("now", NOW)
    with pytest.raises(PricingError) as info:
        price_of(catalog, *args, **kwargs)  # type: ignore[arg-type]
    assert info.value.status_code == 422
    return info.value


# --------------------------------------------------------------------------------------------------
# Prices


def test_quote_without_coupon_in_each_currency(catalog: Catalog) -> None:
    quote = price_of(catalog, "playbook", "USD", bumps=["workbook"], now=NOW)
    assert [(line.offer_key, line.role, line.unit_amount, line.quantity) for line in quote.lines] == [
        ("playbook", "offer", usd(999), 1),
        ("workbook", "bump", usd(1001), 1),
    ]
    assert (quote.subtotal, quote.discount, quote.total) == (usd(2000), usd(0), usd(2000))
    assert quote.coupon is None
    assert quote.catalog_version == catalog.version

    euros = price_of(catalog, "playbook", "eur", bumps=["workbook"], now=NOW)
    assert euros.currency == "EUR"
    assert (euros.subtotal, euros.total) == (Money("EUR", 1900), Money("EUR", 1900))


def test_quantity_and_recurring_lines(catalog: Catalog) -> None:
    quote = price_of(catalog, "print", "USD", quantity=2, now=NOW)
    line = quote.lines[0]
    assert (line.unit_amount, line.quantity, line.subtotal, quote.total) == (
        usd(4900),
        2,
        usd(9800),
        usd(9800),
    )
    circle = price_of(catalog, "circle", "USD", now=NOW)
    assert (circle.lines[0].interval, circle.total) == ("month", usd(3900))
    bumped = price_of(catalog, "playbook", "USD", bumps=["circle"], now=NOW)
    assert [line.interval for line in bumped.lines] == [None, "month"]


def test_quote_to_dict(catalog: Catalog) -> None:
    quote = price_of(catalog, "playbook", "USD", coupon="PLAYBOOK10", bumps=["teardown"], now=NOW)
    assert quote.to_dict() == {
        "offer_key": "playbook",
        "currency": "USD",
        "lines": [
            {
                "offer_key": "playbook",
                "title": "Playbook",
                "role": "offer",
                "unit_amount": 999,
                "quantity": 1,
                "subtotal": 999,
                "discount": 999,
                "total": 0,
                "interval": None,
            },
            {
                "offer_key": "teardown",
                "title": "Teardown",
                "role": "bump",
                "unit_amount": 333,
                "quantity": 1,
                "subtotal": 333,
                "discount": 0,
                "total": 333,
                "interval": None,
            },
        ],
        "subtotal": 1332,
        "discount": 999,
        "total": 333,
        "coupon": "PLAYBOOK10",
        "catalog_version": catalog.version,
    }


# --------------------------------------------------------------------------------------------------
# Coupons


def test_percent_coupon_is_allocated_so_line_discounts_sum_exactly(catalog: Catalog) -> None:
    quote = price_of(catalog, "playbook", "USD", coupon="save15", bumps=["workbook", "teardown"], now=NOW)
    # 15% of 999 + 1001 + 333 = 2333 is 349.95 -> 350. Shares 350 * (999, 1001, 333) / 2333 are
    # 149.87, 150.17, 49.96: floors 149 + 150 + 49 = 348, and the 2 units left go to the largest
    # remainders (.96 then .87): 150, 150, 50.
    assert quote.coupon == "SAVE15"
    assert [line.discount for line in quote.lines] == [usd(150), usd(150), usd(50)]
    assert [line.total for line in quote.lines] == [usd(849), usd(851), usd(283)]
    assert (quote.subtotal, quote.discount, quote.total) == (usd(2333), usd(350), usd(1983))


def test_percent_rounds_half_to_even() -> None:
    catalog = parse_catalog(
        """\
offers:
  - {key: guide, kind: product, title: Guide, prices: {USD: 1012, EUR: 1004}}
coupons:
  - {code: EIGHTH, percent_off: "12.5"}
"""
    )
    # 12.5% of 1012 = 126.5 -> 126; of 1004 = 125.5 -> 126 (to the even unit both times).
    assert price_of(catalog, "guide", "USD", coupon="EIGHTH", now=NOW).discount == usd(126)
    assert price_of(catalog, "guide", "EUR", coupon="EIGHTH", now=NOW).discount == Money("EUR", 126)


def test_coupon_applies_to_eligible_lines_only(catalog: Catalog) -> None:
    quote = price_of(catalog, "playbook", "USD", coupon="PLAYBOOK10", bumps=["workbook"], now=NOW)
    # USD 10.00 off the playbook, capped at its 9.99; the workbook is not eligible.
    assert [line.discount for line in quote.lines] == [usd(999), usd(0)]
    assert (quote.discount, quote.total) == (usd(999), usd(1001))
    euros = price_of(catalog, "playbook", "EUR", coupon="PLAYBOOK10", bumps=["workbook"], now=NOW)
    assert [line.discount for line in euros.lines] == [Money("EUR", 500), Money("EUR", 0)]
    assert euros.total == Money("EUR", 1400)


def test_amount_coupon_is_capped_and_allocated(catalog: Catalog) -> None:
    capped = price_of(catalog, "playbook", "USD", coupon="BIG", bumps=["workbook", "teardown"], now=NOW)
    assert [line.discount for line in capped.lines] == [usd(999), usd(1001), usd(0)]
    assert (capped.discount, capped.total) == (usd(2000), usd(333))

    split = price_of(catalog, "playbook", "USD", coupon="THREE", bumps=["workbook", "teardown"], now=NOW)
    # 100 * (999, 1001, 333) / 2333 = 42.82, 42.91, 14.27: floors 98, the 2 left go to .91 and .82.
    assert [line.discount for line in split.lines] == [usd(43), usd(43), usd(14)]
    assert (split.discount, split.total) == (usd(100), usd(2233))


@pytest.mark.parametrize("bumps", [(), ("workbook",), ("workbook", "teardown"), ("teardown", "usd-only")])
def test_discounts_always_sum_to_the_quote_discount(catalog: Catalog, bumps: tuple[str, ...]) -> None:
    for percent in [*range(1, 101), "0.5", "33.33", "66.67", "99.99"]:
        coupon = Coupon(code="P", percent_off=Decimal(str(percent)))
        quote = price_of(catalog, "playbook", "USD", coupon=coupon, bumps=bumps, now=NOW)
        assert sum(line.discount.amount for line in quote.lines) == quote.discount.amount
        assert quote.discount == quote.subtotal.percent(percent)
        assert all(usd(0) <= line.discount <= line.subtotal for line in quote.lines)
        assert quote.total == quote.subtotal - quote.discount


def test_coupon_expiry_is_exclusive_of_the_expiry_instant(catalog: Catalog) -> None:
    expiry = datetime(2026, 1, 1, tzinfo=UTC)
    just_before = price_of(catalog, "playbook", "USD", coupon="ONCE", now=expiry - timedelta(microseconds=1))
    assert just_before.discount == usd(500)  # 50% of 999 = 499.5 -> 500
    error = pricing_error(catalog, "playbook", "USD", coupon="ONCE", now=expiry)
    assert (error.code, error.message) == ("coupon_expired", "coupon ONCE expired at 2026-01-01T00:00:00Z")


def test_coupon_limits(catalog: Catalog) -> None:
    assert price_of(catalog, "playbook", "USD", coupon="ONCE", coupon_redemptions=2, now=NOW).discount == usd(
        500
    )
    error = pricing_error(catalog, "playbook", "USD", coupon="ONCE", coupon_redemptions=3)
    assert (error.code, error.message) == (
        "coupon_exhausted",
        "coupon ONCE has been redeemed 3 times, its limit",
    )
    error = pricing_error(catalog, "playbook", "USD", coupon="ONCE", buyer_redeemed_coupon=True)
    assert (error.code, error.message) == ("coupon_already_used", "coupon ONCE can be used once per buyer")
    # Without once_per_buyer, a buyer may use a code again.
    assert price_of(catalog, "playbook", "USD", coupon="SAVE15", buyer_redeemed_coupon=True, now=NOW).discount


def test_coupon_errors(catalog: Catalog) -> None:
    error = pricing_error(catalog, "playbook", "USD", coupon="NOPE")
    assert (error.code, error.message) == ("unknown_coupon", "no coupon 'NOPE'")
    error = pricing_error(catalog, "workbook", "USD", coupon="PLAYBOOK10")
    assert (error.code, error.message) == (
        "coupon_not_applicable",
        "coupon PLAYBOOK10 does not apply to 'workbook'",
    )
    error = pricing_error(catalog, "playbook", "EUR", coupon="THREE")
    assert (error.code, error.message) == (
        "coupon_currency_not_offered",
        "coupon THREE has no amount in EUR (only USD)",
    )


# --------------------------------------------------------------------------------------------------
# Pricing errors


def test_currency_not_offered(catalog: Catalog) -> None:
    error = pricing_error(catalog, "usd-only", "EUR")
    assert (error.code, error.message) == (
        "currency_not_offered",
        "'usd-only' is not offered in EUR (offered in USD)",
    )
    error = pricing_error(catalog, "playbook", "EUR", bumps=["usd-only"])
    assert (error.code, error.message) == (
        "currency_not_offered",
        "'usd-only' is not offered in EUR (offered in USD)",
    )
    error = pricing_error(catalog, "playbook", "GBP")
    assert error.message == "'playbook' is not offered in GBP (offered in EUR, USD)"
    error = pricing_error(catalog, "playbook", "euro")
    assert (error.code, error.message) == ("invalid_currency", "not an ISO 4217 currency code: 'euro'")


def test_offer_and_bump_errors(catalog: Catalog) -> None:
    error = pricing_error(catalog, "nope", "USD")
    assert (error.code, error.message) == ("unknown_offer", "no offer 'nope' in the catalog")
    error = pricing_error(catalog, "retired", "USD")
    assert (error.code, error.message) == ("offer_inactive", "offer 'retired' is not active")
    error = pricing_error(catalog, "playbook", "USD", bumps=["retired"])
    assert (error.code, error.message) == ("offer_inactive", "offer 'retired' is not active")
    error = pricing_error(catalog, "playbook", "USD", bumps=["print"])
    assert (error.code, error.message) == (
        "bump_not_offered",
        "'print' is not an order bump of 'playbook' (bumps: workbook, teardown, circle, retired, usd-only)",
    )
    error = pricing_error(catalog, "workbook", "USD", bumps=["playbook"])
    assert error.message == "'playbook' is not an order bump of 'workbook' (bumps: none)"
    error = pricing_error(catalog, "playbook", "USD", bumps=["workbook", "workbook"])
    assert (error.code, error.message) == ("duplicate_bump", "'workbook' is already in the order")


def test_quantity_errors(catalog: Catalog) -> None:
    error = pricing_error(catalog, "print", "USD", quantity=3)
    assert (error.code, error.message) == (
        "per_buyer_limit",
        "'print' is limited to 2 per buyer, got quantity 3",
    )
    error = pricing_error(catalog, "circle", "USD", quantity=2)
    assert (error.code, error.message) == (
        "invalid_quantity",
        "a subscription is bought one at a time, got quantity 2",
    )
    error = pricing_error(catalog, "kit", "USD", quantity=2)
    assert error.code == "invalid_quantity"
    error = pricing_error(catalog, "playbook", "USD", quantity=0)
    assert (error.code, error.message) == ("invalid_quantity", "quantity must be a positive integer, got 0")


def test_now_must_be_timezone_aware(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        price_of(catalog, "playbook", "USD", now=datetime(2025, 1, 1))


def test_demo_catalog_quotes() -> None:
    demo = load_catalog(DEMO)
    before_expiry = datetime(2026, 1, 15, tzinfo=UTC)
    quote = price_of(
        demo, "pricing-playbook", "USD", coupon="LAUNCH20", bumps=["sales-page-teardown"], now=before_expiry
    )
    # 20% of 2700 + 9900 = 12600 is 2520, split 540 / 1980 in proportion.
    assert [(line.offer_key, line.discount.amount, line.total.amount) for line in quote.lines] == [
        ("pricing-playbook", 540, 2160),
        ("sales-page-teardown", 1980, 7920),
    ]
    assert (quote.subtotal, quote.discount, quote.total) == (usd(12600), usd(2520), usd(10080))
    euros = price_of(demo, "bundle-gift", "EUR", coupon="LAUNCH20", now=before_expiry)
    assert (euros.subtotal, euros.discount, euros.total) == (
        Money("EUR", 3500),
        Money("EUR", 700),
        Money("EUR", 2800),
    )
    error = pricing_error(demo, "membership-monthly", "USD", coupon="LAUNCH20", now=before_expiry)
    assert error.code == "coupon_not_applicable"


# --------------------------------------------------------------------------------------------------
# Drops

OPENS = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
CLOSES = datetime(2026, 3, 16, 16, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def test_drop_states_at_boundaries(catalog: Catalog) -> None:
    drop = catalog.offer("print")
    assert drop is not None
    assert drop_state(drop, OPENS - TICK, signed_off=True) == "scheduled"
    assert drop_state(drop, OPENS, signed_off=True) == "live"
    assert drop_state(drop, CLOSES - TICK, signed_off=True) == "live"
    assert drop_state(drop, CLOSES, signed_off=True) == "closed"
    # Without sign-off it never goes live ...
    assert drop_state(drop, OPENS - TICK, signed_off=False) == "draft"
    assert drop_state(drop, OPENS, signed_off=False) == "draft"
    assert drop_state(drop, CLOSES - TICK, signed_off=False) == "draft"
    # ... and once its window has passed it is closed either way.
    assert drop_state(drop, CLOSES, signed_off=False) == "closed"


def test_drop_state_other_zones_and_inventory(catalog: Catalog) -> None:
    drop = catalog.offer("print")
    assert drop is not None
    paris = datetime.fromisoformat("2026-03-02T17:00:00+01:00")  # the same instant as OPENS
    assert drop_state(drop, paris, signed_off=True) == "live"
    assert drop_state(drop, OPENS, signed_off=True, sold=99) == "live"
    assert drop_state(drop, OPENS, signed_off=True, sold=100) == "closed"


def test_drop_state_refuses_other_offers_and_naive_times(catalog: Catalog) -> None:
    playbook = catalog.offer("playbook")
    drop = catalog.offer("print")
    assert playbook is not None and drop is not None
    with pytest.raises(ValueError, match="'playbook' is a product, not a drop"):
        drop_state(playbook, OPENS, signed_off=True)
    with pytest.raises(ValueError, match="timezone-aware"):
        drop_state(drop, datetime(2026, 3, 3), signed_off=True)


def test_inactive_drop_is_a_draft() -> None:
    catalog = parse_catalog(
        """\
offers:
  - {key: print, kind: drop, title: Print, prices: {USD: 4900}, inventory: 1, active: false,
     opens_at: "2026-03-02T16:00:00Z", closes_at: "2026-03-16T16:00:00Z"}
"""
    )
    assert drop_state(catalog.offers[0], OPENS, signed_off=True) == "draft"
