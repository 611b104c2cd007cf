"""Conversion paths from the store and the attribution models over them (see docs/attribution.md).

A *conversion* of the default definition (``Order Completed``) is a purchase — the one definition analytics
and LTV share (``analytics.purchases``: a paid checkout order net of refunds, or a creator's/server's
``Order Completed`` of another order; never a write-key client's) — and its ``where`` condition sees the
purchase's ``order_id``, ``total_minor`` (net) and ``currency``. Any other name is a track event of that name
whose properties satisfy ``where``; it is one per ``order_id`` (else per event) and its value is
``total_minor`` in ``currency`` (else ``revenue``/``total`` in major units). Its *path* is the buyer's touchpoints since their previous conversion and at most
``lookback_days`` before it; the touches after a buyer's last conversion (or of a buyer who never
converted) in the period form a *null path*. offerloop's own e-mail, push and in-app clicks are touches
of the channels ``email``, ``push`` and ``in_app``. A conversion without any touch has the path
``(none)``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from offerloop.analytics import service as analytics_service
from offerloop.attribution import models, repository
from offerloop.attribution.exceptions import AttributionInputError
from offerloop.attribution.schemas import (
    AttributionRead,
    ChannelCredit,
    CreditsRead,
    CreditSum,
    RefreshRead,
)
from offerloop.core.conditions import ConditionError
from offerloop.core.conditions.where import Where

DEFAULT_CONVERSION = "Order Completed"
NONE = "(none)"
KEYS = ("channel", "source", "campaign", "content")
# Markov solves the chain once per value removed: thousands of campaigns (anyone with the write key can mint
# them) took half a minute. Past this many values, the ones in the fewest converting paths share "(other)".
MAX_MARKOV_KEYS = 200
OTHER = "(other)"
MAX_LOOKBACK_DAYS = 365
MAX_PERIOD_DAYS = 3660
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2100, 12, 31)  # the event times the store holds
# The source and mediums offerloop's own links carry (delivery.sending.campaign): channel by medium.
OWN_SOURCE = "offerloop"
OWN_CHANNELS = {"email": "email", "push": "push", "inapp": "in_app", "in_app": "in_app"}


@dataclass(frozen=True, slots=True)
class Touch:
    at: datetime
    channel: str
    source: str | None
    campaign: str | None
    content: str | None

    def key(self, by: str) -> str:
        value: str | None = getattr(self, by)
        return value if value else NONE


@dataclass(slots=True)
class Conversion:
    id: str
    buyer_id: str
    at: datetime
    value_minor: int
    currency: str | None
    touches: list[Touch] = field(default_factory=list)


@dataclass(frozen=True)
class Journeys:
    conversions: list[Conversion]
    null_paths: list[list[Touch]]


@dataclass(frozen=True)
class Definition:
    """What counts as a conversion: an event name and a ``where`` condition on its properties."""

    event: str = DEFAULT_CONVERSION
    where: Where | None = None

    @classmethod
    def parse(cls, event: str | None, where: Any) -> Definition:
        name = (event or DEFAULT_CONVERSION).strip()
        if not name or len(name) > 255 or not name.isprintable():
            raise AttributionInputError("the conversion event name must be 1 to 255 printable characters")
        try:
            condition = Where.of(where, "properties") if where else None
        except ConditionError as exc:
            raise AttributionInputError(f"bad conversion condition: {exc}") from exc
        return cls(event=name, where=condition)


def period(start: date | None, end: date | None, *, today: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in UTC; by default the last 30 days up to today."""
    end = end or today
    for name, day in (("start", start), ("end", end)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise AttributionInputError(f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    start = start or end - timedelta(days=29)
    if start > end:
        raise AttributionInputError(f"start ({start}) is after end ({end})")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise AttributionInputError(f"the period is at most {MAX_PERIOD_DAYS} days")
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)


_value = analytics_service.event_value  # one reading of an order event's value (analytics.purchases)
order_key = analytics_service.order_key
CONVERSION_ID_LENGTH = analytics_service.KEY_LENGTH  # attribution_credits.conversion_id


def _conversions(
    session: Session, workspace_id: str, definition: Definition, start: datetime, end: datetime,
    lookback: timedelta,
) -> tuple[dict[str, list[Conversion]], dict[str, datetime]]:  # fmt: skip
    """The conversions in [start, end) by buyer, and each buyer's last conversion in [start - lookback, start)
    (a path boundary). An order counts once, at its first event within the 365 days before the period (a
    resend is ignored); an order refunded in full is no conversion."""
    by_buyer: dict[str, list[Conversion]] = defaultdict(list)
    before: dict[str, datetime] = {}
    horizon = start - timedelta(days=MAX_LOOKBACK_DAYS)
    if definition.event == DEFAULT_CONVERSION:
        # purchases: the definition analytics and LTV share (a client's Order Completed is none)
        for key, buyer_id, at, minor, code in analytics_service.purchase_rows(
            session=session, workspace_id=workspace_id, start=horizon, end=end
        ):
            fields = {"order_id": key, "total_minor": minor, "currency": code}
            if definition.where is not None and not definition.where.holds(fields):
                continue
            if at < start:
                if at >= start - lookback:
                    before[buyer_id] = at
                continue
            by_buyer[buyer_id].append(Conversion(key, buyer_id, at, minor, code))
        return by_buyer, before
    refunded = {k for k in map(order_key, repository.refunded_orders(session, workspace_id, horizon)) if k}
    seen: set[str] = set()
    for event_id, buyer_id, at, props in repository.conversion_events(
        session, workspace_id, definition.event, horizon, end
    ):
        props = props if isinstance(props, dict) else {}
        order = order_key(props.get("order_id"))
        conv_id = order or f"event:{event_id}"
        if conv_id in seen:
            continue
        seen.add(conv_id)
        if order in refunded or (definition.where is not None and not definition.where.holds(props)):
            continue
        if at < start:
            if at >= start - lookback:
                before[buyer_id] = at
            continue
        minor, currency = _value(props)
        by_buyer[buyer_id].append(Conversion(conv_id, buyer_id, at, minor, currency))
    return by_buyer, before


def _touch(row: tuple[str, datetime, str, str | None, str | None, str | None, str | None]) -> Touch:
    _, at, channel, source, medium, campaign, content = row
    if source == OWN_SOURCE and medium in OWN_CHANNELS:
        channel = OWN_CHANNELS[medium]
    return Touch(at, channel, source, campaign, content)


def _split(
    touches: list[Touch],
    convs: list[Conversion],
    start: datetime,
    lookback: timedelta,
    after: datetime | None = None,
) -> list[Touch] | None:
    """Give each conversion its path; return the null path (touches after the last conversion), if any.
    ``after``: the buyer's conversion before the period, which consumed the touches until then."""
    if after is not None:
        touches = [t for t in touches if t.at > after]
    i = 0
    for conv in convs:
        used: list[Touch] = []
        while i < len(touches) and touches[i].at <= conv.at:
            used.append(touches[i])
            i += 1
        conv.touches = [t for t in used if t.at >= conv.at - lookback]
    rest = [t for t in touches[i:] if t.at >= start]
    return rest or None


def journeys(
    session: Session, *, workspace_id: str, definition: Definition, start: datetime, end: datetime,
    lookback_days: int,
) -> Journeys:  # fmt: skip
    if not 1 <= lookback_days <= MAX_LOOKBACK_DAYS:
        raise AttributionInputError(f"lookback_days must be 1 to {MAX_LOOKBACK_DAYS}")
    lookback = timedelta(days=lookback_days)
    by_buyer, before = _conversions(session, workspace_id, definition, start, end, lookback)
    null_paths: list[list[Touch]] = []
    buyer: str | None = None
    group: list[Touch] = []

    def flush() -> None:
        if buyer is not None:
            rest = _split(group, by_buyer.get(buyer, []), start, lookback, before.get(buyer))
            if rest:
                null_paths.append(rest)

    for row in repository.touches(session, workspace_id, start - lookback, end):
        if row[0] != buyer:
            flush()
            buyer, group = row[0], []
        group.append(_touch(row))
    flush()
    conversions = sorted((c for convs in by_buyer.values() for c in convs), key=lambda c: (c.at, c.id))
    return Journeys(conversions=conversions, null_paths=null_paths)


def _main_currency(conversions: Iterable[Conversion]) -> str | None:
    counts = Counter(c.currency for c in conversions if c.currency)
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], c))


def _path(touches: Sequence[Touch], by: str, keep: frozenset[str] | None = None) -> tuple[str, ...]:
    if keep is None:
        return tuple(t.key(by) for t in touches) or (NONE,)
    return tuple(k if k in keep else OTHER for k in (t.key(by) for t in touches)) or (NONE,)


def _kept_keys(j: Journeys, by: str, limit: int) -> frozenset[str] | None:
    """The ``limit - 1`` values in the most converting paths (then the most null paths, then by name), or None
    when there are no more than ``limit`` values in all."""
    converting: Counter[str] = Counter()
    walked: Counter[str] = Counter()
    for c in j.conversions:
        converting.update(set(_path(c.touches, by)))
    for p in j.null_paths:
        walked.update(set(_path(p, by)))
    values = set(converting) | set(walked)
    if len(values) <= limit:
        return None
    ranked = sorted(values, key=lambda k: (-converting[k], -walked[k], k))
    return frozenset(ranked[: limit - 1])


def path_set(
    j: Journeys, *, by: str, currency: str | None, with_ages: bool, keep: frozenset[str] | None = None
) -> models.PathSet:
    """Distinct paths (or, with ages for time decay, one row per conversion) over the ``by`` key; values outside
    ``keep`` (when given) count as "(other)"."""
    if with_ages:
        paths: list[tuple[str, ...]] = []
        ages: list[list[float]] = []
        conv: list[float] = []
        val: list[float] = []
        nul: list[float] = []
        for c in j.conversions:
            paths.append(_path(c.touches, by))
            ages.append([(c.at - t.at).total_seconds() / 86400 for t in c.touches] or [0.0])
            conv.append(1.0)
            val.append(float(c.value_minor) if c.currency == currency else 0.0)
            nul.append(0.0)
        for p in j.null_paths:
            paths.append(_path(p, by))
            ages.append([(p[-1].at - t.at).total_seconds() / 86400 for t in p])
            conv.append(0.0)
            val.append(0.0)
            nul.append(1.0)
        return models.PathSet.build(paths, conv, val, nul, ages=ages)
    agg: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for c in j.conversions:
        row = agg[_path(c.touches, by, keep)]
        row[0] += 1
        row[1] += float(c.value_minor) if c.currency == currency else 0.0
    for p in j.null_paths:
        agg[_path(p, by, keep)][2] += 1
    keys = list(agg)
    table = np.array([agg[k] for k in keys], dtype=np.float64).reshape(-1, 3)
    return models.PathSet.build(keys, table[:, 0], table[:, 1], table[:, 2])


def attribution(
    session: Session, *, workspace_id: str, model: str, definition: Definition, start: datetime,
    end: datetime, by: str = "channel", lookback_days: int = 30, order: int = 1, half_life_days: float = 7.0,
    currency: str | None = None,
) -> AttributionRead:  # fmt: skip
    """One model's credit per value of ``by`` for the conversions in [start, end)."""
    if model not in models.MODELS:
        raise AttributionInputError(f"unknown model {model!r}; expected one of {', '.join(models.MODELS)}")
    if by not in KEYS:
        raise AttributionInputError(f"by must be one of {', '.join(KEYS)}")
    j = journeys(session, workspace_id=workspace_id, definition=definition, start=start, end=end,
                 lookback_days=lookback_days)  # fmt: skip
    code = currency or _main_currency(j.conversions)
    channels: list[ChannelCredit] = []
    if j.conversions or j.null_paths:
        keep = _kept_keys(j, by, MAX_MARKOV_KEYS) if model == "markov" else None
        ps = path_set(j, by=by, currency=code, with_ages=model == "time_decay", keep=keep)
        result = models.attribute(ps, model, order=order, half_life=half_life_days)
        channels = [ChannelCredit(**c) for c in result.as_dict()["channels"]]
    return AttributionRead(model=model, key=by, currency=code, conversions=len(j.conversions),
                           null_paths=len(j.null_paths), channels=channels)  # fmt: skip


def _credit_rows(
    workspace_id: str, model: str, definition: Definition, j: Journeys, *, order: int, half_life_days: float
) -> list[tuple[Any, ...]]:
    """Each conversion's share per (channel, source, campaign, content); shares are computed over channels."""
    if not j.conversions:
        return []
    convs = j.conversions
    ps = models.PathSet.build(
        [_path(c.touches, "channel") for c in convs], np.ones(len(convs)), np.zeros(len(convs)),
        ages=[[(c.at - t.at).total_seconds() / 86400 for t in c.touches] or [0.0] for c in convs],
    )  # fmt: skip
    effects = None
    if model == "markov":
        full = models.markov(path_set(j, by="channel", currency=None, with_ages=False), order=order)
        assert full.removal_effects is not None
        effects = dict(zip(full.channels, full.removal_effects.tolist(), strict=True))
    shares = models.touch_shares(ps, model, half_life=half_life_days, removal_effects=effects)
    rows: list[tuple[Any, ...]] = []
    offset = 0
    for c in convs:
        sums: dict[tuple[str, str, str, str], float] = defaultdict(float)
        if c.touches:
            for t, s in zip(c.touches, shares[offset : offset + len(c.touches)], strict=True):
                sums[(t.channel, t.source or "", t.campaign or "", t.content or "")] += float(s)
            offset += len(c.touches)
        else:
            sums[(NONE, "", "", "")] = 1.0
            offset += 1
        for (channel, source, campaign, content), share in sums.items():
            rows.append((workspace_id, model, c.id, channel, source[:200], campaign[:200], content[:200],
                         definition.event, c.buyer_id, c.at, share, share * c.value_minor, c.currency))  # fmt: skip
    return rows


def refresh(
    session: Session, *, workspace_id: str, models_: Sequence[str], definition: Definition, start: datetime,
    end: datetime, lookback_days: int = 30, order: int = 1, half_life_days: float = 7.0,
) -> RefreshRead:  # fmt: skip
    """Recompute the stored credit of the conversions in [start, end) for each model (idempotent: the rows
    of the same models, conversion name and period are replaced)."""
    unknown = [m for m in models_ if m not in models.MODELS]
    if unknown or not models_:
        raise AttributionInputError(f"models must be among {', '.join(models.MODELS)}")
    if not (half_life_days > 0 and math.isfinite(half_life_days)):
        raise AttributionInputError("half_life_days must be a positive number")
    if definition.where is not None:
        raise AttributionInputError(
            "refresh stores the credit of every conversion of the event and takes no where condition "
            "(filter with GET /v1/attribution?where=...)"
        )
    repository.lock_refresh(session, workspace_id)
    j = journeys(session, workspace_id=workspace_id, definition=definition, start=start, end=end,
                 lookback_days=lookback_days)  # fmt: skip
    ids = [c.id for c in j.conversions]
    written = 0
    for model in dict.fromkeys(models_):
        rows = _credit_rows(workspace_id, model, definition, j, order=order, half_life_days=half_life_days)
        repository.delete_credits(session, workspace_id, model=model, conversion=definition.event,
                                  start=start, end=end)  # fmt: skip
        repository.delete_conversion_credits(session, workspace_id, model=model, conversion=definition.event,
                                             conversion_ids=ids)  # fmt: skip
        repository.insert_credits(session, rows)
        written += len(rows)
    return RefreshRead(models=list(dict.fromkeys(models_)), conversion=definition.event,
                       start=start.date(), end=(end - timedelta(days=1)).date(),
                       conversions=len(j.conversions), rows=written)  # fmt: skip


def credits(
    session: Session, *, workspace_id: str, model: str, by: str, start: datetime, end: datetime,
    currency: str | None = None, conversion: str = DEFAULT_CONVERSION,
) -> CreditsRead:  # fmt: skip
    """The stored credit summed by a key or by the buyer's current persona (``(none)`` without one)."""
    rows = repository.credit_sums(session, workspace_id, model=model, conversion=conversion, by=by, start=start,
                                  end=end, currency=currency)  # fmt: skip
    return CreditsRead(model=model, by=by,
                       credits=sorted((CreditSum(key=k or NONE, currency=c, conversions=s, value_minor=v)
                                       for k, c, s, v in rows), key=lambda x: (x.key, x.currency or "")))  # fmt: skip
