"""Seeded contextual-bandit simulator for the next-best-action engine, with a known ground truth.

A creator sells a course business (pricing, audience growth, launches, email, community, content
systems) as lessons, modules, offers, coaching slots and in-product prompts (:func:`demo_catalog`, in
``offerloop.sim.catalog``).
Buyers come from the seeded synthetic audience (``offerloop.sim.audience``: the buyers of
``Audience(buyers=n_buyers, seed=seed)``, same keys, personas and acquisition channels). Every round
one buyer visits, a random subset of the catalog is eligible (in the creator's rules order, see
:class:`Round`), and the policy picks one item to show.

Ground truth (:meth:`Environment.expected_reward`) is ``P(success) * value``:

* ``P(success) = sigmoid(logit)``, the logit being a base rate for the item's kind, plus the buyer's
  persona affinity for the item (superfans love drops, early access and premium formats; deal seekers
  respond to discounted offers; lurkers to free lessons; loyalists to modules and the membership;
  weekend collectors to limited items, far more on weekends; gifting guests to giftable bundles,
  far more near a holiday), plus the item's hidden quality (seeded per environment), plus a bonus when
  the item covers the buyer's goal and a penalty when its level is far from the buyer's stage, plus,
  with ``drift > 0``, a slow sinusoidal change of every item's appeal over the rounds.
* ``value`` is in ``(0, 1]``: a log scale of the price for paid items, a small engagement value for
  free ones. So rewards (a Bernoulli draw times the value) are always in ``[0, 1]``.

What the policy sees (``Round.context``) are noisy signals of the hidden persona, never the persona
itself (unless ``reveal_persona``): posterior-like ``persona=<name>`` scores (a softmax of a margin of
3 for the true persona plus Gaussian noise: ``sigma = 10 * noise`` fixed per buyer and
``3 * noise`` per visit, so at ``noise=0.1`` about one buyer in ten has a misleading top score),
behavioural counts whose distributions overlap across personas, the acquisition channel, the goal
(replaced by a random topic with probability ``2 * noise``), the creator stage, and the visit's time context
(``is_weekend``, ``days_to_holiday``, ``near_holiday``; these are exact).

Determinism: everything is derived from string-seeded ``random.Random`` streams (independent of
``PYTHONHASHSEED`` and the machine). The round stream does not depend on the rewards drawn, so
policies compared on environments built with the same arguments see the same buyers, the same
candidate sets and, when they draw one reward per round, the same uniform numbers behind the
Bernoulli draws (common random numbers).

Pure: stdlib, ``offerloop.ml.base`` and ``offerloop.sim.audience``; no database, no web imports.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

from offerloop.ml.base import Action, Features, Scored, sample
from offerloop.sim.audience import PERSONAS, Audience
from offerloop.sim.catalog import (
    _MAX_PRICE_MINOR,
    _PREMIUM_FORMATS,
    FORMATS,
    KINDS,
    MERCH_TAGS,
    PRICE_BANDS,
    TOPICS,
    CatalogItem,
    action_of,
    demo_catalog,
)

__all__ = [
    "FORMATS",
    "KINDS",
    "MERCH_TAGS",
    "PRICE_BANDS",
    "TOPICS",
    "CatalogItem",
    "Environment",
    "LogEntry",
    "Playable",
    "Round",
    "RunResult",
    "SimBuyer",
    "action_of",
    "compare",
    "demo_catalog",
    "run",
]

_SUPERFAN, _WEEKEND, _LOYALIST, _GIFTING, _LURKER, _DEAL = PERSONAS


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------

_KIND_BASE: Final = {"lesson": -0.6, "module": -1.7, "offer": -2.5, "coaching": -3.3, "prompt": -0.5}
_MEMBERSHIP_MONTHS: Final = 6  # a membership is worth its expected lifetime, not one month
_FREE_VALUE: Final = {"lesson": 0.25, "prompt": 0.12, "module": 0.3, "offer": 0.3, "coaching": 0.4}


def _value(item: CatalogItem) -> float:
    """What a success is worth, in (0, 1]: engagement for free items, a log scale of the price otherwise."""
    if item.price_minor <= 0:
        return _FREE_VALUE.get(item.kind, 0.2)
    revenue = item.price_minor * (_MEMBERSHIP_MONTHS if item.format == "membership" else 1)
    scaled = math.log1p(revenue / 100) / math.log1p(_MAX_PRICE_MINOR / 100)
    return min(1.0, 0.15 + 0.85 * scaled)


def _affinity(persona: str, item: CatalogItem) -> float:
    """Persona-specific part of the success logit that does not depend on the visit's time context."""
    tags = item.tags
    kind, fmt = item.kind, item.format
    limited = "limited" in tags
    discount = "discount" in tags
    giftable = "giftable" in tags
    early = "early_access" in tags
    premium = item.price_band == "premium" or fmt in _PREMIUM_FORMATS
    free = item.price_band == "free"
    a = 0.0
    if persona == _SUPERFAN:
        a += 0.6 + 1.8 * limited + 0.6 * early + 1.4 * premium
        a -= 0.6 * (free and kind == "lesson") + 0.6 * (kind == "module") + 0.4 * discount
    elif persona == _WEEKEND:
        a += 0.8 * limited + 0.4 * (fmt in ("drop", "bundle"))
        a -= 0.6 * (kind in ("lesson", "module")) + 0.5 * (kind == "coaching")
    elif persona == _LOYALIST:
        a += 0.3 + 1.9 * (kind == "module") + 1.6 * (fmt == "membership") + 0.5 * ("community" in tags)
        a -= 0.5 * limited + 0.3 * discount + 0.4 * (kind == "prompt")
    elif persona == _GIFTING:
        a += 0.7 * giftable + 0.4 * (fmt == "bundle")
        a -= 1.6 * (kind in ("lesson", "module", "prompt")) + 1.2 * (kind == "coaching") + 0.8 * early
    elif persona == _LURKER:
        a += 1.4 * free + 0.6 * (kind == "lesson") + 0.3 * (fmt in ("article", "checklist"))
        a -= 1.5 * (not free) + 1.6 * premium + 1.0 * (kind == "offer") + 1.2 * (kind == "coaching")
    elif persona == _DEAL:
        a += 2.2 * discount + 0.3 * free
        a -= 1.2 * premium + 0.9 * (kind == "offer" and not discount)
    return a


class _Truth(NamedTuple):
    static: dict[str, float]  # persona -> logit without the visit's time context, goal and stage
    value: float
    topics: frozenset[str]
    level: int
    limited: bool
    giftable: bool
    phase: float


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --------------------------------------------------------------------------------------------------
# Buyers and rounds
# --------------------------------------------------------------------------------------------------

# Behavioural signals per persona: (visit weight, sessions_30d, orders, lessons_completed,
# P(used_discount), P(member), P(subscriber), weekend share (beta a, b)).
_SIGNALS: Final[dict[str, tuple[float, float, float, float, float, float, float, tuple[float, float]]]] = {
    _SUPERFAN: (2.0, 12.0, 5.0, 9.0, 0.1, 0.5, 0.6, (3.0, 6.0)),
    _WEEKEND: (1.0, 5.0, 3.0, 2.0, 0.2, 0.1, 0.25, (7.0, 3.0)),
    _LOYALIST: (1.4, 8.0, 3.5, 13.0, 0.15, 0.7, 0.5, (3.0, 6.0)),
    _GIFTING: (0.5, 1.5, 0.6, 0.3, 0.2, 0.02, 0.1, (3.0, 5.0)),
    _LURKER: (1.0, 7.0, 0.3, 8.0, 0.05, 0.05, 0.35, (3.0, 6.0)),
    _DEAL: (0.9, 4.0, 2.0, 2.0, 0.8, 0.1, 0.4, (3.0, 6.0)),
}
_PERSONA_MARGIN: Final = 3.0
_STAGE_WEIGHTS: Final = (0.45, 0.35, 0.2)


@dataclass(frozen=True, slots=True)
class SimBuyer:
    """A simulated buyer (ground truth): the audience's buyer plus a hidden goal and creator stage."""

    key: str
    persona: str
    channel: str
    goal: str  # the topic the buyer cares about most
    stage: int  # 1 just starting .. 3 established creator


@dataclass(frozen=True, slots=True)
class Round:
    """One visit: who came (ground truth), what the policy may observe, and the eligible items.

    ``candidates`` come in the order simple creator rules would give them (a stable sort of a random
    sample): items whose ``persona_fit`` names the buyer's most likely persona (by the observable
    ``persona=`` scores) first, then items on the buyer's (reported) goal.
    """

    buyer_key: str
    persona: str
    context: dict[str, float | int | str | bool]
    candidates: list[CatalogItem]
    step: int = 0  # 0-based index of the round in its environment (drives drift)


class _BuyerState(NamedTuple):
    buyer: SimBuyer
    persona_noise: tuple[float, ...]  # fixed per buyer, added to the persona-signal logits
    reported_goal: str
    static: dict[str, float | int | str | bool]


class Environment:
    """A stream of :class:`Round` objects with known expected rewards; see the module docstring.

    ``catalog``: the items (unique ids); ``seed``: buyers, rounds, rewards and hidden item quality;
    ``n_buyers``: size of the audience the visitors come from (superfans and loyalists visit more
    often); ``candidates``: eligible items per round (capped at the catalog size); ``noise`` in [0, 1]:
    how misleading the persona signals and the reported goal are; ``reveal_persona``: put the true
    persona in the context (``"persona"``, and one-hot ``persona=<name>`` scores); ``drift`` >= 0:
    amplitude (in logits) of a slow sinusoidal change of every item's appeal, period 20,000 rounds.
    """

    def __init__(
        self,
        *,
        catalog: Sequence[CatalogItem],
        seed: int = 0,
        n_buyers: int = 2000,
        candidates: int = 20,
        noise: float = 0.1,
        reveal_persona: bool = False,
        drift: float = 0.0,
    ) -> None:
        if not catalog:
            raise ValueError("catalog must not be empty")
        if len({item.id for item in catalog}) != len(catalog):
            raise ValueError("catalog item ids must be unique")
        if n_buyers < 1:
            raise ValueError("n_buyers must be >= 1")
        if candidates < 1:
            raise ValueError("candidates must be >= 1")
        if not 0.0 <= noise <= 1.0:
            raise ValueError("noise must be in [0, 1]")
        if drift < 0.0:
            raise ValueError("drift must be >= 0")
        self.catalog: tuple[CatalogItem, ...] = tuple(catalog)
        self.seed = seed
        self.candidates = min(candidates, len(self.catalog))
        self.noise = noise
        self.reveal_persona = reveal_persona
        self.drift = drift
        self._key = f"offerloop-env-v1:{seed}"
        # Keyed by item id (hashing a whole CatalogItem is slow); the item is kept to check it is the same.
        self._truth: dict[str, tuple[CatalogItem, _Truth]] = {}
        self._actions: dict[str, tuple[CatalogItem, Action]] = {}
        for item in self.catalog:
            self._actions[item.id] = (item, action_of(item))
            self._truth[item.id] = (item, self._make_truth(item))

        rng = random.Random(f"{self._key}:buyers")
        states: list[_BuyerState] = []
        for sb in Audience(buyers=n_buyers, events=0, seed=seed).buyers:
            states.append(self._make_buyer(rng, sb.key, sb.persona, sb.channel))
        self._states = states
        self._by_key = {s.buyer.key: s for s in states}
        self.buyers: tuple[SimBuyer, ...] = tuple(s.buyer for s in states)
        cum, total = [], 0.0
        for s in states:
            total += _SIGNALS[s.buyer.persona][0]
            cum.append(total)
        self._cum_weights, self._total_weight = cum, total
        self._rounds_rng = random.Random(f"{self._key}:rounds")
        self._reward_rng = random.Random(f"{self._key}:rewards")
        self._step = 0

    # ---- construction ---------------------------------------------------------------------------

    def _make_truth(self, item: CatalogItem) -> _Truth:
        rng = random.Random(f"{self._key}:item:{item.id}")
        quality = rng.gauss(0.0, 0.4)
        base = _KIND_BASE.get(item.kind, -2.0) + quality
        return _Truth(
            static={p: base + _affinity(p, item) for p in PERSONAS},
            value=_value(item),
            topics=frozenset(item.tags),
            level=item.level,
            limited="limited" in item.tags,
            giftable="giftable" in item.tags,
            phase=rng.uniform(0.0, 2.0 * math.pi),
        )

    def _make_buyer(self, rng: random.Random, key: str, persona: str, channel: str) -> _BuyerState:
        _, sessions, orders, lessons, p_discount, p_member, p_subscriber, (wa, wb) = _SIGNALS[persona]
        goal = rng.choice(TOPICS)
        stage = rng.choices((1, 2, 3), _STAGE_WEIGHTS)[0]
        if persona == _SUPERFAN and stage == 1:
            stage = 2
        sigma = 10.0 * self.noise
        persona_noise = tuple(rng.gauss(0.0, sigma) if sigma > 0 else 0.0 for _ in PERSONAS)
        reported_goal = goal if rng.random() >= 2 * self.noise else rng.choice(TOPICS)
        static: dict[str, float | int | str | bool] = {
            "channel": channel,
            "goal": reported_goal,
            "stage": stage,
            "sessions_30d": _poisson(rng, sessions),
            "orders": _poisson(rng, orders),
            "lessons_completed": _poisson(rng, lessons),
            "used_discount": rng.random() < p_discount,
            "member": rng.random() < p_member,
            "subscriber": channel == "newsletter" or rng.random() < p_subscriber,
            "weekend_share": round(rng.betavariate(wa, wb), 3),
        }
        buyer = SimBuyer(key=key, persona=persona, channel=channel, goal=goal, stage=stage)
        return _BuyerState(buyer, persona_noise, reported_goal, static)

    # ---- rounds ---------------------------------------------------------------------------------

    def next_round(self) -> Round:
        """The next visit of the stream (advances the environment)."""
        rng = self._rounds_rng
        step = self._step
        self._step += 1
        i = bisect.bisect_right(self._cum_weights, rng.random() * self._total_weight)
        state = self._states[min(i, len(self._states) - 1)]
        persona = state.buyer.persona
        context: dict[str, float | int | str | bool] = {}
        jitter = 3.0 * self.noise
        logits = [
            (_PERSONA_MARGIN if p == persona else 0.0) + n + (rng.gauss(0.0, jitter) if jitter > 0 else 0.0)
            for p, n in zip(PERSONAS, state.persona_noise, strict=True)
        ]
        if self.reveal_persona:
            for p in PERSONAS:
                context[f"persona={p}"] = 1.0 if p == persona else 0.0
        else:
            top = max(logits)
            exps = [math.exp(x - top) for x in logits]
            z = sum(exps)
            for p, e in zip(PERSONAS, exps, strict=True):
                context[f"persona={p}"] = round(e / z, 3)
        context.update(state.static)
        days = rng.randrange(60)
        context["is_weekend"] = rng.random() < 2 / 7
        context["days_to_holiday"] = days
        context["near_holiday"] = days <= 14
        if self.reveal_persona:
            context["persona"] = persona
        cands = rng.sample(self.catalog, self.candidates)
        # The creator's rules order: items targeted at the most likely persona first, then the buyer's goal.
        likely = max(PERSONAS, key=lambda p: context[f"persona={p}"])
        goal = state.reported_goal
        cands.sort(key=lambda item: -(2 * (likely in item.persona_fit) + (goal in item.tags)))
        return Round(buyer_key=state.buyer.key, persona=persona, context=context, candidates=cands, step=step)

    def actions(self, rnd: Round) -> list[Action]:
        """``action_of`` each candidate (cached per item)."""
        out = []
        for item in rnd.candidates:
            entry = self._actions.get(item.id)
            if entry is not None and (entry[0] is item or entry[0] == item):
                out.append(entry[1])
            else:
                out.append(action_of(item))
        return out

    # ---- ground truth ---------------------------------------------------------------------------

    def _item_truth(self, item: CatalogItem) -> _Truth:
        entry = self._truth.get(item.id)
        if entry is not None and (entry[0] is item or entry[0] == item):
            return entry[1]
        truth = self._make_truth(item)
        if entry is None:
            self._truth[item.id] = (item, truth)
        return truth

    def _probability(self, rnd: Round, buyer: SimBuyer, truth: _Truth) -> float:
        persona = rnd.persona
        logit = truth.static[persona]
        if truth.limited and persona == _WEEKEND and rnd.context.get("is_weekend"):
            logit += 1.8
        if truth.giftable and rnd.context.get("near_holiday"):
            logit += 2.2 if persona == _GIFTING else 0.3
        if buyer.goal in truth.topics:
            logit += 0.7
        logit -= 0.45 * abs(truth.level - buyer.stage)
        if self.drift:
            logit += self.drift * math.sin(2.0 * math.pi * rnd.step / 20_000 + truth.phase)
        return _sigmoid(logit)

    def success_probability(self, rnd: Round, item: CatalogItem) -> float:
        """Ground truth P(success) for ``rnd.persona`` (and the visiting buyer's hidden goal and stage)."""
        return self._probability(rnd, self._by_key[rnd.buyer_key].buyer, self._item_truth(item))

    def expected_reward(self, rnd: Round, item: CatalogItem) -> float:
        """Ground truth: ``P(success) * value``, in [0, 1]."""
        truth = self._item_truth(item)
        return self._probability(rnd, self._by_key[rnd.buyer_key].buyer, truth) * truth.value

    def expected_rewards(self, rnd: Round) -> list[float]:
        """``expected_reward`` of every candidate, in candidate order."""
        buyer = self._by_key[rnd.buyer_key].buyer
        out = []
        for item in rnd.candidates:
            truth = self._item_truth(item)
            out.append(self._probability(rnd, buyer, truth) * truth.value)
        return out

    def value(self, item: CatalogItem) -> float:
        """What a success with ``item`` is worth, in (0, 1]."""
        return self._item_truth(item).value

    def reward(self, rnd: Round, item: CatalogItem) -> float:
        """A seeded Bernoulli(P(success)) draw times the item's value (0.0 on failure)."""
        u = self._reward_rng.random()
        truth = self._item_truth(item)
        return truth.value if u < self._probability(rnd, self._by_key[rnd.buyer_key].buyer, truth) else 0.0

    def best(self, rnd: Round) -> CatalogItem:
        """The candidate with the highest expected reward (the first one on a tie)."""
        rewards = self.expected_rewards(rnd)
        return rnd.candidates[rewards.index(max(rewards))]

    def buyer(self, key: str) -> SimBuyer:
        return self._by_key[key].buyer


# --------------------------------------------------------------------------------------------------
# Running policies
# --------------------------------------------------------------------------------------------------


class Playable(Protocol):
    """The part of ``offerloop.ml.base.Policy`` that :func:`run` uses (every ``Policy`` is ``Playable``)."""

    name: str

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]: ...

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None: ...


class LogEntry(NamedTuple):
    """One logged decision, as an off-policy learner or estimator needs it."""

    context: dict[str, float | int | str | bool]
    actions: list[Action]
    chosen: int
    propensity: float
    reward: float


@dataclass
class RunResult:
    """Outcome of :func:`run`. ``regret_curve[k]`` is the cumulative regret after ``1000 * (k + 1)`` rounds.

    ``seconds`` (wall time of the run) and ``policy_seconds`` (time spent in ``rank`` and ``learn_one``)
    are left out of equality, so seeded runs compare equal.
    """

    policy: str
    rounds: int
    total_reward: float
    cumulative_regret: float
    regret_curve: list[float]
    log: list[LogEntry] | None = None
    seconds: float = field(default=0.0, compare=False)
    policy_seconds: float = field(default=0.0, compare=False)

    def regret_per_1k(self, last: int = 10_000) -> float:
        """Regret per 1,000 rounds over the last ``last`` rounds (all rounds when there are fewer)."""
        window = min(last, self.rounds)
        if window <= 0:
            return 0.0
        start = self.rounds - window
        return (self.cumulative_regret - self._cumulative_at(start)) * 1000.0 / window

    def _cumulative_at(self, t: int) -> float:
        if t <= 0:
            return 0.0
        points = [(0, 0.0)] + [(1000 * (k + 1), v) for k, v in enumerate(self.regret_curve)]
        points.append((self.rounds, self.cumulative_regret))
        for (t0, v0), (t1, v1) in itertools.pairwise(points):
            if t0 <= t <= t1:
                return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        return self.cumulative_regret


def run(
    policy: Playable,
    env: Environment,
    *,
    rounds: int,
    seed: int = 0,
    learn: bool = True,
    keep_log: bool = False,
) -> RunResult:
    """Play ``rounds`` rounds of ``env`` with ``policy``.

    Each round: rank the candidates' actions, sample the shown action from the ranking's pmf with a
    seeded rng, draw its reward, and (``learn``) call ``learn_one`` with the logged propensity. Regret
    is measured against the expected reward of the round's best candidate.
    """
    if rounds < 0:
        raise ValueError("rounds must be >= 0")
    rng = random.Random(f"offerloop-run-v1:{seed}")
    total_reward = regret = 0.0
    curve: list[float] = []
    log: list[LogEntry] | None = [] if keep_log else None
    in_policy = 0.0
    started = time.perf_counter()
    for step in range(1, rounds + 1):
        rnd = env.next_round()
        actions = env.actions(rnd)
        t0 = time.perf_counter()
        ranked = policy.rank(rnd.context, actions)
        in_policy += time.perf_counter() - t0
        shown = sample(ranked, rng)
        chosen = shown.index
        reward = env.reward(rnd, rnd.candidates[chosen])
        expected = env.expected_rewards(rnd)
        regret += max(expected) - expected[chosen]
        total_reward += reward
        if learn:
            t0 = time.perf_counter()
            policy.learn_one(rnd.context, actions, chosen, shown.probability, reward)
            in_policy += time.perf_counter() - t0
        if log is not None:
            log.append(LogEntry(rnd.context, actions, chosen, shown.probability, reward))
        if step % 1000 == 0:
            curve.append(regret)
    return RunResult(
        policy=policy.name,
        rounds=rounds,
        total_reward=total_reward,
        cumulative_regret=regret,
        regret_curve=curve,
        log=log,
        seconds=time.perf_counter() - started,
        policy_seconds=in_policy,
    )


def compare(
    policies: Sequence[Playable],
    env_factory: Callable[[], Environment],
    *,
    rounds: int,
    seed: int = 0,
    learn: bool = True,
) -> list[RunResult]:
    """:func:`run` each policy on a fresh ``env_factory()`` (build it with a fixed seed: same stream)."""
    return [run(policy, env_factory(), rounds=rounds, seed=seed, learn=learn) for policy in policies]
