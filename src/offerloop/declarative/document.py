"""YAML and JSON text read into data plus the line and column where every path of it starts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import yaml

from offerloop.declarative.yaml_loading import MAX_YAML_DEPTH, TOO_LONG, StringDateLoader, show

PathPart: TypeAlias = str | int
Path: TypeAlias = tuple[Any, ...]  # mapping keys (any scalar YAML allows) and list indexes


@dataclass(frozen=True, slots=True)
class Location:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file, printed as ``file:line: path: message``."""

    file: str
    line: int  # 1-based; 0 for data that came without text (a JSON body already parsed), so without lines
    path: str  # "offers[2].prices.USD"; "" for the document as a whole
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [part for part in (where, self.path, self.message) if part]
        return ": ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.file or None,
            "line": self.line or None,
            "location": self.path or None,
            "message": self.message,
        }


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """By line; problems on one line (or without lines) keep the order they were found in."""
    return sorted(problems, key=lambda problem: problem.line)


def format_path(path: Sequence[Any], data: Any = None) -> str:
    """``("offers", 1, "prices", "USD")`` -> ``offers[1].prices.USD``.

    With ``data``, an int is an index only where the data holds a list there (``prices.840`` is a key).
    """
    out = ""
    node = data
    for part in path:
        is_index = isinstance(part, int) and not isinstance(part, bool)
        if data is not None:
            is_index = is_index and isinstance(node, list)
            node = _child(node, part)
        if is_index:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_INDEX = re.compile(r"\[(\d+)\]")


def parse_path(text: str, data: Any = None) -> tuple[Any, ...]:
    """``rules[2].where.plan.tier.eq`` -> ``("rules", 2, "where", "plan.tier", "eq")``: the inverse of
    :func:`format_path`.

    Keys may hold dots (``plan.tier``): with ``data``, the longest key of each mapping that the text
    continues with is taken; without, or past the data, the text is split at every dot.
    """
    parts: list[Any] = []
    node = data
    rest = text
    while rest:
        index = _INDEX.match(rest)
        if index is not None:
            parts.append(int(index.group(1)))
            node = _child(node, parts[-1])
            rest = rest[index.end() :]
        else:
            key = _longest_key(node, rest) if isinstance(node, dict) else None
            if key is None:
                end = min((i for i in (rest.find("."), rest.find("[")) if i > 0), default=len(rest))
                key, node = rest[:end], None
                rest = rest[end:]
            else:
                node = node[key]
                rest = rest[len(str(key)) :]
            parts.append(key)
        if rest.startswith(".") and rest != ".":
            rest = rest[1:]
    return tuple(parts)


def _longest_key(node: dict[Any, Any], text: str) -> Any:
    """The key of ``node`` whose text ``text`` starts with, followed by its end, ``.`` or ``[``."""
    best: Any = None
    for key in node:
        name = str(key)
        fits = text == name or (text.startswith(name) and text[len(name)] in ".[")
        if fits and (best is None or len(name) > len(str(best))):
            best = key
    return best


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part, node.get(str(part)))
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


@dataclass(slots=True)
class Document:
    """A parsed config: its data, where each path starts, and the problems found while reading it.

    ``problems`` holds syntax errors (then ``data`` is None and ``parsed`` False) and duplicate keys (the
    later value wins in ``data``, as PyYAML builds it; both lines are named).
    """

    file: str
    data: Any
    locations: Mapping[Path, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    first_line: int = 1
    parsed: bool = True
    located: bool = True  # False: data without text (see :meth:`of`), whose problems have no line

    @classmethod
    def of(cls, data: Any, *, file: str = "") -> Document:
        """Data that never was text (a JSON body already parsed): validated the same, problems without lines.

        With no ``file``, a problem reads ``path: message``.
        """
        return cls(file, data, located=False)

    def location(self, path: Sequence[Any]) -> Location:
        """Where ``path`` starts, or its nearest enclosing located path (a mapping entry: its key)."""
        key = tuple(path)
        while key:
            found = self.locations.get(key)
            if found is None and isinstance(key[-1], int | str):
                found = self.locations.get((*key[:-1], str(key[-1])))
            if found is not None:
                return found
            key = key[:-1]
        return self.locations.get((), Location(self.first_line, 1))

    def line(self, path: Sequence[Any] = ()) -> int:
        return self.location(path).line

    def path_text(self, path: Sequence[Any]) -> str:
        return format_path(path, self.data)

    def problem(self, path: Sequence[Any], message: str, *, line: int | None = None) -> Problem:
        """A problem at ``path`` (its line, unless ``line`` is given)."""
        if not self.located:
            return Problem(self.file, line or 0, self.path_text(path), message)
        where = self.location(path)
        return Problem(
            self.file,
            line if line is not None else where.line,
            self.path_text(path),
            message,
            None if line is not None else where.column,
        )


def load_document(
    text: str, *, file: str = "<string>", syntax: str | None = None, first_line: int = 1
) -> Document:
    """YAML (or JSON: ``syntax="json"``, or ``file`` ending in ``.json``) text -> a :class:`Document`.

    Never raises for bad text: what is wrong is in ``problems``. Dates and timestamps stay strings;
    nesting is bounded (``MAX_YAML_DEPTH``); an alias is walked once, so alias bombs cost nothing.
    ``first_line`` is the file line ``text`` starts on (front matter inside a Markdown file).
    """
    text = text.removeprefix("\ufeff")
    is_json = syntax == "json" or (syntax is None and file.lower().endswith(".json"))
    if not is_json:
        return _load_yaml(text, file, first_line)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = Problem(file, exc.lineno, "", f"invalid JSON (column {exc.colno}): {exc.msg}", exc.colno)
        return Document(file, None, {}, [problem], first_line, parsed=False)
    except RecursionError:
        problem = Problem(file, 1, "", f"invalid JSON: nested deeper than {MAX_YAML_DEPTH} levels")
        return Document(file, None, {}, [problem], first_line, parsed=False)
    except ValueError:  # an integer past the interpreter's digit limit
        return Document(
            file, None, {}, [Problem(file, 1, "", f"invalid JSON: {TOO_LONG}")], first_line, False
        )
    # JSON is YAML flow style, so composing it as YAML gives the lines (and the duplicate keys json.loads
    # silently collapses). A tab is whitespace in JSON but not YAML indentation: a space keeps columns.
    located = _load_yaml(text.replace("\t", " "), file, first_line)
    if not located.parsed:
        depth = [p for p in located.problems if "nested deeper" in p.message]
        if depth:
            return Document(file, None, {}, depth, first_line, parsed=False)
        return Document(file, data, {}, [], first_line)  # valid JSON YAML cannot read: lines unknown
    return Document(file, data, located.locations, located.problems, first_line)


def _load_yaml(text: str, file: str, first_line: int) -> Document:
    offset = first_line - 1
    loader = StringDateLoader(text)  # a SafeLoader: no arbitrary objects
    locations: dict[Path, Location] = {}
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            locations[()] = _at(node.start_mark, offset)
            if _expanded_size(node, {}) > max(MAX_EXPANSION * len(text), MIN_EXPANSION_LIMIT):
                message = f"aliases (*name) expand the document to more than {MAX_EXPANSION} times its size"
                return Document(file, None, {}, [Problem(file, first_line, "", message)], first_line, False)
            _walk(loader, node, (), locations, problems, offset, file, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "cannot be parsed"
        if exc.context and what.startswith("but "):  # "but found another document" needs its context
            what = f"{exc.context} {what}"
        if mark is None:
            problem = Problem(file, first_line, "", f"invalid YAML: {what}")
        else:
            where = _at(mark, offset)
            problem = Problem(
                file, where.line, "", f"invalid YAML (column {where.column}): {what}", where.column
            )
        return Document(file, None, {}, [problem], first_line, parsed=False)
    except yaml.YAMLError as exc:
        return Document(
            file, None, {}, [Problem(file, first_line, "", f"invalid YAML: {exc}")], first_line, False
        )
    except ValueError:  # an integer past the interpreter's digit limit
        return Document(
            file, None, {}, [Problem(file, first_line, "", f"invalid YAML: {TOO_LONG}")], first_line, False
        )
    finally:
        loader.dispose()
    return Document(file, data, locations, problems, first_line)


# Aliases share one Python object, but whatever serialises or walks the data (content versions, to_dict,
# error messages) pays for every use: a few lines of nested aliases would be billions of values.
MAX_EXPANSION: Final = 10
MIN_EXPANSION_LIMIT: Final = 1_000_000


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Characters and nodes ``node`` stands for with every alias spelled out (each node computed once)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 0  # a node that contains itself (a recursive alias) counts once
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1 + len(str(node.value))
    memo[id(node)] = size
    return size


def _at(mark: yaml.Mark, offset: int) -> Location:
    return Location(mark.line + 1 + offset, mark.column + 1)


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: Path,
    locations: dict[Path, Location],
    problems: list[Problem],
    offset: int,
    file: str,
    seen: set[int],
) -> None:
    """Record where every mapping entry (its key) and sequence item under ``node`` starts; flag duplicates."""
    # An alias is walked once: a document of nested aliases would otherwise blow up exponentially.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_at: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # merged entries keep the line of this mapping; construction reports bad keys
            key = loader.construct_object(key_node)
            where = _at(key_node.start_mark, offset)
            if "\x00" in key_node.value:
                problems.append(Problem(file, where.line, format_path(path), _NUL, where.column))
            if key in first_at:
                message = f"duplicate key {show(key)} (first at line {first_at[key]})"
                problems.append(Problem(file, where.line, format_path((*path, key)), message, where.column))
            else:
                first_at[key] = where.line
            locations[(*path, key)] = where  # the later value wins, so its problems point at the later line
            _walk(loader, value_node, (*path, key), locations, problems, offset, file, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            locations[(*path, index)] = _at(item.start_mark, offset)
            _walk(loader, item, (*path, index), locations, problems, offset, file, seen)
    elif isinstance(node, yaml.ScalarNode) and "\x00" in node.value:
        where = _at(node.start_mark, offset)
        problems.append(Problem(file, where.line, format_path(path), _NUL, where.column))


# A quoted scalar can spell one ("\0", "\x00"); PostgreSQL stores no NUL in text or JSON, so it is refused on
# both databases alike, with the line it is on.
_NUL: Final = "text with a NUL character (\\0) cannot be stored"
