"""One conformance suite, parametrised over every policy class: the ``offerloop.ml.base.Policy`` contract."""

from __future__ import annotations

import inspect
import json
import math
import random
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerloop.ml.base import Action, Features, Policy, Scored, load_policy
from offerloop.ml.policies import (
    POLICY_KINDS,
    EpsilonGreedyPolicy,
    LinUCBPolicy,
    PopularityPolicy,
    RandomPolicy,
    RulesOnlyPolicy,
    VWContextualBandit,
)

Event = tuple[dict[str, Any], list[Action], int, float, float]

# Every model class, with non-default hyper-parameters where it has any.
FACTORIES: dict[str, Callable[[], Policy]] = {
    "vw_epsilon": lambda: VWContextualBandit(epsilon=0.2, seed=3),
    "vw_squarecb": lambda: VWContextualBandit(exploration="squarecb", seed=1),
    "vw_softmax": lambda: VWContextualBandit(exploration="softmax", softmax_lambda=5.0),
    "vw_bag": lambda: VWContextualBandit(exploration="bag", bag=3, cb_type="dr"),
    "vw_cover": lambda: VWContextualBandit(exploration="cover", cover=3, learning_rate=0.3),
    "random": lambda: RandomPolicy(seed=7),
    "popularity": lambda: PopularityPolicy(seed=2, prior=2.0),
    "epsilon_greedy": lambda: EpsilonGreedyPolicy(epsilon=0.2, seed=5),
    "rules_only": lambda: RulesOnlyPolicy(),
    "linucb": lambda: LinUCBPolicy(alpha=0.5, seed=4),
}
# The policies whose pmf gives every action positive mass (so new actions are explored).
EXPLORING = {"vw_epsilon", "vw_squarecb", "vw_softmax", "vw_bag", "vw_cover", "random", "epsilon_greedy"}
# VW does not restore bag's / cover's learning-time random draws, so only these continue learning identically.
RESUMES_EXACTLY = set(FACTORIES) - {"vw_bag", "vw_cover"}

params = pytest.mark.parametrize("name", list(FACTORIES))

IDS = [f"item{j}" for j in range(8)]
WEIRD_NAMES = ["a b", "x|y", "k:v", "pct%20", "tab\tname", "", "ünï", "persona weird:|"]


def make_actions(rng: random.Random, ids: Sequence[str]) -> list[Action]:
    actions = []
    for action_id in ids:
        features: dict[str, float | int | str | bool] = {}
        if rng.random() < 0.8:
            features["kind"] = rng.choice(["lesson", "offer", "coaching"])
        if rng.random() < 0.8:
            features["price"] = rng.choice([0, 9.99, 49.0, 199])
        if rng.random() < 0.5:
            features["paid"] = rng.random() < 0.5
        if rng.random() < 0.3:
            odd: list[float | str | bool] = ["v w", "|", 1.5, True]
            features[rng.choice(WEIRD_NAMES)] = rng.choice(odd)
        actions.append(Action(action_id, features))
    return actions


def make_context(rng: random.Random) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for name in ("visits", "days_since_signup", "spend"):
        if rng.random() < 0.8:  # missing features
            context[name] = rng.choice([0, 1, 3, 12.5, -2.0])
    if rng.random() < 0.9:
        context["persona"] = rng.choice(["hobbyist", "pro", "student"])
    if rng.random() < 0.5:
        context["persona_confidence"] = rng.random()
    context["country"] = rng.choice(["US", "FR", "de facto"])
    context["is_member"] = rng.random() < 0.5
    if rng.random() < 0.3:
        context[rng.choice(WEIRD_NAMES)] = rng.choice(["a:b", 2, False, "x y"])
    return context


COUNTRY_INDEX = {"US": 0, "FR": 1, "de facto": 2}


def make_log(seed: int, rounds: int = 150) -> list[Event]:
    rng = random.Random(seed)
    log = []
    for _ in range(rounds):
        context = make_context(rng)
        ids = rng.sample(IDS[:6], rng.randint(1, 5))  # item6, item7 are never logged
        actions = make_actions(rng, ids)
        chosen = rng.randrange(len(actions))
        best = COUNTRY_INDEX[context["country"]] == IDS.index(actions[chosen].id) % 3
        reward = 1.0 if best else rng.choice([0.0, 0.0, 0.5])
        log.append((context, actions, chosen, 1.0 / len(actions), reward))
    return log


LOG = make_log(seed=11)


def probes() -> list[tuple[dict[str, Any], list[Action]]]:
    rng = random.Random(99)
    out = [(make_context(rng), make_actions(rng, rng.sample(IDS, rng.randint(1, 8)))) for _ in range(12)]
    out.append(({}, [Action("item0", {}), Action("item1", {})]))  # nothing known about the buyer
    out.append(({"never_seen": 3.0, "new_cat": "zzz"}, [Action("brand_new", {"new_feature": 1.0})]))
    out.append(
        (
            {"visits": np.float64(2.0), "n": np.int64(3), "flag": np.bool_(True), "big": 10**400, "x": None},
            [Action("item2", {"nan": math.nan, "inf": math.inf}), Action("item3", {"price": 9})],
        )
    )
    return out


PROBES = probes()


def returns_none(method: Callable[..., object], *args: Any) -> bool:
    return method(*args) is None


def trained(name: str, log: Sequence[Event] = LOG) -> Policy:
    policy = FACTORIES[name]()
    for context, actions, chosen, probability, reward in log:
        assert returns_none(policy.learn_one, context, actions, chosen, probability, reward)
    return policy


def ranks(policy: Policy) -> list[list[Scored]]:
    return [policy.rank(context, actions) for context, actions in PROBES]


def check_ranking(ranked: Sequence[Scored], n: int) -> None:
    assert sorted(s.index for s in ranked) == list(range(n))
    assert all(isinstance(s, Scored) and math.isfinite(s.score) for s in ranked)
    assert all(0.0 <= s.probability <= 1.0 for s in ranked)
    if n:
        assert math.fsum(s.probability for s in ranked) == pytest.approx(1.0, abs=1e-9)
    keys = [(-s.score, s.index) for s in ranked]
    assert keys == sorted(keys)  # score desc, ties by index


def test_every_policy_kind_is_covered() -> None:
    covered = {type(factory()) for factory in FACTORIES.values()}
    assert covered == set(POLICY_KINDS.values())


@params
def test_implements_the_protocol_and_conventions(name: str) -> None:
    policy = FACTORIES[name]()
    assert isinstance(policy, Policy)
    assert isinstance(policy.name, str) and policy.name
    payload = policy.to_payload()
    assert set(payload) == {"kind", "version", "params", "state"}
    assert POLICY_KINDS[payload["kind"]] is type(policy)
    # hyper-parameters are exactly the __init__ arguments, stored as attributes of the same names
    init_params = list(inspect.signature(type(policy).__init__).parameters)[1:]
    assert list(payload["params"]) == init_params
    for param in init_params:
        assert json.dumps(getattr(policy, param)) == json.dumps(payload["params"][param])


@params
def test_learn_one_returns_none_and_validates_feedback(name: str) -> None:
    policy = FACTORIES[name]()
    context, actions, chosen, probability, reward = LOG[0]
    assert returns_none(policy.learn_one, context, actions, chosen, probability, reward)
    with pytest.raises(IndexError):
        policy.learn_one(context, actions, len(actions), probability, reward)
    with pytest.raises(ValueError):
        policy.learn_one(context, actions, chosen, 0.0, reward)
    with pytest.raises(ValueError):
        policy.learn_one(context, actions, chosen, probability, math.nan)


@params
def test_rankings_are_sorted_pmfs(name: str) -> None:
    policy = FACTORIES[name]()
    for fresh, learnt in zip(ranks(policy), ranks(trained(name)), strict=True):
        for ranked in (fresh, learnt):
            check_ranking(ranked, len(ranked))
    assert policy.rank({"a": 1}, []) == []


@params
def test_clone_keeps_params_and_drops_learned_state(name: str) -> None:
    policy = trained(name)
    clone = policy.clone()
    fresh = FACTORIES[name]()
    assert type(clone) is type(policy)
    assert clone.to_payload()["params"] == policy.to_payload()["params"]
    assert clone.to_payload()["state"] == fresh.to_payload()["state"]
    assert ranks(clone) == ranks(fresh)
    if name not in {"random", "rules_only"}:  # stateless by design
        assert ranks(policy) != ranks(fresh)


@params
def test_same_seed_and_data_give_identical_rankings(name: str) -> None:
    assert ranks(trained(name)) == ranks(trained(name))


@params
def test_payload_round_trip_through_json(name: str) -> None:
    policy = trained(name)
    text = json.dumps(policy.to_payload())
    for restored in (type(policy).from_payload(json.loads(text)), load_policy(json.loads(text))):
        assert type(restored) is type(policy)
        assert ranks(restored) == ranks(policy)
        assert restored.to_payload()["params"] == policy.to_payload()["params"]
    if name in RESUMES_EXACTLY:  # learning goes on from the restored state exactly
        more = make_log(seed=12, rounds=40)
        for event in more:
            policy.learn_one(*event)
            restored.learn_one(*event)
        assert ranks(restored) == ranks(policy)


@params
def test_payload_is_checked(name: str) -> None:
    payload = FACTORIES[name]().to_payload()
    with pytest.raises(ValueError):
        type(FACTORIES[name]()).from_payload({**payload, "version": 999})
    other = "random" if payload["kind"] != "random" else "linucb"
    with pytest.raises(ValueError):
        type(FACTORIES[name]()).from_payload({**payload, "kind": other})
    with pytest.raises(ValueError):
        load_policy({**payload, "kind": "no-such-kind"})


@params
def test_rank_is_side_effect_free(name: str) -> None:
    ranked_twice, control = trained(name), trained(name)
    first = ranks(ranked_twice)
    assert ranks(ranked_twice) == first
    # ranking in between must not change what is learnt next, nor later rankings
    for event in make_log(seed=13, rounds=40):
        ranks(ranked_twice)
        ranked_twice.learn_one(*event)
        control.learn_one(*event)
    assert ranks(ranked_twice) == ranks(control)
    if not name.startswith("vw_"):
        # VW's model file also carries its example counters, which predictions advance (VW bookkeeping
        # with no effect on predictions or learning, as checked above); every other payload is equal.
        assert ranked_twice.to_payload() == control.to_payload()


@params
def test_unseen_actions_and_features(name: str) -> None:
    policy = trained(name)
    context: Features = {"visits": 3, "brand_new_numeric": 4.5, "brand_new_cat": "x", "persona_new": "y"}
    actions = [
        Action("item0", {"kind": "lesson"}),
        Action("never_seen_1", {"kind": "webinar", "new_feature": 2.0}),
        Action("never_seen_2", {}),
    ]
    empty: Features = {}
    for ctx in (context, empty):  # every feature missing, too
        ranked = policy.rank(ctx, actions)
        check_ranking(ranked, len(actions))
        if name in EXPLORING:
            assert all(s.probability > 0.0 for s in ranked), ranked
    assert returns_none(policy.learn_one, context, actions, 1, 0.25, 1.0)
    check_ranking(policy.rank(context, actions), len(actions))


@pytest.mark.parametrize("name", [n for n in FACTORIES if n.startswith("vw_") or n == "linucb"])
def test_unsupported_feature_values_are_rejected(name: str) -> None:
    """The policies that read features refuse value types outside ``Features`` (the rest ignore features)."""
    with pytest.raises(TypeError):
        FACTORIES[name]().rank({"bad": [1, 2]}, [Action("a", {})])  # type: ignore[dict-item]


feature_names = st.text(min_size=0, max_size=8)
feature_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.text(max_size=6),
)
features = st.dictionaries(feature_names, feature_values, max_size=6)


@params
def test_arbitrary_feature_names_and_values(name: str) -> None:
    policy = trained(name, LOG[:40])

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(
        context=features,
        actions=st.lists(st.tuples(st.text(max_size=6), features), min_size=1, max_size=6),
        reward=st.floats(min_value=-5.0, max_value=5.0),
    )
    def check(context: Mapping[str, Any], actions: list[tuple[str, dict[str, Any]]], reward: float) -> None:
        acts = [Action(action_id, feats) for action_id, feats in actions]
        ranked = policy.rank(context, acts)
        check_ranking(ranked, len(acts))
        assert policy.rank(context, acts) == ranked
        policy.learn_one(context, acts, ranked[0].index, max(ranked[0].probability, 0.01), reward)

    check()


def test_ml_imports_nothing_but_core() -> None:
    code = (
        "import sys, offerloop.ml, offerloop.ml.base, offerloop.ml.policies\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'fastapi', 'starlette'}"
        " or (m.startswith('offerloop.') and not m.startswith(('offerloop.ml', 'offerloop.core'))))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
