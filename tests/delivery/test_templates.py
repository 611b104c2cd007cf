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
