"""Persona discovery: cluster buyers' feature dicts and propose a persona template per cluster.

:func:`discover` builds a matrix from the rows (numbers as they are, bools as 0/1, each string feature
one-hot over its most frequent values; missing cells imputed with the column median, or mean for
0/1 columns), standardises it (numeric columns to z-scores clipped to +-5 so one extreme buyer cannot
own a cluster; 0/1 columns only centred, one-hot ones scaled by 1/sqrt(2), so that flipping a flag or
changing a string value moves a buyer by 1, as one standard deviation of a numeric feature does), runs
KMeans (``random_state=seed``) for every k in ``k_range`` and keeps the k with the best silhouette among
those whose every cluster has at least ``min_cluster`` rows (ties go to the smaller k).

Each cluster becomes a :class:`ProposedPersona`: its size and share, per-feature cluster vs population
mean and median with a z-score ``(cluster mean - population mean) / population std``, and 2 to 4 signals.
A signal is the best one-feature split of the cluster from the rest (Youden's J = hit rate in the
cluster minus hit rate in the rest, over buyers who have the feature, times the share of the cluster
that has it): ``gte``/``lte`` at the best threshold, ``between`` the cluster's central range when that
separates clearly better, ``is`` for bools, ``eq``/``in`` for strings. Its weight is ``3 * score``
(at least 0.5); numeric softness is a quarter of the within-group standard deviation or 5% of the gap
between the cluster's and the rest's means, whichever is larger (at least 0.5 for integer features,
whose thresholds are whole numbers). The persona's
prior is its share, and its name comes from its two strongest signals, e.g.
``high_drop_orders_low_days_since_last_seen``. Proposals are a starting point for a human to edit:
:func:`to_yaml` writes them as templates that :func:`offerloop.personas.templates.load_templates` reads.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from offerloop.personas.templates import MAX_PERSONAS, UNASSIGNED, Persona, PersonaSet, Signal, dump_yaml

__all__ = ["FeatureStat", "ProposedPersona", "discover", "to_persona_set", "to_yaml"]

FloatArray = npt.NDArray[np.float64]

_MAX_LEVELS: Final = 12  # one-hot columns per string feature
_MAX_DISTINCT: Final = 50  # a string feature with more distinct values is an identifier: skipped
_Z_CLIP: Final = 5.0
# A 0/1 column is centred but not divided by its std: scaled, a rare value would sit many units from
# the rest and KMeans would split on it alone. A change of string value flips two one-hot columns, so
# they are scaled by 1/sqrt(2) to move a row by 1, as a bool flip does.
_ONE_HOT_SCALE: Final = 1.0 / math.sqrt(2.0)
_SILHOUETTE_SAMPLE: Final = 4000
_MIN_SCORE: Final = 0.3  # signals past the first two need at least this separation score
_MAX_SIGNALS: Final = 4
_BETWEEN_MARGIN: Final = 0.05  # a two-sided range must beat the best one-sided split by this much
_NAME_LENGTH: Final = 64


class FeatureStat(BaseModel):
    """One feature of a cluster against the whole population (a string feature: one value's share)."""

    model_config = ConfigDict(frozen=True)

    feature: str  # "orders", or "first_touch_channel=social" for a one-hot column
    kind: Literal["numeric", "bool", "category"]
    cluster_mean: float
    cluster_median: float
    population_mean: float
    population_median: float
    z: float


class ProposedPersona(BaseModel):
    """A cluster proposed as a persona, with the statistics that justify it."""

    model_config = ConfigDict(frozen=True)

    name: str
    cluster: int  # KMeans label
    size: int
    share: float
    k: int  # the chosen number of clusters
    silhouette: float  # of the chosen clustering
    description: str
    features: list[FeatureStat]  # by |z| descending
    signals: list[Signal]

    def to_persona(self) -> Persona:
        return Persona(name=self.name, description=self.description, prior=self.share, signals=self.signals)


@dataclass(slots=True)
class _Column:
    key: str  # the feature name in the rows
    label: str  # the column name: key, or "key=value" for one-hot columns
    kind: Literal["numeric", "bool", "category"]
    values: FloatArray  # NaN where missing
    integer: bool = False
    level: str | None = None


@dataclass(slots=True)
class _Candidate:
    key: str
    score: float
    operator: str
    operand: Any
    softness: float | None
    stem: str  # name fragment, e.g. "high_drop_orders"


def _plain(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _build_columns(rows: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> list[_Column]:
    columns: list[_Column] = []
    for key in keys:
        raw = [_plain(row.get(key)) for row in rows]
        present = [v for v in raw if not _is_missing(v)]
        if not present:
            continue
        if all(isinstance(v, bool) for v in present):
            values = np.array([np.nan if _is_missing(v) else float(v) for v in raw], dtype=np.float64)
            columns.append(_Column(key, key, "bool", values, integer=True))
        elif all(isinstance(v, int | float) for v in present):
            values = np.array([np.nan if _is_missing(v) else float(v) for v in raw], dtype=np.float64)
            observed = values[~np.isnan(values)]
            if not np.all(np.isfinite(observed)):
                values[~np.isfinite(values)] = np.nan
                observed = values[~np.isnan(values)]
            integer = bool(np.all(observed == np.round(observed)))
            columns.append(_Column(key, key, "numeric", values, integer=integer))
        else:
            text = [None if _is_missing(v) else str(v) for v in raw]
            counts = Counter(t for t in text if t is not None)
            if len(counts) > _MAX_DISTINCT:
                continue
            levels = sorted(counts, key=lambda lv: (-counts[lv], lv))[:_MAX_LEVELS]
            for level in levels:
                values = np.array(
                    [np.nan if t is None else (1.0 if t == level else 0.0) for t in text], dtype=np.float64
                )
                columns.append(_Column(key, f"{key}={level}", "category", values, integer=True, level=level))
    # A column that never varies separates nothing.
    return [c for c in columns if np.unique(c.values[~np.isnan(c.values)]).size > 1]


def _standardise(columns: list[_Column]) -> FloatArray:
    matrix = np.empty((columns[0].values.size, len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        observed = col.values[~np.isnan(col.values)]
        fill = float(np.median(observed)) if col.kind == "numeric" else float(np.mean(observed))
        filled = np.where(np.isnan(col.values), fill, col.values)
        centred = filled - float(np.mean(filled))
        if col.kind == "numeric":
            std = float(np.std(filled))
            matrix[:, j] = centred / std if std > 0 else 0.0
        elif col.kind == "bool":
            matrix[:, j] = centred
        else:
            matrix[:, j] = centred * _ONE_HOT_SCALE
    return np.clip(matrix, -_Z_CLIP, _Z_CLIP)


def _cluster(
    matrix: FloatArray, k_range: tuple[int, int], seed: int, min_cluster: int
) -> tuple[int, float, npt.NDArray[np.intp]]:
    n = matrix.shape[0]
    lo, hi = k_range
    hi = min(hi, n // min_cluster, n - 1, MAX_PERSONAS)
    if hi < 2:
        raise ValueError(f"too few rows ({n}) for two clusters of at least min_cluster={min_cluster}")
    lo = min(lo, hi)
    best: tuple[int, float, npt.NDArray[np.intp]] | None = None
    fallback: tuple[int, float, npt.NDArray[np.intp]] | None = None
    sample = _SILHOUETTE_SAMPLE if n > _SILHOUETTE_SAMPLE else None
    for k in range(lo, hi + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(matrix).astype(np.intp)
        if np.unique(labels).size < 2:
            continue
        score = float(silhouette_score(matrix, labels, sample_size=sample, random_state=seed))
        sizes = np.bincount(labels, minlength=k)
        if int(sizes.min()) >= min_cluster:
            if best is None or score > best[1]:
                best = (k, score, labels)
        elif fallback is None or score > fallback[1]:
            fallback = (k, score, labels)
    chosen = best or fallback
    if chosen is None:
        raise ValueError("the rows do not form two or more clusters")
    return chosen


def _round_sig(value: float, digits: int = 4) -> float:
    if value == 0 or not math.isfinite(value):
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _fraction_at_least(sorted_values: FloatArray, thresholds: FloatArray) -> FloatArray:
    below = np.searchsorted(sorted_values, thresholds, side="left")
    return np.asarray(1.0 - below / sorted_values.size, dtype=np.float64)


def _fraction_between(values: FloatArray, low: float, high: float) -> float:
    return float(np.mean((values >= low) & (values <= high)))


def _numeric_candidate(
    col: _Column, inside: FloatArray, rest: FloatArray, coverage: float
) -> _Candidate | None:
    pooled = np.unique(np.concatenate([inside, rest]))
    if pooled.size < 2:
        return None
    mids = (pooled[:-1] + pooled[1:]) / 2.0
    if mids.size > 512:
        mids = np.unique(np.quantile(mids, np.linspace(0.0, 1.0, 512)))
    hit_in = _fraction_at_least(np.sort(inside), mids)
    hit_rest = _fraction_at_least(np.sort(rest), mids)
    j_high = hit_in - hit_rest
    i_high, i_low = int(np.argmax(j_high)), int(np.argmax(-j_high))
    options: list[tuple[float, str, Any]] = [
        (float(j_high[i_high]), "gte", float(mids[i_high])),
        (float(-j_high[i_low]), "lte", float(mids[i_low])),
    ]
    one_sided = max(options[0][0], options[1][0])
    for q in (0.01, 0.025, 0.05, 0.1):
        low, high = (float(v) for v in np.quantile(inside, [q, 1.0 - q]))
        j = _fraction_between(inside, low, high) - _fraction_between(rest, low, high)
        if j > one_sided + _BETWEEN_MARGIN and (not options[2:] or j > options[2][0]):
            options[2:] = [(j, "between", (low, high))]
    j, operator, operand = max(options, key=lambda o: o[0])
    if j <= 0:
        return None
    within = math.sqrt(
        (float(np.var(inside)) * inside.size + float(np.var(rest)) * rest.size) / (inside.size + rest.size)
    )
    gap = abs(float(np.mean(inside)) - float(np.mean(rest)))
    softness = max(0.25 * within, 0.05 * gap)
    if col.integer:
        softness = max(0.5, softness)
        if operator == "gte":
            operand = float(math.ceil(operand))
        elif operator == "lte":
            operand = float(math.floor(operand))
        else:
            operand = (float(math.floor(operand[0])), float(math.ceil(operand[1])))
    elif operator == "between":
        operand = (_round_sig(operand[0]), _round_sig(operand[1]))
    else:
        operand = _round_sig(operand)
    softness = _round_sig(softness, 3)
    if softness <= 0:
        return None
    prefix = {"gte": "high", "lte": "low", "between": "mid"}[operator]
    return _Candidate(col.key, j * coverage, operator, operand, softness, f"{prefix}_{col.key}")


def _bool_candidate(col: _Column, inside: FloatArray, rest: FloatArray, coverage: float) -> _Candidate | None:
    diff = float(np.mean(inside)) - float(np.mean(rest))
    if diff == 0:
        return None
    stem = col.key if diff > 0 else f"no_{col.key}"
    return _Candidate(col.key, abs(diff) * coverage, "is", diff > 0, None, stem)


def _category_candidate(
    key: str, levels: list[tuple[str, float, float]], coverage: float
) -> _Candidate | None:
    # levels: (value, share in cluster, share in rest), over buyers who have the feature
    over = [(lv, c - r) for lv, c, r in levels if c > r]
    if not over:
        return None
    over.sort(key=lambda x: -x[1])
    best_one = over[0]
    j_all = sum(d for _, d in over)
    if len(over) > 1 and j_all > best_one[1] + _BETWEEN_MARGIN:
        values = [lv for lv, _ in over]
        stem = f"{key}_{'_or_'.join(values[:2])}"
        return _Candidate(key, j_all * coverage, "in", values, None, stem)
    return _Candidate(key, best_one[1] * coverage, "eq", best_one[0], None, f"{key}_{best_one[0]}")


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug if slug and slug[0].isalpha() else f"p_{slug}"


def _name(stems: list[str], taken: set[str], cluster: int) -> str:
    for count in range(min(2, len(stems)), len(stems) + 1):
        name = _slug("_".join(stems[:count]))[:_NAME_LENGTH].rstrip("_")
        if name not in taken and name != UNASSIGNED:
            return name
    base = _slug("_".join(stems[:2]) or "persona")[: _NAME_LENGTH - 12].rstrip("_")
    name = f"{base}_cluster_{cluster}"
    suffix = 2
    while name in taken:
        name, suffix = f"{base}_cluster_{cluster}_{suffix}", suffix + 1
    return name


def _signal(candidate: _Candidate) -> Signal:
    operator = {"in": "in_", "is": "is_"}.get(candidate.operator, candidate.operator)
    weight = round(max(0.5, 3.0 * candidate.score), 2)
    return Signal.model_validate(
        {
            "feature": candidate.key,
            operator: candidate.operand,
            "weight": weight,
            "softness": candidate.softness,
        }
    )


def _stat(col: _Column, inside: FloatArray, population: FloatArray) -> FeatureStat:
    std = float(np.std(population))
    mean_in, mean_pop = float(np.mean(inside)), float(np.mean(population))
    return FeatureStat(
        feature=col.label,
        kind=col.kind,
        cluster_mean=mean_in,
        cluster_median=float(np.median(inside)),
        population_mean=mean_pop,
        population_median=float(np.median(population)),
        z=(mean_in - mean_pop) / std if std > 0 else 0.0,
    )


def _describe(size: int, share: float, stats: list[FeatureStat]) -> str:
    parts = [
        f"{s.feature} mean {s.cluster_mean:.3g} vs {s.population_mean:.3g} (z={s.z:+.2f})" for s in stats[:3]
    ]
    return f"Discovered cluster of {size} buyers ({share:.1%}). " + "; ".join(parts) + "."


def _propose(
    columns: list[_Column],
    labels: npt.NDArray[np.intp],
    cluster: int,
    k: int,
    silhouette: float,
    taken: set[str],
) -> ProposedPersona:
    n = labels.size
    in_cluster = labels == cluster
    size = int(in_cluster.sum())
    share = round(size / n, 4)
    stats: list[FeatureStat] = []
    candidates: list[_Candidate] = []
    categories: dict[str, tuple[list[tuple[str, float, float]], float]] = {}
    for col in columns:
        observed = ~np.isnan(col.values)
        inside, rest = col.values[in_cluster & observed], col.values[~in_cluster & observed]
        if inside.size == 0:
            continue
        stats.append(_stat(col, inside, col.values[observed]))
        if rest.size == 0:
            continue
        coverage = inside.size / size
        if col.kind == "numeric":
            found = _numeric_candidate(col, inside, rest, coverage)
            if found is not None:
                candidates.append(found)
        elif col.kind == "bool":
            found = _bool_candidate(col, inside, rest, coverage)
            if found is not None:
                candidates.append(found)
        else:
            levels, _ = categories.setdefault(col.key, ([], coverage))
            levels.append((str(col.level), float(np.mean(inside)), float(np.mean(rest))))
    for key, (levels, coverage) in categories.items():
        found = _category_candidate(key, levels, coverage)
        if found is not None:
            candidates.append(found)
    candidates.sort(key=lambda c: -c.score)  # stable: ties keep column order
    chosen = [c for i, c in enumerate(candidates[:_MAX_SIGNALS]) if i < 2 or c.score >= _MIN_SCORE]
    if not chosen:
        raise ValueError(f"cluster {cluster} differs from the rest in no feature")
    stats.sort(key=lambda s: -abs(s.z))
    name = _name([c.stem for c in chosen], taken, cluster)
    taken.add(name)
    return ProposedPersona(
        name=name,
        cluster=cluster,
        size=size,
        share=share,
        k=k,
        silhouette=silhouette,
        description=_describe(size, share, stats),
        features=stats,
        signals=[_signal(c) for c in chosen],
    )


def discover(
    rows: Sequence[Mapping[str, Any]],
    *,
    k_range: tuple[int, int] = (4, 8),
    seed: int = 0,
    min_cluster: int = 20,
    features: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> list[ProposedPersona]:
    """Cluster ``rows`` (buyer feature dicts) and propose one persona per cluster, largest first.

    ``k_range`` is inclusive and capped so that k clusters of ``min_cluster`` rows fit (and at 12);
    ``features`` restricts the columns used (default: every key seen), ``exclude`` drops some.
    Clusters under ``min_cluster`` rows are dropped when no k keeps them all large enough. Raises
    ``ValueError`` when the rows cannot give two clusters. Deterministic for a given ``seed``.
    """
    lo, hi = k_range
    if lo < 2 or hi < lo:
        raise ValueError(f"k_range must be (low, high) with 2 <= low <= high, got {k_range!r}")
    if min_cluster < 1:
        raise ValueError("min_cluster must be at least 1")
    skip = set(exclude)
    if features is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        keys = [key for key in seen if key not in skip]
    else:
        keys = [key for key in features if key not in skip]
    columns = _build_columns(rows, keys)
    if not columns:
        raise ValueError("no feature varies across the rows")
    matrix = _standardise(columns)
    k, silhouette, labels = _cluster(matrix, (lo, hi), seed, min_cluster)
    sizes = np.bincount(labels, minlength=k)
    order = sorted((c for c in range(k) if sizes[c] >= min_cluster), key=lambda c: (-int(sizes[c]), c))
    if len(order) < 2:
        raise ValueError(f"fewer than two clusters have at least min_cluster={min_cluster} rows")
    taken: set[str] = set()
    return [_propose(columns, labels, c, k, silhouette, taken) for c in order]


def to_persona_set(
    proposals: Sequence[ProposedPersona], *, threshold: float = 0.5, prior_strength: float = 1.0
) -> PersonaSet:
    """The proposals as validated templates."""
    return PersonaSet(
        threshold=threshold,
        prior_strength=prior_strength,
        personas=[p.to_persona() for p in proposals],
    )


def to_yaml(
    proposals: Sequence[ProposedPersona], *, threshold: float = 0.5, prior_strength: float = 1.0
) -> str:
    """Templates YAML for ``proposals`` (readable by ``load_templates``), each persona headed by comments
    with its cluster statistics."""
    personas = to_persona_set(proposals, threshold=threshold, prior_strength=prior_strength)
    lines = ["# Persona templates proposed by offerloop's persona discovery: review and rename before use."]
    if proposals:
        first = proposals[0]
        lines.append(f"# k={first.k} clusters, silhouette {first.silhouette:.3f}.")
    lines.append(
        dump_yaml({"threshold": personas.threshold, "prior_strength": personas.prior_strength}).rstrip()
    )
    lines.append("personas:")
    for proposal, persona in zip(proposals, personas.personas, strict=True):
        lines.append(f"  # cluster {proposal.cluster}: {proposal.size} buyers ({proposal.share:.1%})")
        for stat in proposal.features[:4]:
            lines.append(
                f"  #   {stat.feature}: mean {stat.cluster_mean:.4g} vs {stat.population_mean:.4g}, "
                f"median {stat.cluster_median:.4g} vs {stat.population_median:.4g}, z={stat.z:+.2f}"
            )
        block = dump_yaml({"personas": [persona.to_mapping()]}).splitlines()[1:]
        lines.extend(f"  {line}" for line in block)
    return "\n".join(lines) + "\n"
