"""The journey/message template sandbox bounds every value before it is built, by its length. A list's length is
not its printed size: ``['x'*100000]*1000`` is 1000 items but prints as 100 MB, and printing it (``{{ }}``,
``|string``, ``|tojson``, ``|pprint``, ``~``) built that string before the output bound was checked (``|pprint``
also ran past the 2 s deadline). Nested once more (``[[...]*1000]*1000``) one render asks for gigabytes, which a
creator's journey runs in the server's own worker threads."""

from __future__ import annotations

import pytest

from offerloop.delivery.templates import RenderError, render

BIG = "['x' * 100000] * 1000"


@pytest.mark.parametrize(
    "source",
    [
        f"{{{{ {BIG} }}}}",
        f"{{{{ ({BIG})|string|length }}}}",
        f"{{{{ ({BIG})|tojson|length }}}}",
        f"{{{{ ({BIG})|pprint|length }}}}",
        f"{{{{ ('' ~ ({BIG}))|length }}}}",
        f"{{{{ ({{'a': {BIG}}} ~ '')|length }}}}",
        f"{{{{ (({BIG}) + ({BIG}))|length }}}}",
        f"{{{{ ('%s' % ({BIG},))|length }}}}",
        f"{{{{ ('%s'|format({BIG}))|length }}}}",
        f"{{{{ ('{{}}'.format({BIG}))|length }}}}",
        "{% set big = ['x' * 400000] %}{{ [big, big, big, big]|length }}{{ [big, big, big, big] }}",
    ],
)
def test_found_a_list_printing_larger_than_the_output_bound_is_refused_before_it_is_built(
    source: str,
) -> None:
    with pytest.raises(RenderError, match="larger than 500000 characters"):
        render(source, {})


def test_found_lists_within_the_bound_still_render() -> None:
    assert render("{{ (['ab'] * 3)|join(',') }} {{ ['x' * 10] * 2 }} {{ ([1, 2] + [3])|length }}", {}) == (
        "ab,ab,ab ['xxxxxxxxxx', 'xxxxxxxxxx'] 3"
    )
