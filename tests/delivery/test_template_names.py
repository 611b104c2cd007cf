"""The names a template reads decide which buyer facts a send loads (the persona only when it is named)."""

from __future__ import annotations

from offerloop.delivery import templates


def test_the_names_a_template_reads() -> None:
    assert templates.names("Hi {{ buyer.traits.name }}, {{ link('https://x.example') }}") == {"buyer", "link"}
    assert templates.names("{% if persona == 'pro' %}{{ features.orders }}{% endif %}") == {
        "persona",
        "features",
    }
    assert templates.names("{% set persona = 'x' %}{{ persona }}") == frozenset()  # assigned, not read
    assert templates.names("plain text") == frozenset()
    assert templates.names("{{ broken") == frozenset()  # not a template: rendering reports it, not this
