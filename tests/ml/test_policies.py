"""Behaviour of the next-best-action policies on seeded synthetic bandit problems."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import vowpalwabbit

from offerloop.ml.base import Action, Features, Policy, Scored, sample
from offerloop.ml.policies import (
    EpsilonGreedyPolicy,
    LinUCBPolicy,
    PopularityPolicy,
    RandomPolicy,
    RulesOnlyPolicy,
    VWContextualBandit,
)
from offerloop.ml.policies.vw_format import _vw_predict, _vw_shared_line, _vw_text

# 2 contexts x 3 actions; the best action depends on the context.
MEANS = {"hobbyist": (0.8, 0.3, 0.1), "pro": (0.1, 0.3, 0.8)}
OPTIMAL = sum(max(m) for m in MEANS.values()) / len(MEANS)
ACTIONS = [
    Action("lesson", {"kind": "lesson"}),
    Action("offer", {"kind": "offer", "price": 49.0}),
    Action("coaching", {"kind": "coaching", "live": True}),
]


def play(policy: Policy, rounds: int, seed: int) -> list[float]:
    """Run the policy online; returns the expected reward of each action it chose."""
    rng = random.Random(seed)
    expected = []
    for _ in range(rounds):
        persona = rng.choice(sorted(MEANS))
        context: Features = {"persona": persona, "visits": rng.randint(1, 5)}
        chosen = sample(policy.rank(context, ACTIONS), rng)
        mean = MEANS[persona][chosen.index]
        reward = 1.0 if rng.random() < mean else 0.0
        policy.learn_one(context, ACTIONS, chosen.index, chosen.probability, reward)
        expected.append(mean)
    return expected


def test_vw_epsilon_learns_the_context_dependent_best_action() -> None:
    vw = VWContextualBandit(epsilon=0.1, seed=0)
    vw_rewards = play(vw, rounds=3000, seed=1)
    random_rewards = play(RandomPolicy(seed=0), rounds=3000, seed=1)
    last = vw_rewards[-1000:]
    assert sum(last) / len(last) > 0.8 * OPTIMAL
    assert sum(vw_rewards) > sum(random_rewards) * 1.3
    for persona, means in MEANS.items():  # the greedy choice is the best action in each context
        top = vw.rank({"persona": persona, "visits": 3}, ACTIONS)[0]
        assert top.index == means.index(max(means))


@pytest.mark.parametrize(
    "policy",
    [VWContextualBandit(exploration="squarecb"), LinUCBPolicy(alpha=0.5)],
    ids=["vw_squarecb", "linucb"],
)
def test_other_contextual_policies_learn_too(policy: Policy) -> None:
    rewards = play(policy, rounds=1500, seed=2)
    assert sum(rewards[-500:]) / 500 > 0.8 * OPTIMAL


def test_context_free_baselines_cannot_beat_the_best_single_action() -> None:
    best_single = max(sum(m[i] for m in MEANS.values()) / len(MEANS) for i in range(3))
    for policy in (PopularityPolicy(), EpsilonGreedyPolicy(), RulesOnlyPolicy()):
        rewards = play(policy, rounds=1000, seed=3)
        assert sum(rewards[-500:]) / 500 <= best_single + 0.02


@pytest.mark.parametrize("n_extra", [0, 4])
def test_vw_epsilon_gives_each_non_greedy_action_epsilon_over_n(n_extra: int) -> None:
    vw = VWContextualBandit(epsilon=0.1, seed=0)
    play(vw, rounds=300, seed=4)
    actions = ACTIONS + [Action(f"new{j}", {"kind": "webinar"}) for j in range(n_extra)]  # unseen actions too
    n = len(actions)
    for persona in MEANS:
        ranked = vw.rank({"persona": persona, "visits": 2}, actions)
        greedy = max(ranked, key=lambda s: s.probability)
        assert greedy is ranked[0]  # the pmf's greedy action is the top-scored one
        assert greedy.probability == pytest.approx(1 - 0.1 + 0.1 / n, rel=1e-6)
        for s in ranked[1:]:
            assert s.probability == pytest.approx(0.1 / n, rel=1e-6)


def test_epsilon_greedy_baseline_pmf_is_exact() -> None:
    policy = EpsilonGreedyPolicy(epsilon=0.3)
    policy.learn_one({}, ACTIONS, 2, 1.0, 1.0)
    ranked = policy.rank({}, [*ACTIONS, Action("new", {})])
    assert [s.index for s in ranked] == [2, 0, 1, 3]
    assert [s.probability for s in ranked] == [0.7 + 0.075, 0.075, 0.075, 0.075]


def test_sample_frequencies_match_the_pmf() -> None:
    vw = VWContextualBandit(exploration="softmax", softmax_lambda=3.0, seed=0)
    play(vw, rounds=300, seed=5)
    ranked = vw.rank({"persona": "pro", "visits": 1}, [*ACTIONS, Action("new", {})])
    pmf = {s.index: s.probability for s in ranked}
    assert min(pmf.values()) > 0.01  # a non-trivial pmf
    rng = random.Random(2024)
    draws = 20_000
    counts: Counter[int] = Counter()
    for _ in range(draws):
        chosen = sample(ranked, rng)
        assert chosen.probability == pmf[chosen.index]  # the propensity to log is the pmf entry
        counts[chosen.index] += 1
    for index, p in pmf.items():
        standard_error = math.sqrt(p * (1 - p) / draws)
        assert abs(counts[index] / draws - p) <= 3 * standard_error


def test_sample_edge_cases() -> None:
    rng = random.Random(0)
    ranked = [Scored(0, 1.0, 0.0), Scored(1, 0.5, 1.0), Scored(2, 0.1, 0.0)]
    assert {sample(ranked, rng).index for _ in range(200)} == {1}  # zero mass is never drawn
    with pytest.raises(ValueError):
        sample([], rng)
    with pytest.raises(ValueError):
        sample([Scored(0, 0.0, 0.0)], rng)
    with pytest.raises(ValueError):
        sample([Scored(0, 0.0, -0.5), Scored(1, 0.0, 1.5)], rng)


def test_vw_score_is_the_cb_adf_predicted_reward_not_the_pmf() -> None:
    """For epsilon (and softmax) exploration the score is exactly what a plain ``--cb_adf`` regressor
    trained on the same examples predicts (negated cost)."""
    vw = VWContextualBandit(epsilon=0.1, seed=0)
    scorer = vowpalwabbit.Workspace(arg_list=vw.scorer_args())
    rng = random.Random(6)
    for _ in range(200):
        persona = rng.choice(sorted(MEANS))
        context: Features = {"persona": persona, "visits": rng.randint(1, 5)}
        chosen = sample(vw.rank(context, ACTIONS), rng)
        reward = 1.0 if rng.random() < MEANS[persona][chosen.index] else 0.0
        vw.learn_one(context, ACTIONS, chosen.index, chosen.probability, reward)
        scorer.learn(_vw_text(context, ACTIONS, (chosen.index, -reward, chosen.probability)).split("\n"))
    probe: Features = {"persona": "pro", "visits": 2}
    _, costs = _vw_predict(scorer, _vw_text(probe, ACTIONS, None), len(ACTIONS))
    ranked = vw.rank(probe, ACTIONS)
    assert {s.index: s.score for s in ranked} == {i: -c for i, c in enumerate(costs)}
    assert len({s.probability for s in ranked}) == 2  # the pmf is epsilon-greedy, the scores are not
    assert len({s.score for s in ranked}) == 3


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "softmax", "bag", "cover"])
def test_vw_explores_unseen_actions_after_training(exploration: str) -> None:
    vw = VWContextualBandit(exploration=exploration, seed=0)
    play(vw, rounds=400, seed=7)
    ranked = vw.rank({"persona": "pro", "visits": 2}, [*ACTIONS, Action("brand_new", {"kind": "webinar"})])
    assert next(s for s in ranked if s.index == 3).probability > 0.0


def test_vw_example_layout() -> None:
    line = _vw_shared_line({"persona": "pro", "persona_score": 0.5, "age": 30, "member": True, "gone": False})
    assert line == "shared |u age:30 member |p persona=pro:1 persona_score:0.5"
    text = _vw_text(
        {"a b": "x|y", "k:v": 2.5, "pct%": "z"},
        [Action("id 1", {"price": 9.99, "kind": "coaching slot", "zero": 0}), Action("id2", {})],
        (1, -1.0, 0.25),
    )
    assert text.split("\n") == [
        "shared |u a%20b=x%7Cy:1 k%3Av:2.5 pct%25=z:1",
        "|a action_id=id%201:1 price:9.99 kind=coaching%20slot:1",
        "0:-1:0.25 |a action_id=id2:1",
    ]
    assert _vw_shared_line({"a b": 1.0}) != _vw_shared_line({"a_b": 1.0})
    assert _vw_shared_line({"a=b": "c"}) == "shared |u a%3Db=c:1" != _vw_shared_line({"a": "b=c"})
    assert _vw_shared_line({"tiny": 1e-200, "huge": 1e300, "nan": math.nan}) == "shared |u huge:1e+09"


def test_vw_hyper_parameters_are_validated() -> None:
    with pytest.raises(ValueError):
        VWContextualBandit(exploration="thompson")
    with pytest.raises(ValueError):
        VWContextualBandit(exploration="epsilon", bag=3)
    with pytest.raises(ValueError):
        VWContextualBandit(cb_type="nope")
    with pytest.raises(ValueError):
        VWContextualBandit(interactions=("u",))
    assert "--squarecb" in VWContextualBandit(exploration="squarecb").vw_args()
    assert VWContextualBandit(exploration="bag").vw_args()[:5] == [
        "--cb_explore_adf",
        "--bag",
        "5",
        "--epsilon",
        "0.1",
    ]


def test_popularity_smooths_towards_the_global_mean() -> None:
    policy = PopularityPolicy(prior=1.0)
    for reward in (1.0, 1.0, 0.0):
        policy.learn_one({}, ACTIONS, 0, 1.0, reward)
    policy.learn_one({}, ACTIONS, 1, 1.0, 0.0)
    scores = {s.index: s.score for s in policy.rank({}, ACTIONS)}
    m = 2.0 / 4.0
    assert scores == {0: pytest.approx((2.0 + m) / 4.0), 1: pytest.approx(m / 2.0), 2: pytest.approx(m)}
    ranked = policy.rank({}, ACTIONS)
    assert [s.index for s in ranked] == [0, 2, 1] and [s.probability for s in ranked] == [1.0, 0.0, 0.0]


def test_rules_only_keeps_the_given_order() -> None:
    ranked = RulesOnlyPolicy().rank({"persona": "pro"}, ACTIONS)
    assert ranked == [Scored(0, 0.0, 1.0), Scored(1, -1.0, 0.0), Scored(2, -2.0, 0.0)]


def test_random_policy_is_uniform_and_reproducible() -> None:
    ranked = RandomPolicy(seed=1).rank({"persona": "pro"}, ACTIONS)
    assert all(s.probability == pytest.approx(1 / 3) for s in ranked)
    assert RandomPolicy(seed=1).rank({"persona": "pro"}, ACTIONS) == ranked
    orders = {tuple(s.index for s in RandomPolicy(seed=k).rank({"v": 1}, ACTIONS)) for k in range(30)}
    assert len(orders) > 1  # the seed changes the order


def test_linucb_confidence_shrinks_with_data() -> None:
    policy = LinUCBPolicy(alpha=1.0)
    context = {"persona": "pro"}
    before = policy.rank(context, ACTIONS[:1])[0].score
    for _ in range(20):
        policy.learn_one(context, ACTIONS, 0, 1.0, 0.0)
    after = policy.rank(context, ACTIONS[:1])[0].score
    assert before == pytest.approx(math.sqrt(3.0))  # bias, persona one-hot, kind one-hot; A = I, theta = 0
    assert 0.0 < after < before
