"""The feature kinds, each compiled to ``(actions, reader)``: the updaters an event runs and the reader of
the kind's state (see :mod:`offerloop.features.state` for the state each keeps)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from offerloop.core import currencies
from offerloop.core.clock import parse_timestamp
from offerloop.features.spec import (
    MISSING,
    CountFeature,
    DecayedCountFeature,
    DistinctCountFeature,
    Feature,
    FirstValueFeature,
    FlagFeature,
    LastValueFeature,
    LatestFeature,
    LatestObjectFeature,
    Match,
    MinDelayFeature,
    RecencyDaysFeature,
    ShareFeature,
    StageFeature,
    SumCurrency,
    SumFeature,
    TopLocalHourFeature,
    WeekdayShareFeature,
    compile_matches,
)
from offerloop.features.values import (
    _DAY,
    FeatureEvent,
    FeatureValue,
    _Action,
    _default,
    _event_value,
    _flatten,
    _Local,
    _number,
    _property,
    _Reader,
    _scalar,
    _state_key,
    _Update,
)

DISTINCT_CAP: Final = 1000

# --------------------------------------------------------------------------------------------------
# Per-kind updaters and readers.  Each returns (actions, reader).

_Built = tuple[list[_Action], _Reader]


def _action(matches: tuple[Match, ...] | None, update: _Update, *, local: bool = False) -> _Action:
    return _Action(matches=compile_matches(matches), update=update, local=local)


def _count(feature: CountFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, 0.0)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        f[key] = f.get(key, 0.0) + factor

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        value = f.get(key)
        out[feature.name] = missing if value is None else float(value)

    return [_action(feature.match, update)], read


def _decayed_count(feature: DecayedCountFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, 0.0)
    half_life = feature.half_life_days * _DAY

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        current = f.get(key)
        if current is None:
            f[key] = [factor, ts]
        elif ts >= current[1]:
            current[0] = current[0] * 0.5 ** ((ts - current[1]) / half_life) + factor
            current[1] = ts
        else:  # older than the reference time: add it already decayed to that time
            current[0] += factor * 0.5 ** ((current[1] - ts) / half_life)

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        current = f.get(key)
        if current is None:
            out[feature.name] = missing
            return
        value, at = current
        out[feature.name] = float(value) * 0.5 ** (max(0.0, now - at) / half_life)

    return [_action(feature.match, update)], read


def _sum(feature: SumFeature) -> _Built:
    if feature.currency is not None:
        return _money_sum(feature, feature.currency)
    key, missing = _state_key(feature), _default(feature, 0.0)
    primary, scale = _property(feature.value), _plain_scale(feature.scale)
    fallback = feature.fallback
    secondary = _property(fallback.value) if fallback is not None else None
    secondary_scale = _plain_scale(fallback.scale) if fallback is not None else 1.0

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        amount = _number(primary(event.properties), scale)
        if amount is None and secondary is not None:
            amount = _number(secondary(event.properties), secondary_scale)
        if amount is not None:
            f[key] = f.get(key, 0.0) + amount

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        value = f.get(key)
        out[feature.name] = missing if value is None else float(value)

    return [_action(feature.match, update)], read


def _plain_scale(scale: float | str) -> float:
    """A numeric scale (the spec allows "minor_units" only on a sum with a currency)."""
    if isinstance(scale, str):  # rejected by load_feature_spec; a hand-built model gets here
        raise ValueError("scale minor_units needs 'currency' on the sum")
    return scale


def _event_currency(raw: Any, default: str) -> str | None:
    """The ISO 4217 code of an event's currency property: ``default`` when absent (or null or blank), None
    when the value is not a code.  Withdrawn codes (HRK...) are accepted: replayed or imported past orders."""
    if raw is MISSING or raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        return currencies.normalize(raw, withdrawn=True)
    except currencies.InvalidCurrency:
        return None


def _money_sum(feature: SumFeature, currency: SumCurrency) -> _Built:
    """A sum kept per ISO 4217 currency ({code: minor units}); ``name`` reads the total in
    ``currency.code``, ``name.<CODE>`` each other currency seen.  Amounts are never added across currencies.

    An event whose currency is not an ISO 4217 code (a client typo: "US$", "XYZ") adds nothing anywhere
    rather than guessing its minor unit: it must not raise either, or the pipeline would park the event."""
    key, missing = _state_key(feature) + "/currency", _default(feature, 0.0)  # not the plain sum's number
    primary, fallback = _property(feature.value), feature.fallback
    secondary = _property(fallback.value) if fallback is not None else None
    currency_of, code = _property(currency.property), currency.code

    def scaled(value: Any, scale: float | str, exponent: int) -> float | None:
        return _number(value, float(10**exponent) if scale == "minor_units" else float(scale))

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        found = _event_currency(currency_of(event.properties), code)
        if found is None:
            return
        exponent = currencies.exponent(found)
        amount = scaled(primary(event.properties), feature.scale, exponent)
        if amount is None and fallback is not None and secondary is not None:
            amount = scaled(secondary(event.properties), fallback.scale, exponent)
        if amount is not None:
            totals = f.setdefault(key, {})
            totals[found] = totals.get(found, 0.0) + amount

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        totals = f.get(key) or {}
        own = totals.get(code)
        out[feature.name] = missing if own is None else float(own)
        for other in sorted(totals):
            if other != code:
                out[f"{feature.name}.{other}"] = float(totals[other])

    return [_action(feature.match, update)], read


def _keep_latest(key: str, get: Callable[[FeatureEvent], Any]) -> _Update:
    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        current = f.get(key)
        if current is not None and ts < current[0]:
            return
        value = _scalar(get(event))
        if value is not None:
            f[key] = [ts, value]

    return update


def _keep_earliest(key: str, get: Callable[[FeatureEvent], Any]) -> _Update:
    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        current = f.get(key)
        if current is not None and ts >= current[0]:
            return
        value = _scalar(get(event))
        if value is not None:
            f[key] = [ts, value]

    return update


def _held_value(key: str, name: str, missing: FeatureValue) -> _Reader:
    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        current = f.get(key)
        out[name] = missing if current is None else current[1]

    return read


def _latest(feature: LatestFeature) -> _Built:
    key = _state_key(feature)
    get = _property(feature.value)
    update = _keep_latest(key, lambda event: get(event.properties))
    return [_action(feature.match, update)], _held_value(key, feature.name, _default(feature, -1))


def _first_value(feature: FirstValueFeature) -> _Built:
    key = _state_key(feature)
    update = _keep_earliest(key, _event_value(feature))
    return [_action(feature.match, update)], _held_value(key, feature.name, _default(feature, ""))


def _last_value(feature: LastValueFeature) -> _Built:
    key = _state_key(feature)
    update = _keep_latest(key, _event_value(feature))
    return [_action(feature.match, update)], _held_value(key, feature.name, _default(feature, ""))


def _latest_object(feature: LatestObjectFeature) -> _Built:
    key, get, limit = _state_key(feature), _property(feature.value), feature.max_keys
    prefix = feature.name + "."

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        current = f.get(key)
        if current is not None and ts < current[0]:
            return
        value = get(event.properties)
        if isinstance(value, Mapping):
            flat: dict[str, FeatureValue] = {}
            _flatten(value, "", flat, limit, 0)
            f[key] = [ts, flat]

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        current = f.get(key)
        if current is not None:
            for name, value in current[1].items():
                out[prefix + name] = value

    return [_action(feature.match, update)], read


def _distinct_count(feature: DistinctCountFeature) -> _Built:
    key, get, missing = _state_key(feature), _property(feature.value), _default(feature, 0)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        value = _scalar(get(event.properties))
        if value is None:
            return
        token = value if isinstance(value, str) else json.dumps(value)
        seen = f.get(key)
        if seen is None:
            f[key] = {token: 1}
        elif token not in seen and len(seen) < DISTINCT_CAP:
            seen[token] = 1

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        seen = f.get(key)
        out[feature.name] = missing if seen is None else len(seen)

    return [_action(feature.match, update)], read


def _min_delay(feature: MinDelayFeature) -> _Built:
    key, get, missing = _state_key(feature), _property(feature.since_property), _default(feature, -1.0)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        raw = get(event.properties)
        if raw is MISSING or isinstance(raw, bool):
            return
        try:
            since = parse_timestamp(raw)
        except (ValueError, TypeError, OverflowError, OSError):
            return
        if since is None:
            return
        minutes = max(0.0, (ts - since.timestamp()) / 60.0)
        current = f.get(key)
        if current is None or minutes < current:
            f[key] = minutes

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        value = f.get(key)
        out[feature.name] = missing if value is None else float(value)

    return [_action(feature.match, update)], read


def _weekday_share(feature: WeekdayShareFeature) -> _Built:
    key, days, missing = _state_key(feature), frozenset(feature.weekdays), _default(feature, 0.0)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        assert local is not None
        current = f.get(key)
        if current is None:
            current = f[key] = [0.0, 0.0]
        if local[0] in days:
            current[0] += factor
        current[1] += factor

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        current = f.get(key)
        out[feature.name] = current[0] / current[1] if current is not None and current[1] > 0 else missing

    return [_action(feature.match, update, local=True)], read


def _share(feature: ShareFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, 0.0)
    part = compile_matches(feature.match)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        current = f.get(key)
        if current is None:
            current = f[key] = [0.0, 0.0]
        if any(m.matches(event.type, event.name, event.properties) for m in part):
            current[0] += factor
        current[1] += factor

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        current = f.get(key)
        out[feature.name] = current[0] / current[1] if current is not None and current[1] > 0 else missing

    return [_action(feature.of, update)], read


def _top_local_hour(feature: TopLocalHourFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, -1)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        assert local is not None
        hours = f.get(key)
        if hours is None:
            hours = f[key] = [0.0] * 24
        hours[local[1]] += factor

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        hours = f.get(key)
        if hours is None or max(hours) <= 0:
            out[feature.name] = missing
        else:
            out[feature.name] = max(range(24), key=hours.__getitem__)  # ties: the earliest hour

    return [_action(feature.match, update, local=True)], read


def _recency_days(feature: RecencyDaysFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, -1.0)

    def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
        current = f.get(key)
        if current is None or ts > current:
            f[key] = ts

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        last = f.get(key)
        out[feature.name] = missing if last is None else max(0.0, (now - last) / _DAY)

    return [_action(feature.match, update)], read


def _flag(feature: FlagFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, False)

    def mark(slot: int) -> _Update:
        def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
            current = f.get(key)
            if current is None:
                current = f[key] = [None, None]
            if current[slot] is None or ts > current[slot]:
                current[slot] = ts

        return update

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        current = f.get(key)
        if current is None:
            out[feature.name] = missing
            return
        set_at, cleared_at = current
        # The latest event wins; a set and a clear at the same instant leave the flag cleared.
        out[feature.name] = set_at is not None and (cleared_at is None or set_at > cleared_at)

    actions = [_action(feature.set_on, mark(0))]
    if feature.clear_on is not None:
        actions.append(_action(feature.clear_on, mark(1)))
    return actions, read


def _match_key(matches: tuple[Match, ...]) -> str:
    text = json.dumps([m.model_dump(mode="json") for m in matches], sort_keys=True)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def _stage(feature: StageFeature) -> _Built:
    key, missing = _state_key(feature), _default(feature, "")
    counters: dict[str, tuple[Match, ...]] = {}
    stages: list[tuple[str, tuple[tuple[str, int], ...]]] = []
    for stage in feature.stages:
        needs: list[tuple[str, int]] = []
        for requirement in stage.requirements():
            counter = _match_key(requirement.match)
            counters[counter] = requirement.match
            needs.append((counter, requirement.min_count))
        stages.append((stage.name, tuple(needs)))
    ordered = tuple(reversed(stages))

    def bump(counter: str) -> _Update:
        def update(f: dict[str, Any], event: FeatureEvent, ts: float, factor: float, local: _Local) -> None:
            counts = f.get(key)
            if counts is None:
                counts = f[key] = {}
            counts[counter] = counts.get(counter, 0) + 1

        return update

    def read(f: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
        counts: Mapping[str, int] = f.get(key) or {}
        for name, needs in ordered:  # the highest stage reached
            if all(counts.get(counter, 0) >= at_least for counter, at_least in needs):
                out[feature.name] = name
                return
        out[feature.name] = missing

    return [_action(matches, bump(counter)) for counter, matches in counters.items()], read


def _build(feature: Feature) -> _Built:
    if isinstance(feature, CountFeature):
        return _count(feature)
    if isinstance(feature, DecayedCountFeature):
        return _decayed_count(feature)
    if isinstance(feature, SumFeature):
        return _sum(feature)
    if isinstance(feature, LatestFeature):
        return _latest(feature)
    if isinstance(feature, LatestObjectFeature):
        return _latest_object(feature)
    if isinstance(feature, FirstValueFeature):
        return _first_value(feature)
    if isinstance(feature, LastValueFeature):
        return _last_value(feature)
    if isinstance(feature, DistinctCountFeature):
        return _distinct_count(feature)
    if isinstance(feature, MinDelayFeature):
        return _min_delay(feature)
    if isinstance(feature, WeekdayShareFeature):
        return _weekday_share(feature)
    if isinstance(feature, TopLocalHourFeature):
        return _top_local_hour(feature)
    if isinstance(feature, RecencyDaysFeature):
        return _recency_days(feature)
    if isinstance(feature, FlagFeature):
        return _flag(feature)
    if isinstance(feature, ShareFeature):
        return _share(feature)
    return _stage(feature)


def _read_builtins(state: Mapping[str, Any], now: float, out: dict[str, FeatureValue]) -> None:
    n = state.get("n", 0)
    weight = state.get("w", 0.0)
    if weight > 0:
        out["suppressed_share"] = state.get("ws", 0.0) / weight
        out["signal_confidence"] = state.get("wc", 0.0) / weight
    elif n > 0:
        out["suppressed_share"] = state.get("ns", 0) / n
        out["signal_confidence"] = state.get("cs", 0.0) / n
    else:
        out["suppressed_share"] = 0.0
        out["signal_confidence"] = 0.0
