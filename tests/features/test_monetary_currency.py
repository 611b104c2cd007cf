"""The default spec's ``monetary_minor`` follows the order currency's ISO 4217 minor unit, counts only USD and
reads other currencies out apart -- through the real path: HTTP ingest, the feature consumer, the buyer state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.conftest import msg

from offerloop.features.spec import FeatureSpecError, load_feature_spec


@pytest.fixture
def features_after(client, write_headers, secret_headers):
    """Send one buyer's Order Completed events; their features as GET /v1/buyers/{id}/state reads them."""

    def _features_after(user: str, *orders: dict[str, Any]) -> dict[str, Any]:
        batch = [
            msg(type="track", userId=user, event="Order Completed", messageId=f"{user}-o{n}",
                timestamp=f"2026-11-{n + 1:02d}T10:00:00Z", properties={"order_id": f"{user}-{n}", **props})
            for n, props in enumerate(orders)
        ]  # fmt: skip
        r = client.post("/v1/batch", headers=write_headers, content=orjson.dumps({"batch": batch}))
        assert r.status_code == 200 and r.json()["accepted"] == len(orders), r.text
        buyer = client.get("/v1/buyers/lookup", params={"user_id": user}, headers=secret_headers).json()
        r = client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret_headers)
        assert r.status_code == 200, r.text
        parked = client.get("/v1/pipeline/parked", headers=secret_headers)
        assert parked.status_code == 200 and parked.json()["items"] == [], parked.text  # nothing raised
        features: dict[str, Any] = r.json()["features"]
        return features

    return _features_after


def money(features: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in features.items() if k == "monetary_minor" or k.startswith("monetary_minor.")}


def test_usd_revenue_is_in_cents(features_after):
    features = features_after(
        "usd", {"revenue": "49.99", "currency": "USD"}, {"revenue": 10, "currency": "usd"}
    )
    assert features["orders"] == 2
    assert money(features) == {"monetary_minor": 4999 + 1000}


def test_missing_currency_is_usd(features_after):
    features = features_after(
        "no-currency", {"revenue": "49.00"}, {"revenue": 1, "currency": None}, {"total_minor": 500}
    )
    assert money(features) == {"monetary_minor": 4900 + 100 + 500}


def test_jpy_has_no_minor_unit_and_is_not_added_to_usd(features_after):
    features = features_after(
        "jpy", {"revenue": 1000, "currency": "JPY"}, {"revenue": "49.00", "currency": "USD"}
    )
    assert money(features) == {"monetary_minor": 4900, "monetary_minor.JPY": 1000}


def test_kwd_has_three_decimals(features_after):
    features = features_after(
        "kwd", {"revenue": 1, "currency": "KWD"}, {"revenue": "2.125", "currency": "KWD"}
    )
    assert money(features) == {"monetary_minor": 0, "monetary_minor.KWD": 1000 + 2125}


def test_explicit_minor_units_win_over_revenue_whatever_the_currency(features_after):
    features = features_after("minor", {"total_minor": 1500, "revenue": "999", "currency": "JPY"})
    assert money(features) == {"monetary_minor": 0, "monetary_minor.JPY": 1500}


def test_unknown_currency_counts_nowhere_and_parks_nothing(features_after):
    features = features_after(
        "odd", {"revenue": 5, "currency": "XYZ"}, {"revenue": 5, "currency": 840}, {"revenue": "2.00"}
    )
    assert features["orders"] == 3
    assert money(features) == {"monetary_minor": 200}


def test_minor_units_scale_needs_a_currency() -> None:
    sum_feature = {"name": "m", "kind": "sum", "match": {"event": "Order Completed"}, "value": "total_minor"}
    with pytest.raises(FeatureSpecError, match="minor_units"):
        load_feature_spec(
            {"features": [{**sum_feature, "fallback": {"value": "revenue", "scale": "minor_units"}}]}
        )
    with pytest.raises(FeatureSpecError, match="ISO 4217"):
        load_feature_spec({"features": [{**sum_feature, "currency": {"code": "XYZ"}}]})
    eur = load_feature_spec({"features": [{**sum_feature, "currency": {"code": "eur"}}]})
    assert eur.model_dump(mode="json")["features"][0]["currency"] == {"property": "currency", "code": "EUR"}
