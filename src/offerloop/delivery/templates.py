"""Message templates: Jinja2 in a sandbox (no attribute tricks, no imports, bounded output), HTML autoescaped.

A template sees ``buyer`` (id, email, traits), ``features``, ``persona``, ``event`` (the trigger's name and
properties), each ``decide`` step's result under its ``as`` name, and two functions: ``link(url)`` (a signed
redirect that records the click and adds the journey's UTM tags) and ``unsubscribe_url``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS: Final = 200_000
MAX_OUTPUT_CHARS: Final = 500_000
MAX_LOOP_STEPS: Final = 100_000  # every loop of one render together (nested loops multiply)
MAX_RENDER_S: Final = 2.0  # of one render, checked as loops step and as output is produced
_BUDGET_NAME: Final = "_offerloop_loop_budget"


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


class _Budget(threading.local):
    steps = 0
    deadline = 0.0


_budget = _Budget()


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every ``{% for %}`` of a template iterates (wrapped in at compile time): the render's loop steps
    counted against ``MAX_LOOP_STEPS`` and its deadline, so loops that print nothing are bounded too."""
    for item in iterable:
        _budget.steps += 1
        if _budget.steps > MAX_LOOP_STEPS:
            raise SecurityError(f"more than {MAX_LOOP_STEPS} loop steps")
        if not _budget.steps % 1000 and time.monotonic() > _budget.deadline:
            raise SecurityError(f"took more than {MAX_RENDER_S} s")
        yield item


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
    except RecursionError:
        return "nests too deeply (parentheses, brackets or blocks)"
    return None


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """``source`` rendered with ``context``; a missing variable renders empty (as in Jinja), anything the
    sandbox refuses raises :class:`RenderError`, and so does a render over its bounds: output, loop steps,
    time (checked while it runs, not after), recursion."""
    _budget.steps, _budget.deadline = 0, time.monotonic() + MAX_RENDER_S
    parts: list[str] = []
    size = 0
    try:
        for part in _compiled(source, html).generate(dict(context)):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise RenderError(f"rendered more than {MAX_OUTPUT_CHARS} characters")
            if time.monotonic() > _budget.deadline:
                raise RenderError(f"took more than {MAX_RENDER_S} s")
            parts.append(part)
    except RenderError:
        raise  # over a bound checked above
    except SecurityError as exc:
        raise RenderError(f"refused by the template sandbox: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"template error: {exc}") from None
    except RecursionError:
        raise RenderError("template error: recursion too deep") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"template error: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


@functools.lru_cache(maxsize=512)
def names(source: str) -> frozenset[str]:
    """The top-level names ``source`` reads (so a send loads only the facts its templates use)."""
    try:
        return frozenset(meta.find_undeclared_variables(_TEXT.parse(source)))
    except (TemplateSyntaxError, RecursionError):
        return frozenset()


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    """A journey's templates compile once per process (a send renders them for every buyer), every loop's
    iterable wrapped in the render's step budget."""
    env = _HTML if html else _TEXT
    tree = env.parse(source)
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.Name(_BUDGET_NAME, "load", lineno=loop.lineno),
            [loop.iter],
            [],
            None,
            None,
            lineno=loop.lineno,
        )
    return env.from_string(tree, globals={_BUDGET_NAME: _counted})
