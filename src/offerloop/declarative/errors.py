"""Every problem of a config as ``file:line: path: message``: the error type and the pydantic-error formatter."""

from __future__ import annotations

import difflib
import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from offerloop.core import conditions
from offerloop.core.errors import ValidationFailed
from offerloop.declarative.document import Document, Problem, parse_path, sort_problems
from offerloop.declarative.yaml_loading import show

M = TypeVar("M", bound=BaseModel)

PROBLEM_AT = "problem_at"  # the error type of :func:`problem_at`


class ConfigError(ValidationFailed):
    """A config with problems: ``found`` (:class:`Problem`), ``problems`` (their text), ``details`` (dicts).

    Status 422. A config kind subclasses it with its own ``code`` (``CatalogError``: ``invalid_catalog``).
    """

    code = "invalid_config"

    def __init__(self, problems: Sequence[Problem | str], *, code: str | None = None) -> None:
        self.found: tuple[Problem, ...] = tuple(p for p in problems if isinstance(p, Problem))
        self.problems: list[str] = [str(p) for p in problems]
        details = [p.to_dict() if isinstance(p, Problem) else {"message": p} for p in problems]
        super().__init__("\n".join(self.problems), details=details, code=code)


def problem_at(path: Sequence[str | int], message: str) -> PydanticCustomError:
    """Raise this from a model validator to report ``message`` at ``path`` below the model."""
    return PydanticCustomError(PROBLEM_AT, "{message}", {"message": message, "at": tuple(path)})


def validate(
    model: type[M],
    doc: Document,
    *,
    error: type[ConfigError] = ConfigError,
    check: Callable[[M, Reporter], None] | None = None,
    empty: str = "the document is empty",
    default: M | None = None,
) -> M:
    """``doc`` -> a valid ``model``, or ``error`` listing every problem (reading ones included) by line.

    An empty document (no data: empty text, only comments, ``None``) is the problem ``empty``, or gives
    ``default`` when there is one. ``check(result, report)`` runs on a valid model for what pydantic
    cannot see alone (references between entries); ``report(path, message)`` adds a problem at ``path``,
    ``report.line(path)`` says where a path starts.
    """
    found = list(doc.problems)
    if not doc.parsed:
        raise error(sort_problems(found))
    if doc.data is None:
        if default is not None and not found:
            return default
        raise error(sort_problems([*found, doc.problem((), empty)]))
    try:
        result = model.model_validate(doc.data)
    except ValidationError as exc:
        raise error(sort_problems([*found, *validation_problems(exc, doc, model)])) from None
    if check is not None:
        check(result, Reporter(doc, found))
    if found:
        raise error(sort_problems(found))
    return result


class Reporter:
    """Adds problems at paths of one document (see :func:`validate`'s ``check``)."""

    def __init__(self, doc: Document, found: list[Problem]) -> None:
        self.doc = doc
        self.found = found

    def __call__(self, path: Sequence[Any], message: str) -> None:
        self.found.append(self.doc.problem(path, message))

    def line(self, path: Sequence[Any]) -> int:
        return self.doc.line(path)


# --------------------------------------------------------------------------------------------------
# Where an error's location leads in the model: hides union tags, knows the allowed keys


@dataclass(slots=True)
class _Step:
    """What sits at a location: its type, and the discriminated union it was picked from (if any)."""

    tp: Any
    union: tuple[str, dict[str, type[BaseModel]]] | None = None  # (discriminator, tag -> member)
    tag: str | None = None


BY_TAG = "\x00tag"  # the "discriminator" of a union picked by a callable, its members marked with Tag


def _unwrap(tp: Any) -> tuple[Any, str | None]:
    """The type under ``Annotated`` (and ``X | None``) and the discriminator it declares, if any."""
    discriminator: str | None = None
    while True:
        if get_origin(tp) is Annotated:
            base, *meta = get_args(tp)
            for item in meta:
                if isinstance(item, FieldInfo) and isinstance(item.discriminator, str):
                    discriminator = item.discriminator
                elif isinstance(item, Discriminator):
                    discriminator = BY_TAG  # a callable discriminator: members carry Tag("...")
            tp = base
        elif _is_union(tp) and type(None) in get_args(tp) and len(get_args(tp)) == 2:
            tp = next(arg for arg in get_args(tp) if arg is not type(None))
        else:
            return tp, discriminator


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _members(tp: Any, discriminator: str) -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    if discriminator == BY_TAG:
        for member in get_args(tp):
            if get_origin(member) is Annotated:
                base, *meta = get_args(member)
                for tag in (m.tag for m in meta if isinstance(m, Tag)):
                    out[str(tag)] = _unwrap(base)[0]
        return out
    for member in get_args(tp):
        member, _ = _unwrap(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            info = member.model_fields.get(discriminator)
            for tag in _literal_values(info.annotation) if info is not None else ():
                out[str(tag)] = member
    return out


def _literal_values(tp: Any) -> tuple[Any, ...]:
    tp, _ = _unwrap(tp)
    if get_origin(tp) is Literal:
        return get_args(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tuple(item.value for item in tp)
    return ()


def _field(model: type[BaseModel], name: object) -> FieldInfo | None:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info
    return None


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _trace(root: Any, loc: Sequence[str | int]) -> tuple[list[str | int], list[_Step]]:
    """The location without union tags and ``[key]`` markers, and the step reached at each of its parts."""
    path: list[str | int] = []
    steps = [_Step(root)]
    current = _Step(root)
    for part in loc:
        tp, discriminator = _unwrap(current.tp)
        if discriminator is not None and _is_union(tp):
            members = _members(tp, discriminator)
            if part in members:  # the tag pydantic puts in the location: hidden
                current = _Step(members[str(part)], (discriminator, members), str(part))
                steps[-1] = current
                continue
        if part == "[key]":
            args = get_args(tp)
            current = _Step(args[0] if args else Any)
            steps[-1] = current
            continue
        path.append(part)
        current = _Step(_child_type(tp, part))
        steps.append(current)
    return path, steps


def _child_type(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = _field(tp, part)
        return Any if info is None else _annotation(info)
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (list, tuple, set, frozenset, typing.Sequence, Sequence) and args:
        return args[0]
    if origin in (dict, typing.Mapping, Mapping) and len(args) == 2:
        return args[1]
    return Any


def _annotation(info: FieldInfo) -> Any:
    """The field's type with its discriminator kept (pydantic moves ``Field(discriminator=)`` off it)."""
    if isinstance(info.discriminator, str):
        return Annotated[info.annotation, FieldInfo(discriminator=info.discriminator)]
    return info.annotation


# --------------------------------------------------------------------------------------------------
# Messages


def did_you_mean(value: object, choices: Iterable[object]) -> str:
    """`` (did you mean 'price'?)`` when ``value`` is close to one of ``choices``, else ""."""
    if not isinstance(value, str):
        return ""
    names = [str(c) for c in choices]
    same = [name for name in names if name.casefold() == value.casefold()]
    close = same or difflib.get_close_matches(value, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _one_of(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)


def _got(value: object) -> str:
    """A value as YAML spells it when it is a boolean or null, else :func:`show`."""
    if isinstance(value, bool):
        return str(value).lower()
    return "nothing" if value is None else show(value)


_SIMPLE: dict[str, str] = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "datetime_type": "must be a date-time",
    "finite_number": "must be a finite number",
}
_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
}


def _message(
    error: Mapping[str, Any], path: list[str | int], steps: list[_Step]
) -> tuple[list[str | int], str]:
    """The (possibly moved) path of one pydantic error and its message."""
    kind = str(error["type"])
    ctx = error.get("ctx") or {}
    value = error.get("input")
    parent = steps[-2] if len(steps) >= 2 else None
    if kind == PROBLEM_AT:
        return [*path, *ctx["at"]], str(ctx["message"])
    if kind == "extra_forbidden" and parent is not None:
        return path, _unknown_key(path[-1], parent)
    if kind == "missing" and parent is not None:
        return path[:-1], _missing(path[-1], parent)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        tp, _ = _unwrap(steps[-1].tp)
        tags = list(_members(tp, discriminator)) if _is_union(tp) else []
        if kind == "union_tag_not_found":
            return path, f"missing required key {discriminator!r} (one of {_one_of(tags)})"
        tag = ctx.get("tag")
        return [
            *path,
            discriminator,
        ], f"must be one of {_one_of(tags)}, got {_got(tag)}{did_you_mean(tag, tags)}"
    if kind in ("literal_error", "enum"):
        choices = _literal_values(steps[-1].tp) or tuple(str(ctx.get("expected", "")).split(", "))
        return path, f"must be one of {_one_of(choices)}, got {_got(value)}{did_you_mean(value, choices)}"
    if kind in _SIMPLE:
        return path, f"{_SIMPLE[kind]}, got {_got(value)}"
    if kind in _BOUNDS:
        name, text = _BOUNDS[kind]
        bound = ctx.get(name)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "at most 1", as the config says it, for a float field
        return path, f"{text.format(bound)}, got {_got(value)}"
    if kind == "string_too_short":
        return path, f"must not be empty, got {_got(value)}" if ctx.get("min_length") == 1 else str(
            error["msg"]
        )
    if kind == "string_too_long":
        return path, f"must be at most {ctx.get('max_length')} characters long"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        least = "at least" if kind == "too_short" else "at most"
        return (
            path,
            f"must have {least} {bound} item{'s' if bound != 1 else ''}, got {ctx.get('actual_length')}",
        )
    if kind == "invalid_key":  # a key that is not text, in a model
        return path, f"unknown key {show(path[-1])} (a key must be text)" if path else str(error["msg"])
    if kind in ("value_error", "assertion_error"):
        return path, str(ctx.get("error", error["msg"]))
    if kind == "timezone_aware":
        return path, f"needs a time zone (add Z or an offset such as +01:00), got {_got(value)}"
    if kind.startswith("config_"):  # the toolkit's own types say it all
        return path, str(error["msg"])
    return path, f"{str(error['msg'])[0].lower()}{str(error['msg'])[1:]}, got {_got(value)}"


def _unknown_key(key: object, parent: _Step) -> str:
    model, _ = _unwrap(parent.tp)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"unknown key {show(key)}"
    if parent.union is not None and parent.tag is not None:
        discriminator, members = parent.union
        owners = [tag for tag, member in members.items() if _field(member, key) is not None]
        if owners:
            return (
                f"unknown key {show(key)} for {discriminator} {parent.tag} "
                f"(only for {discriminator} {_and(owners)})"
            )
    allowed = _keys(model)
    hint = did_you_mean(key, allowed)
    if not hint and len(allowed) <= 12:
        hint = f" (allowed: {_one_of(allowed)})"
    return f"unknown key {show(key)}{hint}"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _missing(key: object, parent: _Step) -> str:
    model, _ = _unwrap(parent.tp)
    info = _field(model, key) if isinstance(model, type) and issubclass(model, BaseModel) else None
    text = f"missing required key {show(key)}"
    if info is not None and info.description:
        text += f" ({info.description})"
    if parent.union is not None and parent.tag is not None:
        discriminator, members = parent.union
        if not all(_field(member, key) is not None for member in members.values()):
            text += f" for {discriminator} {parent.tag}"
    return text


def _in_data(path: list[str | int], data: Any) -> list[str | int]:
    """``path`` without the index of a list that the data gives as its one item (a model that accepts
    ``match: {...}`` for ``match: [{...}]`` reports ``match.0``; the data has no ``[0]`` there)."""
    out: list[str | int] = []
    node = data
    for part in path:
        if (
            isinstance(part, int)
            and part == 0
            and isinstance(node, dict)
            and 0 not in node
            and "0" not in node
        ):
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part, node.get(str(part)))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def validation_problems(exc: ValidationError, doc: Document, model: Any) -> list[Problem]:
    """A pydantic error of ``model`` validating ``doc.data`` as problems, each at its line."""
    problems: list[Problem] = []
    errors = exc.errors(include_url=False)
    # "too few items" only because some items were invalid (pydantic drops them first): those are reported
    deeper = {tuple(error["loc"][:n]) for error in errors for n in range(len(error["loc"]))}
    for error in errors:
        if error["type"] == "too_short" and tuple(error["loc"]) in deeper:
            continue
        path, steps = _trace(model, tuple(error["loc"]))
        path = _in_data(path, doc.data)
        inside = conditions.problems_of(error)
        if inside is not None:  # a condition (core.conditions) reports each of its problems at its path
            value = error.get("input")
            for text, message in inside:
                problems.append(doc.problem([*path, *parse_path(text, value)], message))
            continue
        where, message = _message(error, path, steps)
        problems.append(doc.problem(where, message))
    return problems
