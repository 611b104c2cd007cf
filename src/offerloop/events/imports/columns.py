"""Columns: the fields of each import kind, their header synonyms, the mapping and the header row's plan."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:  # rows imports this module
    from offerloop.events.imports.rows import RowError

ImportKind = Literal["buyers", "orders"]


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


_SNIFF_LINES: Final = 50
_DELIMITERS: Final = (",", ";", "\t")
_SEP_LINE = re.compile(r"^sep=(.)\r?\n?$", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


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
