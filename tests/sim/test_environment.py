"""Tests for the seeded contextual-bandit simulator (offerloop.sim.environment)."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from offerloop.ml.base import Action, Scored
from offerloop.sim.audience import PERSONAS
from offerloop.sim.environment import (
    KINDS,
    MERCH_TAGS,
    PRICE_BANDS,
    TOPICS,
    CatalogItem,
    Environment,
    Round,
    RunResult,
    action_of,
    compare,
    demo_catalog,
    run,
)

CATALOG = demo_catalog(40, seed=0)


def make_env(**kwargs: Any) -> Environment:
    return Environment(catalog=CATALOG, **{"seed": 0, "n_buyers": 500, **kwargs})


def top_persona(context: Mapping[str, Any]) -> str:
    return max(PERSONAS, key=lambda p: context[f"persona={p}"])


# --------------------------------------------------------------------------------------------------
# Hand-written policies
# --------------------------------------------------------------------------------------------------


class UniformPolicy:
    name = "uniform"

    def rank(self, context: Mapping[str, Any], actions: Sequence[Action]) -> list[Scored]:
        return [Scored(i, 0.0, 1.0 / len(actions)) for i in range(len(actions))]

    def learn_one(
        self,
        context: Mapping[str, Any],
        actions: Sequence[Action],
        chosen: int,
        probability: float,
        reward: float,
    ) -> None:
        pass


class PeekingEnvironment(Environment):
    """Remembers the round it handed out last, so an oracle can look at the ground truth."""

    current: Round | None = None

    def next_round(self) -> Round:
        self.current = super().next_round()
        return self.current


class OraclePolicy:
    name = "oracle"

    def __init__(self, env: PeekingEnvironment) -> None:
        self.env = env

    def rank(self, context: Mapping[str, Any], actions: Sequence[Action]) -> list[Scored]:
        rnd = self.env.current
        assert rnd is not None and rnd.context is context
        best = self.env.best(rnd)
        return [Scored(rnd.candidates.index(best), 1.0, 1.0)]

    def learn_one(
        self,
        context: Mapping[str, Any],
        actions: Sequence[Action],
        chosen: int,
        probability: float,
        reward: float,
    ) -> None:
        pass


class TabularPolicy:
    """Epsilon-greedy over a table of mean rewards keyed by (segment, action id); segment=None: context-free."""

    def __init__(self, name: str, contextual: bool, epsilon: float = 0.1) -> None:
        self.name = name
        self.contextual = contextual
        self.epsilon = epsilon
        self.n: dict[tuple[str | None, str], int] = defaultdict(int)
        self.total: dict[tuple[str | None, str], float] = defaultdict(float)
        self.learned = 0

    def _segment(self, context: Mapping[str, Any]) -> str | None:
        return top_persona(context) if self.contextual else None

    def rank(self, context: Mapping[str, Any], actions: Sequence[Action]) -> list[Scored]:
        seg = self._segment(context)
        est = [(self.total[seg, a.id] + 0.5) / (self.n[seg, a.id] + 1) for a in actions]
        best = max(range(len(actions)), key=est.__getitem__)
        k = len(actions)
        ranked = [
            Scored(i, est[i], self.epsilon / k + (1 - self.epsilon if i == best else 0.0)) for i in range(k)
        ]
        return sorted(ranked, key=lambda s: -s.score)

    def learn_one(
        self,
        context: Mapping[str, Any],
        actions: Sequence[Action],
        chosen: int,
        probability: float,
        reward: float,
    ) -> None:
        assert 0.0 < probability <= 1.0
        key = (self._segment(context), actions[chosen].id)
        self.n[key] += 1
        self.total[key] += reward
        self.learned += 1


# --------------------------------------------------------------------------------------------------
# Catalog and actions
# --------------------------------------------------------------------------------------------------


def test_demo_catalog_is_seeded_and_well_formed() -> None:
    assert demo_catalog(40, seed=0) == CATALOG
    assert demo_catalog(40, seed=1) != CATALOG
    assert demo_catalog(12, seed=0) == CATALOG[:12]  # a prefix of a bigger catalog
    big = demo_catalog(200, seed=3)
    for catalog in (CATALOG, big):
        assert len({item.id for item in catalog}) == len(catalog)
        assert len({item.title for item in catalog}) == len(catalog)
        for item in catalog:
            assert item.kind in KINDS
            assert item.price_band in PRICE_BANDS
            assert isinstance(item.price_minor, int) and item.price_minor >= 0
            assert (item.price_minor == 0) == (item.price_band == "free")
            assert 1 <= item.level <= 3
            assert item.tags[0] in TOPICS and set(item.tags) <= set(TOPICS) | set(MERCH_TAGS)
            assert set(item.persona_fit) <= set(PERSONAS)
            assert item.title
    assert {item.kind for item in CATALOG} == set(KINDS)
    tags = {t for item in CATALOG for t in item.tags}
    assert set(MERCH_TAGS) <= tags
    assert any(item.kind == "lesson" and item.price_band == "free" for item in CATALOG)
    assert demo_catalog(1)[0].kind == "lesson"
    for bad in (0, 201):
        with pytest.raises(ValueError):
            demo_catalog(bad)


def test_action_of_exposes_item_features() -> None:
    item = next(i for i in CATALOG if "limited" in i.tags and i.persona_fit)
    action = action_of(item)
    assert action.id == item.id
    f = action.features
    assert (f["kind"], f["level"], f["format"], f["price_band"]) == (
        item.kind,
        item.level,
        item.format,
        item.price_band,
    )
    assert f["tag=limited"] == 1.0
    assert all(f[f"tag={t}"] == 1.0 for t in item.tags)
    assert all(f[f"fit={p}"] == 1.0 for p in item.persona_fit)
    assert len(f) == 4 + len(item.tags) + len(item.persona_fit)


# --------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_stream_and_rewards() -> None:
    a, b, c = make_env(), make_env(), make_env(seed=1)
    stream_a = [a.next_round() for _ in range(300)]
    stream_b = [b.next_round() for _ in range(300)]
    stream_c = [c.next_round() for _ in range(300)]
    assert stream_a == stream_b
    assert stream_a != stream_c
    rewards_a = [a.reward(r, r.candidates[0]) for r in stream_a]
    rewards_b = [b.reward(r, r.candidates[0]) for r in stream_b]
    assert rewards_a == rewards_b
    assert [r.step for r in stream_a] == list(range(300))


def test_rounds_are_well_formed_and_hide_the_persona() -> None:
    env = make_env()
    catalog_ids = {item.id for item in CATALOG}
    keys = {b.key for b in env.buyers}
    hits = 0
    for _ in range(2000):
        rnd = env.next_round()
        assert len(rnd.candidates) == 20 and len({i.id for i in rnd.candidates}) == 20
        assert {i.id for i in rnd.candidates} <= catalog_ids
        assert rnd.buyer_key in keys and env.buyer(rnd.buyer_key).persona == rnd.persona
        assert "persona" not in rnd.context
        assert not any(isinstance(v, str) and v in PERSONAS for v in rnd.context.values())
        scores = [rnd.context[f"persona={p}"] for p in PERSONAS]
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
        assert math.isclose(sum(float(s) for s in scores), 1.0, abs_tol=0.01)
        targeted = [top_persona(rnd.context) in item.persona_fit for item in rnd.candidates]
        assert targeted == sorted(targeted, reverse=True)  # the creator's rules order
        days = rnd.context["days_to_holiday"]
        assert isinstance(days, int) and rnd.context["near_holiday"] == (days <= 14)
        hits += top_persona(rnd.context) == rnd.persona
    assert 0.8 < hits / 2000 < 0.98  # informative but noisy

    clean = make_env(noise=0.0)
    assert all(top_persona(r.context) == r.persona for r in (clean.next_round() for _ in range(500)))
    revealed = make_env(reveal_persona=True)
    for _ in range(100):
        rnd = revealed.next_round()
        assert rnd.context["persona"] == rnd.persona
        assert rnd.context[f"persona={rnd.persona}"] == 1.0


def test_rewards_are_in_the_unit_interval() -> None:
    env = make_env()
    for _ in range(1000):
        rnd = env.next_round()
        for item in rnd.candidates:
            value = env.value(item)
            expected = env.expected_reward(rnd, item)
            reward = env.reward(rnd, item)
            assert 0.0 < value <= 1.0
            assert 0.0 <= expected <= value
            assert reward in (0.0, value)
        assert env.expected_reward(rnd, env.best(rnd)) == max(env.expected_rewards(rnd))


def test_best_item_depends_on_the_persona() -> None:
    env = make_env()
    rnd = env.next_round()
    bests = {p: env.best(dataclasses.replace(rnd, persona=p)).id for p in PERSONAS}
    assert len(set(bests.values())) >= 4, bests
    # ... and not only for that candidate set.
    rounds = [env.next_round() for _ in range(300)]
    distinct = [len({env.best(dataclasses.replace(r, persona=p)).id for p in PERSONAS}) for r in rounds]
    assert sum(d >= 4 for d in distinct) >= 0.9 * len(rounds)


def test_persona_specific_responses() -> None:
    env = make_env()
    rnd = env.next_round()

    def expected(persona: str, item: CatalogItem, **context: Any) -> float:
        return env.expected_reward(
            dataclasses.replace(rnd, persona=persona, context={**rnd.context, **context}), item
        )

    def mean(persona: str, items: list[CatalogItem], **context: Any) -> float:
        return sum(expected(persona, i, **context) for i in items) / len(items)

    limited = [i for i in CATALOG if "limited" in i.tags]
    giftable = [i for i in CATALOG if "giftable" in i.tags]
    discounted = [i for i in CATALOG if "discount" in i.tags]
    free_lessons = [i for i in CATALOG if i.kind == "lesson" and i.price_band == "free"]
    modules = [i for i in CATALOG if i.kind == "module"]
    quiet = {"is_weekend": False, "near_holiday": False}
    # Weekend collectors want limited items, far more on weekends; gifting guests, giftable items near a holiday.
    assert mean("weekend_collector", limited, is_weekend=True) > 1.5 * mean(
        "weekend_collector", limited, **quiet
    )
    assert mean("gifting_guest", giftable, near_holiday=True) > 2 * mean("gifting_guest", giftable, **quiet)
    # Each persona's favourite kind of item suits it better than it suits the average other persona.
    for persona, items in (
        ("early_adopter_superfan", limited),
        ("deal_seeker", discounted),
        ("lurker_researcher", free_lessons),
        ("subscription_loyalist", modules),
    ):
        others = [mean(p, items, **quiet) for p in PERSONAS if p != persona]
        assert mean(persona, items, **quiet) > 1.5 * sum(others) / len(others), persona


def test_drift_moves_expected_rewards_over_time() -> None:
    still, drifting = make_env(), make_env(drift=1.0)
    rnd, moving = still.next_round(), drifting.next_round()
    item = rnd.candidates[0]
    later = dataclasses.replace(rnd, step=5000)
    assert still.expected_reward(rnd, item) == still.expected_reward(later, item)
    assert drifting.expected_reward(moving, item) != drifting.expected_reward(
        dataclasses.replace(moving, step=5000), item
    )


def test_bernoulli_rewards_match_the_expected_reward() -> None:
    env = make_env()
    rnd = env.next_round()
    item = next(i for i in rnd.candidates if 0.2 < env.success_probability(rnd, i) < 0.8)
    p, value = env.success_probability(rnd, item), env.value(item)
    n = 20_000
    mean = sum(env.reward(rnd, item) for _ in range(n)) / n
    stderr = value * math.sqrt(p * (1 - p) / n)
    assert abs(mean - env.expected_reward(rnd, item)) < 3 * stderr


def test_constructor_validates_arguments() -> None:
    for kwargs in ({"n_buyers": 0}, {"candidates": 0}, {"noise": -0.1}, {"noise": 1.5}, {"drift": -1.0}):
        with pytest.raises(ValueError):
            make_env(**kwargs)
    with pytest.raises(ValueError):
        Environment(catalog=[])
    with pytest.raises(ValueError):
        Environment(catalog=[CATALOG[0], CATALOG[0]])
    assert len(Environment(catalog=CATALOG[:5], n_buyers=10).next_round().candidates) == 5


# --------------------------------------------------------------------------------------------------
# Running policies
# --------------------------------------------------------------------------------------------------


def test_run_is_deterministic() -> None:
    first = run(TabularPolicy("t", contextual=True), make_env(), rounds=3000, seed=5, keep_log=True)
    again = run(TabularPolicy("t", contextual=True), make_env(), rounds=3000, seed=5, keep_log=True)
    other = run(TabularPolicy("t", contextual=True), make_env(), rounds=3000, seed=6)
    assert first == again
    assert first.log is not None and len(first.log) == 3000
    assert other.cumulative_regret != first.cumulative_regret
    assert run(UniformPolicy(), make_env(), rounds=100).log is None


def test_oracle_has_zero_regret() -> None:
    env = PeekingEnvironment(catalog=CATALOG, seed=0, n_buyers=500)
    result = run(OraclePolicy(env), env, rounds=3000, keep_log=True)
    assert result.cumulative_regret == 0.0
    assert result.regret_curve == [0.0, 0.0, 0.0]
    assert result.total_reward > 0
    assert result.log is not None and all(entry.propensity == 1.0 for entry in result.log)
    assert result.total_reward == sum(entry.reward for entry in result.log)


def test_uniform_policy_has_regret_and_logs_its_propensities() -> None:
    result = run(UniformPolicy(), make_env(), rounds=2000, keep_log=True)
    assert result.policy == "uniform" and result.rounds == 2000
    assert result.cumulative_regret > 0.05 * 2000
    assert result.regret_curve == sorted(result.regret_curve) and len(result.regret_curve) == 2
    assert result.regret_curve[-1] == result.cumulative_regret
    assert result.log is not None
    entry = result.log[0]
    assert len(entry.actions) == 20 and 0 <= entry.chosen < 20 and entry.propensity == 1 / 20
    assert result.regret_per_1k(1000) == result.regret_curve[1] - result.regret_curve[0]
    assert result.regret_per_1k() == result.cumulative_regret / 2


def test_learn_flag_controls_learning() -> None:
    frozen, learning = TabularPolicy("f", contextual=False), TabularPolicy("l", contextual=False)
    run(frozen, make_env(), rounds=200, learn=False)
    run(learning, make_env(), rounds=200)
    assert (frozen.learned, learning.learned) == (0, 200)


def test_contextual_policy_beats_context_free_policy() -> None:
    def factory() -> Environment:
        return Environment(catalog=CATALOG, seed=0)

    policies = [TabularPolicy("popularity", contextual=False), TabularPolicy("per-persona", contextual=True)]
    popular, contextual = compare(policies, factory, rounds=20_000, seed=0)
    assert (popular.policy, contextual.policy) == ("popularity", "per-persona")
    assert contextual.cumulative_regret < 0.6 * popular.cumulative_regret
    assert contextual.regret_per_1k() < 0.6 * popular.regret_per_1k()
    assert contextual.total_reward > popular.total_reward


def test_compare_gives_every_policy_the_same_stream() -> None:
    def factory() -> Environment:
        return make_env(seed=3)

    a, b = compare([UniformPolicy(), UniformPolicy()], factory, rounds=1500, seed=2)
    assert a == b
    assert isinstance(a, RunResult)
