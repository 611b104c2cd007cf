"""Strict parameters on the measurement routes (analytics, LTV, attribution, experiments, health): one parsing
(offerloop.web) for dates, instants and numbers - ASCII digits only, a date is a date, no future day where
data is asked for, a repeated query parameter refused, and the LTV refresh's JSON body."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from tests.analytics.test_ltv import CAL_END, send, shop  # noqa: F401  (send, shop: the fixtures)

from offerloop.core.clock import utcnow
from offerloop.web import parse_day, parse_decimal, parse_instant, parse_int

ARABIC_2026 = "\u0662\u0660\u0662\u0666-\u0660\u0663-\u0663\u0661"  # 2026-03-31 in Arabic-Indic digits


def _tomorrow() -> str:
    return (utcnow().date() + timedelta(days=1)).isoformat()


def _error(r: Any) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


def _types(r: Any) -> list[str]:
    return [d["type"] for d in _error(r)["details"]]


# -- the shared parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2026-03-31", "1970-01-01"])
def test_a_day_is_ascii_yyyy_mm_dd(text):
    assert parse_day(text) == date.fromisoformat(text)


@pytest.mark.parametrize(
    "text", [ARABIC_2026, "2026-03-31T00:00:00+05:00", "2026-03-31T00:00:00", "2026-3-31", " 2026-03-31",
             "20260331", "2026-02-30", "1700000000", ""],
)  # fmt: skip
def test_anything_else_is_no_day(text):
    with pytest.raises(ValueError, match="date"):
        parse_day(text)


def test_instants_take_an_offset_and_come_back_in_utc():
    assert parse_instant("2026-03-31") == datetime(2026, 3, 31, tzinfo=UTC)
    assert parse_instant("2026-03-31T10:00:00+05:00") == datetime(2026, 3, 31, 5, tzinfo=UTC)
    assert parse_instant("2026-03-31 10:00") == datetime(2026, 3, 31, 10, tzinfo=UTC)
    for bad in (
        "1700000000",
        "\u0662\u0660\u0662\u0666-\u0660\u0663-\u0663\u0661T10:00",
        "2026-03-31T25:00",
        "now",
    ):
        with pytest.raises(ValueError, match="date"):
            parse_instant(bad)


def test_numbers_are_ascii_digits_only():
    assert parse_int("52") == 52 and parse_int("-3") == -3 and parse_int(7) == 7
    assert parse_decimal("0.25") == 0.25 and parse_decimal(1) == 1.0
    for bad in ("\u0665\u0662", "+5", "1_0", " 5", "5.0", "", "5e1", True):
        with pytest.raises(ValueError, match="whole number"):
            parse_int(bad)
    for bad in ("nan", "inf", "1e-1", "\u0661\u066b\u0665", "+0.5", "0,5", float("nan"), False):
        with pytest.raises(ValueError, match="decimal number"):
            parse_decimal(bad)


# -- over HTTP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "kind"),
    [
        ("/v1/analytics/ltv", {"calibration_end": ARABIC_2026}, "strict_date"),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31T00:00:00+05:00"}, "strict_date"),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31", "horizon": "1_0"}, "strict_int"),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31", "horizon": "+5"}, "strict_int"),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31", "horizon": "\u0665"}, "strict_int"),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31", "discount_rate": "1e-1"}, "strict_number"),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31", "observation_end": "2026-06-30Z"}, "strict_date"),
        ("/v1/attribution", {"start": "2026-01-01T00:00:00Z"}, "strict_date"),
        ("/v1/attribution", {"end": ARABIC_2026}, "strict_date"),
        ("/v1/attribution", {"lookback_days": "\u0663\u0660"}, "strict_int"),
        ("/v1/attribution", {"half_life_days": "7e0"}, "strict_number"),
        ("/v1/attribution/credits", {"start": "2026-01-01+05:00"}, "strict_date"),
        ("/v1/analytics/retention", {"days": "\u0663\u0660,60"}, "strict_int_list"),
        ("/v1/analytics/retention", {"days": "30;60"}, "strict_int_list"),
        ("/v1/analytics/retention", {"as_of": "2026-03-31T00:00:00+05:00"}, "strict_date"),
        ("/v1/analytics/retention/holdout", {"as_of": ARABIC_2026}, "strict_date"),
        ("/v1/analytics/cohorts", {"periods": "1_2"}, "strict_int"),
        ("/v1/analytics/velocity", {"as_of": "2026-03-31Z"}, "strict_date"),
        ("/v1/analytics/summary", {"start": "1700000000"}, "strict_datetime"),
        ("/v1/analytics/summary", {"end": "\u0662\u0660\u0662\u0666-01-01"}, "strict_datetime"),
        ("/v1/health/drift", {"bins": "1_0"}, "strict_int"),
        ("/v1/health/drift", {"psi_watch": "nan"}, "strict_number"),
        ("/v1/health/models", {"days": " 7"}, "strict_int"),
        ("/v1/experiments", {"limit": "\u0661\u0660"}, "strict_int"),
    ],
)  # fmt: skip
def test_loose_values_are_refused_with_the_parameter_named(client, secret_headers, path, params, kind):
    r = client.get(path, params=params, headers=secret_headers)
    error = _error(r)
    assert error["code"] == "validation_failed"
    assert [(d["loc"][0], d["type"]) for d in error["details"]] == [("query", kind)]
    assert error["details"][0]["loc"][1] in params


def test_a_future_day_is_refused_where_data_is_asked_for(client, secret_headers):
    tomorrow = _tomorrow()
    for path, params in (
        ("/v1/analytics/ltv", {"calibration_end": tomorrow}),
        ("/v1/analytics/ltv", {"calibration_end": "2026-03-31", "observation_end": tomorrow}),
        ("/v1/analytics/retention", {"as_of": tomorrow}),
        ("/v1/analytics/cohorts", {"as_of": tomorrow}),
        ("/v1/analytics/velocity", {"as_of": tomorrow}),
    ):
        r = client.get(path, params=params, headers=secret_headers)
        [detail] = _error(r)["details"]
        assert detail["type"] == "future_date"
        assert (
            detail["msg"]
            == f"must not be after today ({utcnow().date().isoformat()}, UTC): a day to come has no data yet"
        )
    r = client.post("/v1/analytics/ltv/refresh", params={"as_of": tomorrow}, headers=secret_headers)
    assert _types(r) == ["future_date"]
    r = client.post("/v1/analytics/ltv/refresh", json={"as_of": tomorrow}, headers=secret_headers)
    assert _types(r) == ["future_date"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/analytics/ltv", "calibration_end=2026-03-31&calibration_end=2026-01-31"),
        ("/v1/health/drift", "bins=2&bins=5"),
        ("/v1/analytics/retention", "days=30&days=60"),
        ("/v1/attribution", "model=markov&by=channel&by=content"),
        ("/v1/experiments", "limit=5&limit=50"),
    ],
)
def test_a_repeated_query_parameter_is_refused(client, secret_headers, path, query):
    r = client.get(f"{path}?{query}", headers=secret_headers)
    error = _error(r)
    assert error["code"] == "repeated_parameter"
    name = query.split("&")[-1].split("=")[0]
    assert error["message"] == f"query parameter {name!r} is given 2 times: give each parameter once"
    assert error["details"] == {"repeated": [name]}


def test_other_routes_keep_their_repeated_parameters(client, secret_headers):
    # only the measurement routes are strict: the rest of the API is unchanged
    assert client.get("/v1/actions?limit=5&limit=6", headers=secret_headers).status_code == 200


# -- the LTV refresh's JSON body ------------------------------------------------------------------------


def test_refresh_takes_its_options_from_a_json_body(client, secret_headers, shop):  # noqa: F811
    by_query = client.post("/v1/analytics/ltv/refresh", headers=secret_headers,
                           params={"horizon": 4, "as_of": "2026-05-01", "time_unit": "day"})  # fmt: skip
    assert by_query.status_code == 200, by_query.text
    by_body = client.post("/v1/analytics/ltv/refresh", headers=secret_headers,
                          json={"horizon": 4, "as_of": "2026-05-01", "time_unit": "day"})  # fmt: skip
    assert by_body.status_code == 200, by_body.text
    assert by_body.json() == by_query.json()
    default = client.post("/v1/analytics/ltv/refresh", headers=secret_headers, json={})
    assert default.status_code == 200 and default.json() != by_body.json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"horizon": 4, "as_off": "2026-05-01"}, "extra_forbidden"),
        ({"as_of": "2026-05-01T00:00:00+05:00"}, "strict_date"),
        ({"horizon": "\u0664"}, "strict_int"),
        ({"horizon": True}, "strict_int"),
        ({"discount_rate": "nan"}, "strict_number"),
        ({"horizon": 0}, "greater_than_equal"),
    ],
)
def test_a_bad_refresh_body_is_a_422(client, secret_headers, body, kind):
    r = client.post("/v1/analytics/ltv/refresh", headers=secret_headers, json=body)
    assert _error(r)["code"] == "validation_failed"
    assert [(d["loc"][0], d["type"]) for d in _error(r)["details"]] == [("body", kind)]


def test_a_body_and_query_options_together_are_refused(client, secret_headers):
    r = client.post(
        "/v1/analytics/ltv/refresh", headers=secret_headers, params={"horizon": 4}, json={"horizon": 8}
    )
    error = _error(r)
    assert error["code"] == "conflicting_parameters"
    assert (
        error["message"]
        == "give the refresh's options either as a JSON body or as query parameters, not both"
    )
    assert error["details"] == {"query": ["horizon"]}


def test_a_refresh_body_that_is_not_an_object_is_a_422(client, secret_headers):
    for content, kind in ((b"[1, 2]", "application/json"), (b'"horizon=4"', "application/json"),
                          (b"{not json", "application/json"), (b"horizon=4", "application/x-www-form-urlencoded"),
                          (b"horizon=4", "text/plain")):  # fmt: skip
        r = client.post("/v1/analytics/ltv/refresh", headers={**secret_headers, "Content-Type": kind},
                        content=content)  # fmt: skip
        assert r.status_code == 422, (content, r.text)
        assert r.json()["error"]["code"] in {"validation_failed", "invalid_json"}


def test_calibration_end_in_the_past_still_works(client, secret_headers, shop):  # noqa: F811
    r = client.get(
        "/v1/analytics/ltv", params={"calibration_end": CAL_END.isoformat()}, headers=secret_headers
    )
    assert r.status_code == 200, r.text


def test_an_instant_with_an_offset_means_that_moment(client, secret_headers):
    # summary's start/end are instants: an offset is allowed there and read as the moment it names
    a = client.get("/v1/analytics/summary", params={"start": "2026-01-01T05:00:00+05:00", "currency": "USD"},
                   headers=secret_headers)  # fmt: skip
    b = client.get("/v1/analytics/summary", params={"start": "2026-01-01T00:00:00Z", "currency": "USD"},
                   headers=secret_headers)  # fmt: skip
    assert a.status_code == 200, a.text
    assert a.json() == b.json()
