"""The Vowpal Wabbit contextual bandit (``--cb_explore_adf``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import vowpalwabbit

from offerloop.ml.base import Action, Features, Scored
from offerloop.ml.calibration import RewardCalibrator
from offerloop.ml.policies.common import _check_feedback, _payload, _PolicyBase, _ranking, _unpack
from offerloop.ml.policies.vw_format import (
    _vw_action_line,
    _vw_clean,
    _vw_dump,
    _vw_learn,
    _vw_load,
    _vw_predict,
    _vw_shared_line,
    _vw_text,
    _vw_workspace,
)

VW_MIN_PROBABILITY = 1e-6  # logged probabilities below this are learnt as this (importance weight cap)
_EXPLORATIONS = ("epsilon", "squarecb", "softmax", "bag", "cover")
_CB_TYPES = ("mtr", "dr", "ips", "dm")


class VWContextualBandit(_PolicyBase):
    """Contextual bandit over Vowpal Wabbit ``--cb_explore_adf`` (action-dependent features).

    Example layout: a ``shared`` line holding the context -- features whose names start with
    ``persona`` in namespace ``p``, the rest in ``u`` -- and one line per action in namespace ``a``
    holding ``action_id=<id>`` plus the action's features. ``interactions`` are VW interactions between
    namespace letters (default ``-q ua -q pa``). Strings are categorical (``name=value:1``), bools 0/1,
    zero / missing values are left out; feature names and values are percent-escaped (whitespace, ``|``,
    ``:``, ``=`` and ``%``). Numbers are written with 9 significant digits (VW stores float32), clipped
    to ``+/-MAX_ABS_VALUE`` and flushed to 0 below ``VW_MIN_ABS_VALUE`` (VW's parser mis-reads tiny
    exponents). Reward is learnt as VW cost ``-reward`` with the logged ``probability`` (floored at
    ``VW_MIN_PROBABILITY``); ``cb_type`` picks VW's cost estimator.

    ``clip_p`` is VW's ``--clip_p``: the regressor weights each update by ``1 / max(p, clip_p)``. The
    default ``1.0`` turns the inverse-propensity weights off (every update has weight 1), and the default
    learning rate is ``0.25``: with 20 candidates and epsilon 0.1 an explored action has ``p = 0.005``,
    and a weight of 200 on a sparse, noisy reward throws the regressor around (on the seeded simulator,
    ``bench/regret.py``, regret per 1k rounds over the last 10k of 20k: ~98 with ``clip_p=0``,
    ``learning_rate=0.5``; ~53 with the defaults). ``clip_p=0.0`` gives VW's unclipped weights back.

    ``rank`` returns VW's exploration pmf as ``probability``; as ``score``, the regressor's predicted
    reward, a *ranking* score (on sparse 0/1 rewards it averages around -0.03, not the 0.5% rate); and
    as ``expected_reward`` that score calibrated by :class:`RewardCalibrator` on progressive predictions
    (in ``learn_one``, the shown action's score before learning its reward), clipped to the observed
    reward range (``[0, 1]`` for 0/1 rewards), None until a reward has been learnt. The score:

    * ``epsilon`` / ``softmax`` / ``squarecb``: ``score = -`` the cost that the explorer's own ``cb_adf``
      regressor predicts for the action, read from each action example's ``partial_prediction`` after
      the same ``predict`` call that produced the pmf (one model, one VW call). For epsilon and softmax
      this equals exactly what a separate ``--cb_adf`` learner trained on the same data predicts.
    * ``bag`` / ``cover``: the explorer's last base prediction belongs to one bootstrap replicate / one
      cover policy, so a companion ``--cb_adf`` regressor with the same ``cb_type``, learning rate and
      interactions learns from the same feedback and supplies the score (rank and learn cost ~2x).

    Exploration: ``epsilon`` (``--epsilon``), ``squarecb`` (``--squarecb``, VW's default gamma schedule),
    ``softmax`` (``--softmax --lambda softmax_lambda``; VW's default lambda when None), ``bag``
    (``--bag bag --epsilon epsilon``, bag defaults to 5) and ``cover`` (``--cover cover --epsilon epsilon``,
    cover defaults to 5). The epsilon floor in bag and cover guarantees pmf mass to actions nobody has
    seen; epsilon, softmax and squarecb give every action mass by construction.

    ``rank`` leaves the model untouched -- predictions and all later learning are exactly as without the
    call -- but VW's run statistics (its example counters) advance, so the model file's bytes can differ.

    Persistence: VW's own model file (``Workspace.save``, which in VW 9 includes the resume state) as
    base64 in the payload, reloaded with ``-i``: a reloaded model ranks identically and, for epsilon,
    softmax and squarecb, continues learning identically; bag and cover may continue differently (VW
    does not restore their learning-time random draws exactly).
    """

    kind: ClassVar[str] = "vw_cb"
    _param_names: ClassVar[tuple[str, ...]] = (
        "exploration",
        "epsilon",
        "bag",
        "cover",
        "softmax_lambda",
        "learning_rate",
        "interactions",
        "seed",
        "cb_type",
        "clip_p",
    )
    name: str

    def __init__(
        self,
        *,
        exploration: str = "epsilon",
        epsilon: float = 0.1,
        bag: int | None = None,
        cover: int | None = None,
        softmax_lambda: float | None = None,
        learning_rate: float = 0.25,
        interactions: Sequence[str] = ("ua", "pa"),
        seed: int = 0,
        cb_type: str = "mtr",
        clip_p: float = 1.0,
    ) -> None:
        self.exploration = exploration
        self.epsilon = epsilon
        self.bag = bag
        self.cover = cover
        self.softmax_lambda = softmax_lambda
        self.learning_rate = learning_rate
        self.interactions = tuple(interactions)
        self.seed = seed
        self.cb_type = cb_type
        self.clip_p = clip_p
        self.name = f"vw_{exploration}"
        self._validate()
        self._workspace: Any = _vw_workspace(self.vw_args())
        self._scorer: Any = _vw_workspace(self.scorer_args()) if self._needs_scorer else None
        self._calibrator = RewardCalibrator()

    def _validate(self) -> None:
        if self.exploration not in _EXPLORATIONS:
            raise ValueError(f"exploration must be one of {_EXPLORATIONS}, got {self.exploration!r}")
        if self.cb_type not in _CB_TYPES:
            raise ValueError(f"cb_type must be one of {_CB_TYPES}, got {self.cb_type!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon!r}")
        if not self.learning_rate > 0.0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0.0 <= self.clip_p <= 1.0:
            raise ValueError(f"clip_p must be in [0, 1], got {self.clip_p!r}")
        if self.bag is not None and (self.exploration != "bag" or self.bag < 1):
            raise ValueError("bag is an integer >= 1 and only valid with exploration='bag'")
        if self.cover is not None and (self.exploration != "cover" or self.cover < 1):
            raise ValueError("cover is an integer >= 1 and only valid with exploration='cover'")
        if self.softmax_lambda is not None and (self.exploration != "softmax" or self.softmax_lambda < 0):
            raise ValueError("softmax_lambda is >= 0 and only valid with exploration='softmax'")
        for interaction in self.interactions:
            if not (isinstance(interaction, str) and len(interaction) >= 2 and interaction.isalpha()):
                raise ValueError(f"an interaction is >= 2 namespace letters, got {interaction!r}")

    @property
    def _needs_scorer(self) -> bool:
        return self.exploration in ("bag", "cover")

    def _common_args(self) -> list[str]:
        args = ["--cb_type", self.cb_type, "--learning_rate", repr(float(self.learning_rate))]
        if self.clip_p > 0.0:
            args += ["--clip_p", repr(float(self.clip_p))]
        for interaction in self.interactions:
            args += ["-q", interaction] if len(interaction) == 2 else ["--interactions", interaction]
        return [*args, "--random_seed", str(int(self.seed)), "--quiet"]

    def vw_args(self) -> list[str]:
        """The VW command line of the explorer."""
        explore: list[str]
        if self.exploration == "epsilon":
            explore = ["--epsilon", repr(float(self.epsilon))]
        elif self.exploration == "squarecb":
            explore = ["--squarecb"]
        elif self.exploration == "softmax":
            explore = ["--softmax"]
            if self.softmax_lambda is not None:
                explore += ["--lambda", repr(float(self.softmax_lambda))]
        elif self.exploration == "bag":
            explore = ["--bag", str(self.bag or 5), "--epsilon", repr(float(self.epsilon))]
        else:
            explore = ["--cover", str(self.cover or 5), "--epsilon", repr(float(self.epsilon))]
        return ["--cb_explore_adf", *explore, *self._common_args()]

    def scorer_args(self) -> list[str]:
        """The VW command line of the companion ``--cb_adf`` scorer (bag and cover only)."""
        return ["--cb_adf", *self._common_args()]

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        text = _vw_text(context, actions, None)
        pmf, costs = _vw_predict(self._workspace, text, len(actions))
        if self._scorer is not None:
            _, costs = _vw_predict(self._scorer, text, len(actions))
        total = math.fsum(pmf)
        if not total > 0.0:  # pragma: no cover - VW always returns a pmf
            raise RuntimeError("VW returned an empty pmf")
        scores = [0.0 - c for c in costs]
        expected = self._calibrator.predict(scores, [a.id for a in actions])
        return _ranking(scores, [p / total for p in pmf], expected)

    def _raw_score(self, shared: str, action: Action) -> float:
        """The regressor's score of one action (a one-action ADF example: the same partial prediction)."""
        _, costs = _vw_predict(self._scorer or self._workspace, f"{shared}\n{_vw_action_line(action)}", 1)
        return 0.0 - costs[0]

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)
        # progressive calibration: the score the model gives the shown action before it learns the reward
        shared = _vw_shared_line(context)
        self._calibrator.update(self._raw_score(shared, actions[chosen]), actions[chosen].id, float(reward))
        cost = 0.0 - _vw_clean(float(reward))  # 0.0 - x: never "-0.0"
        probability = min(max(float(probability), VW_MIN_PROBABILITY), 1.0)
        text = _vw_text(context, actions, (chosen, cost, probability), shared)
        _vw_learn(self._workspace, text, len(actions))
        if self._scorer is not None:
            _vw_learn(self._scorer, text, len(actions))

    def to_payload(self) -> dict[str, Any]:
        params = self.get_params()
        params["interactions"] = list(self.interactions)
        state: dict[str, Any] = {
            "format": "vw-model",
            "vw_version": vowpalwabbit.__version__,
            "vw_args": " ".join(self.vw_args()),
            "model": _vw_dump(self._workspace),
            "calibrator": self._calibrator.to_state(),
        }
        if self._scorer is not None:
            state["scorer_args"] = " ".join(self.scorer_args())
            state["scorer_model"] = _vw_dump(self._scorer)
        return _payload(self.kind, params, state)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, state = _unpack(cls.kind, payload)
        params["interactions"] = tuple(params["interactions"])
        policy = cls(**params)
        policy._workspace = _vw_load(state["model"])
        if policy._needs_scorer:
            policy._scorer = _vw_load(state["scorer_model"])
        # snapshots saved before calibration existed have none: it starts fresh (expected_reward None)
        policy._calibrator = RewardCalibrator.from_state(state.get("calibrator"))
        return policy
