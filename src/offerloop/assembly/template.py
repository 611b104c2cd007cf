"""The atom language: ``{{ placeholders }}``, ``{% if %}`` blocks and ``\\{{`` literal tags, parsed once.

A text (an atom's title or body, a policy's title, intro or fallback) is a sequence of:

* ``{{ root.path }}`` or ``{{ root.path | default }}``: a buyer value (see :mod:`~offerloop.assembly.inputs`
  for the roots); the default is the creator's own text, used when the value is missing or empty.
* ``{% if CONDITION %}`` ... ``{% elif CONDITION %}`` ... ``{% else %}`` ... ``{% endif %}``: blocks kept or
  dropped for the buyer, nestable. A tag alone on its line takes the whole line with it.
* ``\\{{`` (and ``\\{%``): a literal ``{{`` (``{%``) that is never filled, for merge tags the buyer keeps,
  e.g. ``Hi \\{{ first_name }},`` in an e-mail the buyer sends to their own list.

Conditions::

    answers.goal                      the question was answered (not empty)
    answers.stage == "idea"           also !=, and  answers.stage in ["idea", "building"]  (not in)
    scores.readiness >= 3             also > <= < == !=  (a missing score is 0)
    persona.name == "deal_seeker"     also != , in, not in; bare persona.name: a persona is assigned
    buyer.first_name                  any other value: bare = present; == != in compare values,
                                      > >= < <= compare numbers (buyer.level >= 2) or texts
                                      (date.today >= "2026-01-01": ISO dates compare as text)
    a and b, a or b, not a, ( ... )   usual precedence: not, then and, then or

Conditions are conditions of the one condition language (:mod:`offerloop.core.conditions`), read from
the policy's facts about the buyer (:func:`offerloop.assembly.facts.facts`) plus ``traits``: the
buyer's own fields (:data:`FIELD_PATHS`: ``buyer.level`` is ``traits.level``, ``date.year`` is
``traits.year``, ``persona.confidence`` is ``traits.persona_confidence``...), present when not empty,
typed as the placeholders are before they become text (so ``buyer.level == 2`` holds and
``buyer.level == "2"`` does not: types never mix).

Buyer values are inserted as plain text: in Markdown every ASCII punctuation character of a value is
backslash-escaped (a quiz answer ``[x](https://evil.example)`` stays those characters, never a link),
whitespace runs and newlines become one space, control characters are dropped and a value is cut at
:data:`MAX_VALUE_CHARS`. Filling is one pass: a ``{{`` inside a value is never filled again.

Parsing never raises: :func:`parse_template` returns the tree and the problems (``(line, message)``); a
malformed tag degrades to its own text and an unclosed block closes at the end, so texts that were not
checked (policies built in code) still render.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal, TypeAlias

from markdown_it import MarkdownIt

from offerloop.assembly.facts import Facts, holds
from offerloop.assembly.inputs import BuyerInputs, placeholder_values
from offerloop.assembly.template_conditions import (
    FIELD_PATHS,
    FIELDS,
    MAX_DEPTH,
    PLACEHOLDER_ROOTS,
    parse_condition,
    path_problem,
    template_facts,
)
from offerloop.core.conditions import Any_, Condition, Not
from offerloop.declarative import show

__all__ = [
    "FIELDS",
    "FIELD_PATHS",
    "MAX_VALUE_CHARS",
    "PLACEHOLDER_ROOTS",
    "Branch",
    "If",
    "Node",
    "Placeholder",
    "Text",
    "Var",
    "holds",
    "inert_code",
    "inert_markdown",
    "make_renderer",
    "parse_condition",
    "parse_template",
    "plain_value",
    "render",
    "scan_placeholders",
    "template_facts",
    "walk",
]

MAX_VALUE_CHARS: Final = 1000  # one buyer value in a document (quiz text answers are far shorter)

_MD_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_OPEN: Final = re.compile(r"\\\{\{|\\\{%|\{\{|\{%")

Problem: TypeAlias = tuple[int, str]


# --------------------------------------------------------------------------------------------------
# The tree


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Var:
    """``{{ path | default }}``; ``path`` as written (stripped), ``default`` None without a pipe;
    ``code``: ``"span"`` or ``"block"`` when it sits in Markdown code, where backslash escapes do not apply."""

    path: str
    default: str | None
    line: int
    code: Literal["", "span", "block"] = ""


@dataclass(frozen=True, slots=True)
class Branch:
    condition: Condition | None  # None: the else branch
    nodes: tuple[Node, ...]
    line: int


@dataclass(frozen=True, slots=True)
class If:
    branches: tuple[Branch, ...]
    line: int


Node: TypeAlias = Text | Var | If


# --------------------------------------------------------------------------------------------------
# Placeholders (also used by the content loader)


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{{ root.field | default }}`` found in a text."""

    path: str  # dotted, e.g. "buyer.first_name"
    default: str | None  # the text after the pipe, stripped; None when there is no pipe
    start: int  # offset of "{{" in the text
    end: int  # offset just after "}}"
    line: int  # line of "{{" (counted from the ``first_line`` given to the scan)


def scan_placeholders(text: str, *, first_line: int = 1) -> tuple[list[Placeholder], list[Problem]]:
    """The well-formed placeholders of ``text`` and the problems of the others, with their lines.

    A placeholder opens with ``{{`` and closes with ``}}`` on the same line; its path is dotted
    (``root.field``) and its root one of ``PLACEHOLDER_ROOTS``. A lone ``}}`` is left alone (code
    samples have them), and so is an escaped ``\\{{`` (a literal tag).
    """
    found: list[Placeholder] = []
    problems: list[Problem] = []
    for token in _tokens(text, first_line):
        if token.kind == "var_unclosed":
            problems.append((token.line, "unbalanced '{{': no closing '}}' on the same line"))
        elif token.kind == "var":
            expression, pipe, default = token.inner.partition("|")
            dotted = expression.strip()
            problem = path_problem(dotted, show(text[token.start : token.end]))
            if problem is not None:
                problems.append((token.line, problem))
            else:
                found.append(
                    Placeholder(dotted, default.strip() if pipe else None, token.start, token.end, token.line)
                )
    return found, problems


# --------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["literal", "var", "var_unclosed", "tag", "tag_unclosed"]
    start: int  # where the token's text starts (for a standalone tag: the start of its line)
    end: int  # just after the token (for a standalone tag: after its line's newline)
    inner: str  # between the delimiters
    line: int


def _tokens(text: str, first_line: int) -> Iterator[_Token]:
    """``\\{{``/``\\{%`` literals, ``{{ }}`` and ``{% %}`` (each closed on its own line), in order."""
    line, counted_to, pos = first_line, 0, 0
    while (match := _OPEN.search(text, pos)) is not None:
        start = match.start()
        line += text.count("\n", counted_to, start)  # incremental: one pass over the text
        counted_to = start
        opener = match.group(0)
        if opener.startswith("\\"):
            yield _Token("literal", start, match.end(), opener[1:], line)
            pos = match.end()
            continue
        closer = "}}" if opener == "{{" else "%}"
        line_end = text.find("\n", start)
        if line_end < 0:
            line_end = len(text)
        close = text.find(closer, start + 2, line_end)
        reopened = text.find("{{", start + 2, line_end) if opener == "{{" else -1
        if close < 0 or 0 <= reopened < close:
            yield _Token("var_unclosed" if opener == "{{" else "tag_unclosed", start, start + 2, "", line)
            pos = start + 2
            continue
        end = close + 2
        inner = text[start + 2 : close]
        if opener == "{%":
            line_start = text.rfind("\n", 0, start) + 1
            if not text[line_start:start].strip() and not text[end:line_end].strip():
                # A tag alone on its line takes the line with it, so blocks wrap whole Markdown lines.
                yield _Token("tag", line_start, min(line_end + 1, len(text)), inner, line)
                pos = min(line_end + 1, len(text))
                continue
            yield _Token("tag", start, end, inner, line)
        else:
            yield _Token("var", start, end, inner, line)
        pos = end


# --------------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Open:
    line: int
    branches: list[Branch]
    condition: Condition | None
    branch_line: int
    nodes: list[Node]
    has_else: bool = False


def parse_template(text: str, *, first_line: int = 1) -> tuple[tuple[Node, ...], list[Problem]]:
    """The tree of ``text`` and its problems (unbalanced or unknown tags, bad conditions, bad placeholders)."""
    if "{" not in text:
        return ((Text(text),) if text else ()), []
    _, problems = scan_placeholders(text, first_line=first_line)
    root: list[Node] = []
    stack: list[_Open] = []
    pos = 0

    def current() -> list[Node]:
        return stack[-1].nodes if stack else root

    def add_text(chunk: str) -> None:
        if not chunk:
            return
        nodes = current()
        if nodes and isinstance(nodes[-1], Text):
            nodes[-1] = Text(nodes[-1].text + chunk)
        else:
            nodes.append(Text(chunk))

    for token in _tokens(text, first_line):
        add_text(text[pos : token.start])
        pos = token.end
        source = text[token.start : token.end]
        if token.kind == "literal":
            add_text(token.inner)
        elif token.kind == "var":
            expression, pipe, default = token.inner.partition("|")
            current().append(Var(expression.strip(), default.strip() if pipe else None, token.line))
        elif token.kind in ("var_unclosed", "tag_unclosed"):
            if token.kind == "tag_unclosed":
                problems.append((token.line, "unbalanced '{%': no closing '%}' on the same line"))
            add_text(source)
        else:
            _tag(token, source, stack, root, problems, add_text)
    add_text(text[pos:])
    while stack:
        block = stack.pop()
        problems.append((block.line, "'{% if %}' is never closed: add '{% endif %}'"))
        _close(block, stack, root)
    problems.sort(key=lambda p: p[0])
    return tuple(root), problems


def _close(block: _Open, stack: list[_Open], root: list[Node]) -> None:
    block.branches.append(Branch(block.condition, tuple(block.nodes), block.branch_line))
    (stack[-1].nodes if stack else root).append(If(tuple(block.branches), block.line))


def _tag(
    token: _Token,
    source: str,
    stack: list[_Open],
    root: list[Node],
    problems: list[Problem],
    add_text: Callable[[str], None],
) -> None:
    word, _, rest = token.inner.strip().partition(" ")
    rest = rest.strip()
    shown = "{% " + token.inner.strip() + " %}"
    if word in ("if", "elif"):
        try:
            condition = parse_condition(rest)
        except ValueError as exc:
            problems.append((token.line, f"invalid condition in {shown!r}: {exc}"))
            condition = None
        if word == "if":
            if len(stack) >= MAX_DEPTH:
                problems.append((token.line, f"'{{% if %}}' blocks nested too deeply (at most {MAX_DEPTH})"))
                add_text(source)
                return
            never = Any_(())  # a broken condition shows nothing rather than everything
            stack.append(_Open(token.line, [], condition if condition is not None else never, token.line, []))
            return
        if not stack or stack[-1].has_else:
            why = "without '{% if %}'" if not stack else "after '{% else %}'"
            problems.append((token.line, f"'{{% elif %}}' {why}"))
            add_text(source)
            return
        block = stack[-1]
        block.branches.append(Branch(block.condition, tuple(block.nodes), block.branch_line))
        block.condition = condition if condition is not None else Any_(())
        block.nodes, block.branch_line = [], token.line
        return
    if word in ("else", "endif"):
        if rest:
            problems.append((token.line, f"'{{% {word} %}}' takes nothing after it, got {shown!r}"))
        if not stack:
            problems.append((token.line, f"'{{% {word} %}}' without '{{% if %}}'"))
            add_text(source)
            return
        block = stack[-1]
        if word == "endif":
            stack.pop()
            _close(block, stack, root)
            return
        if block.has_else:
            problems.append((token.line, "a second '{% else %}' in the same block"))
            add_text(source)
            return
        block.branches.append(Branch(block.condition, tuple(block.nodes), block.branch_line))
        block.condition, block.nodes, block.branch_line, block.has_else = None, [], token.line, True
        return
    problems.append((token.line, f"unknown tag {shown!r} (allowed: if, elif, else, endif)"))
    add_text(source)


def walk(
    nodes: Sequence[Node], guard: tuple[Condition, ...] = ()
) -> Iterator[tuple[Var | Branch, tuple[Condition, ...]]]:
    """Every placeholder and branch with the conditions that must hold for it to be shown (outermost first)."""
    for node in nodes:
        if isinstance(node, Var):
            yield node, guard
        elif isinstance(node, If):
            earlier: list[Condition] = []
            for branch in node.branches:
                inside: tuple[Condition, ...] = (*guard, *(Not(c) for c in earlier))
                if branch.condition is not None:
                    yield branch, inside
                    inside = (*inside, branch.condition)
                    earlier.append(branch.condition)
                yield from walk(branch.nodes, inside)


# --------------------------------------------------------------------------------------------------
# Rendering


def plain_value(value: str) -> str:
    """A buyer value as one line of plain text: whitespace runs -> one space, no control characters,
    at most :data:`MAX_VALUE_CHARS` characters."""
    flat = " ".join(_CONTROL.sub(" ", value).split())
    if len(flat) > MAX_VALUE_CHARS:
        flat = flat[: MAX_VALUE_CHARS - 1].rstrip() + "\u2026"
    return flat


def inert_code(value: str, *, span: bool = True) -> str:
    """A buyer value inside Markdown code, where it is literal as it is: in a code span a backtick could
    end the span, so backticks become the look-alike U+02CB; in a code block one line cannot end it."""
    flat = plain_value(value)
    return flat.replace("`", "\u02cb") if span else flat


def inert_markdown(value: str) -> str:
    """A buyer value as Markdown that shows exactly its text: no link, image, HTML, entity, heading,
    list, emphasis, code or table cell boundary can come out of it."""
    return _MD_PUNCTUATION.sub(r"\\\1", plain_value(value))


def render(
    nodes: Sequence[Node],
    buyer: Facts,
    values: Mapping[str, Mapping[str, str]],
    escape: Callable[[str], str],
) -> str:
    """The text of ``nodes`` for a buyer: ``buyer`` (:func:`template_facts`) decides the blocks,
    ``values`` (:func:`placeholder_values`) fill the placeholders, ``escape`` makes each value inert."""
    out: list[str] = []
    _render(nodes, buyer, values, escape, out)
    return "".join(out)


def _render(
    nodes: Sequence[Node],
    buyer: Facts,
    values: Mapping[str, Mapping[str, str]],
    escape: Callable[[str], str],
    out: list[str],
) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Var):
            root, _, key = node.path.partition(".")
            value = values.get(root, {}).get(key.strip(), "")
            if value.strip():
                if node.code and escape is inert_markdown:
                    out.append(inert_code(value, span=node.code == "span"))
                else:
                    out.append(escape(value))
            elif node.default is not None:
                out.append(node.default)  # the creator's own text: Markdown allowed
        else:
            for branch in node.branches:
                if branch.condition is None or holds(branch.condition, buyer):
                    _render(branch.nodes, buyer, values, escape, out)
                    break


def make_renderer(inputs: BuyerInputs, *, markdown: bool) -> Callable[[str], str]:
    """A function filling texts for these inputs: ``markdown`` for Markdown (values escaped), else plain
    text fields such as titles (values flattened, never escaped: renderers escape plain text)."""
    values = placeholder_values(inputs)
    buyer = template_facts(inputs)
    escape = inert_markdown if markdown else plain_value
    parsed = _markdown_template if markdown else _plain_template

    def fill(text: str) -> str:
        if "{" not in text:
            return text
        return render(parsed(text), buyer, values, escape)

    return fill


@lru_cache(maxsize=4096)
def _plain_template(text: str) -> tuple[Node, ...]:
    return parse_template(text)[0]


_MD: Final = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_CODE_TOKENS: Final = ("code_inline", "code_block", "fence")


@lru_cache(maxsize=4096)
def _markdown_template(text: str) -> tuple[Node, ...]:
    """The tree with each placeholder that sits in Markdown code marked ``code``: the text is parsed
    once as Markdown with a marker in place of every placeholder (all branches shown)."""
    nodes = parse_template(text)[0]
    variables: list[Var] = []
    markers: list[str] = []

    def flatten(items: Sequence[Node]) -> None:
        for node in items:
            if isinstance(node, Text):
                markers.append(node.text)
            elif isinstance(node, Var):
                markers.append(f"OLVAR{len(variables)}Z")
                variables.append(node)
            else:
                for branch in node.branches:
                    flatten(branch.nodes)

    flatten(nodes)
    if not variables:
        return nodes
    coded: dict[int, Literal["span", "block"]] = {}
    for token in _MD.parse("".join(markers)):
        for part in [token, *(token.children or [])]:
            if part.type in _CODE_TOKENS:
                for n in re.findall(r"OLVAR(\d+)Z", part.content):
                    coded[id(variables[int(n)])] = "span" if part.type == "code_inline" else "block"
    if not coded:
        return nodes

    def mark(items: Sequence[Node]) -> tuple[Node, ...]:
        out: list[Node] = []
        for node in items:
            if isinstance(node, Var):
                code = coded.get(id(node))
                out.append(dataclasses.replace(node, code=code) if code else node)
            elif isinstance(node, If):
                branches = tuple(dataclasses.replace(b, nodes=mark(b.nodes)) for b in node.branches)
                out.append(dataclasses.replace(node, branches=branches))
            else:
                out.append(node)
        return tuple(out)

    return mark(nodes)
