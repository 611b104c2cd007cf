"""CSV imports of buyers and orders, turned into Segment messages (the pure part: no I/O, no database).

``offerloop import buyers FILE.csv`` and ``offerloop import orders FILE.csv`` read a spreadsheet export,
turn every data row into one Segment-spec message (``identify`` for buyers, ``track`` for orders) and send
it through the ordinary ingestion path.  This module does the reading and the turning; the caller sends
``RowResult.message`` to ``/v1/batch`` and shows ``RowResult.errors``.

Idempotency
    Every message gets a deterministic ``messageId``: ``"import-"`` + the first 32 hex digits of
    ``sha256(workspace_salt, kind, revision, identity)`` (the parts joined with ``\\x1f``), where the
    identity of a buyer row is its user_id, else its normalised email, else its anonymous_id, and the
    identity of an order row is its order_id plus its status (completed or refunded).  The store keeps a
    messageId once per workspace, so importing the same file twice is harmless.

    The flip side: **re-importing a buyer row whose traits changed is a no-op**, because the row still
    maps to the messageId that is already stored.  The CLI therefore offers ``--revision TEXT``
    (``iter_rows(..., revision=...)``): a new revision mixes into every messageId, so the rows are sent
    again and their newer traits land.  The revision never changes userId / anonymousId, only messageId.
    Within one file, a second row with the same identity is refused (``duplicate_row``) rather than being
    silently dropped by the store.

Columns
    ``default_mapping(kind)`` maps every field to its accepted header names, separated by ``|``.  Header
    matching ignores case, whitespace and punctuation (``"E-mail"``, ``"e mail"`` and ``"EMAIL"`` are the
    same).  ``parse_mapping("email=E-mail Address,user_id=Customer ID", kind)`` overrides single fields;
    every field it does not name keeps its default synonyms.  Rules:

    * A field whose value is its default synonym list is optional: it is used when such a column exists.
    * A field mapped to anything else must name a column of the file (``a|b`` = the first of these that
      exists), otherwise ``MappingError``.  Explicit mappings are resolved before the defaults.
    * ``field=`` (empty) turns a field off: its column, if any, is then treated as an extra column.
    * ``ignore=Notes|Address`` drops columns entirely (e.g. personal data you do not want stored).
    * Buyers: every other column is carried into ``traits`` under its header snake_cased
      (``"Favourite Topic"`` -> ``favourite_topic``).  Orders: into ``properties`` the same way.
    * A column with an empty header is skipped; a value under it refuses the row (``unknown_column``).

    ``MappingError`` is raised by ``iter_rows`` itself, before any row is read, and lists every problem:
    names of absent columns, unknown fields, no identifier column (buyers: user_id, email or anonymous_id;
    orders: user_id or email), and for orders no order_id, amount or created_at column (an imported order
    without a total or a date is useless, and fixing it later would be a no-op, see above).

Rows
    A row either yields a message and no errors, or ``message=None`` and every problem found in it.  Row
    numbers are the ones a spreadsheet shows: the header is row 1, the first data row is row 2 (a quoted
    value that spans lines is still one row; blank rows are skipped but counted).  ``RowError.column`` is
    the header as written in the file.  Empty cells never erase anything: they are simply left out.

    Error codes: ``missing_required``, ``invalid_email``, ``invalid_amount``, ``invalid_currency``,
    ``invalid_timestamp``, ``invalid_boolean``, ``invalid_status``, ``junk_identifier`` (every identifier
    present is a placeholder such as ``null``, ``guest``, ``0``, ``n/a`` or the all-zero UUID),
    ``invalid_identifier`` (longer than 255 characters), ``invalid_phone``, ``invalid_characters`` (a NUL
    character, which ingestion would quarantine), ``no_identifier``, ``unknown_column`` (cells
    beyond the header, or under an empty header), ``duplicate_row`` and ``malformed_row`` (broken CSV
    quoting).

    One source of truth: placeholders, id lengths and e-mail addresses are decided by
    ``offerloop.core.identifiers`` and currencies with their minor units by ``offerloop.core.currencies``,
    the same functions ingestion, identity look-ups and checkout use, so a row the import accepts is
    never quarantined by ingestion for its identifiers, and an amount books the same minor units as a
    checkout in that currency.

    Phone numbers and platform ids (TikTok, Instagram, Stripe customer) follow the same rules as
    identifiers: a placeholder (``n/a``, ``null``...) is left out, a phone identity resolution would not
    read as one (fewer than 7 or more than 15 digits) is ``invalid_phone``, an id over 255 characters is
    ``invalid_identifier``.

Buyers -> ``identify``
    ``userId`` is the user_id; ``anonymousId`` is the anonymous_id column when given, otherwise, for a row
    identified only by its email, ``"import:" + sha256(workspace_salt + email)[:24]`` (stable across
    revisions, so the same email always lands on the same anonymous buyer).  Traits use the Segment
    reserved names where Segment has one (``email``, ``phone``, ``firstName``, ``lastName``, ``name``,
    ``createdAt``) and snake_case otherwise (``tiktok_id``, ``instagram_id``, ``stripe_customer_id``,
    ``consent_marketing`` / ``consent_personalization`` as booleans).  created_at also becomes the message
    ``timestamp``.

Orders -> ``track`` ``"Order Completed"`` / ``"Order Refunded"``
    Same userId / anonymousId rule (orders have no anonymous_id column).  ``properties``: ``order_id``,
    ``total_minor`` (integer minor units), ``currency``, ``revenue`` (major units as a string, e.g.
    ``"49.00"``), ``products`` (``[{"product_id", "name"}]``) when given, ``coupon``, ``discount_minor``,
    then the extra columns.  The email, when given, goes to ``context.traits.email``.  order_id, amount and
    created_at are required in every row.  An empty status means completed; completed, paid, succeeded
    and fulfilled give "Order Completed", refunded gives "Order Refunded", anything else (pending,
    cancelled, partially refunded...) is refused with ``invalid_status``.  Without a currency column the
    currency is USD; with one, an empty cell is ``missing_required`` (guessing would misprice the order).
    A currency is an active ISO 4217 code or one withdrawn recently (HRK, SLL, ZWL...) that exports of
    past orders still carry; anything else is ``invalid_currency``.

Amounts are parsed with ``Decimal``, never float: ``49``, ``49.00``, ``1,299.50``, ``$49.00``,
``1.299,50``, ``49,90 €``.  A lone separator followed by exactly three digits (``1,299``) is read with
the file's convention: a thousands separator in comma-delimited files, a decimal comma in
semicolon-delimited ones.  Negative amounts and more decimals than the currency's ISO 4217 minor unit
has (any for JPY/KRW, three for USD, even zeros) are refused.  Timestamps are ISO 8601, ``YYYY-MM-DD`` or
``YYYY-MM-DD HH:MM[:SS]`` (a trailing ``UTC`` is allowed), UTC unless they carry an offset, and must fall
in 1970-2100; day-first or month-first dates such as ``03/01/2024`` are refused as ambiguous.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Final, Literal

from offerloop.core import currencies
from offerloop.core.identifiers import MAX_ID_LENGTH, is_junk, normalize_email, normalize_phone

__all__ = [
    "ImportKind",
    "MappingError",
    "RowError",
    "RowResult",
    "default_mapping",
    "iter_rows",
    "parse_mapping",
]

ImportKind = Literal["buyers", "orders"]


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


class MappingError(ValueError):
    """The column mapping cannot be applied to this file; ``problems`` lists every reason."""

    def __init__(self, problems: str | Sequence[str], *, kind: str | None = None) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        self.kind = kind
        what = f"{kind} import" if kind else "import"
        if len(self.problems) == 1:
            text = f"cannot map the columns of this {what}: {self.problems[0]}"
        else:
            lines = "".join(f"\n  - {p}" for p in self.problems)
            text = f"cannot map the columns of this {what} ({len(self.problems)} problems):{lines}"
        super().__init__(text)


# --------------------------------------------------------------------------------------------------------
# Fields and their default header synonyms (first match wins, in this order).

IGNORE: Final = "ignore"

_BUYER_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "user_id": ("User ID", "Customer ID", "Buyer ID", "Client ID", "External ID", "UID", "ID"),
    "email": (
        "Email",
        "Email Address",
        "Customer Email",
        "Buyer Email",
        "User Email",
        "Contact Email",
        "Mail",
    ),
    "anonymous_id": ("Anonymous ID", "Anon ID", "Visitor ID"),
    "phone": ("Phone", "Phone Number", "Mobile", "Mobile Phone", "Mobile Number", "Cell", "Telephone", "Tel"),
    "first_name": ("First Name", "Given Name", "Forename", "First"),
    "last_name": ("Last Name", "Surname", "Family Name", "Last"),
    "name": ("Name", "Full Name", "Customer Name", "Buyer Name", "Display Name"),
    "created_at": (
        "Created At",
        "Created",
        "Created Date",
        "Creation Date",
        "Date",
        "Signup Date",
        "Signed Up",
        "Signed Up At",
        "Joined",
        "Join Date",
        "Date Joined",
        "Subscribed At",
        "Customer Since",
    ),
    "tiktok_id": ("TikTok ID", "TikTok", "TikTok Handle", "TikTok Username"),
    "instagram_id": ("Instagram ID", "Instagram", "Instagram Handle", "Instagram Username", "IG"),
    "stripe_customer_id": ("Stripe Customer ID", "Stripe ID", "Stripe Customer"),
    "consent_marketing": (
        "Consent Marketing",
        "Marketing Consent",
        "Accepts Marketing",
        "Accepts Email Marketing",
        "Marketing Opt In",
        "Email Opt In",
        "Newsletter Opt In",
        "Opt In",
    ),
    "consent_personalization": (
        "Consent Personalization",
        "Personalization Consent",
        "Consent Personalisation",
        "Personalisation Consent",
    ),
}

_ORDER_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "order_id": (
        "Order ID",
        "Order Number",
        "Order No",
        "Order",
        "Transaction ID",
        "Txn ID",
        "Invoice ID",
        "Invoice Number",
        "Charge ID",
        "Sale ID",
        "Purchase ID",
    ),
    "user_id": ("User ID", "Customer ID", "Buyer ID", "Client ID", "External ID"),
    "email": (
        "Email",
        "Email Address",
        "Customer Email",
        "Buyer Email",
        "Purchaser Email",
        "User Email",
        "Contact Email",
        "Mail",
    ),
    "amount": (
        "Order Total",
        "Total",
        "Total Amount",
        "Grand Total",
        "Total Price",
        "Amount",
        "Amount Paid",
        "Revenue",
        "Price",
    ),
    "currency": ("Currency", "Currency Code"),
    "product_id": ("Product ID", "SKU", "Product SKU", "Product Code", "Item ID"),
    "product_name": ("Product Name", "Product", "Product Title", "Item Name", "Item", "Lineitem Name"),
    "status": ("Status", "Order Status", "Financial Status", "Payment Status"),
    "created_at": (
        "Created At",
        "Created",
        "Order Date",
        "Date",
        "Created Date",
        "Purchase Date",
        "Purchased At",
        "Ordered At",
        "Paid At",
        "Transaction Date",
        "Sale Date",
        "Timestamp",
    ),
    "coupon": ("Coupon", "Coupon Code", "Discount Code", "Promo Code", "Promo", "Voucher", "Voucher Code"),
    "discount": ("Discount", "Discount Amount", "Total Discount", "Discount Total", "Discounts"),
}

_FIELDS: Final[dict[str, dict[str, tuple[str, ...]]]] = {"buyers": _BUYER_FIELDS, "orders": _ORDER_FIELDS}
_IDENTIFIERS: Final[dict[str, tuple[str, ...]]] = {
    "buyers": ("user_id", "email", "anonymous_id"),
    "orders": ("user_id", "email"),
}
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {"buyers": (), "orders": ("order_id", "amount", "created_at")}

# Trait keys of the buyer fields whose Segment reserved name differs from the field name.
_BUYER_TRAIT_KEYS: Final = {
    "first_name": "firstName",
    "last_name": "lastName",
    "created_at": "createdAt",
}
_BUYER_TRAIT_FIELDS: Final = frozenset(_BUYER_FIELDS) - {"user_id", "anonymous_id"}
_ORDER_PROPERTY_KEYS: Final = frozenset(
    {"order_id", "total_minor", "currency", "revenue", "products", "coupon", "discount_minor"}
)

_TRUE: Final = frozenset({"yes", "y", "true", "1"})
_FALSE: Final = frozenset({"no", "n", "false", "0"})
_COMPLETED: Final = frozenset(
    {"completed", "complete", "paid", "succeeded", "success", "successful", "fulfilled"}
)
_REFUNDED: Final = frozenset({"refunded", "refund", "fully_refunded"})

_DEFAULT_CURRENCY: Final = "USD"
_MAX_MINOR: Final = 2**63 - 1

_SNIFF_LINES: Final = 50
_DELIMITERS: Final = (",", ";", "\t")
_SEP_LINE = re.compile(r"^sep=(.)\r?\n?$", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_YEAR_FIRST = re.compile(r"^\d{4}-?\d{2}")
_TZ_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)
_MONEY = re.compile(
    r"""^
    (?P<open>\()?\s*
    (?P<sign1>[-+\u2212])?\s*
    (?P<pre>[A-Za-z]{0,3}\$|[€£¥₩₹₽₺₪₫₱฿₦₴]|[A-Za-z]{3}(?=[\s\d]))?\s*
    (?P<sign2>[-+\u2212])?\s*
    (?P<num>(?:\d|[.,](?=\d))[\d.,'\x20\u00a0\u202f]*)
    (?P<post>[€£¥₩₹₽₺₪₫₱฿₦₴$]|[A-Za-z]{3})?\s*
    (?P<sign3>-)?\s*
    (?P<close>\))?
    $""",
    re.VERBOSE,
)
_GROUP_CHARS = re.compile(r"[.,'\x20\u00a0\u202f]")


# --------------------------------------------------------------------------------------------------------
# Public API


def default_mapping(kind: ImportKind) -> dict[str, str]:
    """Every field of ``kind`` -> its accepted header names separated by ``|`` (matched loosely)."""
    return {field: "|".join(names) for field, names in _fields(kind).items()}


def parse_mapping(spec: str | None, kind: ImportKind) -> dict[str, str]:
    """Parse ``"email=E-mail Address,user_id=Customer ID"`` into a complete {field: header} mapping.

    Fields not named keep their defaults; ``None`` or a blank spec gives ``default_mapping(kind)``.  A
    header containing a comma can be written quoted: ``'"name=Name, full",email=Mail'``.  ``field=``
    turns a field off; ``ignore=A|B`` drops columns.  Raises MappingError listing every bad entry.
    """
    mapping = default_mapping(kind)
    if spec is None or not spec.strip():
        return mapping
    problems: list[str] = []
    seen: set[str] = set()
    for entry in next(csv.reader([spec], skipinitialspace=True), []):
        if not entry.strip():
            continue
        if "=" not in entry:
            problems.append(f"{entry.strip()!r} is not of the form field=column header")
            continue
        raw_field, header = entry.split("=", 1)
        field = _field_name(raw_field)
        header = header.strip().strip('"').strip()
        if field != IGNORE and field not in mapping:
            problems.append(_unknown_field(raw_field.strip(), kind))
        elif field == IGNORE:  # may be repeated: ignore=A,ignore=B
            mapping[IGNORE] = "|".join(filter(None, (mapping.get(IGNORE, ""), header)))
        elif field in seen:
            problems.append(f"field {field} is mapped more than once")
        else:
            seen.add(field)
            mapping[field] = header
    if problems:
        raise MappingError(problems, kind=kind)
    return mapping


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


# --------------------------------------------------------------------------------------------------------
# Reading


def _fields(kind: str) -> dict[str, tuple[str, ...]]:
    try:
        return _FIELDS[kind]
    except KeyError:
        raise ValueError(f"unknown import kind {kind!r}: expected buyers or orders") from None


def _terminated(lines: Iterable[str]) -> Iterator[str]:
    """Drop a BOM and give every line an ending, so quoted newlines survive lines given without one."""
    first = True
    for line in lines:
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line if line.endswith(("\n", "\r")) else line + "\n"


def _sniff(sample: list[str]) -> str:
    """The delimiter that splits the header widest and the rows most consistently (comma on a tie)."""
    best, best_score = ",", (0, 0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            records = [r for r in csv.reader(sample, delimiter=delimiter) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        body = records[1:]
        consistent = sum(len(r) == width for r in body) / len(body) if body else 1.0
        score = (1, consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# --------------------------------------------------------------------------------------------------------
# Mapping a header row


@dataclass(frozen=True, slots=True)
class _Plan:
    kind: str
    headers: tuple[str, ...]
    columns: dict[str, int]  # field -> column index
    extras: tuple[tuple[int, str], ...]  # (column index, trait / property key)
    unnamed: tuple[int, ...]  # columns with an empty header
    group_hint: str  # the thousands separator of the file's convention

    def position(self, error: RowError) -> int:
        """Sort key: row-level errors first, then left to right as the spreadsheet shows them."""
        return -1 if error.column is None else self.headers.index(error.column)


def _norm(header: str) -> str:
    return _NOT_ALNUM.sub("", header.casefold())


def _snake(header: str) -> str:
    return _NOT_ALNUM.sub("_", _CAMEL.sub("_", header.strip()).lower()).strip("_")


def _field_name(raw: str) -> str:
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def _unknown_field(field: str, kind: str) -> str:
    known = ", ".join([*_fields(kind), IGNORE])
    return f"unknown field {field!r} for {kind} (known fields: {known})"


def _alternatives(spec: str) -> list[str]:
    return [alt.strip() for alt in spec.split("|") if alt.strip()]


def _find(headers: Sequence[str], wanted: str, taken: Iterable[int] = (), *, exact: bool = True) -> list[int]:
    """Columns named ``wanted`` loosely; with ``exact``, a single exact match settles any ambiguity."""
    skip = set(taken)
    same = [i for i, h in enumerate(headers) if h == wanted and i not in skip]
    if exact and len(same) == 1:
        return same
    key = _norm(wanted)
    return [i for i, h in enumerate(headers) if key and _norm(h) == key and i not in skip]


def _show(headers: Sequence[str], indexes: Iterable[int]) -> str:
    return ", ".join(repr(headers[i]) for i in indexes)


def _plan(
    kind: str,
    fields: Mapping[str, tuple[str, ...]],
    header: Sequence[str],
    mapping: Mapping[str, str] | None,
    delimiter: str,
) -> _Plan:
    headers = tuple(h.replace("\ufeff", "").strip() for h in header)
    problems: list[str] = []
    if not headers:
        raise MappingError("the file is empty: there is no header row", kind=kind)
    defaults = {field: "|".join(names) for field, names in fields.items()}
    wanted = dict(defaults)
    for field, spec in (mapping or {}).items():
        if field != IGNORE and field not in fields:
            problems.append(_unknown_field(field, kind))
        else:
            wanted[field] = spec

    columns: dict[str, int] = {}
    claimed: set[int] = set()
    attempted: set[str] = set()  # fields mapped explicitly (whether or not their column was found)

    def explicit(field: str, spec: str) -> list[int]:
        found: list[int] = []
        for alt in _alternatives(spec):
            found = _find(headers, alt)
            if found:
                break
        if not found:
            problems.append(
                f"{field}: no column named {' or '.join(map(repr, _alternatives(spec)))} "
                f"(the file's columns are: {_show(headers, range(len(headers)))})"
            )
        return found

    for field, spec in wanted.items():
        if field == IGNORE or spec == defaults.get(field) or not spec.strip():
            continue
        attempted.add(field)
        found = explicit(field, spec)
        if len(found) > 1:
            problems.append(f"{field}: several columns match ({_show(headers, found)}); name exactly one")
        elif found:
            columns[field] = found[0]
            claimed.add(found[0])

    ignored: set[int] = set()
    for alt in _alternatives(wanted.get(IGNORE, "")):
        found = explicit(IGNORE, alt)
        for index in found:
            users = [f for f, i in columns.items() if i == index]
            if users:
                problems.append(f"ignore: column {headers[index]!r} is mapped to {', '.join(users)}")
            ignored.add(index)

    for field, names in fields.items():
        if field in columns or wanted[field] != defaults[field]:
            continue
        for name in names:
            found = _find(headers, name, claimed | ignored, exact=False)
            if len(found) > 1:
                problems.append(
                    f"{field}: several columns could be it ({_show(headers, found)}); "
                    f"choose one with {field}=<column> or drop the others with ignore=<column>"
                )
            if found:
                columns[field] = found[0]
                claimed.add(found[0])
                break

    identifiers = _IDENTIFIERS[kind]
    if not any(f in columns or f in attempted for f in identifiers):
        problems.append(
            f"no identifier column: map one of {', '.join(identifiers)} "
            f"(e.g. {identifiers[0]}=<column>; the file's columns are: {_show(headers, range(len(headers)))})"
        )
    for field in _REQUIRED[kind]:
        if field not in columns and field not in attempted:
            problems.append(f"no {field} column: map it with {field}=<column>")

    extras: list[tuple[int, str]] = []
    unnamed: list[int] = []
    keys: dict[str, int] = {}
    reserved = _written_keys(kind, columns)
    target = "trait" if kind == "buyers" else "property"
    for index, name in enumerate(headers):
        if index in claimed or index in ignored:
            continue
        if not name:
            unnamed.append(index)
            continue
        key = _snake(name)
        if not key:
            problems.append(
                f"column {name!r} has no letters or digits to name a {target}; drop it with ignore"
            )
        elif key in reserved:
            problems.append(
                f"column {name!r} would be carried as {target} {key!r}, which the importer sets itself; "
                f"map it to a field or drop it with ignore={name}"
            )
        elif key in keys:
            problems.append(
                f"columns {headers[keys[key]]!r} and {name!r} would both be carried as {target} {key!r}; "
                "rename one or drop it with ignore=<column>"
            )
        else:
            keys[key] = index
            extras.append((index, key))

    if problems:
        raise MappingError(problems, kind=kind)
    return _Plan(
        kind=kind,
        headers=headers,
        columns=columns,
        extras=tuple(extras),
        unnamed=tuple(unnamed),
        group_hint="." if delimiter == ";" else ",",
    )


def _written_keys(kind: str, columns: Mapping[str, int]) -> frozenset[str]:
    """Trait (buyers) or property (orders) keys the importer itself sets, given the mapped fields."""
    if kind == "orders":
        return _ORDER_PROPERTY_KEYS
    keys: set[str] = set()
    for field in columns:
        if field in _BUYER_TRAIT_FIELDS:
            keys.update({field, _BUYER_TRAIT_KEYS.get(field, field)})
    return frozenset(keys)


# --------------------------------------------------------------------------------------------------------
# Rows


class _Invalid(ValueError):
    """One field's value is unusable: ``code`` and a message for the person fixing the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


def _clip(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


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


# --------------------------------------------------------------------------------------------------------
# Values


def _parse_timestamp(raw: str) -> datetime:
    text = _TZ_WORD.sub("", raw.strip())
    explain = f"{_clip(raw)} is not a date; use ISO 8601 like 2024-03-01 or 2024-03-01T12:30:00Z"
    if not _YEAR_FIRST.match(text):
        raise _Invalid("invalid_timestamp", explain)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid("invalid_timestamp", explain) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if not 1970 <= parsed.year <= 2100:
        raise _Invalid("invalid_timestamp", f"{_clip(raw)} is outside 1970-2100")
    return parsed


def _iso(moment: datetime) -> str:
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def _parse_decimal(raw: str, group_hint: str, currency: str | None) -> Decimal:
    """A non-negative decimal as written (``1,299.50``, ``$49``, ``1.299,50 €``); never via float."""
    bad = _Invalid("invalid_amount", f"{_clip(raw)} is not an amount; write it like 49, 49.00 or 1,299.50")
    match = _MONEY.match(raw.strip())
    if not match:
        raise bad
    if bool(match["open"]) != bool(match["close"]):
        raise bad
    signs = [s for s in (match["sign1"], match["sign2"], match["sign3"]) if s]
    if len(signs) > 1 or (match["pre"] and match["post"]):
        raise bad
    for code in (match["pre"], match["post"]):
        if code and code.isalpha() and currency is not None and code.upper() != currency:
            raise _Invalid(
                "invalid_amount", f"{_clip(raw)} is in {code.upper()} but the currency is {currency}"
            )
        if code and code.isalpha() and not _known_currency(code):
            raise bad
    if match["open"] or (signs and signs[0] != "+"):
        raise _Invalid(
            "invalid_amount",
            f"{_clip(raw)} is negative; amounts must be positive (a refund is a row with status refunded)",
        )

    number = match["num"].rstrip(" \u00a0\u202f")
    dots, commas = number.count("."), number.count(",")
    decimal_sep: str | None = None
    if dots and commas:
        decimal_sep = "." if number.rfind(".") > number.rfind(",") else ","
        if number.count(decimal_sep) > 1:
            raise bad
    elif dots or commas:
        sep = "." if dots else ","
        if number.count(sep) == 1:
            after = len(number) - number.index(sep) - 1
            ambiguous = after == 3 and number.index(sep) > 0
            decimal_sep = None if ambiguous and sep == group_hint else sep
    whole, fraction = number.rsplit(decimal_sep, 1) if decimal_sep else (number, "")
    if not fraction.isdigit() and fraction:
        raise bad
    groups = _GROUP_CHARS.split(whole)
    separators = set(_GROUP_CHARS.findall(whole))
    if len(groups) > 1 and (
        len(separators) > 1 or not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])
    ):
        raise bad
    digits = "".join(groups)
    if (digits and not digits.isdigit()) or not (digits or fraction):
        raise bad
    return Decimal(f"{digits or '0'}.{fraction}" if fraction else digits)


def _known_currency(code: str) -> bool:
    try:
        currencies.normalize(code, withdrawn=True)
    except currencies.InvalidCurrency:
        return False
    return True


def _to_minor(value: Decimal, raw: str, currency: str) -> int:
    places = currencies.exponent(currency)
    exponent = value.as_tuple().exponent
    written = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if written > places:
        if places == 0:
            why = f"{currency} has no minor unit; write {_clip(raw)} without decimals"
        else:
            why = f"{_clip(raw)} has {written} decimals but {currency} has {places}"
        raise _Invalid("invalid_amount", why)
    minor = int(value.scaleb(places))
    if minor > _MAX_MINOR:
        raise _Invalid("invalid_amount", f"{_clip(raw)} is too large")
    return minor


def _major(minor: int, places: int) -> str:
    if places == 0:
        return str(minor)
    units, cents = divmod(minor, 10**places)
    return f"{units}.{cents:0{places}d}"
