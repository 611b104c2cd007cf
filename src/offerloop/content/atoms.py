"""Content atoms: Markdown files with YAML front matter, parsed and checked into ``Atom`` values.

Every problem in a file is reported at once, each as ``"file:line: message"``, so a creator can fix a
whole corpus in one pass. The YAML helpers here (``load_located_yaml``, ``content_version``) are shared
with ``quizzes.py``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from offerloop.assembly.template import PLACEHOLDER_ROOTS, Placeholder, parse_template, scan_placeholders
from offerloop.content.exceptions import ContentError
from offerloop.content.model import ATOM_KINDS, Atom
from offerloop.declarative import StringDateLoader, show

__all__ = [
    "ATOM_KEYS",
    "PLACEHOLDER_ROOTS",
    "SLUG_HINT",
    "SLUG_RE",
    "LocatedYaml",
    "Placeholder",
    "Problem",
    "content_version",
    "format_problems",
    "kind_of",
    "load_corpus",
    "load_located_yaml",
    "parse_atom",
    "placeholders",
    "problems_error",
    "scan_placeholders",
    "unknown_key_message",
]

SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]*")
SLUG_HINT: Final = "lowercase letters, digits and '-', e.g. 'price-anchor'"
PERSONA_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")  # the personas domain's template-name rule
PERSONA_HINT: Final = "lowercase letters, digits and '_', starting with a letter"

ATOM_KEYS: Final = (
    "id",
    "title",
    "kind",
    "tags",
    "level",
    "persona_fit",
    "outcome",
    "minutes",
    "source",
    "licence",
    "ai_rewrite",
)
_REQUIRED_ATOM_KEYS: Final = ("id", "title", "kind")

Problem = tuple[int, str]  # (file line, message)


# --- YAML with line numbers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocatedYaml:
    """A parsed YAML document plus the file line of each mapping entry (its key) and sequence item."""

    data: Any
    lines: Mapping[tuple[object, ...], int]
    first_line: int  # file line of the document's first line

    def line(self, *path: object) -> int:
        """The file line of ``path`` (keys and indexes), or of its nearest located parent."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), self.first_line)


def load_located_yaml(text: str, *, first_line: int = 1) -> tuple[LocatedYaml | None, list[Problem]]:
    """Parse one YAML document, keeping lines; ``first_line`` is the file line where ``text`` starts.

    Returns the document (None when the YAML is broken) and the problems found: a syntax error with its
    line, or duplicate keys (which PyYAML would otherwise silently collapse to the last one).
    """
    offset = first_line - 1
    loader = StringDateLoader(text)  # a SafeLoader that keeps dates as strings
    try:
        node = loader.get_single_node()
        lines: dict[tuple[object, ...], int] = {}
        problems: list[Problem] = []
        if node is not None:
            lines[()] = node.start_mark.line + 1 + offset
            _walk(loader, node, (), lines, problems, offset, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + offset if mark is not None else first_line
        column = f" (column {mark.column + 1})" if mark is not None else ""
        what = exc.problem or exc.context or "cannot be parsed"
        if exc.context and what.startswith("but "):  # "but found another document" needs its context
            what = f"{exc.context} {what}"
        return None, [(line, f"invalid YAML{column}: {what}")]
    except yaml.YAMLError as exc:
        return None, [(first_line, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    return LocatedYaml(data=data, lines=lines, first_line=first_line), problems


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: tuple[object, ...],
    lines: dict[tuple[object, ...], int],
    problems: list[Problem],
    offset: int,
    seen: set[int],
) -> None:
    """Record the line of every entry under ``node``; flag duplicate keys."""
    # An alias is walked once only: a document of nested aliases would otherwise blow up exponentially.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_at: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<" merges: the merged entries keep the line of this mapping
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # construction reports unhashable keys
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1 + offset
            if key in first_at:
                problems.append((line, f"duplicate key {show(key)} (first at line {first_at[key]})"))
                continue
            first_at[key] = line
            lines[(*path, key)] = line
            _walk(loader, value_node, (*path, key), lines, problems, offset, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1 + offset
            _walk(loader, item, (*path, index), lines, problems, offset, seen)


def content_version(data: Any) -> str:
    """Hex sha256 (first 16 characters) of the canonical JSON of ``data``: key order never matters."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def format_problems(path: str, problems: Iterable[Problem]) -> list[str]:
    """``(line, message)`` pairs as ``"path:line: message"``, ordered by line (stable)."""
    return [f"{path}:{line}: {message}" for line, message in sorted(problems, key=lambda p: p[0])]


def problems_error(path: str, problems: Iterable[Problem]) -> ContentError:
    """A ``ContentError`` for a file: ``problems`` as ``"path:line: message"`` lines, ``details`` as
    ``[{"path", "line", "message"}]``, both ordered by line."""
    ordered = sorted(problems, key=lambda p: p[0])
    details = [{"path": path, "line": line, "message": message} for line, message in ordered]
    return ContentError(format_problems(path, ordered), details=details)


def unknown_key_message(key: object, allowed: Iterable[str]) -> str:
    """ "unknown key 'x'" with the closest allowed key as a hint, or the allowed list."""
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1) if isinstance(key, str) else []
    hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
    return f"unknown key {show(key)} ({hint})"


def kind_of(value: object) -> str:
    """A short description of a YAML value's type, for "must be a mapping, got ..." messages."""
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, Mapping):
        return "a mapping"
    return show(value)


# --- placeholders ----------------------------------------------------------------------------------
# The atom language (placeholders, {% if %} blocks, \{{ literal tags) is offerloop.assembly.template.


def placeholders(text: str) -> list[str]:
    """The dotted paths of the well-formed placeholders in ``text``, each once, in order of appearance."""
    found, _ = scan_placeholders(text)
    return list(dict.fromkeys(p.path for p in found))


# --- atoms -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    atom: Atom | None
    problems: list[Problem]
    id_line: int


def parse_atom(text: str, *, path: str = "<string>") -> Atom:
    """One Markdown file with YAML front matter → an ``Atom``; raises ``ContentError`` listing every problem."""
    parsed = _parse(text, path)
    if parsed.atom is None:
        raise problems_error(path, parsed.problems)
    return parsed.atom


def load_corpus(directory: str | Path) -> tuple[list[Atom], list[str]]:
    """Every ``*.md`` under ``directory`` (recursive, sorted; hidden files and folders, and README.md files,
    which document a corpus rather than belong to it, are skipped).

    Returns the atoms that parsed and the problems of the rest, paths relative to ``directory``. Of two
    files with the same id, the first in path order is kept and the second reported naming both.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ContentError([f"{directory}: not a directory"])
    files = sorted(
        (p.relative_to(root).as_posix(), p)
        for p in root.rglob("*.md")
        if p.is_file()
        and p.name.lower() != "readme.md"
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    atoms: list[Atom] = []
    problems: list[str] = []
    first_seen: dict[str, tuple[str, int]] = {}  # atom id -> (file, line of its id)
    for rel, file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(f"{rel}:1: not UTF-8 text")
            continue
        except OSError as exc:
            problems.append(f"{rel}: cannot be read: {exc.strerror or exc}")
            continue
        parsed = _parse(text, rel)
        problems.extend(format_problems(rel, parsed.problems))
        atom = parsed.atom
        if atom is None:
            continue
        if atom.id in first_seen:
            other, other_line = first_seen[atom.id]
            problems.append(
                f"{rel}:{parsed.id_line}: duplicate id {atom.id!r}: already used by {other}:{other_line}"
            )
            continue
        first_seen[atom.id] = (rel, parsed.id_line)
        atoms.append(atom)
    return atoms, problems


def _parse(text: str, path: str) -> _Parsed:
    """The atom (None if any problem) and the problems as (line, message)."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        problem = "missing front matter: the file must start with a '---' line, then YAML, then '---'"
        return _Parsed(None, [(1, problem)], 1)
    closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if closing is None:
        problem = "front matter is not closed: add a '---' line after it"
        return _Parsed(None, [(1, problem)], 1)

    problems: list[Problem] = []
    doc, yaml_problems = load_located_yaml("\n".join(lines[1:closing]), first_line=2)
    problems.extend(yaml_problems)
    front: dict[str, Any] | None = None
    if doc is not None:
        front, field_problems = _check_front_matter(doc)
        problems.extend(field_problems)

    raw_body = "\n".join(lines[closing + 1 :])
    _, body_problems = parse_template(raw_body, first_line=closing + 2)
    problems.extend(body_problems)
    # Leading blank lines and trailing whitespace carry no meaning: they change neither body nor version.
    body = "\n".join(_drop_leading_blank(lines[closing + 1 :])).rstrip()
    if not body:
        problems.append((closing + 1, "the body is empty: write the Markdown after the closing '---'"))

    id_line = doc.line("id") if doc is not None else 1
    if problems or front is None:
        return _Parsed(None, problems, id_line)
    atom = Atom(
        id=front["id"],
        title=front["title"],
        kind=front["kind"],
        body=body,
        version=content_version({"front_matter": front, "body": body}),
        tags=tuple(front["tags"]),
        level=front["level"],
        persona_fit=tuple(front["persona_fit"]),
        outcome=front["outcome"],
        minutes=front["minutes"],
        source=front["source"],
        licence=front["licence"],
        ai_rewrite=front["ai_rewrite"],
        path=path,
    )
    return _Parsed(atom, [], id_line)


def _drop_leading_blank(lines: list[str]) -> list[str]:
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    return lines[start:]


def _check_front_matter(doc: LocatedYaml) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The normalized front matter (every key, defaults filled) or None, and its problems."""
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        return None, [(doc.first_line, f"front matter must be a mapping of keys, got {kind_of(data)}")]
    problems: list[Problem] = []
    for key in data:
        if key not in ATOM_KEYS:
            problems.append((doc.line(key), unknown_key_message(key, ATOM_KEYS)))
    for key in _REQUIRED_ATOM_KEYS:
        if key not in data:
            problems.append((1, f"missing required key {key!r}"))

    def bad(key: str, message: str) -> None:
        problems.append((doc.line(key), message))

    front: dict[str, Any] = {}
    atom_id = data.get("id")
    if "id" in data and not (isinstance(atom_id, str) and SLUG_RE.fullmatch(atom_id)):
        bad("id", f"id must be a slug ({SLUG_HINT}), got {show(atom_id)}")
    front["id"] = atom_id
    front["title"] = title = _text(data.get("title"))
    if "title" in data:
        if not title:
            bad("title", f"title must be a non-empty string, got {show(data['title'])}")
        else:
            problems.extend(parse_template(title, first_line=doc.line("title"))[1])
    kind = data.get("kind")
    if "kind" in data and kind not in ATOM_KINDS:
        bad("kind", f"kind must be one of {', '.join(ATOM_KINDS)}, got {show(kind)}")
    front["kind"] = kind

    front["tags"] = _name_list(doc, data, "tags", SLUG_RE, "slug", SLUG_HINT, problems)
    front["persona_fit"] = _name_list(
        doc, data, "persona_fit", PERSONA_RE, "persona name", PERSONA_HINT, problems
    )

    level = data.get("level", 1)
    if not (_is_int(level) and 1 <= level <= 3):
        bad("level", f"level must be an integer 1..3, got {show(level)}")
    front["level"] = level

    minutes = data.get("minutes")
    if minutes is not None and not (_is_int(minutes) and minutes > 0):
        bad("minutes", f"minutes must be a positive integer, got {show(minutes)}")
    front["minutes"] = minutes

    for key in ("outcome", "source", "licence"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            bad(key, f"{key} must be a string, got {show(value)}")
        front[key] = _text(value)
    if front["outcome"]:
        problems.extend(parse_template(front["outcome"], first_line=doc.line("outcome"))[1])

    ai_rewrite = data.get("ai_rewrite", False)
    if not isinstance(ai_rewrite, bool):
        bad("ai_rewrite", f"ai_rewrite must be true or false, got {show(ai_rewrite)}")
    front["ai_rewrite"] = ai_rewrite
    return front, problems


def _text(value: object) -> str | None:
    """A stripped string, None for a missing, empty or non-string value."""
    return (value.strip() or None) if isinstance(value, str) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name_list(
    doc: LocatedYaml,
    data: Mapping[str, Any],
    key: str,
    pattern: re.Pattern[str],
    noun: str,
    hint: str,
    problems: list[Problem],
) -> list[str]:
    """An optional list of names (missing or null = empty), each checked on its own line; duplicates dropped."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append((doc.line(key), f"{key} must be a list of {noun}s, got {show(value)}"))
        return []
    names: list[str] = []
    for index, item in enumerate(value):
        if not (isinstance(item, str) and pattern.fullmatch(item)):
            problems.append(
                (doc.line(key, index), f"{key}[{index}] must be a {noun} ({hint}), got {show(item)}")
            )
        elif item not in names:
            names.append(item)
    return names
