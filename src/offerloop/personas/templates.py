"""Persona templates: each persona is an expected pattern of weighted signals over buyer features.

A workspace's templates are one YAML (or mapping) document::

    threshold: 0.5          # minimum posterior to assign a persona; below it the buyer is "unassigned"
    prior_strength: 1.0     # exponent on the priors (0 ignores them, 1 uses them as given)
    personas:
      - name: early_adopter_superfan
        description: Buys drops within minutes of release, posts in the community.
        prior: 0.15          # optional (default 1/n); priors are normalised to sum to 1
        signals:
          - {feature: drop_orders, gte: 1, weight: 2.0}
          - {feature: minutes_to_first_drop_purchase, lte: 60, weight: 2.5, softness: 10}

A signal holds exactly one condition: ``gte``, ``lte``, ``gt``, ``lt`` (a number), ``between`` (``[a, b]``
with a <= b), ``eq`` (a string, number or bool), ``in`` (a non-empty list of those) or ``is`` (a bool).
``weight`` (default 1.0) must be > 0. ``softness`` (numeric conditions only) is the width of the
logistic ramp around a threshold; it defaults to 10% of the threshold's magnitude, at least 0.5 (see
``offerloop.personas.inference`` for how conditions are scored). ``missing`` (optional) lists values that
mean "never observed" for this feature -- the feature engine reads out -1 for a delay, a latest value or
an hour it never saw -- and that therefore count as neutral evidence, like an absent feature.

There are 2 to 12 personas (4 to 8 by convention), with unique snake_case names; ``unassigned`` is
reserved for buyers no persona fits. :func:`load_templates` raises :class:`TemplateError` listing every
problem at its line and path, through :mod:`offerloop.declarative`, e.g.
``personas.yaml:9: personas[1].signals[0].weight: must be more than 0, got -2``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from offerloop.core import conditions
from offerloop.declarative import ConfigError, Document, load_document, matching, problem_at, show, validate

__all__ = [
    "MAX_PERSONAS",
    "MIN_PERSONAS",
    "NUMERIC_OPERATORS",
    "OPERATORS",
    "UNASSIGNED",
    "Persona",
    "PersonaSet",
    "Signal",
    "TemplateError",
    "default_softness",
    "dump_yaml",
    "load_templates",
    "load_templates_file",
]

UNASSIGNED: Final = "unassigned"
MIN_PERSONAS: Final = 2
MAX_PERSONAS: Final = 12
OPERATORS: Final[tuple[str, ...]] = ("gte", "lte", "gt", "lt", "eq", "in", "between", "is")
NUMERIC_OPERATORS: Final[frozenset[str]] = frozenset({"gte", "lte", "gt", "lt", "between"})
_LANGUAGE_OPERATOR: Final = {"is": "eq"}  # persona signals' own word for a boolean test
PersonaName = Annotated[
    str,
    matching(r"[a-z][a-z0-9_]{0,63}", "a persona name (lowercase letters, digits and '_', e.g. deal_seeker)"),
]
FeatureName = Annotated[
    str,
    matching(
        r"[A-Za-z_][A-Za-z0-9_.]{0,63}",
        "a feature name (letters, digits, '_' and '.', not starting with a digit)",
    ),
]
Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]


class TemplateError(ConfigError, ValueError):
    """Persona templates that cannot be used (422): ``problems`` lists every problem as ``file:line: path:
    message`` (``path: message`` for a mapping), ``details`` as ``{"path", "line", "location", "message"}``.

    Also a ``ValueError``, so callers that catch pydantic's errors (``ValueError`` too) catch it.
    """

    code = "invalid_persona_templates"


def default_softness(threshold: float) -> float:
    """Ramp width used when a signal gives none: 10% of the threshold's magnitude, at least 0.5."""
    return max(0.5, 0.1 * abs(threshold))


def _finite_number(value: Any) -> Any:
    # A YAML `true` or "3" under `gte` is a mistake, not a number: refuse it instead of coercing.
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {show(value)}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {show(value)}")
    return float(value)


def _scalar(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {show(value)}")
        return value
    raise ValueError(f"must be a string, a number or a bool, got {show(value)}")


Number = Annotated[float, BeforeValidator(_finite_number)]
Scalar = Annotated[bool | int | float | str, PlainValidator(_scalar)]


class Signal(BaseModel):
    """One weighted condition on one feature."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    feature: FeatureName
    gte: Number | None = None
    lte: Number | None = None
    gt: Number | None = None
    lt: Number | None = None
    eq: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1, max_length=100)
    between: tuple[Number, Number] | None = None
    is_: StrictBool | None = Field(default=None, alias="is")
    weight: float = Field(default=1.0, strict=True, gt=0, le=100, allow_inf_nan=False)
    softness: Positive | None = None
    # Values the feature engine reads out for "never observed" (e.g. -1 for a delay that never happened):
    # the condition treats them like an absent feature, as neutral evidence.
    missing: list[Scalar] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("softness", mode="after")
    @classmethod
    def _numeric_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None:
            return value
        for op in ("eq", "in_", "is_"):
            if info.data.get(op) is not None:
                alias = op.rstrip("_")
                raise ValueError(f"applies only to numeric conditions, not to `{alias}`")
        return value

    @model_validator(mode="after")
    def _exactly_one_condition(self) -> Signal:
        present = [op for op in OPERATORS if self._raw(op) is not None]
        if len(present) != 1:
            got = ", ".join(present) if present else "none"
            raise ValueError(f"needs exactly one condition out of {', '.join(OPERATORS)} (got {got})")
        try:  # the operand's meaning is the condition language's (offerloop.core.conditions)
            self._leaf(present[0])
        except conditions.ConditionError as exc:  # one operator: its problems are at its key
            raise problem_at((present[0],), "; ".join(message for _, message in exc.problems)) from None
        return self

    def _raw(self, op: str) -> Any:
        return getattr(self, {"in": "in_", "is": "is_"}.get(op, op))

    def _leaf(self, op: str) -> conditions.Leaf:
        return conditions.parse_leaf(
            f"features.{self.feature}", {_LANGUAGE_OPERATOR.get(op, op): self._raw(op)}
        )

    # Cached: inference reads these for every signal of every buyer (the model is frozen).
    @cached_property
    def operator(self) -> str:
        """The condition's name: one of :data:`OPERATORS`."""
        return next(op for op in OPERATORS if self._raw(op) is not None)

    @cached_property
    def operand(self) -> Any:
        """The condition's value: a number, a scalar, a list of scalars or a ``(low, high)`` pair."""
        return self._raw(self.operator)

    @cached_property
    def condition(self) -> conditions.Leaf:
        """The signal's test in the condition language (``is`` is ``eq`` with a boolean)."""
        return self._leaf(self.operator)

    def softness_for(self, threshold: float) -> float:
        """The ramp width at ``threshold``: the explicit ``softness`` or :func:`default_softness`."""
        return self.softness if self.softness is not None else default_softness(threshold)

    def describe(self) -> str:
        """The condition as text, e.g. ``drop_orders >= 1`` or ``weekend_share between [0.5, 1]``."""
        return self.description

    @cached_property
    def description(self) -> str:
        """What ``describe()`` returns, formatted once."""
        return conditions.describe(self.condition, root="features")

    def to_mapping(self) -> dict[str, Any]:
        """The YAML form: ``{feature, <operator>: operand, weight[, softness]}``."""
        op, value = self.operator, self.operand
        out: dict[str, Any] = {"feature": self.feature}
        out[op] = list(value) if isinstance(value, tuple | list) else value
        out["weight"] = self.weight
        if self.softness is not None:
            out["softness"] = self.softness
        if self.missing is not None:
            out["missing"] = list(self.missing)
        return _Flow(out)


class Persona(BaseModel):
    """A named persona: a prior and the signals its buyers are expected to show."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PersonaName
    description: str = Field(default="", strict=True, max_length=2000)
    prior: Positive | None = None
    signals: list[Signal] = Field(min_length=1, max_length=32)

    @field_validator("name", mode="after")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == UNASSIGNED:
            raise ValueError(f"{UNASSIGNED!r} is reserved for buyers no persona fits")
        return value

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.prior is not None:
            out["prior"] = self.prior
        out["signals"] = [s.to_mapping() for s in self.signals]
        return out


class PersonaSet(BaseModel):
    """A workspace's persona templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(default=0.5, strict=True, ge=0, le=1, allow_inf_nan=False)
    prior_strength: float = Field(default=1.0, strict=True, ge=0, le=10, allow_inf_nan=False)
    personas: list[Persona] = Field(min_length=MIN_PERSONAS, max_length=MAX_PERSONAS)

    _log_priors: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> PersonaSet:
        seen: dict[str, int] = {}
        for i, persona in enumerate(self.personas):
            if persona.name in seen:
                raise problem_at(
                    ("personas", i, "name"),
                    f"duplicate persona name {persona.name!r} (also personas[{seen[persona.name]}])",
                )
            seen[persona.name] = i
        return self

    def model_post_init(self, context: Any, /) -> None:
        # Effective prior: pi_t = q_t ** s / sum_u q_u ** s, q = priors normalised, s = prior_strength.
        n = len(self.personas)
        raw = [p.prior if p.prior is not None else 1.0 / n for p in self.personas]
        total = math.fsum(raw)
        scaled = [self.prior_strength * math.log(r / total) for r in raw]
        top = max(scaled)
        log_norm = top + math.log(math.fsum(math.exp(v - top) for v in scaled))
        self._log_priors = {p.name: v - log_norm for p, v in zip(self.personas, scaled, strict=True)}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.personas)

    def persona(self, name: str) -> Persona:
        for p in self.personas:
            if p.name == name:
                return p
        raise KeyError(name)

    def log_priors(self) -> dict[str, float]:
        """Natural log of each persona's effective prior (they sum to 1 in probability space)."""
        return dict(self._log_priors)

    def priors(self) -> dict[str, float]:
        """Each persona's effective prior: normalised priors raised to ``prior_strength``, renormalised."""
        return {name: math.exp(v) for name, v in self._log_priors.items()}

    def to_mapping(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "prior_strength": self.prior_strength,
            "personas": [p.to_mapping() for p in self.personas],
        }

    def to_yaml(self) -> str:
        return dump_yaml(self.to_mapping())


class _Flow(dict[str, Any]):
    """A mapping written in YAML flow style (one signal per line)."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML with keys in insertion order and each signal on one line in flow style."""
    return yaml.dump(
        dict(data), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=110
    )


def load_templates_file(path: str | Path) -> PersonaSet:
    """Load persona templates from a file the operator names (CLI, library); never reachable over HTTP."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError([f"cannot read persona templates {str(path)!r}: {exc.strerror}"]) from exc
    return load_templates(text, path=str(path))


def load_templates(source: object, *, path: str = "<personas>") -> PersonaSet:
    """Load and validate persona templates from YAML (JSON when ``path`` ends in ``.json``) text or an
    already-parsed mapping.

    A string is always YAML text, never a path (it reaches here from the HTTP API); a file is read only
    when given as a :class:`~pathlib.Path`, which no HTTP body can produce (see :func:`load_templates_file`).
    Raises :class:`TemplateError` listing every problem.
    """
    if isinstance(source, Path):
        return load_templates_file(source)
    doc = load_document(source, file=path) if isinstance(source, str) else Document.of(source)
    return validate(
        PersonaSet,
        doc,
        error=TemplateError,
        empty="persona templates are empty (expected a mapping with a `personas` list)",
    )
