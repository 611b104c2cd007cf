"""Next-best-action policies: a Vowpal Wabbit contextual bandit and the baselines it is measured against.

Every class implements :class:`offerloop.ml.base.Policy`:

* :class:`VWContextualBandit` -- VW ``--cb_explore_adf`` (epsilon, squarecb, softmax, bag, cover);
* :class:`RandomPolicy` -- uniform pmf;
* :class:`PopularityPolicy` -- smoothed mean reward per action id, greedy;
* :class:`EpsilonGreedyPolicy` -- mean reward per action id, epsilon-greedy, no context;
* :class:`RulesOnlyPolicy` -- keeps the order it is given;
* :class:`LinUCBPolicy` -- disjoint LinUCB (one ridge regression per action id) on numpy.

All of them accept unseen actions, unseen feature names and missing features; ``None``, NaN and
infinite feature values count as missing, numbers are clipped to ``+/-MAX_ABS_VALUE``, and any other
value type raises ``TypeError`` (in the policies that read features). ``learn_one`` checks its feedback
the same way everywhere: ``chosen`` must index ``actions``, ``probability`` must be in ``(0, 1]`` and
``reward`` finite with ``|reward| <= MAX_ABS_VALUE``, else ``IndexError`` / ``ValueError``.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import math
import numbers
import os
import re
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar, Self

import numpy as np
import vowpalwabbit

from offerloop.ml.base import Action, Features, Policy, Scored
from offerloop.ml.calibration import RewardCalibrator

__all__ = [
    "POLICY_KINDS",
    "EpsilonGreedyPolicy",
    "LinUCBPolicy",
    "PopularityPolicy",
    "RandomPolicy",
    "RulesOnlyPolicy",
    "VWContextualBandit",
]

PAYLOAD_VERSION = 1
# Numeric feature values are clipped to +/- this (VW keeps float32 weights; interactions multiply values),
# and larger rewards are refused: either is a unit bug upstream, never a meaningful value.
MAX_ABS_VALUE = 1e9
VW_MIN_ABS_VALUE = 1e-30  # smaller magnitudes go to VW as 0 (see _vw_clean)
VW_MIN_PROBABILITY = 1e-6  # logged probabilities below this are learnt as this (importance weight cap)

# ----------------------------------------------------------------------------------------------------
# shared helpers


def _check_feedback(actions: Sequence[Action], chosen: int, probability: float, reward: float) -> None:
    if not 0 <= chosen < len(actions):
        raise IndexError(f"chosen={chosen} is not an index of the {len(actions)} actions given")
    if not (math.isfinite(probability) and 0.0 < probability <= 1.0 + 1e-9):
        raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    if not (math.isfinite(reward) and abs(reward) <= MAX_ABS_VALUE):
        raise ValueError(f"reward must be finite and within +/-{MAX_ABS_VALUE:g}, got {reward!r}")


_NO_ESTIMATES: Sequence[float | None] = ()


def _ranking(
    scores: Sequence[float], probabilities: Sequence[float], expected: Sequence[float | None] = _NO_ESTIMATES
) -> list[Scored]:
    """Scored items sorted by score desc, ties by index (``expected``: calibrated expected rewards, if any)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [
        Scored(
            index=i,
            score=float(scores[i]),
            probability=float(probabilities[i]),
            expected_reward=expected[i] if expected else None,
        )
        for i in order
    ]


def _greedy_ranking(
    scores: Sequence[float], expected: Sequence[float | None] = _NO_ESTIMATES
) -> list[Scored]:
    """Sorted by score desc (ties by index); probability 1 on the first, 0 elsewhere."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [
        Scored(
            index=i,
            score=float(scores[i]),
            probability=1.0 if rank == 0 else 0.0,
            expected_reward=expected[i] if expected else None,
        )
        for rank, i in enumerate(order)
    ]


def _encode(features: Features, prefix: str = "") -> dict[str, float]:
    """One-hot / numeric encoding: ``str`` -> ``"name=value": 1``, ``bool`` -> 0/1, numbers as they are.

    Zero, ``None``, non-finite and out-of-float-range values are dropped (a missing feature is a zero);
    numbers are clipped to ``+/-MAX_ABS_VALUE``.
    """
    out: dict[str, float] = {}
    for name, value in features.items():
        if isinstance(value, str):
            out[f"{prefix}{name}={value}"] = 1.0
            continue
        if isinstance(value, bool | np.bool_):
            v = 1.0 if value else 0.0
        elif isinstance(value, numbers.Real):
            try:
                v = float(value)
            except OverflowError:
                continue
        elif value is None:
            continue
        else:
            raise TypeError(f"feature {name!r}: unsupported value type {type(value).__name__}")
        if v != 0.0 and math.isfinite(v):
            out[prefix + name] = min(max(v, -MAX_ABS_VALUE), MAX_ABS_VALUE)
    return out


def _payload(kind: str, params: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "version": PAYLOAD_VERSION, "params": dict(params), "state": dict(state)}


def _unpack(kind: str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if payload.get("kind") != kind:
        raise ValueError(f"payload kind {payload.get('kind')!r} is not {kind!r}")
    if payload.get("version") != PAYLOAD_VERSION:
        raise ValueError(f"unsupported {kind} payload version {payload.get('version')!r}")
    return dict(payload["params"]), dict(payload["state"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _floats_b64(array: np.ndarray[Any, Any]) -> str:
    return _b64(np.ascontiguousarray(array, dtype="<f8").tobytes())


def _floats_unb64(text: str, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return np.frombuffer(_unb64(text), dtype="<f8").astype(np.float64).reshape(shape)


class _PolicyBase:
    """Hyper-parameter plumbing shared by the policies (``get_params`` / ``clone`` / ``repr``)."""

    kind: ClassVar[str]
    _param_names: ClassVar[tuple[str, ...]]

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` arguments, read back from the attributes of the same names."""
        return {name: getattr(self, name) for name in self._param_names}

    def clone(self) -> Self:
        """Same hyper-parameters, no learned state."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------------------------------------------------
# Vowpal Wabbit

_EXPLORATIONS = ("epsilon", "squarecb", "softmax", "bag", "cover")
_CB_TYPES = ("mtr", "dr", "ips", "dm")
_VW_FORBIDDEN = re.compile(r"[\s|:%=]")


def _escape_char(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8"))


@lru_cache(maxsize=1 << 16)
def _vw_escape(text: str) -> str:
    """Percent-escape (UTF-8 ``%XX``) what VW's text format cannot carry in a feature name: whitespace,
    ``|`` and ``:``; also ``=`` (the one-hot separator) and ``%`` itself, so distinct names -- and
    distinct ``(name, value)`` pairs -- stay distinct. ``""`` becomes ``"%"``.
    """
    if not text:
        return "%"
    return _VW_FORBIDDEN.sub(_escape_char, text)


@lru_cache(maxsize=1 << 16)
def _vw_categorical(name: str, value: str) -> str:
    return f"{_vw_escape(name)}={_vw_escape(value)}:1"


def _vw_clean(value: float) -> float:
    """Clip to ``+/-MAX_ABS_VALUE`` and flush ``|value| < VW_MIN_ABS_VALUE`` to 0.

    VW's own float parser mis-reads exponents far below float32's range (``3.5e-183`` parses as NaN,
    ``4.8e-260`` as ``4.8e-4``), so such values never reach it.
    """
    if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
        return MAX_ABS_VALUE if value > 0.0 else -MAX_ABS_VALUE
    if -VW_MIN_ABS_VALUE < value < VW_MIN_ABS_VALUE:
        return 0.0
    return value


def _vw_number(name: str, value: float) -> str | None:
    if value == 0.0 or not math.isfinite(value):
        return None
    value = _vw_clean(value)
    if value == 0.0:
        return None
    # 9 significant digits round-trip the float32 VW stores, at a quarter of repr()'s cost.
    return f"{_vw_escape(name)}:{value:.9g}"


def _vw_token(name: str, value: object) -> str | None:
    """One VW feature token, or None for a zero / missing / non-finite value (exact types first: cheap)."""
    kind = type(value)
    if kind is float:
        return _vw_number(name, value)  # type: ignore[arg-type]
    if kind is str:
        return _vw_categorical(name, value)
    if kind is bool:
        return _vw_escape(name) if value else None
    if isinstance(value, str):
        return _vw_categorical(name, value)
    if isinstance(value, bool | np.bool_):
        return _vw_escape(name) if value else None
    if value is None:
        return None
    if isinstance(value, numbers.Real):  # int, numpy scalars, float subclasses
        try:
            return _vw_number(name, float(value))
        except OverflowError:
            return None
    raise TypeError(f"feature {name!r}: unsupported value type {type(value).__name__}")


def _vw_shared_line(context: Features) -> str:
    user: list[str] = []
    persona: list[str] = []
    for name, value in context.items():
        token = _vw_token(name, value)
        if token is not None:
            (persona if name.startswith("persona") else user).append(token)
    line = "shared |u " + " ".join(user)
    if persona:
        line += " |p " + " ".join(persona)
    return line


def _vw_format_action(action_id: str, features: Iterable[tuple[str, object]]) -> str:
    tokens = ["|a", _vw_categorical("action_id", action_id)]
    for name, value in features:
        token = _vw_token(name, value)
        if token is not None:
            tokens.append(token)
    return " ".join(tokens)


_vw_format_action_cached = lru_cache(maxsize=1 << 14)(_vw_format_action)


def _vw_action_line(action: Action) -> str:
    """The ``|a`` line of an action, memoised on its content (id and feature items).

    The key is the content, not the object, so a mutated feature dict can never return a stale line;
    keys that compare equal (``1``, ``1.0``, ``True``) format to the same VW value.
    """
    items = tuple(action.features.items())
    try:
        return _vw_format_action_cached(action.id, items)
    except TypeError:  # an unhashable value: format without the memo (and raise if unsupported)
        return _vw_format_action(action.id, items)


def _vw_text(
    context: Features,
    actions: Sequence[Action],
    label: tuple[int, float, float] | None,
    shared: str | None = None,
) -> str:
    """One multi-line ADF example: a ``shared`` line (namespaces ``u``, ``p``; ``shared`` if already
    formatted) and one ``|a`` line per action."""
    lines = [shared if shared is not None else _vw_shared_line(context)]
    lines.extend(_vw_action_line(action) for action in actions)
    if label is not None:
        chosen, cost, probability = label
        lines[chosen + 1] = f"0:{cost:.9g}:{probability:.9g} {lines[chosen + 1]}"
    return "\n".join(lines)


def _vw_parse(workspace: Any, text: str, n_actions: int) -> Any:
    examples = workspace._parse(text)
    if len(examples) != n_actions + 1:  # cannot happen with escaped names; never mis-assign scores
        workspace._finish_example_multi_ex(examples)
        raise RuntimeError(f"VW parsed {len(examples)} lines, expected {n_actions + 1}")
    return examples


def _vw_predict(workspace: Any, text: str, n_actions: int) -> tuple[list[float], list[float]]:
    """Predict one multi-line example: ``(pmf or scores of the first line, partial prediction per action)``.

    Uses the ``pylibvw`` methods ``vowpalwabbit.Workspace`` inherits (``_parse``, ``predict_multi``,
    ``learn_multi``, ``_finish_example_multi_ex``) directly: the public ``Workspace.predict``/``learn``
    wrap every parsed line in a Python ``Example`` object, which for 50 actions costs about twice VW's
    own work. The first line's ``get_action_scores()`` is indexed by action (not sorted).
    """
    examples = _vw_parse(workspace, text, n_actions)
    try:
        workspace.predict_multi(examples)
        first = [float(x) for x in examples[0].get_action_scores()]
        partial = [float(ex.get_partial_prediction()) for ex in examples[1:]]
    finally:
        workspace._finish_example_multi_ex(examples)
    return first, partial


def _vw_learn(workspace: Any, text: str, n_actions: int) -> None:
    examples = _vw_parse(workspace, text, n_actions)
    try:
        workspace.learn_multi(examples)
    finally:
        workspace._finish_example_multi_ex(examples)


_OPEN_WORKSPACES: weakref.WeakSet[Any] = weakref.WeakSet()


def _vw_workspace(args: Sequence[str]) -> Any:
    workspace = vowpalwabbit.Workspace(arg_list=list(args))
    _OPEN_WORKSPACES.add(workspace)
    return workspace


@atexit.register
def _finish_open_workspaces() -> None:
    """Finish live workspaces while the interpreter is intact (``Workspace.__del__`` at teardown can fail)."""
    for workspace in list(_OPEN_WORKSPACES):
        workspace.finish()


def _vw_dump(workspace: Any) -> str:
    with tempfile.TemporaryDirectory(prefix="offerloop-vw-") as tmp:
        path = os.path.join(tmp, "model.vw")
        workspace.save(path)
        with open(path, "rb") as fh:
            return _b64(fh.read())


def _vw_load(model_b64: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="offerloop-vw-") as tmp:
        path = os.path.join(tmp, "model.vw")
        with open(path, "wb") as fh:
            fh.write(_unb64(model_b64))
        # The model file carries its reduction stack, hyper-parameters and (for bag) its RNG state;
        # repeating them on the command line would conflict, so only -i and --quiet are given.
        return _vw_workspace(["-i", path, "--quiet"])


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


# ----------------------------------------------------------------------------------------------------
# baselines


class RandomPolicy(_PolicyBase):
    """Uniform pmf over the actions given.

    There is no reward estimate; ``score`` is a pseudo-random key in ``[0, 1)`` derived from
    ``(seed, context, action id)``, so the order of the slots after the first is a random but
    reproducible permutation (and ``rank`` stays deterministic and side-effect free).
    """

    kind: ClassVar[str] = "random"
    name: str = "random"
    _param_names: ClassVar[tuple[str, ...]] = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        context_key = repr(sorted((k, type(v).__name__, repr(v)) for k, v in context.items()))
        prefix = f"{int(self.seed)}\x1f{context_key}\x1f"
        scores = [
            int.from_bytes(hashlib.blake2b((prefix + a.id).encode(), digest_size=8).digest(), "big") / 2.0**64
            for a in actions
        ]
        p = 1.0 / len(actions)
        return _ranking(scores, [p] * len(actions))

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)

    def to_payload(self) -> dict[str, Any]:
        return _payload(self.kind, self.get_params(), {})

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, _ = _unpack(cls.kind, payload)
        return cls(**params)


class _PerActionMeans(_PolicyBase):
    """Shared state of the context-free baselines: reward count and sum per action id."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._sum: dict[str, float] = {}
        self._total_count = 0
        self._total_sum = 0.0

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)
        action_id = actions[chosen].id
        self._count[action_id] = self._count.get(action_id, 0) + 1
        self._sum[action_id] = self._sum.get(action_id, 0.0) + float(reward)
        self._total_count += 1
        self._total_sum += float(reward)

    def _state(self) -> dict[str, Any]:
        return {
            "count": dict(sorted(self._count.items())),
            "sum": dict(sorted(self._sum.items())),
            "total_count": self._total_count,
            "total_sum": self._total_sum,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._count = {str(k): int(v) for k, v in state["count"].items()}
        self._sum = {str(k): float(v) for k, v in state["sum"].items()}
        self._total_count = int(state["total_count"])
        self._total_sum = float(state["total_sum"])

    def to_payload(self) -> dict[str, Any]:
        return _payload(self.kind, self.get_params(), self._state())

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, state = _unpack(cls.kind, payload)
        policy = cls(**params)
        policy._set_state(state)
        return policy


class PopularityPolicy(_PerActionMeans):
    """Greedy on the smoothed mean observed reward per action id (ties by index); ignores the context.

    ``score = (sum_a + prior * m) / (n_a + prior)`` where ``m`` is the mean reward over all actions so
    far: ``prior`` pseudo-observations at the global mean (for 0/1 rewards, the posterior mean under a
    Beta(prior * m, prior * (1 - m)) prior). Unseen actions score ``m``. ``seed`` is unused (the policy
    is deterministic) and kept for the common signature.
    """

    kind: ClassVar[str] = "popularity"
    name: str = "popularity"
    _param_names: ClassVar[tuple[str, ...]] = ("seed", "prior")

    def __init__(self, seed: int = 0, prior: float = 1.0) -> None:
        if not prior >= 0.0:
            raise ValueError(f"prior must be >= 0, got {prior!r}")
        self.seed = seed
        self.prior = prior
        super().__init__()

    def _score(self, action_id: str, global_mean: float) -> float:
        n = self._count.get(action_id, 0)
        denominator = n + self.prior
        if denominator <= 0.0:
            return global_mean
        return (self._sum.get(action_id, 0.0) + self.prior * global_mean) / denominator

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        m = self._total_sum / self._total_count if self._total_count else 0.0
        return _greedy_ranking([self._score(a.id, m) for a in actions])


class EpsilonGreedyPolicy(_PerActionMeans):
    """Epsilon-greedy on the mean observed reward per action id; ignores the context.

    Unseen actions score 0. pmf: ``epsilon / n`` on every action plus ``1 - epsilon`` on the greedy one
    (the first after sorting, so score ties go to the lowest index). ``seed`` is unused (sampling is
    :func:`offerloop.ml.base.sample`'s job) and kept for the common signature.
    """

    kind: ClassVar[str] = "epsilon_greedy"
    name: str = "epsilon_greedy"
    _param_names: ClassVar[tuple[str, ...]] = ("epsilon", "seed")

    def __init__(self, epsilon: float = 0.1, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = epsilon
        self.seed = seed
        super().__init__()

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        scores = []
        for a in actions:
            n = self._count.get(a.id, 0)
            scores.append(self._sum[a.id] / n if n else 0.0)
        greedy = min(range(len(actions)), key=lambda i: (-scores[i], i))
        floor = self.epsilon / len(actions)
        pmf = [floor + (1.0 - self.epsilon if i == greedy else 0.0) for i in range(len(actions))]
        return _ranking(scores, pmf)


class RulesOnlyPolicy(_PolicyBase):
    """Keeps the order it is given (the upstream rules' order): ``score = -index``, probability 1 on the first."""

    kind: ClassVar[str] = "rules_only"
    name: str = "rules_only"
    _param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        pass

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        return _greedy_ranking([0.0 - i for i in range(len(actions))])

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)

    def to_payload(self) -> dict[str, Any]:
        return _payload(self.kind, {}, {})

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        _unpack(cls.kind, payload)
        return cls()


class _Arm:
    """One LinUCB arm: ``A^-1`` (kept by Sherman-Morrison updates) and ``b`` over the first ``d`` features."""

    __slots__ = ("a_inv", "b")

    def __init__(self, a_inv: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> None:
        self.a_inv = a_inv
        self.b = b

    @property
    def dim(self) -> int:
        return int(self.b.shape[0])

    def grow(self, dim: int) -> None:
        """Extend to ``dim`` features: new features have never been seen, so their block of A is I."""
        old = self.dim
        if dim <= old:
            return
        a_inv = np.eye(dim)
        a_inv[:old, :old] = self.a_inv
        b = np.zeros(dim)
        b[:old] = self.b
        self.a_inv, self.b = a_inv, b


class LinUCBPolicy(_PolicyBase):
    """Disjoint LinUCB (Li et al. 2010): one ridge regression per action id, ``A = I + sum x x^T``.

    ``x`` is the one-hot/numeric encoding of the context (``u:`` prefix) and of the action's own
    features (``a:`` prefix) plus a bias; keeping one model per action id makes it the context ⊗
    action-id feature space. ``score = theta_a . x + alpha * sigma * sqrt(x^T A_a^-1 x)`` (the upper
    confidence bound), where ``sigma`` is the standard deviation of the rewards observed so far (shrunk
    toward 1 by one pseudo-observation: before any reward the bonus is ``alpha * width``, as in Li et al.).
    ``alpha`` is thus in units of the reward's own spread: with rewards of a few per cent the bonus
    shrinks with them (``sigma ~ sqrt(rate)``), so the estimated means decide once data arrives instead
    of the width alone (on 0/1 rewards at a 0.9% rate, an unscaled ``alpha = 1`` gave a bonus of ~0.5
    against means of ~0.01). Feature names first seen at ``rank`` time have an identity block in every
    ``A``, so they add to the width exactly as a trained model would see them, without being stored;
    unseen actions have ``A = I``, ``theta = 0``. pmf: probability 1 on the argmax (ties by index). The
    update ignores the logged probability (LinUCB is on-policy). ``seed`` is unused (deterministic) and
    kept for the common signature.

    ``expected_reward``: ``theta_a . x`` (no bonus) calibrated by :class:`RewardCalibrator` on the
    progressive predictions. Snapshots saved before the calibrator existed load with no reward
    statistics: ``sigma`` starts from its prior (1) and moves to the observed spread as rewards arrive.
    """

    kind: ClassVar[str] = "linucb"
    name: str = "linucb"
    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "seed")
    _BIAS = "\x00bias"

    def __init__(self, alpha: float = 1.0, seed: int = 0) -> None:
        if not alpha >= 0.0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.alpha = alpha
        self.seed = seed
        self._vocabulary: dict[str, int] = {}
        self._arms: dict[str, _Arm] = {}
        self._calibrator = RewardCalibrator()

    def exploration_scale(self) -> float:
        """``alpha * sigma``: what multiplies the confidence width in ``score``."""
        return self.alpha * self._calibrator.reward_std()

    def _mean_width(self, context_x: Mapping[str, float], action: Action) -> tuple[float, float]:
        """``(theta_a . x, x^T A_a^-1 x)`` of one action."""
        v, unknown = self._vector(self._features(context_x, action))
        arm = self._arms.get(action.id)
        if arm is None:
            return 0.0, float(v @ v) + unknown
        d = arm.dim
        head, tail = v[:d], v[d:]
        mean = float(head @ (arm.a_inv @ arm.b))
        return mean, float(head @ arm.a_inv @ head) + float(tail @ tail) + unknown

    def decompose(self, context: Features, actions: Sequence[Action]) -> list[tuple[float, float]]:
        """``(estimated mean, exploration bonus)`` per action, in the order given (``score`` is their sum)."""
        context_x = _encode(context, "u:")
        context_x[self._BIAS] = 1.0
        scale = self.exploration_scale()
        out = []
        for action in actions:
            mean, width = self._mean_width(context_x, action)
            out.append((mean, scale * math.sqrt(max(width, 0.0))))
        return out

    def _features(self, context_x: Mapping[str, float], action: Action) -> dict[str, float]:
        x = dict(context_x)
        x.update(_encode(action.features, "a:"))
        return x

    def _vector(self, x: Mapping[str, float]) -> tuple[np.ndarray[Any, Any], float]:
        """Dense vector over the known vocabulary, plus the squared norm of the unknown features."""
        v = np.zeros(len(self._vocabulary))
        unknown = 0.0
        for name, value in x.items():
            j = self._vocabulary.get(name)
            if j is None:
                unknown += value * value
            else:
                v[j] = value
        return v, unknown

    def rank(self, context: Features, actions: Sequence[Action]) -> list[Scored]:
        if not actions:
            return []
        parts = self.decompose(context, actions)
        expected = self._calibrator.predict([mean for mean, _ in parts], [a.id for a in actions])
        return _greedy_ranking([mean + bonus for mean, bonus in parts], expected)

    def learn_one(
        self, context: Features, actions: Sequence[Action], chosen: int, probability: float, reward: float
    ) -> None:
        _check_feedback(actions, chosen, probability, reward)
        context_x = _encode(context, "u:")
        context_x[self._BIAS] = 1.0
        action = actions[chosen]
        self._calibrator.update(self._mean_width(context_x, action)[0], action.id, float(reward))
        x = self._features(context_x, action)
        for name in x:
            if name not in self._vocabulary:
                self._vocabulary[name] = len(self._vocabulary)
        v, _ = self._vector(x)
        arm = self._arms.get(action.id)
        if arm is None:
            arm = self._arms[action.id] = _Arm(np.eye(len(v)), np.zeros(len(v)))
        arm.grow(len(v))
        a_inv_v = arm.a_inv @ v
        arm.a_inv -= np.outer(a_inv_v, a_inv_v) / (1.0 + float(v @ a_inv_v))
        arm.b += float(reward) * v

    def to_payload(self) -> dict[str, Any]:
        vocabulary = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        arms = {
            action_id: {"dim": arm.dim, "a_inv": _floats_b64(arm.a_inv), "b": _floats_b64(arm.b)}
            for action_id, arm in sorted(self._arms.items())
        }
        state = {"vocabulary": vocabulary, "arms": arms, "calibrator": self._calibrator.to_state()}
        return _payload(self.kind, self.get_params(), state)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        params, state = _unpack(cls.kind, payload)
        policy = cls(**params)
        policy._vocabulary = {str(name): j for j, name in enumerate(state["vocabulary"])}
        for action_id, arm in state["arms"].items():
            d = int(arm["dim"])
            policy._arms[str(action_id)] = _Arm(
                _floats_unb64(arm["a_inv"], (d, d)), _floats_unb64(arm["b"], (d,))
            )
        policy._calibrator = RewardCalibrator.from_state(state.get("calibrator"))
        return policy


POLICY_KINDS: Mapping[str, type[Policy]] = {
    cls.kind: cls
    for cls in (
        VWContextualBandit,
        RandomPolicy,
        PopularityPolicy,
        EpsilonGreedyPolicy,
        RulesOnlyPolicy,
        LinUCBPolicy,
    )
}
