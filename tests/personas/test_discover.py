"""Persona discovery on seeded synthetic clusters."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pytest

from offerloop.personas.discover import ProposedPersona, discover, to_persona_set, to_yaml
from offerloop.personas.inference import infer
from offerloop.personas.templates import load_templates

CENTRES = (
    # drop_orders, weekend_share, page_views_30d, P(subscription_active), main channel
    (6.0, 0.20, 10.0, 0.9, "social"),
    (0.5, 0.85, 15.0, 0.1, "search"),
    (0.5, 0.30, 60.0, 0.1, "email"),
)


def blobs(seed: int = 7, per: int = 200) -> tuple[list[dict[str, Any]], list[int]]:
    """Three well-separated blobs of ``per`` buyers; returns the rows and each row's true blob."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    truth: list[int] = []
    for blob, (drops, weekend, views, p_sub, channel) in enumerate(CENTRES):
        for _ in range(per):
            rows.append(
                {
                    "drop_orders": max(0, round(float(rng.normal(drops, 0.8)))),
                    "weekend_share": min(1.0, max(0.0, float(rng.normal(weekend, 0.07)))),
                    "page_views_30d": max(0.0, float(rng.normal(views, 5.0))),
                    "subscription_active": bool(rng.random() < p_sub),
                    "first_touch_channel": channel if rng.random() < 0.85 else "direct",
                }
            )
            truth.append(blob)
    return rows, truth


ROWS, TRUTH = blobs()
PROPOSALS = discover(ROWS, k_range=(2, 6), seed=0)


def test_recovers_three_clusters() -> None:
    assert len(PROPOSALS) == 3
    assert {p.k for p in PROPOSALS} == {3}
    assert [p.size for p in PROPOSALS] == [200, 200, 200]
    assert [p.share for p in PROPOSALS] == [pytest.approx(1 / 3, abs=1e-4)] * 3
    assert all(p.silhouette > 0.5 for p in PROPOSALS)
    assert len({p.name for p in PROPOSALS}) == 3


def test_templates_classify_rows_back_into_their_cluster() -> None:
    personas = to_persona_set(PROPOSALS)
    labels = [infer(row, personas).name for row in ROWS]
    per_blob = [Counter(label for label, t in zip(labels, TRUTH, strict=True) if t == b) for b in range(3)]
    majority = [counts.most_common(1)[0][0] for counts in per_blob]
    assert sorted(majority) == sorted(p.name for p in PROPOSALS)  # one proposal per blob
    for blob, counts in enumerate(per_blob):
        assert counts[majority[blob]] / 200 >= 0.9
    agreement = sum(counts[majority[b]] for b, counts in enumerate(per_blob)) / len(ROWS)
    assert agreement >= 0.9


def test_proposals_describe_their_cluster() -> None:
    by_name = {p.name: p for p in PROPOSALS}
    high_drops = next(p for p in PROPOSALS if p.name.startswith("high_drop_orders"))
    stat = next(s for s in high_drops.features if s.feature == "drop_orders")
    assert stat.kind == "numeric"
    assert stat.cluster_mean > stat.population_mean
    assert stat.cluster_median >= 5
    assert stat.z > 1.0
    population = np.array([r["drop_orders"] for r in ROWS], dtype=float)
    inside = stat.cluster_mean
    assert stat.population_mean == pytest.approx(float(population.mean()), abs=1e-12)
    assert stat.z == pytest.approx((inside - population.mean()) / population.std(), abs=1e-12)
    for proposal in by_name.values():
        assert 2 <= len(proposal.signals) <= 4
        zs = [abs(s.z) for s in proposal.features]
        assert zs == sorted(zs, reverse=True)
        assert proposal.description.startswith(f"Discovered cluster of {proposal.size} buyers")
        assert all(s.weight > 0 for s in proposal.signals)
        channels = {s.feature for s in proposal.features if s.kind == "category"}
        assert "first_touch_channel=direct" in channels


def test_name_follows_the_strongest_signals() -> None:
    for proposal in PROPOSALS:
        first = proposal.signals[0]
        prefix = {"gte": "high_", "lte": "low_", "between": "mid_"}.get(first.operator, "")
        assert proposal.name.startswith(f"{prefix}{first.feature}") or proposal.name.startswith(
            f"no_{first.feature}"
        )


def test_to_yaml_round_trips() -> None:
    text = to_yaml(PROPOSALS)
    loaded = load_templates(text)
    assert loaded == to_persona_set(PROPOSALS)
    assert loaded.names == tuple(p.name for p in PROPOSALS)
    for proposal, persona in zip(PROPOSALS, loaded.personas, strict=True):
        assert persona.signals == proposal.signals
        assert persona.prior == proposal.share
        assert persona.description == proposal.description
    assert text.startswith("# Persona templates proposed")
    assert "# cluster " in text
    assert load_templates(to_yaml(PROPOSALS, threshold=0.7)).threshold == 0.7


def test_deterministic_for_a_seed() -> None:
    assert discover(ROWS, k_range=(2, 6), seed=0) == PROPOSALS


def test_messy_rows_still_give_loadable_templates() -> None:
    rows, _ = blobs(seed=3, per=120)
    for i, row in enumerate(rows):
        row["buyer_id"] = f"b{i:05d}"  # an identifier: too many distinct values, skipped
        row["constant"] = 1  # never varies: skipped
        if i % 7 == 0:
            row["page_views_30d"] = None
        if i % 11 == 0:
            del row["weekend_share"]
        row["drop_orders"] = np.int64(row["drop_orders"])
        row["weekend_share"] = np.float64(row["weekend_share"]) if "weekend_share" in row else None
    proposals = discover(rows, k_range=(2, 5), seed=1, min_cluster=30)
    assert all(p.size >= 30 for p in proposals)
    assert all(s.feature not in {"buyer_id", "constant"} for p in proposals for s in p.signals)
    loaded = load_templates(to_yaml(proposals))
    assert len(loaded.personas) == len(proposals) >= 2
    assert all(math.isfinite(s.z) for p in proposals for s in p.features)


def test_proposals_serialise() -> None:
    data = PROPOSALS[0].model_dump(mode="json", by_alias=True)
    assert ProposedPersona.model_validate(data) == PROPOSALS[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k_range": (1, 4)}, "k_range"),
        ({"k_range": (5, 4)}, "k_range"),
        ({"min_cluster": 0}, "min_cluster"),
        ({"min_cluster": 400}, "too few rows"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        discover(ROWS, **kwargs)


def test_rows_without_varying_features() -> None:
    with pytest.raises(ValueError, match="no feature varies"):
        discover([{"a": 1, "b": "x"}] * 100)
