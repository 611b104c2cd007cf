"""The template sandbox: what a creator (or whoever holds their key) writes cannot reach Python, exhaust
memory or time, or inject HTML."""

from __future__ import annotations

import tracemalloc

import pytest
from markupsafe import Markup

from offerloop.delivery.templates import RenderError, render, syntax_problem


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ 'x' * 1000000000 }}",
        "{{ [1] * 1000000000 }}",
        "{{ 2 ** 100000000 }}",
        "{% for i in range(1000000000) %}x{% endfor %}",
        "{{ lipsum(1000) }}",
    ],
)
def test_hostile_templates_fail_to_render_and_nothing_else(source: str) -> None:
    with pytest.raises(RenderError):
        render(source, {"buyer": {"id": "b"}})


def test_private_attributes_render_as_nothing() -> None:
    assert render("[{{ buyer.__class__ }}][{{ buyer.__init__ }}]", {"buyer": {"id": "b"}}) == "[][]"


def test_html_is_escaped_text_is_not_and_a_missing_value_is_empty() -> None:
    values = {"buyer": {"traits": {"name": "<script>alert(1)</script>"}}}
    assert (
        render("Hi {{ buyer.traits.name }}", values, html=True) == "Hi &lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert render("Hi {{ buyer.traits.name }}", values) == "Hi <script>alert(1)</script>"
    assert render("Hi {{ buyer.traits.nickname }}!", values) == "Hi !"
    assert render("{{ 'ab' * 3 }} {{ 2 ** 10 }}", {}) == "ababab 1024"


def test_syntax_errors_name_their_line() -> None:
    assert (
        syntax_problem("line one\n{% if %}")
        == "template syntax error at line 2: Expected an expression, got 'end of statement block'"
    )
    assert syntax_problem("{{ ok }}") is None


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        # loops that print nothing: 9,000,000 steps, stopped at the budget
        ("{% for a in 'x' * 3000 %}{% for b in 'x' * 3000 %}{% endfor %}{% endfor %}",
         "refused by the template sandbox: more than 100000 loop steps"),
        ("{% for a in 'x' * 500000 %}{% for b in 'x' * 500000 %}{% endfor %}{% endfor %}",
         "refused by the template sandbox: more than 100000 loop steps"),
        # output checked as it is produced: the second 400,000-character piece is refused, not the 40 MB total
        ("{% for a in 'x' * 100 %}{{ 'y' * 400000 }}{% endfor %}", "rendered more than 500000 characters"),
        ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "template error: recursion too deep"),
        ("{% for a in 'ab' recursive %}{{ loop(['c', 'd'] * 2) }}{% endfor %}",
         "template error: recursion too deep"),
    ],
)  # fmt: skip
def test_renders_are_bounded_while_they_run(source: str, reason: str) -> None:
    assert syntax_problem(source) is None  # valid templates: only rendering them is refused
    with pytest.raises(RenderError) as refused:
        render(source, {})
    assert str(refused.value) == reason


def test_loops_within_the_budget_render_and_the_budget_is_per_render() -> None:
    source = "{% for a in 'x' * 300 %}{% for b in 'x' * 300 %}{% endfor %}{% endfor %}{{ 'done' }}"
    assert render(source, {}) == "done"  # 90,300 steps
    assert render(source, {}) == "done"  # a second render starts from zero
    looped = "{% for a in items %}{{ loop.index }}:{{ a }} {% endfor %}"
    assert render(looped, {"items": ["p", "q"]}) == "1:p 2:q "


def test_a_template_nested_too_deeply_is_a_syntax_problem_not_a_crash() -> None:
    deep = "{{ " + "(" * 300 + "1" + ")" * 300 + " }}"
    assert syntax_problem(deep) == "nests too deeply (parentheses, brackets or blocks)"
    assert syntax_problem("{{ " + "(" * 20 + "1" + ")" * 20 + " }}") is None


def test_a_render_past_its_deadline_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    from offerloop.delivery import templates

    monkeypatch.setattr(templates, "MAX_RENDER_S", 0.0)  # the deadline is the render's start
    with pytest.raises(RenderError) as quiet:
        render("{% for a in 'x' * 5000 %}{% endfor %}", {})  # looked at every 1,000 steps
    assert str(quiet.value) == "refused by the template sandbox: took more than 0.0 s"
    with pytest.raises(RenderError) as loud:
        render("{{ 'a' }}{{ 'b' }}", {})  # looked at as each piece of output comes
    assert str(loud.value) == "took more than 0.0 s"


# Each of these, before it was bounded, made one render allocate gigabytes or run for minutes (the adversarial
# pass over HTTP: a journey's template rendered by the server's worker). Each is refused before the value is
# built: the render's peak allocation stays far below the value it was asked for (hundreds of MB or more).
# Memory is measured rather than time, so a loaded machine cannot fail the test.
_GROWING = {
    "power chain": "{% set a = 10**64 %}{% set b = a**64 %}{% set c = b**64 %}{{ c > 0 }}",
    "product chain": "{% set a = 10**64 %}{% set b = a*a %}{% set c = b*b %}{% set d = c*c %}{% set e = d*d %}"
    "{% set f = e*e %}{% set g = f*f %}{% set h = g*g %}{{ h > 0 }}",
    "~ doubling": "{% set a = 'x'*400000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}",
    "+ doubling": "{% set a = 'x'*400000 %}{% set b = a + a %}{% set c = b + b %}{{ c|length }}",
    "center filter": "{{ 'x'|center(1000000000) }}",
    "ljust method": "{{ 'x'.ljust(1000000000) }}",
    "printf width": "{{ '%1000000000s' % 'x' }}",
    "printf star": "{{ '%*s' % (1000000000, 'x') }}",
    "printf mapping": "{{ '%(a)1000000000s' % {'a': 1} }}",
    "format filter": "{{ '%1000000000s'|format('x') }}",
    "str.format width": "{{ '{:>1000000000}'.format('x') }}",
    "str.format nested": "{{ '{0:{1}}'.format('x', 1000000000) }}",
    "indent filter": "{{ ('x\n'*200000)|indent(1000) }}",
    "replace filter": "{{ ('x'*400000)|replace('x', 'y'*1000) }}",
    "replace method": "{{ ('x'*400000).replace('x', 'y'*1000) }}",
    "join filter": "{{ (('x'*400000)|list)|join('y'*1000) }}",
    "join method": "{{ ('y'*1000).join(('x'*400000)|list) }}",
    "wordwrap filter": "{{ ('x '*200000)|wordwrap(1, wrapstring='y'*1000) }}",
    "tojson indent": "{{ {'a': [1, 2]}|tojson(indent=100000000) }}",
    "expandtabs": "{{ ('\t'*400000).expandtabs(1000) }}",
    "batch fill": "{{ 'x'|batch(1000000000, 'y')|list|length }}",
    "slice count": "{{ 'x'|slice(1000000000)|list|length }}",
}


@pytest.mark.parametrize("source", list(_GROWING.values()), ids=list(_GROWING))
def test_values_that_would_grow_huge_are_refused_before_they_are_built(source: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(RenderError, match="refused by the template sandbox"):
            render(source, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024


def test_the_bounds_leave_ordinary_templates_alone() -> None:
    source = (
        "{{ 'a' ~ 1 ~ 'b' }}|{{ '%.2f'|format(12.5) }}|{{ '%05d' % 42 }}|{{ '{:>4}'.format('x') }}|"
        "{{ 'x'|center(5) }}|{{ [1, 2, 3]|join(', ') }}|{{ ', '.join(['a', 'b']) }}|{{ 'abc'.replace('b', 'B') }}|"
        "{{ 2**10 }}|{{ 10**64 * 10**64 > 0 }}|{{ [1, 2, 3]|batch(2, 0)|list }}|{{ '{:,.2f}'.format(1234.5) }}"
    )
    assert render(source, {}) == (
        "a1b|12.50|00042|   x|  x  |1, 2, 3|a, b|aBc|1024|True|[[1, 2], [3, 0]]|1,234.50"
    )
    # ~ keeps Jinja's escaping: a Markup part is not escaped twice, a plain one is escaped once.
    assert render("<p>{{ '<b>' ~ x ~ y }}</p>", {"x": Markup("<i>ok</i>"), "y": "&"}, html=True) == (
        "<p>&lt;b&gt;<i>ok</i>&amp;</p>"
    )
