"""Stripe counts MGA in whole ariary and ISK in hundredths of a krona; offerloop counts ISO 4217 minor units.

The provider converts at its boundary, so what Stripe charges and reports equals the order in ISO units.
"""

from __future__ import annotations

import json

import pytest
from tests.checkout.test_stripe_provider import event

from offerloop.checkout.stripe_provider import build_session_params, normalize, parse_event
from offerloop.core import currencies
from offerloop.core.errors import ValidationFailed


def params(currency: str, unit_amount: int, quantity: int = 1) -> dict:
    return build_session_params(
        order_id="ord_1", workspace_id="ws_1", mode="payment", currency=currency,
        lines=[{"name": "Guide", "unit_amount": unit_amount, "quantity": quantity}],
        success_url="https://example.invalid/ok", cancel_url="https://example.invalid/no",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "ours", "stripe"),
    [
        ("USD", 2700, 2700),
        ("JPY", 4900, 4900),
        ("KWD", 1250, 1250),
        ("MGA", 160000, 1600),
        ("ISK", 1990, 199000),
    ],
)
def test_session_lines_and_webhook_amounts_round_trip_in_iso_minor_units(
    currency: str, ours: int, stripe: int
):
    line = params(currency, ours)["line_items"][0]["price_data"]
    assert (line["currency"], line["unit_amount"]) == (currency.lower(), stripe)
    body = {"id": "cs_1", "object": "checkout.session", "client_reference_id": "ord_1",
            "amount_total": stripe, "currency": currency.lower(), "payment_status": "paid", "metadata": {}}  # fmt: skip
    paid = normalize(parse_event(json.dumps(event("checkout.session.completed", body)).encode()))
    assert paid is not None and paid.amount == ours
    refund = {"id": "ch_1", "object": "charge", "amount": stripe, "amount_refunded": stripe,
              "currency": currency.lower(), "metadata": {}}  # fmt: skip
    refunded = normalize(parse_event(json.dumps(event("charge.refunded", refund)).encode()))
    assert refunded is not None and (refunded.amount, refunded.amount_refunded) == (ours, ours)


def test_an_amount_stripe_cannot_express_is_refused_before_any_session_exists():
    with pytest.raises(ValidationFailed) as info:
        params("MGA", 1650)
    assert "MGA 16.50 cannot be charged: Stripe takes whole units of it" in info.value.message


def test_conversion_is_exact_both_ways():
    assert currencies.to_provider_units("stripe", "mga", 160000) == 1600
    assert currencies.to_provider_units("stripe", "MGA", 160001) is None
    assert currencies.from_provider_units("stripe", "isk", 199050) == 1990  # half to even
    assert currencies.from_provider_units("stripe", "isk", 199150) == 1992
    assert currencies.to_provider_units("manual", "MGA", 160001) == 160001


@pytest.mark.parametrize("currency", ["XYZ", "xau", "HRK", "us"])
def test_a_session_in_a_currency_that_is_not_active_is_refused(currency: str):
    with pytest.raises(ValidationFailed) as info:
        params(currency, 100)
    assert f"currency must be an active ISO 4217 code, not {currency!r}" in info.value.message
