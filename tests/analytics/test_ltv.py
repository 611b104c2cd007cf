"""GET /v1/analytics/ltv and POST /v1/analytics/ltv/refresh over purchases sent through the tracking API."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import select

from offerloop.ml import ltv as model
from offerloop.models import BuyerPersona, BuyerScore

START = date(2026, 1, 1)
CAL_END = date(2026, 3, 31)  # day 89, inclusive
OBS_END = date(2026, 6, 30)  # day 180


def _buyers() -> dict[str, list[tuple[int, int]]]:
    """user id -> (day offset from START, total_minor) of each order, seeded."""
    rng = np.random.default_rng(13)
    out: dict[str, list[tuple[int, int]]] = {}
    for i in range(40):
        first = int(rng.integers(0, 60))
        days = [first]
        rate = float(rng.choice([0.0, 0.02, 0.05, 0.1]))
        day = first
        while rate > 0:
            day += int(rng.geometric(rate))
            if day > 180:
                break
            days.append(day)
        # Gamma-Gamma spend: nu ~ Gamma(q=3, rate v=2000), each order ~ Gamma(p=5, rate nu), in minor units
        nu = rng.gamma(3.0, 1 / 2000.0)
        out[f"u{i:02d}"] = [(d, int(rng.gamma(5.0, 1 / nu))) for d in days]
    return out


def _message(user: str, day: int, total: int, n: int, **extra: Any) -> dict[str, Any]:
    at = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=10)
    props = {"order_id": f"{user}-{n}", "total_minor": total, "currency": "USD", **extra}
    return {"type": "track", "userId": user, "event": "Order Completed", "properties": props,
            "timestamp": at.isoformat(), "messageId": f"{user}-m{n}"}  # fmt: skip


@pytest.fixture
def send(client, secret_headers):
    # a creator's server sends the orders: a write-key client's Order Completed is no purchase
    def _send(messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), 400):
            r = client.post(
                "/v1/batch", headers=secret_headers, content=orjson.dumps({"batch": messages[i : i + 400]})
            )
            assert r.status_code == 200, r.text

    return _send


@pytest.fixture
def shop(send) -> dict[str, list[tuple[int, int]]]:
    buyers = _buyers()
    messages = [
        _message(u, d, total, n) for u, orders in buyers.items() for n, (d, total) in enumerate(orders)
    ]
    # conventions: a second order the same day is the same transaction (its value added); an order sent again
    # under another messageId counts once; an order in another currency is left out
    messages.append(_message("u01", buyers["u01"][0][0], 700, 99))
    messages.append({**_message("u02", *buyers["u02"][0], 0), "messageId": "u02-again"})
    messages.append(_message("u03", buyers["u03"][0][0] + 1, 900, 98, currency="EUR"))
    # u00 .. u09 arrived through an e-mail link before their first order
    for i in range(10):
        first_day = buyers[f"u{i:02d}"][0][0]
        at = datetime.combine(START + timedelta(days=first_day), datetime.min.time(), UTC)
        messages.append({"type": "page", "userId": f"u{i:02d}", "messageId": f"p{i}", "timestamp": at.isoformat(),
                         "context": {"page": {"url": "https://c.example/?utm_source=news&utm_medium=email"}}})  # fmt: skip
    send(messages)
    buyers["u01"][0] = (buyers["u01"][0][0], buyers["u01"][0][1] + 700)
    return buyers


def _expected_summary(buyers: dict[str, list[tuple[int, int]]], cal: int) -> dict[str, tuple[float, ...]]:
    """(x, t_x, T, m_x) in weeks per buyer of the cohort, by hand from the designed orders."""
    out = {}
    for user, orders in sorted(buyers.items()):
        days = sorted(d for d, _ in orders if d <= cal)
        if not days:
            continue
        first = days[0]
        repeat_values = [v for d, v in sorted(orders) if first < d <= cal]
        x = len(days) - 1
        out[user] = (
            float(x),
            (days[-1] - first) / 7,
            (cal - first) / 7,
            sum(repeat_values) / x if x else 0.0,
        )
    return out


def _get(client, headers, **params: Any):
    return client.get("/v1/analytics/ltv", headers=headers, params=params)


def test_ltv_fits_the_purchases_of_the_workspace(client, secret_headers, shop) -> None:
    r = _get(client, secret_headers, calibration_end=CAL_END.isoformat(), observation_end=OBS_END.isoformat())
    assert r.status_code == 200, r.text
    body = r.json()
    expected = _expected_summary(shop, 89)
    x, t_x, T, m = (np.array(col) for col in zip(*expected.values(), strict=True))
    bg = model.fit_bgnbd(x, t_x, T)
    gg = model.fit_gamma_gamma(x, m)
    assert body["buyers"] == len(expected) == 40
    assert body["repeat_buyers"] == int((x > 0).sum())
    assert body["bgnbd"] == pytest.approx(
        {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "log_likelihood": bg.log_likelihood}, rel=1e-9
    )
    assert body["gamma_gamma"] == pytest.approx(
        {"p": gg.p, "q": gg.q, "v": gg.v}, rel=1e-6
    )  # optimiser tolerance
    assert body["currency"] == "USD"
    # these simulated buyers never drop out: the likelihood's supremum is at a -> 0 (said, not hidden)
    assert math.log(bg.a) == pytest.approx(-30.0, abs=1e-9) and math.log(bg.b) > -29.0
    assert [w.split(" ")[0] for w in body["warnings"]] == ["bgnbd.a"]
    assert (body["calibration_end"], body["observation_end"], body["time_unit"]) == (
        "2026-03-31",
        "2026-06-30",
        "week",
    )
    # holdout: transactions on days 90 .. 180 per buyer, by calibration frequency
    actual = {u: len({d for d, _ in orders if 89 < d <= 180}) for u, orders in shop.items()}
    buckets = {b["frequency"]: b for b in body["holdout"]}
    for f, bucket in buckets.items():
        members = [u for u, row in expected.items() if min(int(row[0]), 7) == f]
        assert bucket["buyers"] == len(members)
        assert bucket["actual"] == pytest.approx(sum(actual[u] for u in members) / len(members), abs=1e-12)
    assert sum(b["buyers"] for b in body["holdout"]) == 40


def test_ltv_by_persona_and_first_channel(client, secret_headers, shop, db, workspace) -> None:
    lookup = {
        u: client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": u}).json()["id"]
        for u in shop
    }
    with db.write() as session:
        for user, buyer_id in lookup.items():
            persona = "fan" if user < "u20" else "browser"
            session.merge(BuyerPersona(buyer_id=buyer_id, workspace_id=workspace.id, persona=persona, confidence=0.9, posterior={persona: 0.9}, reasons=[], templates_version=1,
                updated_at=datetime(2026, 4, 1, tzinfo=UTC)))  # fmt: skip
    body = _get(client, secret_headers, calibration_end=CAL_END.isoformat(), horizon=10).json()
    by_persona = {s["key"]: s for s in body["by_persona"]}
    assert sorted(by_persona) == ["browser", "fan"]
    assert by_persona["fan"]["buyers"] == by_persona["browser"]["buyers"] == 20
    expected = _expected_summary(shop, 89)
    x, t_x, T, m = (np.array(col) for col in zip(*expected.values(), strict=True))
    bg = model.BGNBDParams(**{k: body["bgnbd"][k] for k in ("r", "alpha", "a", "b")})
    gg = model.GammaGammaParams(**body["gamma_gamma"])
    value = model.clv(bg, gg, x, t_x, T, m, horizon=10)
    fans = np.array([u < "u20" for u in expected])
    assert by_persona["fan"]["total_value_minor"] == pytest.approx(value[fans].sum(), rel=1e-9)
    assert by_persona["browser"]["p_alive"] == pytest.approx(
        model.p_alive(bg, x, t_x, T)[~fans].mean(), rel=1e-9
    )
    by_channel = {s["key"]: s["buyers"] for s in body["by_channel"]}
    assert by_channel == {"email": 10, "(none)": 30}


def test_refresh_writes_ltv_features_the_decision_engine_reads(client, secret_headers, shop, db) -> None:
    r = client.post(
        "/v1/analytics/ltv/refresh", headers=secret_headers, params={"horizon": 4, "as_of": "2026-05-01"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["written"] == 40
    assert body["features"] == ["ltv_p_alive", "ltv_expected_purchases", "ltv_expected_value"]
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "u05"}).json()
    record = client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret_headers).json()
    cal = (date(2026, 5, 1) - START).days
    days = sorted({d for d, _ in shop["u05"] if d <= cal})
    x, t_x, T = float(len(days) - 1), (days[-1] - days[0]) / 7, (cal - days[0]) / 7
    bg = model.BGNBDParams(**{k: body["bgnbd"][k] for k in ("r", "alpha", "a", "b")})
    assert record["features"]["ltv_p_alive"] == pytest.approx(model.p_alive(bg, [x], [t_x], [T])[0], rel=1e-9)
    assert record["features"]["ltv_expected_purchases"] == pytest.approx(
        model.expected_purchases(bg, 4.0, [x], [t_x], [T])[0], rel=1e-9
    )
    # a second refresh replaces, never duplicates
    assert client.post("/v1/analytics/ltv/refresh", headers=secret_headers).status_code == 200
    with db.read() as session:
        assert len(session.scalars(select(BuyerScore.buyer_id)).all()) == 3 * 40
    # an erased buyer's scores go with their features
    assert client.delete(f"/v1/buyers/{buyer['id']}", headers=secret_headers).status_code == 200
    with db.read() as session:
        assert session.scalars(select(BuyerScore.name).where(BuyerScore.buyer_id == buyer["id"])).all() == []
        assert len(session.scalars(select(BuyerScore.buyer_id)).all()) == 3 * 39


def test_too_few_buyers_is_a_clear_422(client, secret_headers, send) -> None:
    send([_message("solo", 1, 500, 0), _message("solo", 9, 500, 1)])
    r = _get(client, secret_headers, calibration_end="2026-03-31")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "ltv_not_enough_buyers"
    r = client.post("/v1/analytics/ltv/refresh", headers=secret_headers)
    assert r.json()["error"]["code"] == "ltv_not_enough_buyers"


@pytest.mark.parametrize(
    "params",
    [
        {"calibration_end": "2026-02-30"},
        {"calibration_end": "yesterday"},
        {},
        {"calibration_end": "2026-03-31", "time_unit": "year"},
        {"calibration_end": "2026-03-31", "horizon": 10**12},
        {"calibration_end": "2026-03-31", "discount_rate": "nan"},
        {"calibration_end": "2026-03-31", "currency": "US"},
    ],
)
def test_bad_input_is_a_4xx(client, secret_headers, params) -> None:
    assert _get(client, secret_headers, **params).status_code == 422


def test_observation_before_calibration(client, secret_headers, shop) -> None:
    r = _get(client, secret_headers, calibration_end="2026-03-31", observation_end="2026-03-30")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "ltv_bad_period")


def test_keys_and_workspaces(client, write_headers, secret_headers, other_workspace, shop) -> None:
    from tests.conftest import bearer

    assert _get(client, {}, calibration_end="2026-03-31").status_code == 401
    assert _get(client, write_headers, calibration_end="2026-03-31").status_code == 403
    # another workspace's key sees none of these purchases
    other = _get(client, bearer(other_workspace.secret_key), calibration_end="2026-03-31")
    assert (other.status_code, other.json()["error"]["details"]) == (422, {"buyers": 0})


@pytest.mark.parametrize(
    "params",
    [
        {"calibration_end": "0001-01-01"},
        # a day after today is refused by the shared parsing (tests/api/test_strict_parameters.py)
        {"calibration_end": "2026-01-02"},
        {"calibration_end": "2026-03-31", "horizon": 520, "discount_rate": 1.0, "time_unit": "day"},
        {"calibration_end": "2026-03-31", "currency": "eur"},
        {"calibration_end": "2026-03-31", "time_unit": "month"},
    ],
)
def test_extreme_but_valid_input_is_an_answer_or_a_clear_422(client, secret_headers, shop, params) -> None:
    r = _get(client, secret_headers, **params)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["error"]["code"] in ("ltv_not_enough_buyers", "ltv_fit_failed")


def test_predictions_that_cannot_be_computed_are_a_422_and_write_nothing(
    client, secret_headers, send, db
) -> None:
    # adversarial finding 5: 25 buyers with identical orders on 01-01, 02-01 and 03-01 gave null predictions
    # with no warning, and refresh wrote ltv_p_alive alone
    send([_message(f"f{i}", day, 1000, n) for i in range(25) for n, day in enumerate((0, 31, 59))])
    r = _get(client, secret_headers, calibration_end="2026-02-15", observation_end="2026-03-01")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "ltv_fit_failed"
    r = client.post("/v1/analytics/ltv/refresh", headers=secret_headers, params={"as_of": "2026-06-01"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "ltv_fit_failed"
    with db.read() as session:
        assert session.execute(select(BuyerScore)).first() is None
