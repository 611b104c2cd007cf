"""The offers catalog: what a creator sells, at which prices, with which coupons.

A catalog is YAML (or JSON, when the path ends in ``.json``)::

    offers:
      - key: pricing-playbook
        kind: product                # product | micro_offer | subscription | bundle | drop | tier
        title: "The pricing playbook"
        prices: {USD: 2700, EUR: 2500}   # integer minor units per ISO 4217 currency, never floats
        components:
          - {component: download, ref: pricing-playbook-pdf}
        order_bumps: [sales-page-teardown]
        upsells: [membership-monthly]
      - key: membership-monthly
        kind: subscription
        title: "Creator circle"
        prices: {USD: 3900}
        interval: month
        trial_days: 7
        quotas: {coaching_session: 2}   # per billing period
    coupons:
      - {code: LAUNCH20, percent_off: 20, applies_to: all, expires_at: "2026-01-31T23:59:59Z"}

:func:`parse_catalog` validates everything and raises :class:`CatalogError` listing every problem at
once, each as ``file:line: location: message`` (``offers[2].prices.USD``), in file order.
:func:`price_of` quotes an offer with its order bumps and a coupon; :func:`drop_state` says whether a
limited drop is a draft, scheduled, live or closed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path as FilePath
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias, cast

import yaml

from offerloop.core import currencies
from offerloop.core.money import Money, currency_code, exponent, total
from offerloop.declarative import StringDateLoader, show
from offerloop.offers.exceptions import CatalogError, PricingError

__all__ = [
    "BUNDLE_MEMBER_KINDS",
    "COMPONENT_KINDS",
    "DROP_STATES",
    "INTERVALS",
    "OFFER_KINDS",
    "RECURRING_KINDS",
    "Catalog",
    "Component",
    "ComponentKind",
    "Coupon",
    "DropState",
    "Interval",
    "Offer",
    "OfferKind",
    "Quote",
    "QuoteLine",
    "drop_state",
    "load_catalog",
    "parse_catalog",
    "price_of",
]

OfferKind: TypeAlias = Literal["product", "micro_offer", "subscription", "bundle", "drop", "tier"]
ComponentKind: TypeAlias = Literal[
    "assessment", "module", "community_space", "certification", "coaching_quota", "download", "deliverable"
]
Interval: TypeAlias = Literal["month", "year"]
DropState: TypeAlias = Literal["draft", "scheduled", "live", "closed"]

OFFER_KINDS: Final[tuple[str, ...]] = ("product", "micro_offer", "subscription", "bundle", "drop", "tier")
COMPONENT_KINDS: Final[tuple[str, ...]] = (
    "assessment",
    "module",
    "community_space",
    "certification",
    "coaching_quota",
    "download",
    "deliverable",
)
INTERVALS: Final[tuple[str, ...]] = ("month", "year")
RECURRING_KINDS: Final[tuple[str, ...]] = ("subscription", "tier")
# A bundle is sold once at one price: recurring offers and limited drops (inventory) stay out of it.
BUNDLE_MEMBER_KINDS: Final[tuple[str, ...]] = ("product", "micro_offer")
DROP_STATES: Final[tuple[str, ...]] = ("draft", "scheduled", "live", "closed")
MAX_TRIAL_DAYS: Final = 365

KEY_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
KEY_HINT: Final = "lowercase letters, digits and '-', e.g. 'pricing-playbook'"
POLICY_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # the assembly domain's policy id rule
PERSONA_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
QUOTA_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
COUPON_RE: Final = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
REF_RE: Final = re.compile(r"[^\s]{1,200}")
CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")

PathPart: TypeAlias = str | int
Path: TypeAlias = tuple[PathPart, ...]


# --------------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True, slots=True)
class Component:
    """Something an offer grants: an assessment, a module, a community space, a download, ..."""

    component: ComponentKind
    ref: str
    quantity: int | None = None
    access_days: int | None = None  # None: for as long as the offer grants access

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "ref": self.ref,
            "quantity": self.quantity,
            "access_days": self.access_days,
        }


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class Offer:
    """One sellable offer. Kind-specific fields are None (or empty) for the other kinds."""

    key: str
    kind: OfferKind
    title: str
    prices: Mapping[str, Money] = field(default_factory=dict, hash=False)  # currency -> price
    description: str | None = None
    components: tuple[Component, ...] = ()
    persona_fit: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    order_bumps: tuple[str, ...] = ()
    upsells: tuple[str, ...] = ()
    active: bool = True
    # micro_offer
    deliverable_policy: str | None = None
    turnaround_hours: int | None = None
    daily_capacity: int | None = None
    # subscription and tier
    interval: Interval | None = None
    trial_days: int = 0
    quotas: Mapping[str, int] = field(default_factory=dict, hash=False)  # name -> uses per period
    # bundle
    includes: tuple[str, ...] = ()
    # drop
    inventory: int | None = None
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    per_buyer_limit: int | None = None
    requires_signoff: bool = False  # always True for drops read from a catalog file
    exclusive_to: tuple[str, ...] = ()  # tier keys whose members alone may buy this drop
    line: int | None = field(default=None, compare=False)  # where the offer starts in its file

    def __post_init__(self) -> None:
        # Read-only views: a frozen offer must not change through its mappings either.
        object.__setattr__(self, "prices", _frozen_map(self.prices))
        object.__setattr__(self, "quotas", _frozen_map(self.quotas))

    @property
    def recurring(self) -> bool:
        return self.kind in RECURRING_KINDS

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted(self.prices))

    def price(self, currency: str) -> Money | None:
        """The price in ``currency`` (per interval for recurring offers), or None when not offered."""
        return self.prices.get(currency.upper())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (datetimes as ISO 8601 UTC)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "prices": {c: m.amount for c, m in sorted(self.prices.items())},
            "components": [c.to_dict() for c in self.components],
            "persona_fit": list(self.persona_fit),
            "tags": list(self.tags),
            "order_bumps": list(self.order_bumps),
            "upsells": list(self.upsells),
            "active": self.active,
            "deliverable_policy": self.deliverable_policy,
            "turnaround_hours": self.turnaround_hours,
            "daily_capacity": self.daily_capacity,
            "interval": self.interval,
            "trial_days": self.trial_days,
            "quotas": dict(sorted(self.quotas.items())),
            "includes": list(self.includes),
            "inventory": self.inventory,
            "opens_at": _iso(self.opens_at),
            "closes_at": _iso(self.closes_at),
            "per_buyer_limit": self.per_buyer_limit,
            "requires_signoff": self.requires_signoff,
            "exclusive_to": list(self.exclusive_to),
        }


@dataclass(frozen=True, slots=True)
class Coupon:
    """A discount code: a percentage, or a fixed amount per currency."""

    code: str
    percent_off: Decimal | None = None
    amount_off: Mapping[str, Money] = field(default_factory=dict, hash=False)
    applies_to: tuple[str, ...] | None = None  # offer keys; None: every offer
    max_redemptions: int | None = None
    expires_at: datetime | None = None
    once_per_buyer: bool = False
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount_off", _frozen_map(self.amount_off))

    def applies(self, offer_key: str) -> bool:
        return self.applies_to is None or offer_key in self.applies_to

    def expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on (the expiry instant itself is already too late)."""
        return self.expires_at is not None and _utc(now) >= self.expires_at


@dataclass(frozen=True, slots=True)
class Catalog:
    offers: tuple[Offer, ...]
    coupons: tuple[Coupon, ...] = ()
    version: str = ""  # first 16 hex characters of the sha256 of the parsed document
    path: str | None = field(default=None, compare=False)

    def offer(self, key: str) -> Offer | None:
        return next((o for o in self.offers if o.key == key), None)

    def coupon(self, code: str) -> Coupon | None:
        """The coupon with ``code`` (buyers type codes in any case)."""
        wanted = code.strip().upper()
        return next((c for c in self.coupons if c.code == wanted), None)

    def exclusive_drops(self, tier_key: str) -> tuple[Offer, ...]:
        """The drops that only members of tier ``tier_key`` may buy."""
        return tuple(o for o in self.offers if o.kind == "drop" and tier_key in o.exclusive_to)


# --------------------------------------------------------------------------------------------------
# Reading YAML and JSON with line numbers


def format_path(path: Path) -> str:
    """``("offers", 1, "prices", "USD")`` -> ``offers[1].prices.USD``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Problems:
    """Collects problems as ``file:line: location: message``; the line is that of the nearest known
    enclosing entry (a mapping entry's line is its key's line)."""

    def __init__(self, file: str, lines: Mapping[Path, int]) -> None:
        self.file = file
        self.lines = lines
        self.found: list[tuple[int, str, str]] = []  # (line, location, message)

    def line(self, path: Path) -> int:
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1

    def add(self, path: Path, message: str) -> None:
        self.found.append((self.line(path), format_path(path) or "catalog", message))

    def add_at(self, line: int, message: str, path: Path = ()) -> None:
        """A problem at a known line (a syntax error, a duplicate key)."""
        self.found.append((line, format_path(path), message))

    def __bool__(self) -> bool:
        return bool(self.found)

    def error(self) -> CatalogError:
        ordered = sorted(self.found, key=lambda item: item[0])  # stable: same line keeps finding order
        problems = [
            f"{self.file}:{line}: {location}: {message}" if location else f"{self.file}:{line}: {message}"
            for line, location, message in ordered
        ]
        details = [
            {"path": self.file, "line": line, "location": location or None, "message": message}
            for line, location, message in ordered
        ]
        return CatalogError(problems, details=details)


_Found: TypeAlias = tuple[int, Path, str]  # (line, location, message) found while reading the text


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    problems: list[_Found],
    seen: set[int],
) -> None:
    """Record the line of every mapping entry and sequence item under ``node``; flag duplicate keys."""
    # An alias is walked once: a document of nested aliases would otherwise blow up exponentially.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_at: dict[object, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_at:
                problems.append((line, (*path, key), f"duplicate key (first at line {first_at[key]})"))
            else:
                first_at[key] = line
            # The later value wins (as PyYAML builds it), so its problems point at the later line.
            lines[(*path, key)] = line
            # Problems name mapping keys as text ("prices.840"), never as list indexes.
            lines[(*path, str(key))] = line
            _walk(loader, value_node, (*path, key), lines, problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(loader, item, (*path, index), lines, problems, seen)


def _load_yaml(text: str) -> tuple[Any, dict[Path, int], list[_Found], bool]:
    """(data, lines, problems, parsed): dates stay strings; duplicate keys are problems."""
    loader = StringDateLoader(text)  # a SafeLoader: no arbitrary objects
    lines: dict[Path, int] = {}
    problems: list[_Found] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            lines[()] = node.start_mark.line + 1
            _walk(loader, node, (), lines, problems, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        column = f" (column {mark.column + 1})" if mark is not None else ""
        return None, {}, [(line, (), f"invalid YAML{column}: {exc.problem or exc.context}")], False
    except yaml.YAMLError as exc:
        return None, {}, [(1, (), f"invalid YAML: {exc}")], False
    finally:
        loader.dispose()
    return data, lines, problems, True


def _load(text: str, *, json_text: bool) -> tuple[Any, dict[Path, int], list[_Found]]:
    text = text.removeprefix("\ufeff")
    if not json_text:
        data, lines, problems, _ = _load_yaml(text)
        return data, lines, problems
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, {}, [(exc.lineno, (), f"invalid JSON (column {exc.colno}): {exc.msg}")]
    # JSON is YAML flow style, so composing it as YAML gives the lines (and duplicate keys, which
    # json.loads would silently collapse). A literal tab in valid JSON is whitespace, which YAML
    # refuses as indentation: spaces keep every line and column where it was.
    _, lines, problems, parsed = _load_yaml(text.replace("\t", " "))
    return data, lines if parsed else {}, problems if parsed else []


def content_version(data: Any) -> str:
    """Hex sha256 (first 16 characters) of the canonical JSON of ``data``: key order never matters."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# Field checks: each reports through ``p`` and returns None (or a default) when the value is unusable.


def _unknown_key(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
    return f"unknown key ({hint})"


def _shown(value: object) -> str:
    """``show`` with booleans as YAML spells them (true, false)."""
    return str(value).lower() if isinstance(value, bool) else show(value)


def _mapping(raw: Any, path: Path, p: _Problems, what: str) -> dict[Any, Any] | None:
    if not isinstance(raw, dict):
        p.add(path, f"{what} must be a mapping, got {show(raw)}")
        return None
    return raw


def _list(raw: Any, path: Path, p: _Problems) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        p.add(path, f"must be a list, got {show(raw)}")
        return []
    return raw


def _text(raw: Mapping[str, Any], key: str, path: Path, p: _Problems, *, required: bool) -> str | None:
    if key not in raw:
        if required:
            p.add(path, f"missing required key {key!r}")
        return None
    value = raw[key]
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None and not required:
        return None
    p.add((*path, key), f"must be a non-empty string, got {show(value)}")
    return None


def _matching(raw: Any, path: Path, p: _Problems, pattern: re.Pattern[str], what: str) -> str | None:
    if isinstance(raw, str) and pattern.fullmatch(raw):
        return raw
    p.add(path, f"must be {what}, got {show(raw)}")
    return None


def _key(raw: Any, path: Path, p: _Problems) -> str | None:
    return _matching(raw, path, p, KEY_RE, f"an offer key ({KEY_HINT})")


def _names(raw: Any, path: Path, p: _Problems, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """A list of names, duplicates dropped (they mean nothing twice)."""
    out: list[str] = []
    for index, item in enumerate(_list(raw, path, p)):
        name = _matching(item, (*path, index), p, pattern, what)
        if name is not None and name not in out:
            out.append(name)
    return tuple(out)


def _integer(raw: Any, path: Path, p: _Problems, *, minimum: int) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        p.add(path, f"must be an integer, got {show(raw)}")
        return None
    if raw < minimum:
        p.add(path, f"must be at least {minimum}, got {raw}")
        return None
    return raw


def _flag(raw: Mapping[str, Any], key: str, path: Path, p: _Problems, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        p.add((*path, key), f"must be true or false, got {_shown(value)}")
        return default
    return value


def _currency(raw: Any, path: Path, p: _Problems) -> str | None:
    if isinstance(raw, str) and CURRENCY_RE.fullmatch(raw) and currencies.is_active(raw):
        return raw
    p.add(path, f"not an ISO 4217 currency code (three capital letters, e.g. USD), got {show(raw)}")
    return None


def _amount(raw: Any, currency: str | None, path: Path, p: _Problems, *, minimum: int) -> int | None:
    """An integer amount of minor units; floats and decimal strings are refused (no rounding guesses)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        example_currency = currency or "USD"
        example = 49 * 10 ** exponent(example_currency)
        hint = f"e.g. {example} for {Money(example_currency, example).format()}"
        p.add(path, f"must be an integer amount in minor units ({hint}), got {show(raw)}")
        return None
    if raw < minimum:
        p.add(
            path,
            f"must not be negative, got {raw}" if minimum == 0 else f"must be at least {minimum}, got {raw}",
        )
        return None
    return raw


def _money_map(raw: Any, path: Path, p: _Problems, *, minimum: int, what: str) -> dict[str, Money] | None:
    """A mapping currency -> amount, with at least one currency."""
    data = _mapping(raw, path, p, what)
    if data is None:
        return None
    if not data:
        p.add(path, f"{what} must map at least one currency to an amount, e.g. {{USD: 4900}}")
        return None
    out: dict[str, Money] = {}
    ok = True
    for cur, value in data.items():
        code = _currency(cur, (*path, str(cur)), p)
        amount = _amount(value, code, (*path, str(cur)), p, minimum=minimum)
        if code is None or amount is None:
            ok = False
        else:
            out[code] = Money(code, amount)
    return out if ok else None


def _instant(raw: Mapping[str, Any], key: str, path: Path, p: _Problems) -> datetime | None:
    """An ISO 8601 date-time with a zone, as UTC; a zone-less time is refused (whose 9 am?)."""
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    where = (*path, key)
    example = "e.g. 2026-03-02T17:00:00+01:00 or 2026-03-02T16:00:00Z"
    if not isinstance(value, str):
        p.add(where, f"must be an ISO 8601 date-time with a time zone ({example}), got {show(value)}")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        p.add(where, f"must be an ISO 8601 date-time with a time zone ({example}), got {show(value)}")
        return None
    if parsed.tzinfo is None:
        p.add(where, f"needs a time zone (add Z or an offset such as +01:00), got {show(value)}")
        return None
    return parsed.astimezone(UTC)


def _percent(raw: Any, path: Path, p: _Problems) -> Decimal | None:
    """A percentage 0 < x <= 100 from a number or a decimal string ('12.5')."""
    number: Decimal | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        number = Decimal(str(raw))  # str(): 12.5, not the binary expansion of the float
    elif isinstance(raw, str):
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        p.add(path, f"must be a number such as 20 or '12.5', got {show(raw)}")
        return None
    if not Decimal(0) < number <= Decimal(100):
        p.add(path, f"must be more than 0 and at most 100, got {show(raw)}")
        return None
    return number


# --------------------------------------------------------------------------------------------------
# Offers and coupons

_COMMON_KEYS: Final = (
    "key",
    "kind",
    "title",
    "description",
    "prices",
    "components",
    "persona_fit",
    "tags",
    "order_bumps",
    "upsells",
    "active",
)
# Keys that belong to some kinds only.
_KIND_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "deliverable_policy": ("micro_offer",),
    "turnaround_hours": ("micro_offer",),
    "daily_capacity": ("micro_offer",),
    "interval": RECURRING_KINDS,
    "trial_days": RECURRING_KINDS,
    "quotas": RECURRING_KINDS,
    "includes": ("bundle",),
    "inventory": ("drop",),
    "opens_at": ("drop",),
    "closes_at": ("drop",),
    "per_buyer_limit": ("drop",),
    "requires_signoff": ("drop",),
    "exclusive_to": ("drop",),
}
_REQUIRED_BY_KIND: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "micro_offer": (
        ("deliverable_policy", "the policy id of its deliverable"),
        ("turnaround_hours", "the promised turnaround"),
        ("daily_capacity", "how many it takes a day"),
    ),
    "subscription": (("interval", "month or year"),),
    "tier": (("interval", "month or year"),),
    "bundle": (("includes", "the offer keys it contains"),),
    "drop": (
        ("inventory", "how many units exist"),
        ("opens_at", "when it goes on sale"),
        ("closes_at", "when it stops selling"),
    ),
}
_COMPONENT_KEYS: Final = ("component", "ref", "quantity", "access_days")
_COUPON_KEYS: Final = (
    "code",
    "percent_off",
    "amount_off",
    "applies_to",
    "max_redemptions",
    "expires_at",
    "once_per_buyer",
)
_TOP_KEYS: Final = ("offers", "coupons")


def _kind_list(kinds: Iterable[str]) -> str:
    names = list(kinds)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(slots=True)
class _Refs:
    """Offer keys a parsed entry points at, with where each is written (checked once all are known)."""

    path: Path
    key: str | None
    kind: str | None
    order_bumps: list[tuple[Path, str]] = field(default_factory=list)
    upsells: list[tuple[Path, str]] = field(default_factory=list)
    includes: list[tuple[Path, str]] = field(default_factory=list)
    exclusive_to: list[tuple[Path, str]] = field(default_factory=list)


def _ref_list(raw: Any, path: Path, p: _Problems) -> list[tuple[Path, str]]:
    """Offer keys with their paths (valid slugs only; others are reported here)."""
    out: list[tuple[Path, str]] = []
    for index, item in enumerate(_list(raw, path, p)):
        key = _key(item, (*path, index), p)
        if key is not None:
            out.append(((*path, index), key))
    return out


def _component(raw: Any, path: Path, p: _Problems) -> Component | None:
    data = _mapping(raw, path, p, "a component")
    if data is None:
        return None
    count = len(p.found)
    for key in data:
        if key not in _COMPONENT_KEYS:
            p.add((*path, str(key)), _unknown_key(str(key), _COMPONENT_KEYS))
    kind: str | None = None
    if "component" not in data:
        p.add(path, "missing required key 'component'")
    else:
        kind = data["component"]
        if kind not in COMPONENT_KINDS:
            p.add((*path, "component"), f"must be one of {', '.join(COMPONENT_KINDS)}, got {show(kind)}")
    ref: str | None = None
    if "ref" not in data:
        p.add(path, "missing required key 'ref'")
    else:
        ref = _matching(data["ref"], (*path, "ref"), p, REF_RE, "a non-empty reference without spaces")
    quantity = _integer(data["quantity"], (*path, "quantity"), p, minimum=1) if "quantity" in data else None
    days = (
        _integer(data["access_days"], (*path, "access_days"), p, minimum=1) if "access_days" in data else None
    )
    if len(p.found) != count or kind is None or ref is None:
        return None
    return Component(component=cast(ComponentKind, kind), ref=ref, quantity=quantity, access_days=days)


def _quotas(raw: Any, path: Path, p: _Problems) -> dict[str, int]:
    data = _mapping(raw, path, p, "quotas")
    out: dict[str, int] = {}
    for name, value in (data or {}).items():
        where = (*path, str(name))
        ok_name = _matching(name, where, p, QUOTA_RE, "a quota name (lowercase letters, digits and '_')")
        count = _integer(value, where, p, minimum=1)
        if ok_name is not None and count is not None:
            out[ok_name] = count
    return out


def _offer(raw: Any, path: Path, p: _Problems) -> tuple[Offer | None, _Refs]:
    data = _mapping(raw, path, p, "an offer")
    if data is None:
        return None, _Refs(path, None, None)
    count = len(p.found)

    key = _key(data["key"], (*path, "key"), p) if "key" in data else None
    if "key" not in data:
        p.add(path, "missing required key 'key'")
    kind: str | None = None
    if "kind" not in data:
        p.add(path, "missing required key 'kind'")
    elif data["kind"] in OFFER_KINDS:
        kind = data["kind"]
    else:
        p.add((*path, "kind"), f"must be one of {', '.join(OFFER_KINDS)}, got {show(data['kind'])}")
    refs = _Refs(path, key, kind)

    for name in data:
        if name in _COMMON_KEYS:
            continue
        if name in _KIND_KEYS:
            kinds = _KIND_KEYS[name]
            if kind is not None and kind not in kinds:
                p.add((*path, name), f"{name} is only for {_kind_list(kinds)} offers, not {kind}")
        else:
            p.add((*path, str(name)), _unknown_key(str(name), (*_COMMON_KEYS, *_KIND_KEYS)))
    for name, why in _REQUIRED_BY_KIND.get(kind or "", ()):
        if name not in data:
            p.add(path, f"missing required key {name!r} ({why}) for a {kind} offer")

    title = _text(data, "title", path, p, required=True)
    description = _text(data, "description", path, p, required=False)
    prices: dict[str, Money] | None = None
    if "prices" not in data:
        p.add(path, "missing required key 'prices' (an amount in minor units per currency, e.g. {USD: 4900})")
    else:
        prices = _money_map(data["prices"], (*path, "prices"), p, minimum=0, what="prices")
    components: list[Component] = []
    for index, item in enumerate(_list(data.get("components"), (*path, "components"), p)):
        component = _component(item, (*path, "components", index), p)
        if component is not None:
            components.append(component)
    persona_fit = _names(
        data.get("persona_fit"),
        (*path, "persona_fit"),
        p,
        PERSONA_RE,
        "a persona name (lowercase letters, digits and '_')",
    )
    tags = _names(data.get("tags"), (*path, "tags"), p, KEY_RE, f"a tag ({KEY_HINT})")
    refs.order_bumps = _ref_list(data.get("order_bumps"), (*path, "order_bumps"), p)
    refs.upsells = _ref_list(data.get("upsells"), (*path, "upsells"), p)
    active = _flag(data, "active", path, p, True)

    extra: dict[str, Any] = {}
    if kind == "micro_offer":
        if "deliverable_policy" in data:
            extra["deliverable_policy"] = _matching(
                data["deliverable_policy"],
                (*path, "deliverable_policy"),
                p,
                POLICY_RE,
                "a policy id (lowercase letters, digits, '_' and '-')",
            )
        for name in ("turnaround_hours", "daily_capacity"):
            if name in data:
                extra[name] = _integer(data[name], (*path, name), p, minimum=1)
    elif kind in RECURRING_KINDS:
        interval = data.get("interval")
        if "interval" in data and interval not in INTERVALS:
            p.add((*path, "interval"), f"must be month or year, got {show(interval)}")
        extra["interval"] = interval
        if "trial_days" in data:
            trial = _integer(data["trial_days"], (*path, "trial_days"), p, minimum=0)
            if trial is not None and trial > MAX_TRIAL_DAYS:
                p.add((*path, "trial_days"), f"must be at most {MAX_TRIAL_DAYS}, got {trial}")
            extra["trial_days"] = trial or 0
        if "quotas" in data:
            extra["quotas"] = _quotas(data["quotas"], (*path, "quotas"), p)
        if kind == "tier" and not any(c.component == "community_space" for c in components):
            # What makes a superfan tier more than a subscription: a space to belong to.
            p.add(path, "a tier must grant at least one community_space component")
    elif kind == "bundle":
        raw_includes = data.get("includes")
        refs.includes = _ref_list(raw_includes, (*path, "includes"), p)
        distinct = {k for _, k in refs.includes}
        # Only when every entry is a valid key: otherwise the count would be misleading.
        if isinstance(raw_includes, list) and len(refs.includes) == len(raw_includes) and len(distinct) < 2:
            p.add((*path, "includes"), f"a bundle needs at least 2 different offers, got {len(distinct)}")
        extra["includes"] = tuple(k for _, k in refs.includes)
    elif kind == "drop":
        extra.update(_drop_fields(data, path, p))
        refs.exclusive_to = _ref_list(data.get("exclusive_to"), (*path, "exclusive_to"), p)
        extra["exclusive_to"] = tuple(dict.fromkeys(k for _, k in refs.exclusive_to))

    if len(p.found) != count or key is None or kind is None or title is None or prices is None:
        return None, refs
    offer = Offer(
        key=key,
        kind=cast(OfferKind, kind),
        title=title,
        prices=prices,
        description=description,
        components=tuple(components),
        persona_fit=persona_fit,
        tags=tags,
        order_bumps=tuple(dict.fromkeys(k for _, k in refs.order_bumps)),
        upsells=tuple(dict.fromkeys(k for _, k in refs.upsells)),
        active=active,
        line=p.line(path),
        **extra,
    )
    return offer, refs


def _drop_fields(data: Mapping[str, Any], path: Path, p: _Problems) -> dict[str, Any]:
    inventory = (
        _integer(data["inventory"], (*path, "inventory"), p, minimum=1) if "inventory" in data else None
    )
    opens_at = _instant(data, "opens_at", path, p)
    closes_at = _instant(data, "closes_at", path, p)
    if opens_at is not None and closes_at is not None and closes_at <= opens_at:
        p.add(
            (*path, "closes_at"),
            f"must be after opens_at ({_iso(opens_at)}), got {_iso(closes_at)}",
        )
    limit = 1  # a limited edition: one per buyer unless the creator says otherwise
    if "per_buyer_limit" in data:
        checked = _integer(data["per_buyer_limit"], (*path, "per_buyer_limit"), p, minimum=1)
        if checked is not None and inventory is not None and checked > inventory:
            p.add((*path, "per_buyer_limit"), f"must not exceed inventory ({inventory}), got {checked}")
        limit = checked or limit
    if "requires_signoff" in data and data["requires_signoff"] is not True:
        p.add(
            (*path, "requires_signoff"),
            f"must be true (a drop cannot go live without sign-off), got {_shown(data['requires_signoff'])}",
        )
    return {
        "inventory": inventory,
        "opens_at": opens_at,
        "closes_at": closes_at,
        "per_buyer_limit": limit,
        "requires_signoff": True,
    }


def _coupon(raw: Any, path: Path, p: _Problems) -> tuple[Coupon | None, list[tuple[Path, str]]]:
    data = _mapping(raw, path, p, "a coupon")
    if data is None:
        return None, []
    count = len(p.found)
    for key in data:
        if key not in _COUPON_KEYS:
            p.add((*path, str(key)), _unknown_key(str(key), _COUPON_KEYS))
    code: str | None = None
    if "code" not in data:
        p.add(path, "missing required key 'code'")
    else:
        code = _matching(
            data["code"],
            (*path, "code"),
            p,
            COUPON_RE,
            "a coupon code (capital letters, digits, '_' and '-', e.g. LAUNCH20)",
        )
    percent: Decimal | None = None
    amount_off: dict[str, Money] | None = None
    if "percent_off" in data and "amount_off" in data:
        p.add(path, "give either percent_off or amount_off, not both")
    elif "percent_off" in data:
        percent = _percent(data["percent_off"], (*path, "percent_off"), p)
    elif "amount_off" in data:
        amount_off = _money_map(data["amount_off"], (*path, "amount_off"), p, minimum=1, what="amount_off")
    else:
        p.add(path, "a coupon needs percent_off or amount_off")
    applies: list[tuple[Path, str]] = []
    applies_to: tuple[str, ...] | None = None
    raw_applies = data.get("applies_to", "all")
    if raw_applies != "all":
        if not isinstance(raw_applies, list) or not raw_applies:
            p.add(
                (*path, "applies_to"),
                f"must be all or a non-empty list of offer keys, got {show(raw_applies)}",
            )
        else:
            applies = _ref_list(raw_applies, (*path, "applies_to"), p)
            applies_to = tuple(dict.fromkeys(k for _, k in applies))
    max_redemptions = None
    if data.get("max_redemptions") is not None:
        max_redemptions = _integer(data["max_redemptions"], (*path, "max_redemptions"), p, minimum=1)
    expires_at = _instant(data, "expires_at", path, p)
    once = _flag(data, "once_per_buyer", path, p, False)
    if len(p.found) != count or code is None:
        return None, applies
    coupon = Coupon(
        code=code,
        percent_off=percent,
        amount_off=amount_off or {},
        applies_to=applies_to,
        max_redemptions=max_redemptions,
        expires_at=expires_at,
        once_per_buyer=once,
        line=p.line(path),
    )
    return coupon, applies


def _check_references(entries: list[_Refs], coupon_refs: list[list[tuple[Path, str]]], p: _Problems) -> None:
    """Bumps, upsells, bundle contents, drop tiers and coupon targets must name known offers."""
    kinds: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for entry in entries:
        if entry.key is None:
            continue
        if entry.key in first_line:
            p.add(
                (*entry.path, "key"),
                f"duplicate offer key {entry.key!r} (first at line {first_line[entry.key]})",
            )
            continue
        first_line[entry.key] = p.line((*entry.path, "key"))
        if entry.kind is not None:
            kinds[entry.key] = entry.kind

    def known(where: Path, key: str) -> bool:
        if key in first_line:
            return True
        close = difflib.get_close_matches(key, list(first_line), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        p.add(where, f"unknown offer {key!r}{hint}")
        return False

    for entry in entries:
        for label, items in (("order bump", entry.order_bumps), ("upsell", entry.upsells)):
            for where, key in items:
                if key == entry.key:
                    p.add(where, f"an offer cannot be its own {label}")
                else:
                    known(where, key)
        seen: set[str] = set()
        for where, key in entry.includes:
            if key == entry.key:
                p.add(where, "a bundle cannot contain itself")
            elif key in seen:
                p.add(where, f"{key!r} is listed twice")
            elif known(where, key) and key in kinds and kinds[key] not in BUNDLE_MEMBER_KINDS:
                p.add(
                    where,
                    f"a bundle holds {_kind_list(BUNDLE_MEMBER_KINDS)} offers; {key!r} is a {kinds[key]}",
                )
            seen.add(key)
        for where, key in entry.exclusive_to:
            if known(where, key) and key in kinds and kinds[key] != "tier":
                p.add(where, f"exclusive_to names tiers; {key!r} is a {kinds[key]}")
    for refs in coupon_refs:
        for where, key in refs:
            known(where, key)


def parse_catalog(text: str, *, path: str = "<string>") -> Catalog:
    """Catalog YAML (JSON when ``path`` ends in ``.json``) -> a validated :class:`Catalog`.

    Raises :class:`CatalogError` (status 422, code ``invalid_catalog``) whose ``problems`` name every
    problem as ``file:line: location: message``, in file order.
    """
    data, lines, found = _load(text, json_text=path.lower().endswith(".json"))
    p = _Problems(path, lines)
    for line, where, message in found:
        p.add_at(line, message, where)
    if data is None and not found:
        p.add_at(1, "the catalog is empty (expected a mapping with offers and coupons)")
    if data is None:  # broken or empty: nothing to check further (duplicate keys do not stop us)
        raise p.error()
    if not isinstance(data, dict):
        p.add((), f"must be a mapping with offers and coupons, got {show(data)}")
        raise p.error()
    for key in data:
        if key not in _TOP_KEYS:
            p.add((str(key),), _unknown_key(str(key), _TOP_KEYS))

    offers: list[Offer] = []
    entries: list[_Refs] = []
    raw_offers = data.get("offers")
    if not isinstance(raw_offers, list) or not raw_offers:
        p.add(("offers",), f"must be a non-empty list of offers, got {show(raw_offers)}")
        raw_offers = []
    for index, item in enumerate(raw_offers):
        offer, refs = _offer(item, ("offers", index), p)
        entries.append(refs)
        if offer is not None:
            offers.append(offer)

    coupons: list[Coupon] = []
    coupon_refs: list[list[tuple[Path, str]]] = []
    code_line: dict[str, int] = {}
    for index, item in enumerate(_list(data.get("coupons"), ("coupons",), p)):
        coupon, targets = _coupon(item, ("coupons", index), p)
        coupon_refs.append(targets)
        if coupon is None:
            continue
        if coupon.code in code_line:
            p.add(
                ("coupons", index, "code"),
                f"duplicate coupon code {coupon.code!r} (first at line {code_line[coupon.code]})",
            )
            continue
        code_line[coupon.code] = p.line(("coupons", index, "code"))
        coupons.append(coupon)

    _check_references(entries, coupon_refs, p)
    if p:
        raise p.error()
    return Catalog(offers=tuple(offers), coupons=tuple(coupons), version=content_version(data), path=path)


def load_catalog(file: str | FilePath) -> Catalog:
    """Read and parse a catalog file (UTF-8)."""
    target = FilePath(file)
    return parse_catalog(target.read_text(encoding="utf-8"), path=str(file))


# --------------------------------------------------------------------------------------------------
# Pricing


@dataclass(frozen=True, slots=True)
class QuoteLine:
    offer_key: str
    title: str
    unit_amount: Money
    quantity: int
    subtotal: Money  # unit_amount x quantity
    discount: Money  # this line's share of the coupon
    total: Money  # subtotal - discount
    role: Literal["offer", "bump"] = "offer"
    interval: Interval | None = None  # recurring offers: the amount is per interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_key": self.offer_key,
            "title": self.title,
            "role": self.role,
            "unit_amount": self.unit_amount.amount,
            "quantity": self.quantity,
            "subtotal": self.subtotal.amount,
            "discount": self.discount.amount,
            "total": self.total.amount,
            "interval": self.interval,
        }


@dataclass(frozen=True, slots=True)
class Quote:
    """What a checkout charges: the offer, its bumps, the coupon's discount spread over eligible lines."""

    offer_key: str
    currency: str
    lines: tuple[QuoteLine, ...]
    subtotal: Money
    discount: Money
    total: Money
    coupon: str | None = None
    catalog_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_key": self.offer_key,
            "currency": self.currency,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": self.subtotal.amount,
            "discount": self.discount.amount,
            "total": self.total.amount,
            "coupon": self.coupon,
            "catalog_version": self.catalog_version,
        }


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _priced(offer: Offer, currency: str) -> Money:
    price = offer.price(currency)
    if price is None:
        offered = ", ".join(offer.currencies)
        raise PricingError(
            f"{offer.key!r} is not offered in {currency} (offered in {offered})", code="currency_not_offered"
        )
    return price


def _offer_or_error(catalog: Catalog, key: str) -> Offer:
    offer = catalog.offer(key)
    if offer is None:
        raise PricingError(f"no offer {key!r} in the catalog", code="unknown_offer")
    if not offer.active:
        raise PricingError(f"offer {key!r} is not active", code="offer_inactive")
    return offer


def price_of(
    catalog: Catalog,
    offer_key: str,
    currency: str,
    *,
    coupon: str | Coupon | None = None,
    bumps: Sequence[str] = (),
    now: datetime,
    quantity: int = 1,
    coupon_redemptions: int = 0,
    buyer_redeemed_coupon: bool = False,
) -> Quote:
    """Quote ``offer_key`` in ``currency`` with order ``bumps`` (one each) and an optional coupon.

    The coupon's discount is computed once on the eligible lines' subtotal (a percentage rounded half
    to even on the minor unit; a fixed amount capped at that subtotal), then allocated across those
    lines in proportion to their subtotals, so line discounts always add up to the quote's discount.
    For a recurring offer the quote is the first charge (the coupon applies to it only).

    ``coupon_redemptions`` (redemptions so far) and ``buyer_redeemed_coupon`` come from the caller's
    records: they check ``max_redemptions`` and ``once_per_buyer``. Drop availability (sign-off,
    window, inventory) is not checked here: see :func:`drop_state`.

    Raises :class:`PricingError` with code ``unknown_offer``, ``offer_inactive``, ``invalid_currency``,
    ``currency_not_offered``, ``invalid_quantity``, ``per_buyer_limit``, ``bump_not_offered``,
    ``duplicate_bump``, ``unknown_coupon``, ``coupon_expired``, ``coupon_exhausted``,
    ``coupon_already_used``, ``coupon_not_applicable`` or ``coupon_currency_not_offered``.
    """
    now = _utc(now)
    try:
        cur = currency_code(currency)
    except ValueError:
        raise PricingError(f"not an ISO 4217 currency code: {currency!r}", code="invalid_currency") from None
    offer = _offer_or_error(catalog, offer_key)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise PricingError(f"quantity must be a positive integer, got {quantity!r}", code="invalid_quantity")
    if quantity > 1 and offer.kind in (*RECURRING_KINDS, "bundle"):
        raise PricingError(
            f"a {offer.kind} is bought one at a time, got quantity {quantity}", code="invalid_quantity"
        )
    if offer.kind == "drop" and offer.per_buyer_limit is not None and quantity > offer.per_buyer_limit:
        raise PricingError(
            f"{offer.key!r} is limited to {offer.per_buyer_limit} per buyer, got quantity {quantity}",
            code="per_buyer_limit",
        )

    priced: list[tuple[Offer, Money, int, Literal["offer", "bump"]]] = [
        (offer, _priced(offer, cur), quantity, "offer")
    ]
    for bump_key in bumps:
        if bump_key not in offer.order_bumps:
            allowed = ", ".join(offer.order_bumps) or "none"
            raise PricingError(
                f"{bump_key!r} is not an order bump of {offer.key!r} (bumps: {allowed})",
                code="bump_not_offered",
            )
        if any(item[0].key == bump_key for item in priced):
            raise PricingError(f"{bump_key!r} is already in the order", code="duplicate_bump")
        bump = _offer_or_error(catalog, bump_key)
        priced.append((bump, _priced(bump, cur), 1, "bump"))

    subtotals = [unit.times(qty) for _, unit, qty, _ in priced]
    discounts = [Money.zero(cur) for _ in priced]
    code: str | None = None
    if coupon is not None:
        found = coupon if isinstance(coupon, Coupon) else catalog.coupon(coupon)
        if found is None:
            raise PricingError(f"no coupon {coupon!r}", code="unknown_coupon")
        code = found.code
        discounts = _discounts(
            found,
            [item[0].key for item in priced],
            subtotals,
            cur,
            now,
            coupon_redemptions,
            buyer_redeemed_coupon,
        )

    lines = tuple(
        QuoteLine(
            offer_key=item.key,
            title=item.title,
            unit_amount=unit,
            quantity=qty,
            subtotal=sub,
            discount=off,
            total=sub - off,
            role=role,
            interval=item.interval,
        )
        for (item, unit, qty, role), sub, off in zip(priced, subtotals, discounts, strict=True)
    )
    subtotal = total(subtotals, cur)
    discount = total(discounts, cur)
    return Quote(
        offer_key=offer.key,
        currency=cur,
        lines=lines,
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        coupon=code,
        catalog_version=catalog.version,
    )


def _discounts(
    coupon: Coupon,
    keys: Sequence[str],
    subtotals: Sequence[Money],
    currency: str,
    now: datetime,
    redemptions: int,
    buyer_redeemed: bool,
) -> list[Money]:
    """Each line's share of the coupon's discount (zero for lines it does not apply to)."""
    if coupon.expired(now):
        raise PricingError(
            f"coupon {coupon.code} expired at {_iso(coupon.expires_at)}", code="coupon_expired"
        )
    if coupon.max_redemptions is not None and redemptions >= coupon.max_redemptions:
        raise PricingError(
            f"coupon {coupon.code} has been redeemed {coupon.max_redemptions} times, its limit",
            code="coupon_exhausted",
        )
    if coupon.once_per_buyer and buyer_redeemed:
        raise PricingError(f"coupon {coupon.code} can be used once per buyer", code="coupon_already_used")
    eligible = [i for i, key in enumerate(keys) if coupon.applies(key)]
    if not eligible:
        raise PricingError(
            f"coupon {coupon.code} does not apply to {', '.join(repr(k) for k in keys)}",
            code="coupon_not_applicable",
        )
    base = total([subtotals[i] for i in eligible], currency)
    if coupon.percent_off is not None:
        off = base.percent(coupon.percent_off)
    else:
        fixed = coupon.amount_off.get(currency)
        if fixed is None:
            offered = ", ".join(sorted(coupon.amount_off))
            raise PricingError(
                f"coupon {coupon.code} has no amount in {currency} (only {offered})",
                code="coupon_currency_not_offered",
            )
        off = min(fixed, base)  # never below zero: a coupon does not pay the buyer
    out = [Money.zero(currency) for _ in keys]
    if off.amount > 0:
        for i, share in zip(eligible, off.allocate([subtotals[i].amount for i in eligible]), strict=True):
            out[i] = share
    return out


def drop_state(drop: Offer, now: datetime, signed_off: bool, *, sold: int = 0) -> DropState:
    """Where a limited drop stands at ``now``.

    ``closed`` from ``closes_at`` on (the instant itself included) or once ``sold`` reaches the
    inventory; before that ``draft`` until signed off (or while inactive); then ``scheduled`` before
    ``opens_at`` and ``live`` from ``opens_at`` (included).
    """
    if drop.kind != "drop" or drop.opens_at is None or drop.closes_at is None:
        raise ValueError(f"{drop.key!r} is a {drop.kind}, not a drop with a sale window")
    now = _utc(now)
    if now >= drop.closes_at or (drop.inventory is not None and sold >= drop.inventory):
        return "closed"
    if not drop.active or (drop.requires_signoff and not signed_off):
        return "draft"
    if now < drop.opens_at:
        return "scheduled"
    return "live"
