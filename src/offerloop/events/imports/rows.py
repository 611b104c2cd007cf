"""Rows: each data row read against the header's plan into one Segment message or every problem found."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from offerloop.core import currencies
from offerloop.core.identifiers import MAX_ID_LENGTH, is_junk, normalize_email, normalize_phone
from offerloop.events.imports.columns import (
    _BUYER_TRAIT_KEYS,
    _IDENTIFIERS,
    _SEP_LINE,
    _SNIFF_LINES,
    ImportKind,
    MappingError,
    _fields,
    _Plan,
    _plan,
    _sniff,
    _terminated,
)
from offerloop.events.imports.values import (
    _COMPLETED,
    _DEFAULT_CURRENCY,
    _FALSE,
    _REFUNDED,
    _TRUE,
    _clip,
    _Invalid,
    _iso,
    _major,
    _parse_decimal,
    _parse_timestamp,
    _to_minor,
)


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1-based row number as a spreadsheet shows it (header is row 1, first data row is 2)
    column: str | None  # the header as written in the file; None when the problem is the whole row
    code: str  # machine-readable, see the module docstring
    message: str


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    message: dict[str, Any] | None  # a Segment message ready for /v1/batch, or None when refused
    errors: tuple[RowError, ...]


def iter_rows(
    kind: ImportKind,
    lines: Iterable[str],
    *,
    mapping: Mapping[str, str] | None = None,
    source: str = "csv",
    workspace_salt: str = "",
    revision: str = "",
) -> Iterator[RowResult]:
    """Read a CSV export (lines of text) and yield one RowResult per non-blank data row.

    ``lines`` may be an open text file (ideally opened with ``newline=""``), a list of lines with or
    without line endings, or a whole str.  A UTF-8 BOM, an Excel ``sep=`` line and comma, semicolon or
    tab delimiters (sniffed) are accepted.  The header is read and the mapping checked here, eagerly:
    MappingError is raised by the call itself, before any row is read.
    """
    fields = _fields(kind)
    if isinstance(lines, str):
        lines = lines.splitlines(keepends=True)
    stream = _terminated(lines)
    sample = list(islice(stream, _SNIFF_LINES))
    delimiter: str | None = None
    if sample and (sep := _SEP_LINE.match(sample[0])):
        delimiter = sep.group(1)
        sample.pop(0)  # Excel hides this line, so the header still shows as row 1
    if delimiter is None:
        delimiter = _sniff(sample)
    reader = csv.reader(chain(sample, stream), delimiter=delimiter, strict=True)

    row = 0
    header: list[str] = []
    try:
        for record in reader:
            row += 1
            if any(cell.strip() for cell in record):
                header = record
                break
    except csv.Error as exc:
        raise MappingError(f"the header row cannot be read as CSV ({exc})", kind=kind) from exc
    plan = _plan(kind, fields, header, mapping, delimiter)
    return _results(plan, reader, row, source=source, salt=workspace_salt, revision=revision)


def _results(
    plan: _Plan, reader: Iterator[list[str]], row: int, *, source: str, salt: str, revision: str
) -> Iterator[RowResult]:
    seen: dict[str, int] = {}  # messageId -> the row that produced it
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            error = RowError(
                row, None, "malformed_row", f"this row is not valid CSV ({exc}); check its quotes"
            )
            yield RowResult(row, None, (error,))
            continue
        row += 1
        if not any(cell.strip() for cell in record):
            continue
        builder = _RowBuilder(plan, row, record, salt=salt, source=source)
        message = builder.build()
        if message is not None:
            message_id = _message_id(salt, plan.kind, revision, builder.identity)
            if message_id in seen:
                what = "buyer" if plan.kind == "buyers" else "order and status"
                builder.fail(
                    None,
                    "duplicate_row",
                    f"same {what} as row {seen[message_id]}; only the first is imported, merge the rows",
                )
            else:
                seen[message_id] = row
                message["messageId"] = message_id
        if builder.errors:
            yield RowResult(row, None, tuple(sorted(builder.errors, key=plan.position)))
        else:
            yield RowResult(row, message, ())


def _message_id(salt: str, kind: str, revision: str, identity: Sequence[str]) -> str:
    text = "\x1f".join((salt, kind, revision, *identity))
    return "import-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _anonymous_id(salt: str, email: str) -> str:
    return "import:" + hashlib.sha256((salt + email).encode("utf-8")).hexdigest()[:24]


class _RowBuilder:
    """Reads one record against a plan, collecting every error instead of stopping at the first."""

    def __init__(self, plan: _Plan, row: int, record: list[str], *, salt: str, source: str) -> None:
        self.plan = plan
        self.row = row
        self.record = record
        self.salt = salt
        self.source = source
        self.errors: list[RowError] = []
        self.identity: tuple[str, ...] = ()
        self.bad_identifier = False  # an identifier was present but refused (already reported)

    # -- helpers

    def fail(self, field: str | None, code: str, message: str) -> None:
        index = self.plan.columns.get(field) if field is not None else None
        column = self.plan.headers[index] if index is not None else None
        self.errors.append(RowError(self.row, column, code, message))

    def cell(self, field: str) -> str:
        index = self.plan.columns.get(field)
        if index is None or index >= len(self.record):
            return ""
        return self.record[index].strip()

    def has(self, field: str) -> bool:
        return field in self.plan.columns

    def check_shape(self) -> None:
        width = len(self.plan.headers)
        spill = [cell for cell in self.record[width:] if cell.strip()]
        if spill:
            self.fail(
                None,
                "unknown_column",
                f"this row has {len(self.record)} cells but the header has {width} "
                f"(extra: {', '.join(map(_clip, spill))}); a value containing the delimiter, "
                "like 1,299.50, must be quoted",
            )
        for index, cell in enumerate(self.record[:width]):
            if "\x00" in cell:  # ingestion quarantines such an event: no database stores NUL in text
                name = self.plan.headers[index] or None
                message = "this cell contains a NUL character (\\u0000), which cannot be stored"
                self.errors.append(RowError(self.row, name, "invalid_characters", message))
        for index in self.plan.unnamed:
            if index < len(self.record) and self.record[index].strip():
                self.fail(
                    None,
                    "unknown_column",
                    f"column {index + 1} has no header but holds {_clip(self.record[index].strip())}; "
                    "give it a header",
                )

    def extras(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for index, key in self.plan.extras:
            if index < len(self.record) and (value := self.record[index].strip()):
                out[key] = value
        return out

    def identifier(self, field: str, junk: list[str]) -> str | None:
        value = self.cell(field)
        if not value:
            return None
        if is_junk(value):
            junk.append(field)
            return None
        if len(value) > MAX_ID_LENGTH:
            self.fail(field, "invalid_identifier", f"{field} is longer than {MAX_ID_LENGTH} characters")
            self.bad_identifier = True
            return None
        return value

    def email(self, junk: list[str]) -> tuple[str | None, bool]:
        """(normalised email or None, whether an unusable email was reported)."""
        raw = self.cell("email")
        if not raw:
            return None, False
        if is_junk(raw):
            junk.append("email")
            return None, False
        email = normalize_email(raw)
        if email is None:
            self.fail("email", "invalid_email", f"{_clip(raw)} is not an email address")
            return None, True
        return email, False

    def phone(self) -> str | None:
        """The phone as written, when identity would read it as a phone number; a placeholder is left out."""
        raw = self.cell("phone")
        if not raw or is_junk(raw):
            return None
        if normalize_phone(raw) is None:
            self.fail("phone", "invalid_phone", f"{_clip(raw)} is not a phone number (7 to 15 digits)")
            return None
        return raw

    def timestamp(self, field: str, *, required: bool) -> str | None:
        raw = self.cell(field)
        if not raw:
            if required:
                self.fail(field, "missing_required", f"{field} is required")
            return None
        try:
            return _iso(_parse_timestamp(raw))
        except _Invalid as exc:
            self.fail(field, exc.code, exc.message)
            return None

    def identify_or_fail(self, junk: list[str], bad_email: bool) -> None:
        """Called when no identifier was usable: say why, once."""
        if bad_email or self.bad_identifier:
            return
        if junk:
            for field in junk:
                self.fail(
                    field,
                    "junk_identifier",
                    f"{_clip(self.cell(field))} is a placeholder, not an identifier, "
                    "and nothing else identifies this row",
                )
            return
        names = " or ".join(f for f in _IDENTIFIERS[self.plan.kind] if self.has(f))
        self.fail(None, "no_identifier", f"this row has no {names}")

    def context(self) -> dict[str, Any]:
        return {"source": {"type": "import", "name": self.source}}

    # -- messages

    def build(self) -> dict[str, Any] | None:
        self.check_shape()
        return self.buyer() if self.plan.kind == "buyers" else self.order()

    def buyer(self) -> dict[str, Any] | None:
        junk: list[str] = []
        user_id = self.identifier("user_id", junk)
        anonymous_id = self.identifier("anonymous_id", junk)
        email, bad_email = self.email(junk)
        traits: dict[str, Any] = {}
        if email:
            traits["email"] = email
        if phone := self.phone():
            traits["phone"] = phone
        for field in ("first_name", "last_name", "name"):
            if value := self.cell(field):
                traits[_BUYER_TRAIT_KEYS.get(field, field)] = value
        created = self.timestamp("created_at", required=False)
        if created:
            traits["createdAt"] = created
        for field in ("tiktok_id", "instagram_id", "stripe_customer_id"):
            if platform_id := self.identifier(field, []):  # a placeholder is left out, as ingestion would
                traits[field] = platform_id
        for field in ("consent_marketing", "consent_personalization"):
            raw = self.cell(field)
            if not raw:
                continue
            flag = raw.lower()
            if flag in _TRUE:
                traits[field] = True
            elif flag in _FALSE:
                traits[field] = False
            else:
                self.fail(field, "invalid_boolean", f"{_clip(raw)} is not yes/no, true/false, y/n or 1/0")
        for key, value in self.extras().items():
            traits[key] = value

        message: dict[str, Any] = {"type": "identify", "messageId": ""}
        if user_id:
            message["userId"] = user_id
            self.identity = ("user_id", user_id)
        elif email:
            self.identity = ("email", email)
        elif anonymous_id:
            self.identity = ("anonymous_id", anonymous_id)
        else:
            self.identify_or_fail(junk, bad_email)
        if anonymous_id:
            message["anonymousId"] = anonymous_id
        elif email and not user_id:
            message["anonymousId"] = _anonymous_id(self.salt, email)
        message["traits"] = traits
        if created:
            message["timestamp"] = created
        message["context"] = self.context()
        return None if self.errors else message

    def order(self) -> dict[str, Any] | None:
        order_id = self.cell("order_id")
        if not order_id:
            self.fail("order_id", "missing_required", "order_id is required")
        elif is_junk(order_id):
            self.fail("order_id", "junk_identifier", f"{_clip(order_id)} is a placeholder, not an order id")

        junk: list[str] = []
        user_id = self.identifier("user_id", junk)
        email, bad_email = self.email(junk)
        if not user_id and not email:
            self.identify_or_fail(junk, bad_email)

        status_raw = self.cell("status")
        status = re.sub(r"[\s-]+", "_", status_raw.lower()) if status_raw else "completed"
        if status in _COMPLETED:
            status, event = "completed", "Order Completed"
        elif status in _REFUNDED:
            status, event = "refunded", "Order Refunded"
        else:
            self.fail(
                "status",
                "invalid_status",
                f"status {_clip(status_raw)} is not imported: only completed orders (also written paid, "
                "succeeded or fulfilled) and refunded ones",
            )
            event = ""

        currency: str | None = _DEFAULT_CURRENCY
        if self.has("currency"):
            raw = self.cell("currency")
            currency = None
            if not raw:
                self.fail("currency", "missing_required", "currency is required when the column is present")
            else:
                try:
                    currency = currencies.normalize(raw, withdrawn=True)  # past orders may predate a change
                except currencies.InvalidCurrency:
                    self.fail(
                        "currency", "invalid_currency", f"{_clip(raw)} is not an ISO 4217 currency code"
                    )

        total = self.money("amount", currency, required=True)
        discount = self.money("discount", currency, required=False)
        timestamp = self.timestamp("created_at", required=True)
        if self.errors or total is None or currency is None:
            return None

        properties: dict[str, Any] = {
            "order_id": order_id,
            "total_minor": total,
            "currency": currency,
            "revenue": _major(total, currencies.exponent(currency)),
        }
        product: dict[str, str] = {}
        if value := self.cell("product_id"):
            product["product_id"] = value
        if value := self.cell("product_name"):
            product["name"] = value
        if product:
            properties["products"] = [product]
        if coupon := self.cell("coupon"):
            properties["coupon"] = coupon
        if discount is not None:
            properties["discount_minor"] = discount
        properties.update(self.extras())

        self.identity = (order_id, status)
        message: dict[str, Any] = {"type": "track", "event": event, "messageId": ""}
        if user_id:
            message["userId"] = user_id
        elif email:
            message["anonymousId"] = _anonymous_id(self.salt, email)
        message["properties"] = properties
        message["timestamp"] = timestamp
        context = self.context()
        if email:
            context["traits"] = {"email": email}
        message["context"] = context
        return message

    def money(self, field: str, currency: str | None, *, required: bool) -> int | None:
        raw = self.cell(field)
        if not raw:
            if required and self.has(field):
                self.fail(field, "missing_required", f"{field} is required")
            return None
        try:
            value = _parse_decimal(raw, self.plan.group_hint, currency)
            if currency is None:  # already reported; the amount itself is well-formed
                return None
            return _to_minor(value, raw, currency)
        except _Invalid as exc:
            self.fail(field, exc.code, exc.message)
            return None
