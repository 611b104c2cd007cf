"""YAML reading shared by every declarative config: the bounded loaders, ``parse_yaml`` (for the policy
loader not yet on :func:`~offerloop.declarative.load_document`) and ``show``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import yaml

# As deep as JSON bodies may nest (``api.guards.MAX_JSON_DEPTH``): PyYAML composes nodes recursively, so
# deeper text would end in a RecursionError instead of a config error.
MAX_YAML_DEPTH = 64


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader refusing documents nested deeper than ``MAX_YAML_DEPTH`` with a marked YAML error."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"the document is nested deeper than {MAX_YAML_DEPTH} levels", mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class StringDateLoader(BoundedSafeLoader):
    """SafeLoader that leaves dates and timestamps as strings, as they arrive in event properties.

    Text with characters YAML does not allow (control characters) is refused when the document is read,
    not when the loader is made, so every caller's ``except yaml.YAMLError`` turns it into a config error.
    """

    def __init__(self, stream: str) -> None:
        self._unreadable: yaml.YAMLError | None = None
        super().__init__(stream)

    def check_printable(self, data: str) -> None:
        try:
            super().check_printable(data)
        except yaml.reader.ReaderError as exc:
            self._unreadable = exc

    def get_single_node(self) -> yaml.Node | None:
        if self._unreadable is not None:
            raise self._unreadable
        return super().get_single_node()


StringDateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str) -> tuple[Any, str | None]:
    """The parsed document, or None and a message naming the line and column of the problem."""
    try:
        return yaml.load(text, Loader=StringDateLoader), None  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return None, f"invalid YAML{where}: {exc.problem}"
    except yaml.YAMLError as exc:
        return None, f"invalid YAML: {exc}"
    except ValueError:  # only an integer past the interpreter's digit limit gets here
        return None, f"invalid YAML: {TOO_LONG}"


TOO_LONG: Final = "a number with more digits than can be read (at most 4300)"


def show(value: object) -> str:
    """A value as it should appear in an error message: its repr, cut to 60 characters.

    The repr is built with a budget, so a huge or alias-expanded value costs no more than a small one.
    """
    parts: list[str] = []
    _bounded_repr(value, parts, [0], 0)
    text = "".join(parts)
    return text if len(text) <= 60 else text[:57] + "..."


_REPR_BUDGET: Final = 64  # characters: a little more than ``show`` keeps, so the cut is still visible


def _bounded_repr(value: object, parts: list[str], used: list[int], depth: int) -> None:
    """Append ``repr(value)`` to ``parts`` until ``used[0]`` passes the budget; containers piece by piece."""
    if used[0] > _REPR_BUDGET:
        return
    if type(value) in (list, tuple, dict) and depth < _REPR_BUDGET:
        pairs: Iterable[tuple[object, ...]]
        if isinstance(value, dict):
            opening, closing, pairs = "{", "}", value.items()
        else:
            assert isinstance(value, list | tuple)
            opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
            pairs = ((item,) for item in value)
        _emit(opening, parts, used)
        for index, pair in enumerate(pairs):
            if used[0] > _REPR_BUDGET:
                return
            if index:
                _emit(", ", parts, used)
            _bounded_repr(pair[0], parts, used, depth + 1)
            if len(pair) == 2:
                _emit(": ", parts, used)
                _bounded_repr(pair[1], parts, used, depth + 1)
        if isinstance(value, tuple) and len(value) == 1:
            _emit(",", parts, used)
        _emit(closing, parts, used)
        return
    if isinstance(value, str) and len(value) > _REPR_BUDGET:
        value = value[: _REPR_BUDGET + 1]  # the rest would be cut anyway
    try:
        text = repr(value)
    except ValueError:  # an int past the interpreter's digit limit
        text = "<a number too long to show>"
    _emit(text, parts, used)


def _emit(text: str, parts: list[str], used: list[int]) -> None:
    parts.append(text)
    used[0] += len(text)
