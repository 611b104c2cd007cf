"""Vowpal Wabbit's text format and workspaces: escaping, example lines, predict/learn, model files."""

from __future__ import annotations

import atexit
import math
import numbers
import os
import re
import tempfile
import weakref
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import vowpalwabbit

from offerloop.ml.base import Action, Features
from offerloop.ml.policies.common import MAX_ABS_VALUE, _b64, _unb64

VW_MIN_ABS_VALUE = 1e-30  # smaller magnitudes go to VW as 0 (see _vw_clean)

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
