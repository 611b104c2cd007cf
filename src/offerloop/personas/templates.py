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
reserved for buyers no persona fits. :func:`load_templates` raises :class:`TemplateError` whose message
names every problem by its path, e.g. ``personas[1].signals[0].weight: Input should be greater than 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from offerloop.core import conditions
from offerloop.core.errors import ValidationFailed
from offerloop.declarative import BoundedSafeLoader

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
    "format_validation_error",
    "load_templates",
    "load_templates_file",
]

UNASSIGNED: Final = "unassigned"
MIN_PERSONAS: Final = 2
MAX_PERSONAS: Final = 12
OPERATORS: Final[tuple[str, ...]] = ("gte", "lte", "gt", "lt", "eq", "in", "between", "is")
NUMERIC_OPERATORS: Final[frozenset[str]] = frozenset({"gte", "lte", "gt", "lt", "between"})
_LANGUAGE_OPERATOR: Final = {"is": "eq"}  # persona signals' own word for a boolean test
_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]*$"
_FEATURE_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.]*$"


class TemplateError(ValidationFailed, ValueError):
    """Persona templates that cannot be used; ``details`` lists ``{"loc", "message"}`` per problem.

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
        raise ValueError("must be a number")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def _scalar(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    raise ValueError("must be a string, a number or a bool")


Number = Annotated[float, BeforeValidator(_finite_number)]
Scalar = Annotated[bool | int | float | str, PlainValidator(_scalar)]


class Signal(BaseModel):
    """One weighted condition on one feature."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    feature: str = Field(min_length=1, max_length=64, pattern=_FEATURE_PATTERN)
    gte: Number | None = None
    lte: Number | None = None
    gt: Number | None = None
    lt: Number | None = None
    eq: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1, max_length=100)
    between: tuple[Number, Number] | None = None
    is_: StrictBool | None = Field(default=None, alias="is")
    weight: float = Field(default=1.0, gt=0, le=100, allow_inf_nan=False)
    softness: float | None = Field(default=None, gt=0, allow_inf_nan=False)
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
                raise ValueError(f"softness applies only to numeric conditions, not to `{alias}`")
        return value

    @model_validator(mode="after")
    def _exactly_one_condition(self) -> Signal:
        present = [op for op in OPERATORS if self._raw(op) is not None]
        if len(present) != 1:
            got = ", ".join(present) if present else "none"
            raise ValueError(f"needs exactly one condition out of {', '.join(OPERATORS)} (got {got})")
        try:  # the operand's meaning is the condition language's (offerloop.core.conditions)
            self._leaf(present[0])
        except conditions.ConditionError as exc:
            raise ValueError(
                "; ".join(f"{path}: {message}" if path else message for path, message in exc.problems)
            ) from None
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

    name: str = Field(min_length=1, max_length=64, pattern=_NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    prior: float | None = Field(default=None, gt=0, allow_inf_nan=False)
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

    threshold: float = Field(default=0.5, ge=0, le=1, allow_inf_nan=False)
    prior_strength: float = Field(default=1.0, ge=0, le=10, allow_inf_nan=False)
    personas: list[Persona] = Field(min_length=MIN_PERSONAS, max_length=MAX_PERSONAS)

    _log_priors: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> PersonaSet:
        seen: dict[str, int] = {}
        for i, persona in enumerate(self.personas):
            if persona.name in seen:
                raise ValueError(
                    f"personas[{i}].name: duplicate persona name {persona.name!r} "
                    f"(also personas[{seen[persona.name]}])"
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


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # The position of the problem, never the text around it (which may be anything the client sent).
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or type(exc).__name__}{where}"


def format_validation_error(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``{"loc": "personas[0].signals[1].weight", "message": ...}``."""
    problems: list[dict[str, str]] = []
    for err in exc.errors(include_url=False):
        message = str(err["msg"])
        message = message.removeprefix("Value error, ")
        loc = _format_loc(tuple(err["loc"]))
        if not loc and ": " in message and message.startswith("personas["):
            loc, message = message.split(": ", 1)
        problems.append({"loc": loc, "message": message})
    return problems


def _raise(problems: list[dict[str, str]]) -> NoReturn:
    text = "; ".join(f"{p['loc']}: {p['message']}" if p["loc"] else p["message"] for p in problems)
    raise TemplateError(f"invalid persona templates: {text}", details=problems)


def load_templates_file(path: str | Path) -> PersonaSet:
    """Load persona templates from a file the operator names (CLI, library); never reachable over HTTP."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read persona templates {str(path)!r}: {exc.strerror}") from exc
    return load_templates(text)


def load_templates(source: object) -> PersonaSet:
    """Load and validate persona templates from YAML text or an already-parsed mapping.

    A string is always YAML text, never a path (it reaches here from the HTTP API); a file is read only
    when given as a :class:`~pathlib.Path`, which no HTTP body can produce (see :func:`load_templates_file`).
    Raises :class:`TemplateError` naming every problem by its path.
    """
    if isinstance(source, Path):
        return load_templates_file(source)
    data: Any = source
    if isinstance(source, str):
        try:
            data = yaml.load(source, Loader=BoundedSafeLoader)  # a SafeLoader, bounded in depth
        except yaml.YAMLError as exc:
            raise TemplateError(f"persona templates are not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(data, Mapping):
        _raise([{"loc": "", "message": "persona templates must be a mapping with a `personas` list"}])
    try:
        return PersonaSet.model_validate(dict(data))
    except ValidationError as exc:
        _raise(format_validation_error(exc))
