"""The simulator's regret ordering (seeded): the learning policy beats the context-free baselines."""

from __future__ import annotations

from offerloop.ml.policies import (
    EpsilonGreedyPolicy,
    PopularityPolicy,
    RandomPolicy,
    RulesOnlyPolicy,
    VWContextualBandit,
)
from offerloop.sim.environment import Environment, compare, demo_catalog


def test_vw_bandit_has_less_regret_than_context_free_baselines():
    catalog = demo_catalog(40, seed=0)
    runs = {
        r.policy: r
        for r in compare(
            [VWContextualBandit(exploration="epsilon", epsilon=0.1, seed=0), PopularityPolicy(seed=0),
             EpsilonGreedyPolicy(epsilon=0.1, seed=0), RandomPolicy(seed=0), RulesOnlyPolicy()],
            lambda: Environment(catalog=catalog, seed=0, candidates=20, noise=0.1),
            rounds=6000,
            seed=0,
        )
    }  # fmt: skip
    results = {name: run.cumulative_regret for name, run in runs.items()}
    assert results["vw_epsilon"] < results["popularity"] < results["random"]
    assert results["vw_epsilon"] < results["epsilon_greedy"] < results["random"]
    # Once it has learned, the bandit also beats the creator's rules order it started from.
    assert runs["vw_epsilon"].regret_per_1k(last=2000) < runs["rules_only"].regret_per_1k(last=2000)
