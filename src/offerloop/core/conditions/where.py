"""``where:``-form conditions that remember their root, and the pydantic field types that parse them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Final, TypeAlias

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from offerloop.core.conditions.evaluation import compile_condition
from offerloop.core.conditions.model import All, Condition, ConditionError, _thaw
from offerloop.core.conditions.parsing import parse_where
from offerloop.core.conditions.words import leaves


class Where:
    """A ``where:``-form condition that remembers its root: ``{plan: pro, amount: {gte: 10}}``."""

    __slots__ = ("check", "condition", "root")

    def __init__(self, root: str, condition: Condition) -> None:
        self.root, self.condition = root, condition
        self.check = compile_condition(condition)

    @classmethod
    def of(cls, data: Any, root: str) -> Where:
        if isinstance(data, Where):
            return data
        return cls(root, parse_where(data, root=root))

    def __bool__(self) -> bool:
        return not (isinstance(self.condition, All) and not self.condition.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Where) and (self.root, self.condition) == (other.root, other.condition)

    def __hash__(self) -> int:
        return hash((self.root, self.condition))

    def __repr__(self) -> str:
        return f"Where({self.to_data()!r})"

    def holds(self, value: Any, now: datetime | None = None) -> bool:
        """Whether the condition holds for ``value``, the mapping its root names (event properties, ...)."""
        return self.check({self.root: value}, now)

    def to_data(self) -> dict[str, dict[str, Any]]:
        """``{key: {operator: operand}}``, each key below the root (parses back to an equal Where)."""
        return {leaf.key: {op: _thaw(v) for op, v in leaf.ops} for leaf in leaves(self.condition)}


CONDITION_ERROR: Final = "condition"


def pydantic_error(exc: ConditionError) -> PydanticCustomError:
    """A condition's problems as one pydantic error: config formatters print one line each (``problems_of``),
    others show the joined message. Raise it from a field validator."""
    return PydanticCustomError(
        CONDITION_ERROR, "{message}", {"message": str(exc), "problems": [list(p) for p in exc.problems]}
    )


def _where_validator(root: str) -> Callable[[Any], Where]:
    def validate(value: Any) -> Where:
        try:
            return Where.of(value, root)
        except ConditionError as exc:
            raise pydantic_error(exc) from None

    return validate


def problems_of(error: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """The ``(path inside the condition, message)`` problems of a pydantic error raised by a condition field."""
    if error.get("type") != CONDITION_ERROR:
        return None
    return [(str(p), str(m)) for p, m in (error.get("ctx") or {}).get("problems", [])]


def _where_schema(root: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "object", "description": f"{root}: {{key: value | {{operator: operand}}}}"}
    )


# pydantic field types for a ``where:`` mapping; None or {} always holds.
PropertiesWhere: TypeAlias = Annotated[
    Where,
    PlainValidator(_where_validator("properties")),
    PlainSerializer(lambda where: where.to_data()),
    _where_schema("properties"),
]
