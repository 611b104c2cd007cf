"""Message templates: Jinja2 in a sandbox (no attribute tricks, no imports, bounded output), HTML autoescaped.

A template sees ``buyer`` (id, email, traits), ``features``, ``persona``, ``event`` (the trigger's name and
properties), each ``decide`` step's result under its ``as`` name, and two functions: ``link(url)`` (a signed
redirect that records the click and adds the journey's UTM tags) and ``unsubscribe_url``.
"""

from __future__ import annotations

import functools
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

MAX_TEMPLATE_CHARS: Final = 200_000
MAX_OUTPUT_CHARS: Final = 500_000
MAX_LOOP_STEPS: Final = 100_000  # every loop of one render together (nested loops multiply)
MAX_RENDER_S: Final = 2.0  # of one render, checked as loops step and as output is produced
_BUDGET_NAME: Final = "_offerloop_loop_budget"
_CONCAT_NAME: Final = "_offerloop_concat"


class RenderError(ValueError):
    """A template failed at render time (an unknown variable, a sandbox refusal, output too large)."""


MAX_INT_BITS: Final = 8192  # about 2,500 digits: enough for any amount, far from a slow multiplication
MAX_WIDTH: Final = 1000  # of a padding, an indent or a format field


def _bounded(size: int, what: str) -> None:
    """Refuse, before building it, a value larger than a render may produce (a worker must not be made to
    allocate gigabytes: one such render would take the whole server down)."""
    if size > MAX_OUTPUT_CHARS:
        raise SecurityError(f"{what} would be larger than {MAX_OUTPUT_CHARS} characters")


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_WIDTH:
        raise SecurityError(f"{what} wider than {MAX_WIDTH}")


_PRINTF_WIDTH: Final = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _printf(pattern: Any) -> None:
    """A %-format (``'%9999999s' % x``, ``|format``) whose widths stay small."""
    if isinstance(pattern, str):
        for found in _PRINTF_WIDTH.finditer(pattern):
            for number in found.groups():
                if number == "*" or (number is not None and int(number) > MAX_WIDTH):
                    raise SecurityError(f"a format width or precision over {MAX_WIDTH}")


def _braces(pattern: Any) -> None:
    """A ``str.format`` pattern whose field specs stay small (``'{:>999999999}'``, or a width given as a
    nested field ``'{0:{1}}'``, which is refused)."""
    if not isinstance(pattern, str):
        return
    try:
        fields = list(string.Formatter().parse(pattern))
    except ValueError:
        return  # str.format refuses it the same way
    for _, _, spec, _ in fields:
        if spec and ("{" in spec or any(int(n) > MAX_WIDTH for n in re.findall(r"\d+", spec))):
            raise SecurityError(f"a format width or precision over {MAX_WIDTH} (or given as a field)")


def _length(value: Any) -> int:
    """The characters ``value`` takes printed, counted before it is printed: a list's items and their own items
    (``['x' * 100000] * 1000`` is 1000 items but 100 MB printed), given up once past the output bound."""
    if isinstance(value, str):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= MAX_OUTPUT_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 4  # quotes and a separator
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += len(str(item))
    return total


def _joined(items: Any, separator: Any) -> list[Any]:
    """``items`` as a list, refused if joining them with ``separator`` would be too large."""
    listed = list(items)
    _bounded(sum(_length(i) for i in listed) + max(len(listed) - 1, 0) * _length(separator), "a join")
    return listed


def _replaced(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        times = text.count(old) if old else len(text) + 1
        _bounded(len(text) + times * len(new), "a replace")


def _formatted(pattern: str, args: tuple[Any, ...]) -> None:
    """``pattern.format(*args)``: small field specs, and what it prints bounded."""
    _braces(pattern)
    _bounded(len(pattern) + _length(list(args)), "a format")


def _percent(pattern: Any, args: list[Any]) -> None:
    """``pattern|format(*args)``: small widths, and what it prints bounded."""
    _printf(pattern)
    _bounded(_length(pattern) + _length(args), "a format")


# str methods a template may call that build more than they are given, and how each is bounded.
_METHODS: Final[dict[str, Callable[[str, tuple[Any, ...]], None]]] = {
    "center": lambda s, a: _width(a[0] if a else 0, "a padding"),
    "ljust": lambda s, a: _width(a[0] if a else 0, "a padding"),
    "rjust": lambda s, a: _width(a[0] if a else 0, "a padding"),
    "zfill": lambda s, a: _width(a[0] if a else 0, "a padding"),
    "expandtabs": lambda s, a: _bounded(
        len(s) + s.count("\t") * (a[0] if a and isinstance(a[0], int) else 8), "expandtabs"
    ),
    "replace": lambda s, a: _replaced(s, *(a[:2] if len(a) >= 2 else ("", ""))),
    "join": lambda s, a: None,  # bounded in ``call``: its argument is listed first
    "format": lambda s, a: _formatted(s, a),
    "format_map": lambda s, a: _formatted(s, a),
}


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every way of building a large value bounded before it is built:
    ``{{ 'x' * 10**9 }}``, ``a ~ a`` doubled in a chain of ``set``, ``(10**64)**64**…``, ``'x'|center(10**9)``,
    ``'x'.ljust(10**9)``, ``'%999999999s' % x``. Without these, one render takes gigabytes or minutes of CPU."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        numbers = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "**" and numbers and right > 0 and abs(left).bit_length() * right > MAX_INT_BITS:
            raise SecurityError(f"a number over {MAX_INT_BITS} bits")
        if operator == "*":
            if numbers and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise SecurityError(f"a number over {MAX_INT_BITS} bits")
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and _length(seq) * times > MAX_OUTPUT_CHARS
                ):
                    raise SecurityError(
                        f"repetition too large: it would be larger than {MAX_OUTPUT_CHARS} characters"
                    )
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _bounded(_length(left) + _length(right), "a concatenation")
        if operator == "%" and isinstance(left, str):
            _printf(left)
            _bounded(len(left) + _length(right), "a %-format")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format: look through it
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(owner, str) and name in _METHODS:
            _METHODS[name](owner, args)
            if name == "join" and args:
                args = (_joined(args[0], owner), *args[1:])
        return super().call(__context, __obj, *args, **kwargs)


def _concat(html: bool) -> Callable[[Iterable[Any]], Any]:
    """``a ~ b``, refused before it is built when too large (Jinja's own join otherwise)."""
    join = markup_join if html else str_join

    def concat(parts: Iterable[Any]) -> Any:  # Markup when autoescaping: it is not escaped twice
        listed = list(parts)
        _bounded(sum(_length(p) for p in listed), "a ~ concatenation")
        return join(listed)

    return concat


def _checked_filter(name: str, check: Callable[..., None]) -> Callable[..., Any]:
    """Jinja's filter ``name``, ``check(value, *args, **kwargs)`` run first (its context argument skipped)."""
    original = DEFAULT_FILTERS[name]
    skip = 0 if _PassArg.from_obj(original) is None else 1

    @functools.wraps(original)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(*args[skip:], **kwargs)
        return original(*args, **kwargs)

    return checked


def _indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    step = width if isinstance(width, int) else len(str(width))
    _width(step, "an indent")
    _bounded(_length(value) + (str(value).count("\n") + 1) * step, "an indent")


def _wordwrap(value: Any, width: int = 79, break_long_words: bool = True, wrapstring: Any = None,
              break_on_hyphens: bool = True) -> None:  # fmt: skip
    lines = _length(value) // max(width if isinstance(width, int) else 1, 1) + 1
    _bounded(_length(value) + lines * _length(wrapstring or "\n"), "a wordwrap")


def _join(value: Any, d: Any = "", attribute: Any = None) -> None:
    if isinstance(value, str | list | tuple):
        _bounded(sum(_length(i) for i in value) + max(len(value) - 1, 0) * _length(d), "a join")


def _tojson(value: Any, indent: Any = None) -> None:
    _width(indent, "a JSON indent")
    if isinstance(indent, int) and indent > 16:
        raise SecurityError("a JSON indent over 16")
    _printed(value)


def _printed(value: Any, *args: Any, **kwargs: Any) -> None:
    """A value about to be printed (``{{ }}``, ``|string``, ``|pprint``…), refused before it is built if too large."""
    _bounded(_length(value), "a printed value")


def _finalized(value: Any) -> Any:
    _printed(value)
    return value


_FILTERS: Final[dict[str, Callable[..., None]]] = {
    "center": lambda value, width=80: _width(width, "a padding"),
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": lambda s, old, new, count=None: _replaced(str(s), str(old), str(new)),
    "join": _join,
    "format": lambda value, *args, **kwargs: _percent(value, [*args, *kwargs.values()]),
    "tojson": _tojson,
    **{name: _printed for name in ("string", "pprint", "e", "escape", "forceescape", "urlencode")},
    # a short last batch is filled up to the size; slices are made one by one
    "batch": lambda value, linecount, fill_with=None: _bounded(
        linecount if isinstance(linecount, int) else 0, "a batch"
    ),
    "slice": lambda value, slices, fill_with=None: _bounded(
        slices if isinstance(slices, int) else 0, "a slice"
    ),
}


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
    env = _Sandbox(autoescape=autoescape, undefined=undefined, keep_trailing_newline=True, optimized=False,
                   finalize=_finalized)  # fmt: skip
    env.globals.clear()  # no range() loops to exhaust memory, no cycler/joiner/namespace helpers
    env.filters.update({name: _checked_filter(name, check) for name, check in _FILTERS.items()})
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
    tree = _BoundedConcat().visit(env.parse(source))
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.Name(_BUDGET_NAME, "load", lineno=loop.lineno),
            [loop.iter],
            [],
            None,
            None,
            lineno=loop.lineno,
        )
    return env.from_string(tree, globals={_BUDGET_NAME: _counted, _CONCAT_NAME: _concat(html)})


class _BoundedConcat(NodeTransformer):
    """Every ``a ~ b`` becomes a call of the render's bounded concatenation."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        parts = [self.visit(part) for part in node.nodes]
        return nodes.Call(
            nodes.Name(_CONCAT_NAME, "load", lineno=node.lineno),
            [nodes.List(parts, lineno=node.lineno)],
            [],
            None,
            None,
            lineno=node.lineno,
        )
