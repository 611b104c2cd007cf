"""The template sandbox: what a creator (or whoever holds their key) writes cannot reach Python, exhaust
memory or time, or inject HTML."""

from __future__ import annotations

import pytest

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
