"""Message templates: Jinja2 in a sandbox (no attribute tricks, no imports, bounded output), HTML autoescaped.

A template sees ``buyer`` (id, email, traits), ``features``, ``persona``, ``event`` (the trigger's name and
properties), each ``decide`` step's result under its ``as`` name, and two functions: ``link(url)`` (a signed
redirect that records the click and adds the journey's UTM tags) and ``unsubscribe_url``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, meta
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS: Final = 200_000
MAX_OUTPUT_CHARS: Final = 500_000


class RenderError(ValueError):
    """A template failed at render time (an unknown variable, a sandbox refusal, output too large)."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with ``*`` and ``**`` bounded: ``{{ 'x' * 10**9 }}`` would otherwise build a
    gigabyte in the worker that renders it."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_OUTPUT_CHARS
                ):
                    raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _environment(autoescape: bool, undefined: type[Undefined]) -> ImmutableSandboxedEnvironment:
    # optimized=False: no constant folding while compiling, which would compute `[1] * 10**9` right there.
    env = _Sandbox(autoescape=autoescape, undefined=undefined, keep_trailing_newline=True, optimized=False)
    env.globals.clear()  # no range() loops to exhaust memory, no cycler/joiner/namespace helpers
    return env


_HTML: Final = _environment(True, Undefined)
_TEXT: Final = _environment(False, Undefined)
_CHECK: Final = _environment(False, StrictUndefined)


def syntax_problem(source: str) -> str | None:
    """Why ``source`` is not a template (with its line), or None."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return f"is {len(source)} characters, more than {MAX_TEMPLATE_CHARS}"
    try:
        _CHECK.parse(source)
    except TemplateSyntaxError as exc:
        return f"template syntax error at line {exc.lineno}: {exc.message}"
    return None


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """``source`` rendered with ``context``; a missing variable renders empty (as in Jinja), anything the
    sandbox refuses raises :class:`RenderError`."""
    try:
        out = _compiled(source, html).render(dict(context))
    except SecurityError as exc:
        raise RenderError(f"refused by the template sandbox: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"template error: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"template error: {type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT_CHARS:
        raise RenderError(f"rendered {len(out)} characters, more than {MAX_OUTPUT_CHARS}")
    return out


@functools.lru_cache(maxsize=512)
def names(source: str) -> frozenset[str]:
    """The top-level names ``source`` reads (so a send loads only the facts its templates use)."""
    try:
        return frozenset(meta.find_undeclared_variables(_TEXT.parse(source)))
    except TemplateSyntaxError:
        return frozenset()


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    """A journey's templates compile once per process (a send renders them for every buyer)."""
    return (_HTML if html else _TEXT).from_string(source)
