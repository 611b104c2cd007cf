"""CSV imports of buyers and orders: mapping, parsing, row errors and deterministic messageIds."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Any

import pytest

from offerloop.events.imports import (
    MappingError,
    RowError,
    RowResult,
    default_mapping,
    iter_rows,
    parse_mapping,
)

SOURCE = {"source": {"type": "import", "name": "csv"}}


def message_id(salt: str, kind: str, revision: str, *identity: str) -> str:
    text = "\x1f".join((salt, kind, revision, *identity))
    return "import-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def anonymous_id(salt: str, email: str) -> str:
    return "import:" + hashlib.sha256((salt + email).encode()).hexdigest()[:24]


def to_csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def only(results: list[RowResult]) -> RowResult:
    assert len(results) == 1, results
    return results[0]


def one_message(kind: Any, text: str, **kwargs: Any) -> dict[str, Any]:
    result = only(list(iter_rows(kind, text, **kwargs)))
    assert result.errors == (), result.errors
    assert result.message is not None
    return result.message


def codes(result: RowResult) -> list[tuple[str | None, str]]:
    return [(e.column, e.code) for e in result.errors]


# ---------------------------------------------------------------------------------------------- mappings


def test_default_mapping_lists_every_field_with_synonyms() -> None:
    buyers = default_mapping("buyers")
    assert list(buyers) == [
        "user_id",
        "email",
        "anonymous_id",
        "phone",
        "first_name",
        "last_name",
        "name",
        "created_at",
        "tiktok_id",
        "instagram_id",
        "stripe_customer_id",
        "consent_marketing",
        "consent_personalization",
    ]
    assert buyers["email"].split("|")[:3] == ["Email", "Email Address", "Customer Email"]
    orders = default_mapping("orders")
    assert list(orders) == [
        "order_id",
        "user_id",
        "email",
        "amount",
        "currency",
        "product_id",
        "product_name",
        "status",
        "created_at",
        "coupon",
        "discount",
    ]
    assert parse_mapping(None, "orders") == orders
    assert parse_mapping("  ", "orders") == orders
    assert default_mapping("orders") is not default_mapping("orders")


@pytest.mark.parametrize("kind", ["buyers", "orders"])
def test_default_synonyms_never_overlap_between_fields(kind: Any) -> None:
    owner: dict[str, str] = {}
    for field, names in default_mapping(kind).items():
        for name in names.split("|"):
            key = re.sub(r"[\W_]+", "", name.casefold())
            assert owner.setdefault(key, field) == field, (name, field, owner[key])


@pytest.mark.parametrize("header", ["Email", "E-mail", "email_address", "Customer Email", "  EMAIL  "])
def test_default_email_synonyms(header: str) -> None:
    message = one_message("buyers", f"{header},Plan\nAnn@Example.com,pro\n")
    assert message["traits"] == {"email": "ann@example.com", "plan": "pro"}


@pytest.mark.parametrize("header", ["User ID", "customer_id", "id", "userId", "Buyer ID"])
def test_default_user_id_synonyms_for_buyers(header: str) -> None:
    message = one_message("buyers", f"{header}\nu-1\n")
    assert message["userId"] == "u-1"
    assert message["traits"] == {}


@pytest.mark.parametrize(
    ("order_h", "amount_h", "date_h"),
    [
        ("Order ID", "Total", "Date"),
        ("order number", "Amount", "Created"),
        ("Transaction ID", "Price", "Order Date"),
        ("order_id", "Order Total", "created_at"),
    ],
)
def test_default_order_synonyms(order_h: str, amount_h: str, date_h: str) -> None:
    text = f"{order_h},{amount_h},{date_h},E-mail\nA-1,49,2024-03-01,a@x.io\n"
    message = one_message("orders", text)
    assert message["properties"]["order_id"] == "A-1"
    assert message["properties"]["total_minor"] == 4900
    assert message["timestamp"] == "2024-03-01T00:00:00Z"


def test_default_matching_prefers_the_first_synonym_and_keeps_the_rest_as_extras() -> None:
    message = one_message("orders", "Order ID,Price,Total,Date,Email\n1,10,25,2024-03-01,a@x.io\n")
    assert message["properties"]["total_minor"] == 2500
    assert message["properties"]["price"] == "10"


def test_explicit_mapping_overrides_single_fields() -> None:
    mapping = parse_mapping("email=E-mail Address, user_id = Customer Ref", "buyers")
    assert mapping["email"] == "E-mail Address"
    assert mapping["user_id"] == "Customer Ref"
    assert mapping["phone"] == default_mapping("buyers")["phone"]
    text = "Customer Ref,e-mail address,Phone,ID\nC9,ann@x.io,+4412345,row-7\n"
    message = one_message("buyers", text, mapping=mapping)
    assert message["userId"] == "C9"
    # "ID" would have been user_id by default; the explicit mapping claimed user_id, so it is an extra.
    assert message["traits"] == {"email": "ann@x.io", "phone": "+4412345", "id": "row-7"}


def test_explicit_mapping_can_turn_a_field_off_and_ignore_columns() -> None:
    mapping = parse_mapping("created_at=,ignore=Notes|Address,email=Work Email", "buyers")
    text = "Work Email,Email,Date,Notes,Address\nw@x.io,p@x.io,2024-01-01,secret,1 Road\n"
    with pytest.raises(MappingError) as caught:
        iter_rows("buyers", text, mapping=mapping)
    assert str(caught.value) == (
        "cannot map the columns of this buyers import: column 'Email' would be carried as trait 'email', "
        "which the importer sets itself; map it to a field or drop it with ignore=Email"
    )
    mapping = parse_mapping("created_at=,ignore=Notes|Address|Email,email=Work Email", "buyers")
    message = one_message("buyers", text, mapping=mapping)
    assert message["traits"] == {"email": "w@x.io", "date": "2024-01-01"}
    assert "timestamp" not in message


def test_quoted_mapping_entries_allow_commas_in_headers() -> None:
    mapping = parse_mapping('"name=Name, full",email="Mail Box"', "buyers")
    assert mapping["name"] == "Name, full"
    assert mapping["email"] == "Mail Box"
    assert parse_mapping("ignore=Notes,ignore=Address|Tel", "buyers")["ignore"] == "Notes|Address|Tel"


def test_parse_mapping_reports_every_bad_entry() -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping("emial=Email,user_id=ID,user_id=Customer,whatever", "buyers")
    assert caught.value.problems == (
        "unknown field 'emial' for buyers (known fields: user_id, email, anonymous_id, phone, first_name, "
        "last_name, name, created_at, tiktok_id, instagram_id, stripe_customer_id, consent_marketing, "
        "consent_personalization, ignore)",
        "field user_id is mapped more than once",
        "'whatever' is not of the form field=column header",
    )
    assert str(caught.value).startswith("cannot map the columns of this buyers import (3 problems):\n  - ")
    assert isinstance(caught.value, ValueError)


def test_mapping_error_lists_every_problem_before_any_row_is_read() -> None:
    with pytest.raises(MappingError) as caught:  # raised by the call itself: nothing is iterated
        iter_rows("orders", "Name,Total,Name\nx,1,y\n", mapping={"email": "Mail", "sku": "Item"})
    assert str(caught.value) == (
        "cannot map the columns of this orders import (5 problems):\n"
        "  - unknown field 'sku' for orders (known fields: order_id, user_id, email, amount, currency, "
        "product_id, product_name, status, created_at, coupon, discount, ignore)\n"
        "  - email: no column named 'Mail' (the file's columns are: 'Name', 'Total', 'Name')\n"
        "  - no order_id column: map it with order_id=<column>\n"
        "  - no created_at column: map it with created_at=<column>\n"
        "  - columns 'Name' and 'Name' would both be carried as property 'name'; "
        "rename one or drop it with ignore=<column>"
    )


def test_mapping_error_when_no_identifier_column() -> None:
    with pytest.raises(MappingError) as caught:
        iter_rows("buyers", "First Name,Phone\nAnn,1\n")
    assert caught.value.problems == (
        "no identifier column: map one of user_id, email, anonymous_id (e.g. user_id=<column>; "
        "the file's columns are: 'First Name', 'Phone')",
    )


def test_mapping_error_for_an_empty_file_and_an_unknown_kind() -> None:
    with pytest.raises(MappingError, match="the file is empty: there is no header row"):
        iter_rows("buyers", ["\n", "  \n"])
    with pytest.raises(ValueError, match="unknown import kind 'people'"):
        iter_rows("people", "Email\n")  # type: ignore[arg-type]


def test_ambiguous_default_columns_are_a_mapping_error() -> None:
    with pytest.raises(MappingError) as caught:
        iter_rows("buyers", "Email,E-mail\na@x.io,b@x.io\n")
    assert caught.value.problems == (
        "email: several columns could be it ('Email', 'E-mail'); "
        "choose one with email=<column> or drop the others with ignore=<column>",
    )
    mapping = parse_mapping("email=E-mail,ignore=Email", "buyers")
    message = one_message("buyers", "Email,E-mail\na@x.io,b@x.io\n", mapping=mapping)
    assert message["traits"] == {"email": "b@x.io"}


# ---------------------------------------------------------------------------------------- file formats


def test_semicolon_file_with_decimal_commas() -> None:
    text = (
        "Order ID;Email;Total;Currency;Date\n"
        "A1;a@x.io;49,90;EUR;2024-03-01\n"
        "A2;a@x.io;1.299,50;EUR;2024-03-02\n"
    )
    results = list(iter_rows("orders", text))
    assert [r.errors for r in results] == [(), ()]
    assert [r.message["properties"]["total_minor"] for r in results if r.message] == [4990, 129950]
    assert [r.message["properties"]["revenue"] for r in results if r.message] == ["49.90", "1299.50"]


def test_semicolon_sniffing_is_not_fooled_by_commas_in_values() -> None:
    text = "Email;Tags\na@x.io;red, green\nb@x.io;blue\n"
    results = list(iter_rows("buyers", text))
    assert [r.message["traits"] for r in results if r.message] == [
        {"email": "a@x.io", "tags": "red, green"},
        {"email": "b@x.io", "tags": "blue"},
    ]


def test_tab_delimited_and_excel_sep_line() -> None:
    assert one_message("buyers", "Email\tPlan\na@x.io\tpro\n")["traits"] == {"email": "a@x.io", "plan": "pro"}
    results = list(iter_rows("buyers", "sep=|\nEmail|Plan\na@x.io|pro\nnope|x\n"))
    assert results[0].message is not None
    assert results[0].message["traits"] == {"email": "a@x.io", "plan": "pro"}
    assert results[1].errors == (RowError(3, "Email", "invalid_email", "'nope' is not an email address"),)


def test_utf8_bom_is_dropped_from_the_first_header() -> None:
    message = one_message("buyers", "\ufeffEmail,Thème préféré\nann@x.io,Jazz\n")
    assert message["traits"] == {"email": "ann@x.io", "thème_préféré": "Jazz"}


def test_quoted_newlines_keep_spreadsheet_row_numbers() -> None:
    text = 'Email,Bio\na@x.io,"line one\nline two"\nb@x.io,plain\nbad,x\n'
    results = list(iter_rows("buyers", text))
    assert [r.row for r in results] == [2, 3, 4]
    assert results[0].message is not None
    assert results[0].message["traits"]["bio"] == "line one\nline two"
    assert results[2].errors == (RowError(4, "Email", "invalid_email", "'bad' is not an email address"),)


@pytest.mark.parametrize(
    "lines",
    [
        ["Email,Bio", 'a@x.io,"one', 'two"'],  # without line endings
        ["Email,Bio\r\n", 'a@x.io,"one\r\n', 'two"\r\n'],  # CRLF
        io.StringIO('Email,Bio\na@x.io,"one\ntwo"', newline=""),  # an open file, no final newline
    ],
)
def test_lines_in_any_shape(lines: Any) -> None:
    message = one_message("buyers", lines)
    assert message["traits"]["bio"] in ("one\ntwo", "one\r\ntwo")


def test_blank_rows_are_skipped_but_counted() -> None:
    results = list(iter_rows("buyers", "Email\n\na@x.io\n,\nnull\n"))
    assert [(r.row, r.message is not None) for r in results] == [(3, True), (5, False)]


def test_unterminated_quote_is_a_malformed_row() -> None:
    results = list(iter_rows("buyers", 'Email,Bio\na@x.io,ok\nb@x.io,"never closed\nc@x.io,x\n'))
    assert results[0].row == 2
    assert results[1] == RowResult(
        3,
        None,
        (
            RowError(
                3,
                None,
                "malformed_row",
                "this row is not valid CSV (unexpected end of data); check its quotes",
            ),
        ),
    )


def test_cells_beyond_the_header_and_under_an_empty_header() -> None:
    text = "Email,Plan,\na@x.io,pro,\nb@x.io,1,299.50\nc@x.io,pro,,,\n"
    results = list(iter_rows("buyers", text))
    assert results[0].message is not None
    assert results[0].message["traits"] == {"email": "a@x.io", "plan": "pro"}
    assert results[1].errors == (
        RowError(
            3,
            None,
            "unknown_column",
            "column 3 has no header but holds '299.50'; give it a header",
        ),
    )
    assert results[2].message is not None  # trailing empty cells are harmless
    spill = list(iter_rows("buyers", "Email,Plan\nb@x.io,1,299.50\n"))
    assert spill[0].errors == (
        RowError(
            2,
            None,
            "unknown_column",
            "this row has 3 cells but the header has 2 (extra: '299.50'); a value containing the "
            "delimiter, like 1,299.50, must be quoted",
        ),
    )


# --------------------------------------------------------------------------------------------- amounts


def order_csv(amount: str, currency: str | None = "USD", delimiter: str = ",") -> str:
    header = ["Order ID", "Email", "Total", "Date"] + (["Currency"] if currency is not None else [])
    row = ["A1", "a@x.io", amount, "2024-03-01"] + ([currency] if currency is not None else [])
    return to_csv([header, row], delimiter)


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "revenue"),
    [
        ("49", "USD", 4900, "49.00"),
        ("49.00", "USD", 4900, "49.00"),
        ("49.5", "USD", 4950, "49.50"),
        ("1,299.50", "USD", 129950, "1299.50"),
        ("1,299", "USD", 129900, "1299.00"),
        ("1,299,000", "USD", 129900000, "1299000.00"),
        ("$49.00", "USD", 4900, "49.00"),
        ("US$ 49", "USD", 4900, "49.00"),
        (" 49.00 USD ", "USD", 4900, "49.00"),
        ("+49", "USD", 4900, "49.00"),
        ("0", "USD", 0, "0.00"),
        (".5", "USD", 50, "0.50"),
        ("49,90 €", "EUR", 4990, "49.90"),
        ("1.299,50", "EUR", 129950, "1299.50"),
        ("1 299,50", "EUR", 129950, "1299.50"),
        ("1'299.50", "CHF", 129950, "1299.50"),
        ("£12.5", "gbp", 1250, "12.50"),
        ("1500", "JPY", 1500, "1500"),
        ("¥1,500", "JPY", 1500, "1500"),
        ("₩12,000", "KRW", 12000, "12000"),
        ("1.500", "KWD", 1500, "1.500"),
        ("12.345", "BHD", 12345, "12.345"),
    ],
)
def test_amounts_become_integer_minor_units(amount: str, currency: str, minor: int, revenue: str) -> None:
    properties = one_message("orders", order_csv(amount, currency))["properties"]
    assert properties["total_minor"] == minor
    assert type(properties["total_minor"]) is int
    assert properties["revenue"] == revenue
    assert properties["currency"] == currency.upper()


def test_currency_defaults_to_usd_when_the_column_is_missing() -> None:
    properties = one_message("orders", order_csv("49.99", None))["properties"]
    assert (properties["currency"], properties["total_minor"], properties["revenue"]) == (
        "USD",
        4999,
        "49.99",
    )


def test_a_lone_three_digit_group_follows_the_file_convention() -> None:
    # Comma-delimited: "1,299" is a thousands separator.  Semicolon-delimited: a decimal comma.
    assert one_message("orders", order_csv("1,299", "USD"))["properties"]["total_minor"] == 129900
    result = only(list(iter_rows("orders", order_csv("1,299", "EUR", ";"))))
    assert result.errors == (RowError(2, "Total", "invalid_amount", "'1,299' has 3 decimals but EUR has 2"),)
    assert one_message("orders", order_csv("1.299", "EUR", ";"))["properties"]["total_minor"] == 129900


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (
            "-49",
            "USD",
            "'-49' is negative; amounts must be positive (a refund is a row with status refunded)",
        ),
        (
            "$-49.00",
            "USD",
            "'$-49.00' is negative; amounts must be positive (a refund is a row with status refunded)",
        ),
        (
            "(49.00)",
            "USD",
            "'(49.00)' is negative; amounts must be positive (a refund is a row with status refunded)",
        ),
        (
            "49.00-",
            "USD",
            "'49.00-' is negative; amounts must be positive (a refund is a row with status refunded)",
        ),
        ("49.999", "USD", "'49.999' has 3 decimals but USD has 2"),
        ("1500.50", "JPY", "JPY has no minor unit; write '1500.50' without decimals"),
        ("1500.00", "JPY", "JPY has no minor unit; write '1500.00' without decimals"),
        ("100.5", "KRW", "KRW has no minor unit; write '100.5' without decimals"),
        ("abc", "USD", "'abc' is not an amount; write it like 49, 49.00 or 1,299.50"),
        ("1,2,3", "USD", "'1,2,3' is not an amount; write it like 49, 49.00 or 1,299.50"),
        ("12.34.56", "USD", "'12.34.56' is not an amount; write it like 49, 49.00 or 1,299.50"),
        ("1e3", "USD", "'1e3' is not an amount; write it like 49, 49.00 or 1,299.50"),
        ("4 9", "USD", "'4 9' is not an amount; write it like 49, 49.00 or 1,299.50"),
        ("EUR 49", "USD", "'EUR 49' is in EUR but the currency is USD"),
        ("NaN", "USD", "'NaN' is not an amount; write it like 49, 49.00 or 1,299.50"),
        ("(49", "USD", "'(49' is not an amount; write it like 49, 49.00 or 1,299.50"),
    ],
)
def test_refused_amounts(amount: str, currency: str, message: str) -> None:
    result = only(list(iter_rows("orders", order_csv(amount, currency))))
    assert result.message is None
    assert result.errors == (RowError(2, "Total", "invalid_amount", message),)


@pytest.mark.parametrize(
    ("currency", "error"),
    [
        ("US", RowError(2, "Currency", "invalid_currency", "'US' is not an ISO 4217 currency code")),
        ("XYZ", RowError(2, "Currency", "invalid_currency", "'XYZ' is not an ISO 4217 currency code")),
        ("€", RowError(2, "Currency", "invalid_currency", "'€' is not an ISO 4217 currency code")),
        ("", RowError(2, "Currency", "missing_required", "currency is required when the column is present")),
    ],
)
def test_refused_currencies(currency: str, error: RowError) -> None:
    result = only(list(iter_rows("orders", order_csv("49", currency))))
    assert result.errors == (error,)


def test_discount_uses_the_same_parsing() -> None:
    text = to_csv(
        [
            ["Order ID", "Email", "Total", "Date", "Currency", "Coupon", "Discount"],
            ["A1", "a@x.io", "90", "2024-03-01", "JPY", "SPRING", "¥1,000"],
            ["A2", "a@x.io", "90", "2024-03-01", "JPY", "", "10.5"],
        ]
    )
    first, second = iter_rows("orders", text)
    assert first.message is not None
    assert first.message["properties"] == {
        "order_id": "A1",
        "total_minor": 90,
        "currency": "JPY",
        "revenue": "90",
        "coupon": "SPRING",
        "discount_minor": 1000,
    }
    assert second.errors == (
        RowError(3, "Discount", "invalid_amount", "JPY has no minor unit; write '10.5' without decimals"),
    )


# -------------------------------------------------------------------------------------- buyer fields


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *[("yes", True), ("YES", True), ("y", True), ("True", True), ("1", True), (" Y ", True)],
        *[("no", False), ("N", False), ("false", False), ("0", False), ("No", False)],
    ],
)
def test_boolean_consents(raw: str, value: bool) -> None:
    text = to_csv([["Email", "Marketing Consent", "Consent Personalization"], ["a@x.io", raw, raw]])
    traits = one_message("buyers", text)["traits"]
    assert traits == {"email": "a@x.io", "consent_marketing": value, "consent_personalization": value}


@pytest.mark.parametrize("raw", ["maybe", "2", "on", "oui", "t"])
def test_unknown_consent_values_are_errors(raw: str) -> None:
    text = to_csv([["Email", "Accepts Marketing"], ["a@x.io", raw]])
    result = only(list(iter_rows("buyers", text)))
    assert result.errors == (
        RowError(2, "Accepts Marketing", "invalid_boolean", f"{raw!r} is not yes/no, true/false, y/n or 1/0"),
    )


def test_every_buyer_field_and_extra_columns() -> None:
    header = [
        "User ID",
        "Email",
        "Anonymous ID",
        "Phone",
        "First Name",
        "Last Name",
        "Full Name",
        "Signup Date",
        "TikTok",
        "Instagram Handle",
        "Stripe Customer ID",
        "Accepts Marketing",
        "Personalization Consent",
        "Favourite Topic",
        "utmSource",
        "Empty Extra",
    ]
    row = [
        " u-42 ",
        " Ann.Lee@Example.COM ",
        "anon-1",
        "+44 20 1234",
        "Ann",
        "Lee",
        "Ann Lee",
        "2023-11-05 08:30",
        "@annlee",
        "ann.lee",
        "cus_123",
        "yes",
        "n",
        "Yoga",
        "tiktok",
        "",
    ]
    message = one_message("buyers", to_csv([header, row]), workspace_salt="ws1", source="shopify.csv")
    assert message == {
        "type": "identify",
        "messageId": message_id("ws1", "buyers", "", "user_id", "u-42"),
        "userId": "u-42",
        "anonymousId": "anon-1",
        "traits": {
            "email": "ann.lee@example.com",
            "phone": "+44 20 1234",
            "firstName": "Ann",
            "lastName": "Lee",
            "name": "Ann Lee",
            "createdAt": "2023-11-05T08:30:00Z",
            "tiktok_id": "@annlee",
            "instagram_id": "ann.lee",
            "stripe_customer_id": "cus_123",
            "consent_marketing": True,
            "consent_personalization": False,
            "favourite_topic": "Yoga",
            "utm_source": "tiktok",
        },
        "timestamp": "2023-11-05T08:30:00Z",
        "context": {"source": {"type": "import", "name": "shopify.csv"}},
    }


def test_email_only_buyer_gets_a_derived_anonymous_id() -> None:
    message = one_message("buyers", "Email\n  Bob@X.io \n", workspace_salt="salt")
    assert message == {
        "type": "identify",
        "messageId": message_id("salt", "buyers", "", "email", "bob@x.io"),
        "anonymousId": anonymous_id("salt", "bob@x.io"),
        "traits": {"email": "bob@x.io"},
        "context": SOURCE,
    }
    assert message["anonymousId"].startswith("import:")
    assert len(message["anonymousId"]) == len("import:") + 24


@pytest.mark.parametrize(
    "email",
    [
        "bob",
        "bob@",
        "@x.io",
        "bob@x",
        "bob@@x.io",
        "bob smith@x.io",
        "bob@x..io",
        "bob@x.c",
        "a,b@x.io",
        "<b@x.io>",
    ],
)
def test_invalid_emails(email: str) -> None:
    result = only(list(iter_rows("buyers", to_csv([["User ID", "Email"], ["u1", email]]))))
    assert result.errors == (RowError(2, "Email", "invalid_email", f"{email!r} is not an email address"),)


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2024-03-01", "2024-03-01T00:00:00Z"),
        ("2024-03-01 12:30", "2024-03-01T12:30:00Z"),
        ("2024-03-01 12:30:05", "2024-03-01T12:30:05Z"),
        ("2024-03-01T12:30:05Z", "2024-03-01T12:30:05Z"),
        ("2024-03-01T12:30:05+02:00", "2024-03-01T10:30:05Z"),
        ("2024-03-01T12:30:05.250-05:00", "2024-03-01T17:30:05.250000Z"),
        ("2024-03-01 12:30 UTC", "2024-03-01T12:30:00Z"),
    ],
)
def test_timestamps(raw: str, iso: str) -> None:
    message = one_message("buyers", to_csv([["Email", "Created At"], ["a@x.io", raw]]))
    assert message["timestamp"] == iso
    assert message["traits"]["createdAt"] == iso


@pytest.mark.parametrize("raw", ["03/01/2024", "yesterday", "2024-13-01", "1900-01-01", "2024-03-01 25:00"])
def test_refused_timestamps(raw: str) -> None:
    result = only(list(iter_rows("buyers", to_csv([["Email", "Created At"], ["a@x.io", raw]]))))
    assert [(e.column, e.code) for e in result.errors] == [("Created At", "invalid_timestamp")]


# ----------------------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    "junk",
    [
        "null",
        "NULL",
        "undefined",
        "None",
        "nil",
        "anonymous",
        "0",
        "-1",
        "N/A",
        "00000000-0000-0000-0000-000000000000",
    ],
)
def test_junk_identifiers(junk: str) -> None:
    alone = only(list(iter_rows("buyers", to_csv([["User ID", "Email", "Plan"], [junk, "", "pro"]]))))
    assert alone.errors == (
        RowError(
            2,
            "User ID",
            "junk_identifier",
            f"{junk!r} is a placeholder, not an identifier, and nothing else identifies this row",
        ),
    )
    # Something else identifies the row: the junk value is simply absent, and no error.
    message = one_message("buyers", to_csv([["User ID", "Email"], [junk, "a@x.io"]]), workspace_salt="s")
    assert "userId" not in message
    assert message["anonymousId"] == anonymous_id("s", "a@x.io")


def test_junk_in_every_identifier_reports_each_one() -> None:
    result = only(list(iter_rows("buyers", "User ID,Email,Anonymous ID\nnull,n/a,undefined\n")))
    assert codes(result) == [
        ("User ID", "junk_identifier"),
        ("Email", "junk_identifier"),
        ("Anonymous ID", "junk_identifier"),
    ]


def test_no_identifier() -> None:
    result = only(list(iter_rows("buyers", "User ID,Email,Plan\n,,pro\n")))
    assert result.errors == (RowError(2, None, "no_identifier", "this row has no user_id or email"),)


def test_orders_identify_by_user_id_or_email() -> None:
    text = to_csv(
        [
            ["Order ID", "Customer ID", "Email", "Total", "Date"],
            ["A1", "u-1", "Ann@x.io", "10", "2024-03-01"],
            ["A2", "null", "ann@x.io", "10", "2024-03-01"],
            ["A3", "0", "", "10", "2024-03-01"],
        ]
    )
    first, second, third = iter_rows("orders", text, workspace_salt="s")
    assert first.message is not None and second.message is not None
    assert first.message["userId"] == "u-1"
    assert "anonymousId" not in first.message
    assert first.message["context"] == {**SOURCE, "traits": {"email": "ann@x.io"}}
    assert second.message["anonymousId"] == anonymous_id("s", "ann@x.io")
    assert "userId" not in second.message
    assert third.errors == (
        RowError(
            4,
            "Customer ID",
            "junk_identifier",
            "'0' is a placeholder, not an identifier, and nothing else identifies this row",
        ),
    )


def test_order_status_and_refunds() -> None:
    text = to_csv(
        [
            ["Order ID", "Email", "Total", "Date", "Status", "Product ID", "Product Name"],
            ["A1", "a@x.io", "49", "2024-03-01", "Paid", "p-1", "Course"],
            ["A1", "a@x.io", "49", "2024-03-05", "Refunded", "p-1", "Course"],
            ["A2", "a@x.io", "49", "2024-03-01", "", "", "Ebook"],
            ["A3", "a@x.io", "49", "2024-03-01", "pending", "", ""],
        ]
    )
    completed, refunded, defaulted, pending = iter_rows("orders", text, workspace_salt="s")
    assert completed.message is not None
    assert refunded.message is not None
    assert defaulted.message is not None
    assert completed.message == {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id("s", "orders", "", "A1", "completed"),
        "anonymousId": anonymous_id("s", "a@x.io"),
        "properties": {
            "order_id": "A1",
            "total_minor": 4900,
            "currency": "USD",
            "revenue": "49.00",
            "products": [{"product_id": "p-1", "name": "Course"}],
        },
        "timestamp": "2024-03-01T00:00:00Z",
        "context": {**SOURCE, "traits": {"email": "a@x.io"}},
    }
    assert refunded.message["event"] == "Order Refunded"
    assert refunded.message["messageId"] == message_id("s", "orders", "", "A1", "refunded")
    assert defaulted.message["event"] == "Order Completed"
    assert defaulted.message["properties"]["products"] == [{"name": "Ebook"}]
    assert pending.errors == (
        RowError(
            5,
            "Status",
            "invalid_status",
            "status 'pending' is not imported: only completed orders (also written paid, succeeded or "
            "fulfilled) and refunded ones",
        ),
    )


def test_order_required_cells() -> None:
    text = to_csv(
        [
            ["Order ID", "Email", "Total", "Date"],
            ["", "a@x.io", "", ""],
            ["null", "a@x.io", "1", "2024-01-01"],
        ]
    )
    missing, junk = iter_rows("orders", text)
    assert missing.errors == (
        RowError(2, "Order ID", "missing_required", "order_id is required"),
        RowError(2, "Total", "missing_required", "amount is required"),
        RowError(2, "Date", "missing_required", "created_at is required"),
    )
    assert junk.errors == (
        RowError(3, "Order ID", "junk_identifier", "'null' is a placeholder, not an order id"),
    )


# ------------------------------------------------------------------------------------------ messageIds


BUYERS = "User ID,Email,Plan\nu-1,a@x.io,pro\n,b@x.io,free\n"


def ids(results: Any) -> list[str]:
    return [r.message["messageId"] for r in results if r.message is not None]


def test_message_ids_are_deterministic_and_distinct() -> None:
    first = ids(iter_rows("buyers", BUYERS, workspace_salt="ws"))
    assert first == ids(iter_rows("buyers", BUYERS, workspace_salt="ws"))
    assert first == [
        message_id("ws", "buyers", "", "user_id", "u-1"),
        message_id("ws", "buyers", "", "email", "b@x.io"),
    ]
    assert len(set(first)) == 2
    assert all(re.fullmatch(r"import-[0-9a-f]{32}", i) for i in first)
    # Another workspace salt gives other ids.
    assert set(first).isdisjoint(ids(iter_rows("buyers", BUYERS, workspace_salt="other")))


def test_changed_traits_keep_the_message_id_and_revision_changes_it() -> None:
    edited = "User ID,Email,Plan\nu-1,A@X.io,enterprise\n,B@x.io ,pro\n"
    original = list(iter_rows("buyers", BUYERS, workspace_salt="ws"))
    changed = list(iter_rows("buyers", edited, workspace_salt="ws"))
    assert ids(changed) == ids(original)  # re-importing a changed row is a no-op without --revision
    revised = list(iter_rows("buyers", edited, workspace_salt="ws", revision="2024-06"))
    assert ids(revised) == [
        message_id("ws", "buyers", "2024-06", "user_id", "u-1"),
        message_id("ws", "buyers", "2024-06", "email", "b@x.io"),
    ]
    assert set(ids(revised)).isdisjoint(ids(original))
    # The revision never moves the buyer: anonymousId stays the same.
    assert [r.message["anonymousId"] for r in revised[1:] if r.message] == [anonymous_id("ws", "b@x.io")]
    assert [r.message["anonymousId"] for r in original[1:] if r.message] == [anonymous_id("ws", "b@x.io")]


def test_buyer_and_order_ids_never_collide() -> None:
    buyer = one_message("buyers", "User ID\nA1\n")
    order = one_message("orders", "Order ID,User ID,Total,Date\nA1,A1,1,2024-01-01\n")
    email_buyer = one_message("buyers", "User ID\nu@x.io\n")
    user_buyer = one_message("buyers", "Email\nu@x.io\n")
    assert (
        len({buyer["messageId"], order["messageId"], email_buyer["messageId"], user_buyer["messageId"]}) == 4
    )


def test_duplicate_rows_in_one_file() -> None:
    results = list(iter_rows("buyers", "Email,Plan\na@x.io,pro\nA@x.io,free\n"))
    assert results[0].message is not None
    assert results[1] == RowResult(
        3,
        None,
        (
            RowError(
                3, None, "duplicate_row", "same buyer as row 2; only the first is imported, merge the rows"
            ),
        ),
    )


# ---------------------------------------------------------------------------------------- a whole file


def test_a_file_mixing_good_and_bad_rows() -> None:
    text = (
        "\ufeffOrder Number;Customer Email;Order Total;Currency;Order Date;Status;Product;Gift Note\n"
        "1001;ann@x.io;1.299,50;EUR;2024-03-01 09:15;paid;Course;\n"
        "1002;not-an-email;12;EUR;2024-03-01;paid;;\n"
        "\n"
        '1003;bob@x.io;-5;XXX;03/02/2024;paid;;"Happy\nbirthday"\n'
        "1001;ann@x.io;1.299,50;EUR;2024-03-09;refunded;Course;\n"
        ";;;;;;;\n"
        "1004;null;3000;JPY;2024-03-02T10:00:00+09:00;completed;;\n"
        "1005;cara@x.io;3000;JPY;2024-03-02;completed;Mug;With love\n"
    )
    results = list(iter_rows("orders", text.splitlines(keepends=True), workspace_salt="w", source="gumroad"))
    context = {"source": {"type": "import", "name": "gumroad"}}
    assert results == [
        RowResult(
            2,
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": message_id("w", "orders", "", "1001", "completed"),
                "anonymousId": anonymous_id("w", "ann@x.io"),
                "properties": {
                    "order_id": "1001",
                    "total_minor": 129950,
                    "currency": "EUR",
                    "revenue": "1299.50",
                    "products": [{"name": "Course"}],
                },
                "timestamp": "2024-03-01T09:15:00Z",
                "context": {**context, "traits": {"email": "ann@x.io"}},
            },
            (),
        ),
        RowResult(
            3,
            None,
            (RowError(3, "Customer Email", "invalid_email", "'not-an-email' is not an email address"),),
        ),
        RowResult(
            5,
            None,
            (
                RowError(
                    5,
                    "Order Total",
                    "invalid_amount",
                    "'-5' is negative; amounts must be positive (a refund is a row with status refunded)",
                ),
                RowError(5, "Currency", "invalid_currency", "'XXX' is not an ISO 4217 currency code"),
                RowError(
                    5,
                    "Order Date",
                    "invalid_timestamp",
                    "'03/02/2024' is not a date; use ISO 8601 like 2024-03-01 or 2024-03-01T12:30:00Z",
                ),
            ),
        ),
        RowResult(
            6,
            {
                "type": "track",
                "event": "Order Refunded",
                "messageId": message_id("w", "orders", "", "1001", "refunded"),
                "anonymousId": anonymous_id("w", "ann@x.io"),
                "properties": {
                    "order_id": "1001",
                    "total_minor": 129950,
                    "currency": "EUR",
                    "revenue": "1299.50",
                    "products": [{"name": "Course"}],
                },
                "timestamp": "2024-03-09T00:00:00Z",
                "context": {**context, "traits": {"email": "ann@x.io"}},
            },
            (),
        ),
        RowResult(
            8,
            None,
            (
                RowError(
                    8,
                    "Customer Email",
                    "junk_identifier",
                    "'null' is a placeholder, not an identifier, and nothing else identifies this row",
                ),
            ),
        ),
        RowResult(
            9,
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": message_id("w", "orders", "", "1005", "completed"),
                "anonymousId": anonymous_id("w", "cara@x.io"),
                "properties": {
                    "order_id": "1005",
                    "total_minor": 3000,
                    "currency": "JPY",
                    "revenue": "3000",
                    "products": [{"name": "Mug"}],
                    "gift_note": "With love",
                },
                "timestamp": "2024-03-02T00:00:00Z",
                "context": {**context, "traits": {"email": "cara@x.io"}},
            },
            (),
        ),
    ]
