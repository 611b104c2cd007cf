"""Rules that used to be written twice now have one home, and every consumer of a rule agrees with it.

Currencies and their minor units (``core.currencies``): the offers catalog, checkout, ``GET /v1/offers``,
ledger queries and CSV imports. Placeholder ids and e-mail addresses (``core.identifiers``): ingestion,
identity look-ups, CSV imports and checkout.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from tests.conftest import msg

from offerloop.core import currencies, identifiers
from offerloop.core.clock import utcnow
from offerloop.core.money import Money
from offerloop.events.imports import RowResult, iter_rows
from offerloop.events.validation import Accepted, prepare_batch

CATALOG = """\
offers:
  - key: guide
    kind: product
    title: "Guide"
    prices: {USD: 2700, MGA: 160000}
    components:
      - {component: module, ref: lesson-1}
"""


def put_catalog(client: Any, headers: dict[str, str], text: str = CATALOG) -> None:
    r = client.put("/v1/offers/catalog", headers=headers, json={"text": text})
    assert r.status_code == 200, r.text


def import_row(kind: str, header: str, row: str | list[str]) -> RowResult:
    """One data row through the CSV import (a list of cells is written quoted)."""
    if isinstance(row, list):
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(row)
        row = out.getvalue().rstrip("\n")
    (result,) = list(iter_rows(kind, f"{header}\n{row}\n", workspace_salt="ws"))  # type: ignore[arg-type]
    return result


def ingestion_accepts(message: dict[str, Any]) -> Accepted | None:
    batch = prepare_batch([message], received_at=utcnow(), max_event_bytes=64 * 1024)
    return batch.accepted[0] if batch.accepted else None


# -- currencies ---------------------------------------------------------------------------------------


def test_an_order_imported_in_mga_and_one_sold_through_checkout_book_the_same_minor_units(
    client, db, secret_headers
):
    put_catalog(client, secret_headers)
    r = client.post(
        "/v1/checkout", headers=secret_headers, json={"user_id": "ada", "offer": "guide", "currency": "MGA"}
    )
    assert r.status_code == 201, r.text
    order = r.json()
    r = client.post(f"/v1/orders/{order['id']}/paid", headers=secret_headers, json={"reference": "INV-1"})
    assert r.status_code == 200, r.text
    gross = client.get(f"/v1/ledger/orders/{order['id']}", headers=secret_headers).json()["summary"]["gross"]

    imported = import_row(
        "orders", "Order ID,User ID,Total,Currency,Date", 'A1,ada,"1,600.00",MGA,2024-03-01'
    )
    assert imported.errors == ()
    assert imported.message is not None
    properties = imported.message["properties"]
    # MGA 1,600.00 is 160000 minor units (ISO 4217: two decimals) whichever way the sale came in
    assert (order["total"], gross["amount"], properties["total_minor"]) == (160000, 160000, 160000)
    assert gross["formatted"] == f"MGA {properties['revenue']}" == "MGA 1600.00"


@pytest.mark.parametrize(("code", "written", "minor"), [("MGA", "16.50", 1650), ("JPY", "4900", 4900),
                                                        ("KWD", "1.250", 1250), ("CLF", "0.5000", 5000),
                                                        ("ISK", "1990", 1990), ("usd", "49", 4900)])  # fmt: skip
def test_imports_read_amounts_with_the_minor_units_money_formats_with(
    code: str, written: str, minor: int
) -> None:
    result = import_row(
        "orders", "Order ID,User ID,Total,Currency,Date", f"A1,ada,{written},{code},2024-03-01"
    )
    assert result.message is not None, result.errors
    properties = result.message["properties"]
    assert properties["total_minor"] == minor
    assert Money(code, minor).format() == f"{code.upper()} {properties['revenue']}"


def test_every_door_refuses_an_unknown_currency_naming_it(client, secret_headers, write_headers):
    put_catalog(client, secret_headers)
    client.post("/v1/identify", headers=write_headers, json=msg(userId="ada", messageId="ada-1"))

    bad_catalog = CATALOG.replace("MGA: 160000", "XYZ: 1600")
    r = client.put("/v1/offers/catalog", headers=secret_headers, json={"text": bad_catalog})
    assert r.status_code == 422, r.text
    assert "XYZ" in r.text and "ISO 4217" in r.text

    r = client.post(
        "/v1/checkout", headers=secret_headers, json={"user_id": "ada", "offer": "guide", "currency": "XYZ"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_currency" and "'XYZ'" in r.json()["error"]["message"]

    r = client.get("/v1/offers", headers=secret_headers, params={"user_id": "ada", "currency": "XYZ"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_currency" and "'XYZ'" in r.json()["error"]["message"]

    span = {"start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z"}
    r = client.get("/v1/ledger/payouts", headers=secret_headers, params={**span, "currency": "XYZ"})
    assert r.status_code == 422, r.text
    assert "'XYZ'" in r.json()["error"]["message"]
    r = client.get("/v1/revenue", headers=secret_headers, params={"by": "offer", "currency": "XYZ"})
    assert r.status_code == 422, r.text
    assert "'XYZ'" in r.json()["error"]["message"]

    result = import_row("orders", "Order ID,User ID,Total,Currency,Date", "A1,ada,16.00,XYZ,2024-03-01")
    assert [(e.code, e.message) for e in result.errors] == [
        ("invalid_currency", "'XYZ' is not an ISO 4217 currency code")
    ]


# -- identifiers ----------------------------------------------------------------------------------------

IDS = ["guest", "GUEST", " null ", "anonymous", "test", "user", "0", "00", "-1", "n/a", "undefined",
       "00000000-0000-0000-0000-000000000000", "{00000000-0000-0000-0000-000000000000}", "x" * 256,
       "ada", "42", "guest-42", "u_" + "x" * 253]  # fmt: skip


@pytest.mark.parametrize("value", IDS)
def test_import_and_ingestion_agree_on_which_user_ids_are_ids(value: str) -> None:
    usable = identifiers.clean_id(value)
    accepted = ingestion_accepts({"type": "identify", "userId": value, "messageId": "m1"})
    result = import_row("buyers", "User ID,Name", [value, "Ada"])
    assert (accepted is not None, result.message is not None) == (usable is not None, usable is not None)
    if usable is None:
        reasons = [(e.code, e.column) for e in result.errors]
        assert reasons == [("invalid_identifier" if len(value) > 255 else "junk_identifier", "User ID")]
    else:
        assert accepted is not None and result.message is not None
        assert accepted.user_id == result.message["userId"] == value.strip()


def test_a_guest_row_is_refused_by_the_import_instead_of_being_quarantined_by_ingestion() -> None:
    result = import_row("buyers", "User ID,Email", "guest,")
    assert result.message is None
    (error,) = result.errors
    assert (error.code, error.message) == (
        "junk_identifier",
        "'guest' is a placeholder, not an identifier, and nothing else identifies this row",
    )
    refused = prepare_batch(
        [{"type": "identify", "userId": "guest"}], received_at=utcnow(), max_event_bytes=9999
    )
    assert [r.code for r in refused.refused] == ["missing_identity"]  # the same placeholder rule decided both


# -- e-mail addresses ----------------------------------------------------------------------------------

EMAILS = [
    ("Ada@Example.com", "ada@example.com"),
    ("  ada.lovelace+news@mail.example.co.uk ", "ada.lovelace+news@mail.example.co.uk"),
    ("ada@example.c", None),
    ("ada..l@example.com", None),
    (".ada@example.com", None),
    ("ada.@example.com", None),
    ("ada@-example.com", None),
    ("ada@example..com", None),
    ("ada,bob@example.com", None),
    ("ada bob@example.com", None),
    ("ada@localhost", None),
    ("ada@@example.com", None),
    ("@example.com", None),
    ("a" * 243 + "@example.com", None),  # 255 characters: longer than RFC 5321 allows
    ("a" * 242 + "@example.com", "a" * 242 + "@example.com"),
]


@pytest.mark.parametrize(("raw", "normal"), EMAILS)
def test_every_email_check_agrees(
    client, db, secret_headers, write_headers, raw: str, normal: str | None
) -> None:
    assert identifiers.normalize_email(raw) == normal
    # CSV import: accepted and stored lower-cased, or refused as invalid_email
    result = import_row("buyers", "Email", [raw])
    if normal is None:
        assert [e.code for e in result.errors] == ["invalid_email"]
    else:
        assert result.message is not None and result.message["traits"]["email"] == normal
    # ingestion: the address becomes the buyer's e-mail identity, or none
    r = client.post(
        "/v1/identify", headers=write_headers, json=msg(userId="ada", messageId="e1", traits={"email": raw})
    )
    assert r.status_code == 200, r.text
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()
    emails = [i["value"] for i in buyer["identities"] if i["kind"] == "email"]
    assert emails == ([normal] if normal else [])
    # identity look-up by e-mail: found, or refused as not an identifier
    r = client.get("/v1/buyers/lookup", headers=secret_headers, params={"email": raw})
    assert r.status_code == (200 if normal else 422), r.text
    # checkout by e-mail: the same buyer, or refused before any order exists
    put_catalog(client, secret_headers)
    r = client.post("/v1/checkout", headers=secret_headers, json={"email": raw, "offer": "guide"})
    if normal is None:
        assert r.status_code == 422, r.text
    else:
        assert r.status_code == 201, r.text
        assert r.json()["buyer_id"] == buyer["id"]
    # with a user id as well, a bad address is still refused (it would go to the payment provider)
    r = client.post(
        "/v1/checkout", headers=secret_headers, json={"user_id": "ada", "email": raw, "offer": "guide"}
    )
    assert r.status_code == (422 if normal is None else 201), r.text


# -- phone numbers and platform ids --------------------------------------------------------------------

PHONES = [("+44 20 7946 0958", "+442079460958"), ("0044 20 7946 0958", "+442079460958"), ("555-1234", "5551234"),
          ("12345", None), ("000 0000", None), ("+1 234 567 890 123 456", None), ("n/a", "placeholder")]  # fmt: skip


@pytest.mark.parametrize(("raw", "normal"), PHONES)
def test_import_and_identity_agree_on_phone_numbers(client, secret_headers, write_headers, raw: str, normal):
    result = import_row("buyers", "User ID,Phone", ["ada", raw])
    if normal == "placeholder":  # left out, as ingestion ignores it; the row still imports
        assert result.message is not None and "phone" not in result.message["traits"]
        return
    assert identifiers.normalize_phone(raw) == normal
    if normal is None:
        assert [(e.code, e.column) for e in result.errors] == [("invalid_phone", "Phone")]
    else:
        assert result.message is not None and result.message["traits"]["phone"] == raw
        r = client.post("/v1/batch", headers=write_headers, json={"batch": [result.message]})
        assert r.status_code == 200, r.text
        buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()
        assert [i["value"] for i in buyer["identities"] if i["kind"] == "phone"] == [normal]


@pytest.mark.parametrize(("raw", "kept"), [("ada_tt", True), ("null", False), ("N/A", False), ("0", False)])
def test_placeholder_platform_ids_are_left_out_like_ingestion_does(raw: str, kept: bool) -> None:
    result = import_row("buyers", "User ID,TikTok ID", ["ada", raw])
    assert result.message is not None
    assert result.message["traits"].get("tiktok_id") == (raw if kept else None)
    assert (identifiers.clean_id(raw) is not None) is kept


def test_a_nul_character_is_refused_by_the_import_with_ingestions_reason() -> None:
    result = import_row("buyers", "User ID,Name", ["ada", "A\x00da"])
    assert result.message is None
    assert [(e.code, e.column) for e in result.errors] == [("invalid_characters", "Name")]
    message = {"type": "identify", "userId": "ada", "traits": {"name": "A\x00da"}}
    refused = prepare_batch([message], received_at=utcnow(), max_event_bytes=9999).refused
    assert [r.code for r in refused] == ["invalid_characters"]


@pytest.mark.parametrize("code", sorted(currencies.ACTIVE))
def test_import_money_and_stripe_agree_on_every_active_currency(code: str) -> None:
    digits = currencies.exponent(code)
    written = "12" + ("." + "5" * digits if digits else "")  # 12.55 USD, 12 JPY, 12.555 KWD, 12.5555 CLF
    result = import_row(
        "orders", "Order ID,User ID,Total,Currency,Date", ["A1", "ada", written, code, "2024-03-01"]
    )
    assert result.message is not None, result.errors
    minor = result.message["properties"]["total_minor"]
    assert (
        Money(code, minor).format()
        == f"{code} {written}"
        == f"{code} {result.message['properties']['revenue']}"
    )
    whole = (
        12 * 10**digits
    )  # Stripe can charge whole units of every currency; what it reports comes back the same
    stripe = currencies.to_provider_units("stripe", code, whole)
    assert stripe is not None and currencies.from_provider_units("stripe", code, stripe) == whole
