"""`offerloop config lint FILE...`: every problem of a declarative config as ``file:line: path: message``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final

import typer
from pydantic import TypeAdapter, ValidationError

from offerloop.assembly.policy import parse_policy
from offerloop.content.atoms import parse_atom
from offerloop.content.exceptions import ContentError
from offerloop.content.quizzes import parse_quiz
from offerloop.decisions.schemas import ActionIn
from offerloop.declarative import (
    ConfigError,
    Document,
    Problem,
    load_document,
    sort_problems,
    validation_problems,
)
from offerloop.delivery.journeys.loading import parse_journey
from offerloop.events.signals import load_signal_config
from offerloop.features.spec import load_feature_spec
from offerloop.offers.schema import parse_catalog
from offerloop.personas.templates import load_templates

app = typer.Typer(
    help="Declarative configs: offers, policies, atoms, signals, features, personas, journeys…",
    no_args_is_help=True,
)

KINDS: Final = ("offers", "policy", "atom", "quiz", "signals", "features", "personas", "actions", "journey")
# A top-level key that only one kind has, in the order they are tried.
_KEYS: Final = (
    ("offers", "offers"),
    ("personas", "personas"),
    ("features", "features"),
    ("suppressed_factor", "features"),
    ("rules", "signals"),
    ("threshold", "signals"),
    ("sections", "policy"),
    ("deliverable", "policy"),
    ("questions", "quiz"),
    ("steps", "journey"),
    ("trigger", "journey"),
)
_NAMES: Final = (
    ("offer", "offers"),
    ("catalog", "offers"),
    ("persona", "personas"),
    ("template", "personas"),
    ("feature", "features"),
    ("signal", "signals"),
    ("polic", "policy"),
    ("quiz", "quiz"),
    ("action", "actions"),
    ("journey", "journey"),
)


def detect_kind(file: str, doc: Document) -> str | None:
    """The config kind of ``file``: from its content (top-level keys), else from its name."""
    if file.lower().endswith(".md"):
        return "atom"
    data = doc.data
    if isinstance(data, dict):
        for key, kind in _KEYS:
            if key in data:
                return kind
    if isinstance(data, list) and data and all(isinstance(item, dict) and "key" in item for item in data):
        return "actions"
    name = Path(file).as_posix().lower()
    return next((kind for part, kind in _NAMES if part in name), None)


def _raised(parse: Callable[[], object]) -> list[Problem | str]:
    """The problems ``parse`` raises: every loader names its lines itself."""
    try:
        parse()
    except ConfigError as exc:
        return [*exc.found] if exc.found else [*exc.problems]
    except ContentError as exc:
        return list(exc.problems)
    return []


_ACTIONS: Final = TypeAdapter(list[ActionIn])


def _lint_actions(doc: Document, text: str) -> list[Problem | str]:
    try:
        _ACTIONS.validate_python(doc.data)
    except ValidationError as exc:
        return [*doc.problems, *validation_problems(exc, doc, list[ActionIn])]
    return list(doc.problems)


_LINTERS: Final[dict[str, Callable[[Document, str], list[Problem | str]]]] = {
    "offers": lambda doc, text: _raised(lambda: parse_catalog(text, path=doc.file)),
    "policy": lambda doc, text: _raised(lambda: parse_policy(text, path=doc.file)),
    "atom": lambda doc, text: _raised(lambda: parse_atom(text, path=doc.file)),
    "quiz": lambda doc, text: _raised(lambda: parse_quiz(text, path=doc.file)),
    "signals": lambda doc, text: _raised(lambda: load_signal_config(text, path=doc.file)),
    "features": lambda doc, text: _raised(lambda: load_feature_spec(text, path=doc.file)),
    "personas": lambda doc, text: _raised(lambda: load_templates(text, path=doc.file)),
    "actions": _lint_actions,
    "journey": lambda doc, text: _raised(lambda: parse_journey(text, path=doc.file)),
}


def lint_text(text: str, *, file: str, kind: str | None = None) -> tuple[str | None, list[str]]:
    """The kind of config ``text`` is (detected unless given) and its problems as lines, in file order."""
    doc = load_document(text, file=file, syntax="yaml" if file.lower().endswith(".md") else None)
    kind = kind or detect_kind(file, doc)
    if kind is None and not doc.parsed:
        return None, [str(p) for p in doc.problems]
    if kind is None:
        return None, [f"{file}:1: cannot tell which kind of config this is: pass --kind ({', '.join(KINDS)})"]
    if not doc.parsed and kind != "atom":  # one YAML error format for every kind
        return kind, [str(p) for p in doc.problems]
    found = _LINTERS[kind](doc, text)
    problems = sort_problems(p for p in found if isinstance(p, Problem))
    return kind, [*map(str, problems), *(p for p in found if isinstance(p, str))]


def lint_file(file: Path, *, kind: str | None = None) -> tuple[str | None, list[str]]:
    """:func:`lint_text` of a file; an unreadable or non-UTF-8 file is a problem too."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        return kind, [f"{file}: cannot be read: {exc.strerror or exc}"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return kind, [f"{file}:{line}: not UTF-8 text (byte {exc.start})"]
    return lint_text(text, file=str(file), kind=kind)


def _check_kind(value: str | None) -> str | None:
    if value is not None and value not in KINDS:
        raise typer.BadParameter(f"one of {', '.join(KINDS)}")
    return value


@app.command("lint")
def lint(
    files: Annotated[list[Path], typer.Argument(help="Config files (YAML, JSON, or Markdown atoms)")],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help=f"One of {', '.join(KINDS)}; detected when not given", callback=_check_kind
        ),
    ] = None,
) -> None:
    """Check config files: exit 0 when all are clean, 1 with every problem as ``file:line: path: message``."""
    failed = False
    for file in files:
        found_kind, problems = lint_file(file, kind=kind)
        for problem in problems:
            typer.echo(problem)
        if problems:
            failed = True
        else:
            typer.echo(f"{file}: ok ({found_kind})")
    if failed:
        raise typer.Exit(1)
