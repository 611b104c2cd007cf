"""Which events a feature looks at: the ``match`` model of a feature spec and its compiled form.

A ``match`` is one mapping or a list of them (any may match); see :mod:`offerloop.features.spec`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from offerloop.core.conditions import MISSING, PropertiesWhere, resolve
from offerloop.core.conditions import Where as Where
from offerloop.declarative import problem_at, show

__all__ = [
    "EVENT_TYPES",
    "MISSING",
    "CompiledMatch",
    "Match",
    "MatchList",
    "NonEmptyText",
    "PropertyPath",
    "Where",
    "compile_match",
    "compile_matches",
    "resolve_path",
]

EVENT_TYPES: Final[tuple[str, ...]] = ("track", "page", "screen", "identify", "group", "alias")
EventType = Literal["track", "page", "screen", "identify", "group", "alias"]
_NAMED_TYPES: Final = frozenset({"track", "page", "screen"})

NonEmptyText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]


def _property_path(value: object) -> object:
    if isinstance(value, str) and (not value or any(not part for part in value.split("."))):
        raise ValueError(f"invalid property path {show(value)} (empty segment)")
    return value


PropertyPath = Annotated[NonEmptyText, BeforeValidator(_property_path)]


def _as_match_list(value: object) -> object:
    if isinstance(value, Mapping | BaseModel):
        return [value]
    return value


class Match(BaseModel):
    """Which events a feature looks at; every given part must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: EventType | None = None
    event: NonEmptyText | None = None
    where: PropertiesWhere = Field(default_factory=lambda: Where.of(None, "properties"))

    @model_validator(mode="after")
    def _event_needs_a_named_type(self) -> Self:
        if self.event is not None and self.type is not None and self.type not in _NAMED_TYPES:
            raise problem_at(
                ("event",), f"{self.type} events have no name: 'event' works only with track, page or screen"
            )
        return self


MatchList = Annotated[tuple[Match, ...], BeforeValidator(_as_match_list), Field(min_length=1)]


# --------------------------------------------------------------------------------------------------
# Compiled matching


def resolve_path(properties: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` below ``properties`` (a literal key first, then dotted segments), or MISSING."""
    return resolve({"properties": properties}, f"properties.{path}")


@dataclass(frozen=True, slots=True)
class CompiledMatch:
    """One :class:`Match`: a test on (type, name), done once per distinct pair, and the ``where`` test."""

    types: frozenset[str] | None  # None: any type
    exact: str | None  # casefolded event name
    glob: Callable[[str], object] | None  # compiled glob on the casefolded name
    where: Where | None  # None: every event of the accepted (type, name)

    def accepts(self, event_type: str, name: str | None) -> bool:
        if self.types is not None and event_type not in self.types:
            return False
        if self.exact is None and self.glob is None:
            return True
        if not isinstance(name, str):
            return False
        folded = name.casefold()
        if self.exact is not None:
            return folded == self.exact
        assert self.glob is not None
        return self.glob(folded) is not None

    def matches(self, event_type: str, name: str | None, properties: Mapping[str, Any]) -> bool:
        return self.accepts(event_type, name) and (self.where is None or self.where.holds(properties))


def compile_match(match: Match) -> CompiledMatch:
    types: frozenset[str] | None
    if match.type is not None:
        types = frozenset({match.type})
    elif match.event is not None:
        types = frozenset({"track"})
    else:
        types = None
    exact: str | None = None
    glob: Callable[[str], object] | None = None
    if match.event is not None:
        pattern = match.event.casefold()
        if set("*?[").isdisjoint(pattern):
            exact = pattern
        else:
            glob = re.compile(fnmatch.translate(pattern)).match
    return CompiledMatch(types=types, exact=exact, glob=glob, where=match.where or None)


def compile_matches(matches: Sequence[Match] | None) -> tuple[CompiledMatch, ...]:
    """A match list (any may match); None, meaning every event, compiles to one catch-all match."""
    if matches is None:
        return (CompiledMatch(types=None, exact=None, glob=None, where=None),)
    return tuple(compile_match(match) for match in matches)
