"""Content atoms: Markdown files with YAML front matter, parsed and checked into ``Atom`` values.

Every problem in a file is reported at once, each as ``"file:line: message"`` (``"file:line: path:
message"`` for the front matter, read with the declarative toolkit into :class:`FrontMatter`), so a creator
can fix a whole corpus in one pass. ``load_located_yaml`` and ``content_version`` are the toolkit's,
kept here for ``quizzes.py``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError

from offerloop.assembly.template import PLACEHOLDER_ROOTS, Placeholder, parse_template, scan_placeholders
from offerloop.content.exceptions import ContentError
from offerloop.content.model import Atom, AtomKind
from offerloop.declarative import (
    Count,
    Document,
    Text,
    content_version,
    load_document,
    matching,
    show,
    validation_problems,
)

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

Problem = tuple[int, str]  # (file line, message)


# --- YAML with line numbers (the declarative toolkit's) ------------------------------------------


@dataclass(frozen=True, slots=True)
class LocatedYaml:
    """A parsed YAML document plus where each path starts (``offerloop.declarative.Document``)."""

    doc: Document

    @property
    def data(self) -> Any:
        return self.doc.data

    @property
    def first_line(self) -> int:
        return self.doc.first_line

    def line(self, *path: object) -> int:
        """The file line of ``path`` (keys and indexes), or of its nearest located parent."""
        return self.doc.line(path)


def load_located_yaml(text: str, *, first_line: int = 1) -> tuple[LocatedYaml | None, list[Problem]]:
    """Parse one YAML document, keeping lines; ``first_line`` is the file line where ``text`` starts.

    Returns the document (None when the YAML is broken) and the problems found: a syntax error with its
    line, or duplicate keys (which PyYAML would otherwise silently collapse to the last one).
    """
    doc = load_document(text, syntax="yaml", first_line=first_line)
    problems = [(p.line, p.message) for p in doc.problems]
    return (LocatedYaml(doc) if doc.parsed else None), problems


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


Slug = Annotated[str, matching(SLUG_RE.pattern, f"a slug ({SLUG_HINT})")]
PersonaName = Annotated[str, matching(PERSONA_RE.pattern, f"a persona name ({PERSONA_HINT})")]
OptionalText = Annotated[str | None, AfterValidator(lambda v: (v.strip() or None) if v is not None else None)]


class FrontMatter(BaseModel):
    """An atom's front matter: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Slug
    title: Text
    kind: AtomKind
    tags: list[Slug] | None = None  # null or missing: none
    level: Annotated[int, Strict(), Field(ge=1, le=3)] = 1  # 1 beginner .. 3 advanced
    persona_fit: list[PersonaName] | None = None
    outcome: OptionalText = None
    minutes: Count | None = None
    source: OptionalText = None
    licence: OptionalText = None
    ai_rewrite: bool = False


def _check_front_matter(doc: LocatedYaml) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The normalized front matter (every key, defaults filled) or None, and its problems."""
    data = {} if doc.data is None else doc.data
    try:
        front = FrontMatter.model_validate(data)
    except ValidationError as exc:
        return None, [(p.line, _text_of(p)) for p in validation_problems(exc, doc.doc, FrontMatter)]
    problems: list[Problem] = []
    problems.extend(parse_template(front.title, first_line=doc.line("title"))[1])
    if front.outcome:
        problems.extend(parse_template(front.outcome, first_line=doc.line("outcome"))[1])
    normalized = front.model_dump()
    for key in ("tags", "persona_fit"):
        normalized[key] = list(dict.fromkeys(normalized[key] or ()))  # a name twice means nothing more
    return normalized, problems


def _text_of(problem: Any) -> str:
    """``path: message`` (an atom's problems name no file: the caller adds it with the line)."""
    return f"{problem.path}: {problem.message}" if problem.path else problem.message
