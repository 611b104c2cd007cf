"""Attribution models over distinct conversion paths: pure functions (numpy/scipy, no database).

Input is a :class:`PathSet`: distinct paths (channel sequences) with, for each, the number of conversions,
their total value and the number of times the path ended without one (null paths). Every model returns an
:class:`Attribution` (per channel: conversions, value, and the removal effect for Markov).

* ``first``/``last``: the whole conversion goes to the first/last touch.
* ``linear``: each touch gets 1/n (a channel touched twice gets 2/n).
* ``time_decay``: touch i gets ``2 ** (-age_i / half_life)``, normalised over the path; ``age`` is the time
  from the touch to the conversion (days, from the store) or, for paths without times, the position from
  the end (the last touch has age 0, the one before 1, …).
* ``position``: 40% first, 40% last, 20% shared by the middle touches; one touch gets 100%, two get 50/50.
* ``markov``: an absorbing Markov chain of order k (1-3) whose states are the last k channels (shorter at
  the start of a path); null paths end in the null state. The probability of conversion from the start is
  solved exactly from ``(I - Q) x = r``; a channel's removal effect is ``1 - P(conv without it) / P(conv)``
  (removing a channel sends every transition into a state containing it to null). Conversions are shared
  in proportion to the removal effects; value likewise, with the expected value of the chain (each
  transition into conversion carries the mean value of the conversions observed from that state).
* ``shapley``: the "simplified Shapley value" for attribution (Zhao et al. 2018): the value of a coalition
  S of channels is the conversions (value) of the paths whose channel set is a subset of S. Computed
  exactly over all coalitions of the channels that appear in converting paths (at most
  ``MAX_SHAPLEY_CHANNELS``); it equals sharing each path's conversions equally among its distinct channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.sparse import csc_matrix, identity
from scipy.sparse.linalg import splu

from offerloop.attribution.exceptions import AttributionInputError, TooManyChannels

__all__ = [
    "HEURISTIC_MODELS",
    "MAX_SHAPLEY_CHANNELS",
    "MODELS",
    "Attribution",
    "PathSet",
    "attribute",
    "markov",
    "shapley",
    "touch_shares",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HEURISTIC_MODELS: tuple[str, ...] = ("first", "last", "linear", "time_decay", "position")
MODELS: tuple[str, ...] = (*HEURISTIC_MODELS, "markov", "shapley")
MAX_SHAPLEY_CHANNELS = 15
MAX_MARKOV_ORDER = 3


@dataclass(frozen=True)
class _Flat:
    """Every touch of every path, flattened: channel index (into the sorted ``channels``), path index,
    position in the path, path length."""

    channels: list[str]
    channel: IntArray
    path: IntArray
    pos: IntArray
    length: IntArray

    @classmethod
    def of(cls, names: list[str], channel: IntArray, lengths: IntArray) -> _Flat:
        path = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        starts = np.cumsum(lengths) - lengths
        pos = np.arange(len(channel), dtype=np.int64) - np.repeat(starts, lengths)
        return cls(channels=names, channel=channel, path=path, pos=pos, length=lengths[path])


class _SplitPaths(Sequence[tuple[str, ...]]):
    """The paths of a flattened path set, as tuples of channel names (built on demand)."""

    def __init__(self, flat: _Flat, n: int) -> None:
        self._flat, self._n = flat, n
        self._starts = np.searchsorted(flat.path, np.arange(n, dtype=np.int64))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        start = int(self._starts[i])
        stop = start + int(self._flat.length[start]) if start < len(self._flat.path) else start
        return tuple(self._flat.channels[c] for c in self._flat.channel[start:stop])


@dataclass(frozen=True)
class PathSet:
    """Distinct paths and their counts. ``ages``, when given, holds each touch's age at conversion."""

    paths: Sequence[Sequence[str]]
    conversions: FloatArray
    values: FloatArray
    nulls: FloatArray
    ages: Sequence[Sequence[float]] | None = None
    # The flattened touches, computed once and shared by every model run on this path set.
    _flat: list[_Flat] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        paths: Sequence[Sequence[str]],
        conversions: Sequence[float] | FloatArray,
        values: Sequence[float] | FloatArray | None = None,
        nulls: Sequence[float] | FloatArray | None = None,
        ages: Sequence[Sequence[float]] | None = None,
    ) -> PathSet:
        n = len(paths)
        conv, val, nul = _all_counts(conversions, values, nulls, n)
        for i, p in enumerate(paths):
            if len(p) == 0:
                raise AttributionInputError(f"path {i + 1} is empty")
        if ages is not None and (
            len(ages) != n or any(len(a) != len(p) for a, p in zip(ages, paths, strict=True))
        ):
            raise AttributionInputError("ages must give one age per touch of every path")
        return cls(paths=paths, conversions=conv, values=val, nulls=nul, ages=ages)

    @classmethod
    def from_strings(
        cls,
        texts: Sequence[str | None],
        sep: str,
        conversions: Sequence[float] | FloatArray,
        values: Sequence[float] | FloatArray | None = None,
        nulls: Sequence[float] | FloatArray | None = None,
    ) -> PathSet:
        """Paths written as text ("a > b > c"), split and indexed with Polars (no Python loop per touch)."""
        if not sep:
            raise AttributionInputError("the path separator must not be empty")
        n = len(texts)
        conv, val, nul = _all_counts(conversions, values, nulls, n)
        split = pl.Series("path", texts, dtype=pl.String).fill_null("").str.split(sep)
        lengths = split.list.len().to_numpy().astype(np.int64)
        touches = split.explode().str.strip_chars()
        blank = (touches == "").fill_null(True).to_numpy()
        if blank.any():
            row = int(np.repeat(np.arange(n), lengths)[int(np.flatnonzero(blank)[0])])
            raw = texts[row] or ""
            what = "the path is empty" if not raw.strip() else f"an empty channel in {raw!r}"
            raise AttributionInputError(f"path {row + 1}: {what}", details={"path": row + 1, "problem": what})
        names = touches.unique().sort()
        channel = touches.replace_strict(names, pl.int_range(len(names), eager=True), return_dtype=pl.Int64)
        flat = _Flat.of(names.to_list(), channel.to_numpy().astype(np.int64), lengths)
        return cls(paths=_SplitPaths(flat, n), conversions=conv, values=val, nulls=nul, _flat=[flat])


def _all_counts(
    conversions: Sequence[float] | FloatArray,
    values: Sequence[float] | FloatArray | None,
    nulls: Sequence[float] | FloatArray | None,
    n: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    conv = _counts(conversions, n, "conversions")
    val = np.zeros(n) if values is None else _counts(values, n, "values", allow_negative=True)
    nul = np.zeros(n) if nulls is None else _counts(nulls, n, "nulls")
    return conv, val, nul


@dataclass(frozen=True)
class Attribution:
    model: str
    channels: list[str]
    conversions: FloatArray
    values: FloatArray
    removal_effects: FloatArray | None = None

    def as_dict(self) -> dict[str, Any]:
        """The interface shape: ``{"model", "channels": [{"channel", "conversions", "value", "removal_effect"}]}``."""
        out = []
        for i, ch in enumerate(self.channels):
            re = None if self.removal_effects is None else float(self.removal_effects[i])
            out.append(
                {
                    "channel": ch,
                    "conversions": float(self.conversions[i]),
                    "value": float(self.values[i]),
                    "removal_effect": re,
                }
            )
        return {"model": self.model, "channels": out}


def _counts(
    data: Sequence[float] | FloatArray, n: int, name: str, *, allow_negative: bool = False
) -> FloatArray:
    arr = np.asarray(data, dtype=np.float64)
    if arr.shape != (n,):
        raise AttributionInputError(f"{name} must give one number per path ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise AttributionInputError(f"{name} must be finite numbers")
    if not allow_negative and np.any(arr < 0):
        raise AttributionInputError(f"{name} must not be negative")
    return arr


def _flatten(ps: PathSet) -> _Flat:
    if ps._flat:
        return ps._flat[0]
    index: dict[str, int] = {}
    lengths = np.fromiter(map(len, ps.paths), dtype=np.int64, count=len(ps.paths))
    codes = np.fromiter(
        (index.setdefault(c, len(index)) for p in ps.paths for c in p),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    first_seen = list(index)
    order = sorted(range(len(first_seen)), key=first_seen.__getitem__)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    flat = _Flat.of([first_seen[i] for i in order], rank[codes] if len(codes) else codes, lengths)
    ps._flat.append(flat)
    return flat


def _touch_weights(ps: PathSet, flat: _Flat, model: str, half_life: float) -> FloatArray:
    """The share of its path's conversion that each touch receives (sums to 1 over a path)."""
    n = flat.length.astype(np.float64)
    first = flat.pos == 0
    last = flat.pos == flat.length - 1
    if model == "first":
        return np.asarray(first, dtype=np.float64)
    if model == "last":
        return np.asarray(last, dtype=np.float64)
    if model == "linear":
        return 1.0 / n
    if model == "position":
        middle = np.where(flat.length > 2, 0.2 / np.maximum(n - 2.0, 1.0), 0.0)
        ends = np.where(flat.length == 1, 1.0, np.where(flat.length == 2, 0.5, 0.4))
        return np.where(first | last, ends, middle)
    if model == "time_decay":
        if not (half_life > 0 and math.isfinite(half_life)):
            raise AttributionInputError("half_life must be a positive number")
        if ps.ages is None:
            age = (flat.length - 1 - flat.pos).astype(np.float64)
        else:
            age = np.fromiter((a for ages in ps.ages for a in ages), dtype=np.float64, count=len(flat.pos))
            if not np.all(np.isfinite(age)) or np.any(age < 0):
                raise AttributionInputError("touch ages must be finite and not negative")
        # Relative to the youngest touch of the path, so weights never underflow to 0/0 on old paths.
        youngest = np.full(len(ps.paths), np.inf)
        np.minimum.at(youngest, flat.path, age)
        w = np.exp2(-(age - youngest[flat.path]) / half_life)
        per_path = np.bincount(flat.path, weights=w, minlength=len(ps.paths))
        return np.asarray(w / per_path[flat.path], dtype=np.float64)
    raise AttributionInputError(f"unknown heuristic model {model!r}")


def heuristic(ps: PathSet, model: str, *, half_life: float = 7.0) -> Attribution:
    flat = _flatten(ps)
    w = _touch_weights(ps, flat, model, half_life)
    k = len(flat.channels)
    conv = np.bincount(flat.channel, weights=w * ps.conversions[flat.path], minlength=k).astype(np.float64)
    val = np.bincount(flat.channel, weights=w * ps.values[flat.path], minlength=k).astype(np.float64)
    return Attribution(model=model, channels=flat.channels, conversions=conv, values=val)


def touch_shares(
    ps: PathSet, model: str, *, half_life: float = 7.0, removal_effects: dict[str, float] | None = None
) -> FloatArray:
    """The share of its path's conversion each touch receives, path after path (sums to 1 over each path).

    Heuristics give their own weights. ``shapley`` splits a path equally among its distinct channels (the
    simplified Shapley value of one path), ``markov`` in proportion to the channels' ``removal_effects``
    (equally when they are all 0); a channel's share is then split equally among its touches."""
    flat = _flatten(ps)
    if model in HEURISTIC_MODELS:
        return _touch_weights(ps, flat, model, half_life)
    if model not in ("shapley", "markov"):
        raise AttributionInputError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    k = len(flat.channels)
    n_paths = len(ps.paths)
    pair = flat.path * k + flat.channel
    touches_of_pair = np.bincount(pair, minlength=n_paths * k)[pair].astype(np.float64)
    first_of_pair = np.zeros(len(pair), dtype=bool)
    first_of_pair[np.unique(pair, return_index=True)[1]] = True
    if model == "markov":
        re = np.array([(removal_effects or {}).get(c, 0.0) for c in flat.channels], dtype=np.float64)
        unit = re[flat.channel]
        per_path = np.bincount(flat.path, weights=np.where(first_of_pair, unit, 0.0), minlength=n_paths)
        if np.all(per_path[flat.path] > 0):
            return np.asarray(unit / per_path[flat.path] / touches_of_pair, dtype=np.float64)
        equal = np.where(
            per_path[flat.path] > 0, unit / np.where(per_path > 0, per_path, 1.0)[flat.path], np.nan
        )
    else:
        equal = np.full(len(pair), np.nan)
    distinct = np.bincount(flat.path, weights=first_of_pair.astype(np.float64), minlength=n_paths)
    equal = np.where(np.isnan(equal), 1.0 / distinct[flat.path], equal)
    return np.asarray(equal / touches_of_pair, dtype=np.float64)


def _absorption(
    q: csc_matrix, r: FloatArray, start: FloatArray, keep: npt.NDArray[np.bool_] | None
) -> FloatArray:
    """``start · (I - Q)^-1 r`` over the kept states (the others are absorbing null)."""
    if keep is not None:
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            return np.zeros(r.shape[1])
        q = q[idx][:, idx]
        r = r[idx]
        start = start[idx]
    a = (identity(q.shape[0], format="csc") - q).tocsc()
    x = splu(a).solve(np.ascontiguousarray(r))
    return np.asarray(start @ x, dtype=np.float64)


def markov(ps: PathSet, *, order: int = 1) -> Attribution:
    if not (isinstance(order, int) and 1 <= order <= MAX_MARKOV_ORDER):
        raise AttributionInputError(f"markov order must be 1 to {MAX_MARKOV_ORDER}")
    flat = _flatten(ps)
    k = len(flat.channels)
    weight = ps.conversions + ps.nulls
    # The state of each touch: its last `order` channels (fewer at the start of a path), as a key of
    # base-(k+1) digits (0 = no channel), so states are deduplicated with numpy.
    key = np.zeros(len(flat.channel), dtype=np.int64)
    for lag in range(order):
        if lag == 0:
            shifted = flat.channel + 1
        else:
            shifted = np.zeros_like(key)
            ok = flat.pos >= lag
            shifted[lag:] = flat.channel[: len(key) - lag] + 1
            shifted = np.where(ok, shifted, 0)
        key = key * (k + 1) + shifted
    states, state = np.unique(key, return_inverse=True)
    m = len(states)
    digits = np.stack([(states // (k + 1) ** d) % (k + 1) for d in range(order)], axis=1)  # channel+1 or 0
    contains = np.zeros((m, k), dtype=bool)
    for d in range(order):
        has = digits[:, d] > 0
        contains[np.flatnonzero(has), digits[has, d] - 1] = True

    tw = weight[flat.path]
    live = tw > 0
    last = flat.pos == flat.length - 1
    # Transitions between consecutive touches of a path (weight: every time the path was walked).
    inner = live & ~last
    src, dst = state[inner], state[np.flatnonzero(inner) + 1]
    counts = csc_matrix((tw[inner], (src, dst)), shape=(m, m))
    end = live & last
    end_state, end_path = state[end], flat.path[end]
    to_conv = np.bincount(end_state, weights=ps.conversions[end_path], minlength=m)
    to_conv_value = np.bincount(end_state, weights=ps.values[end_path], minlength=m)
    to_null = np.bincount(end_state, weights=ps.nulls[end_path], minlength=m)
    out = np.asarray(counts.sum(axis=1)).ravel() + to_conv + to_null
    out_safe = np.where(out > 0, out, 1.0)
    q = csc_matrix(counts.multiply(1.0 / out_safe[:, None]))
    # r: probability of converting in the next step, and the expected value that step brings.
    r = np.stack([to_conv / out_safe, to_conv_value / out_safe], axis=1)
    first = live & (flat.pos == 0)
    start = np.bincount(state[first], weights=tw[first], minlength=m)
    total_walks = start.sum()
    if total_walks == 0 or to_conv.sum() == 0:
        zeros = np.zeros(k)
        return Attribution("markov", flat.channels, zeros, zeros.copy(), zeros.copy())
    start = start / total_walks
    base = _absorption(q, r, start, None)
    effects = np.zeros((k, 2))
    for c in range(k):
        without = _absorption(q, r, start, ~contains[:, c])
        for j in range(2):
            effects[c, j] = 1.0 - without[j] / base[j] if base[j] != 0 else 0.0
    effects = np.clip(effects, 0.0, None)  # exact zeros can come out as -1e-16
    totals = (float(ps.conversions.sum()), float(ps.values.sum()))
    shares = np.zeros((k, 2))
    for j in range(2):
        s = effects[:, j].sum()
        if s > 0:
            shares[:, j] = effects[:, j] / s * totals[j]
    return Attribution("markov", flat.channels, shares[:, 0], shares[:, 1], effects[:, 0])


def shapley(ps: PathSet) -> Attribution:
    flat = _flatten(ps)
    names = flat.channels
    converting = (ps.conversions > 0) | (ps.values != 0)
    in_converting = converting[flat.path]
    players = np.unique(flat.channel[in_converting])
    n = len(players)
    if n > MAX_SHAPLEY_CHANNELS:
        raise TooManyChannels(
            f"exact Shapley values need at most {MAX_SHAPLEY_CHANNELS} channels in converting paths, got {n}",
            details={"channels": n, "max": MAX_SHAPLEY_CHANNELS},
        )
    bit = np.zeros(len(names), dtype=np.int64)
    bit[players] = np.arange(n, dtype=np.int64)
    idx = np.flatnonzero(converting)
    # Each converting path's channel set as a bit mask over the players.
    path_masks = np.zeros(len(ps.conversions), dtype=np.int64)
    np.bitwise_or.at(path_masks, flat.path[in_converting], np.left_shift(1, bit[flat.channel[in_converting]]))
    masks = path_masks[idx]
    size = 1 << n
    # v(S) = sum over coalitions T ⊆ S of the conversions of the paths whose channel set is exactly T.
    v = np.stack(
        [
            np.bincount(masks, weights=ps.conversions[idx], minlength=size),
            np.bincount(masks, weights=ps.values[idx], minlength=size),
        ],
        axis=1,
    )
    for i in range(n):
        view = v.reshape(-1, 2, 1 << i, 2)
        view[:, 1] += view[:, 0]
    all_masks = np.arange(size, dtype=np.int64)
    popcount = np.zeros(size, dtype=np.int64)
    for i in range(n):
        popcount += (all_masks >> i) & 1
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.zeros((len(names), 2))
    for i, c in enumerate(players.tolist()):
        without = all_masks[((all_masks >> i) & 1) == 0]
        w = weight[popcount[without]]
        phi[c] = w @ (v[without | (1 << i)] - v[without])
    return Attribution("shapley", names, phi[:, 0], phi[:, 1])


def attribute(ps: PathSet, model: str, *, order: int = 1, half_life: float = 7.0) -> Attribution:
    """Run one model by name (one of :data:`MODELS`)."""
    if model in HEURISTIC_MODELS:
        return heuristic(ps, model, half_life=half_life)
    if model == "markov":
        return markov(ps, order=order)
    if model == "shapley":
        return shapley(ps)
    raise AttributionInputError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
