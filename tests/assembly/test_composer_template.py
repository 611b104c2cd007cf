"""Issue 9 item 4: the atom language — {% if %} blocks on answers, scores, persona and buyer values,
literal \\{{ tags, their problems with lines, the linter's checks, and the demo corpus that uses them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from offerloop.assembly.composer import compose
from offerloop.assembly.inputs import BuyerInputs, fill
from offerloop.assembly.lint import lint_atom, lint_policy
from offerloop.assembly.policy import parse_policy
from offerloop.assembly.template import inert_markdown, parse_template
from offerloop.content.atoms import load_corpus, parse_atom
from offerloop.content.exceptions import ContentError
from offerloop.content.quizzes import parse_quiz

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
TODAY = date(2026, 12, 5)


def buyer(**kwargs: Any) -> BuyerInputs:
    return BuyerInputs(today=TODAY, **kwargs)


MAYA = buyer(
    name="Maya Lind",
    persona="deal_seeker",
    persona_confidence=0.7,
    answers={"goal": "ship it", "stage": "idea", "channels": ["email", "social"]},
    scores={"readiness": 3.0},
    level=2,
)
SKIPPED = buyer(name="Ben Ode", answers={"stage": "selling", "goal": "  "}, scores={"readiness": 1.0})


@pytest.mark.parametrize(
    ("condition", "maya", "skipped"),
    [
        ("answers.goal", True, False),
        ("not answers.goal", False, True),
        ('answers.stage == "idea"', True, False),
        ('answers.stage != "idea"', False, True),
        ('answers.stage in ["idea", "building"]', True, False),
        ('answers.stage not in ["idea", "building"]', False, True),
        ('answers.channels == "social"', True, False),
        ("scores.readiness >= 3", True, False),
        ("scores.readiness < 2", False, True),
        ("scores.readiness == 3", True, False),
        ("scores.readiness != 3", False, True),
        ("scores.missing <= 0", True, True),
        ('persona.name == "deal_seeker"', True, False),
        ('persona.name in ["x", "deal_seeker"]', True, False),
        ("persona.name", True, False),
        ("buyer.first_name", True, True),
        ('buyer.first_name == "Maya"', True, False),
        ("buyer.level >= 2", True, False),
        ("persona.confidence > 0.5", True, False),
        ('answers.goal and scores.readiness >= 3 and not answers.stage == "selling"', True, False),
        ('answers.goal or answers.stage == "selling"', True, True),
        ("not (answers.goal or scores.readiness > 2)", False, True),
        ("not not answers.goal", True, False),
        ("buyer.level == 2", True, False),
        ('buyer.level == "2"', False, False),  # types never mix: the level is a number
        ("buyer.level", True, False),  # a buyer without a level has none
        ('date.today == "2026-12-05"', True, True),
        ('date.today >= "2026-12-06"', False, False),  # ISO dates compare as text
        ("date.year >= 2026", True, True),
        ("buyer.first_name > 1", False, False),  # a text is not ordered against a number
        ("persona.confidence", True, False),
        ('buyer.name in ["Maya Lind", "x"]', True, False),
    ],
)
def test_conditions(condition: str, maya: bool, skipped: bool) -> None:
    text = "{% if " + condition + " %}yes{% else %}no{% endif %}"
    assert parse_template(text)[1] == []
    assert fill(text, MAYA) == ("yes" if maya else "no")
    assert fill(text, SKIPPED) == ("yes" if skipped else "no")


def test_blocks_elif_nesting_and_whole_lines() -> None:
    text = (
        "Intro\n"
        "{% if answers.goal %}\n"
        "You said:\n"
        "\n"
        "> {{ answers.goal }}\n"
        "  {% if scores.readiness >= 3 %}\n"
        "Ready.\n"
        "  {% endif %}\n"
        '{% elif answers.stage == "selling" %}\n'
        "You are selling.\n"
        "{% else %}\n"
        "Write your goal down.\n"
        "{% endif %}\n"
        "End"
    )
    assert parse_template(text)[1] == []
    assert fill(text, MAYA, markdown=True) == "Intro\nYou said:\n\n> ship it\nReady.\nEnd"
    assert fill(text, SKIPPED, markdown=True) == "Intro\nYou are selling.\nEnd"
    assert fill(text, buyer(), markdown=True) == "Intro\nWrite your goal down.\nEnd"
    # inline blocks keep the line
    assert fill("Hi{% if buyer.first_name %} {{ buyer.first_name }}{% endif %}!", MAYA) == "Hi Maya!"
    assert fill("Hi{% if buyer.first_name %} {{ buyer.first_name }}{% endif %}!", buyer()) == "Hi!"


def test_literal_tags_are_never_filled() -> None:
    text = "Hi \\{{ first_name }}, from {{ buyer.first_name }}. Use \\{% if %} in \\{{ buyer.name }}."
    assert parse_template(text)[1] == []
    expected = "Hi {{ first_name }}, from Maya. Use {% if %} in {{ buyer.name }}."
    assert fill(text, MAYA) == expected
    assert fill(text, MAYA, markdown=True) == expected


def test_buyer_values_are_escaped_in_markdown_and_flattened_in_plain_text() -> None:
    evil = buyer(name="Eve <b>", answers={"goal": "[x](https://evil.example)\n# h\t\x00{{ buyer.name }}"})
    assert fill("{{ answers.goal }}", evil) == "[x](https://evil.example) # h {{ buyer.name }}"
    assert fill("{{ answers.goal }}", evil, markdown=True) == (
        "\\[x\\]\\(https\\:\\/\\/evil\\.example\\) \\# h \\{\\{ buyer\\.name \\}\\}"
    )
    # the creator's default is the creator's Markdown: not escaped
    assert fill("{{ answers.none | **bold** }}", evil, markdown=True) == "**bold**"
    assert inert_markdown("a" * 1500) == "a" * 999 + "\u2026"


def test_atom_problems_name_their_lines() -> None:
    text = (
        "---\nid: x\ntitle: X\nkind: lesson\n---\n"
        "{% if answers.goal %}\n"  # 6
        "a\n"
        "{% else %}\n"  # 8
        "{% else %}\n"  # 9
        "{% endif %}\n"
        "{% endif %}\n"  # 11
        "{% if answers.goal > 3 %}x{% endif %}\n"  # 12
        "{% if nobody.knows %}x{% endif %} {% for x in y %}\n"  # 13
        "{% if buyer.email %}x{% endif %} {% if scores.readiness %}x{% endif %}\n"  # 14
        "{% if answers.goal\n"  # 15
        "{% if answers.stage %}\n"  # 16
    )
    with pytest.raises(ContentError) as caught:
        parse_atom(text, path="x.md")
    assert caught.value.problems == [
        "x.md:9: a second '{% else %}' in the same block",
        "x.md:11: '{% endif %}' without '{% if %}'",
        "x.md:12: invalid condition in '{% if answers.goal > 3 %}': "
        "compare answers with ==, != or in (use scores.<dimension> > ...)",
        "x.md:13: invalid condition in '{% if nobody.knows %}': unknown variable root 'nobody' in "
        "'nobody.knows' (allowed: buyer, answers, scores, date, persona)",
        "x.md:13: unknown tag '{% for x in y %}' (allowed: if, elif, else, endif)",
        "x.md:14: invalid condition in '{% if buyer.email %}': unknown field 'email' of buyer in "
        "'buyer.email' (allowed: name, first_name, level)",
        "x.md:14: invalid condition in '{% if scores.readiness %}': a score needs a comparison, "
        "e.g. scores.readiness >= 3",
        "x.md:15: unbalanced '{%': no closing '%}' on the same line",
        "x.md:16: '{% if %}' is never closed: add '{% endif %}'",
    ]


QUIZ = parse_quiz(
    """
id: intake
title: Q
questions:
  - id: stage
    prompt: Stage?
    type: single
    options:
      - {value: idea, label: Idea, scores: {readiness: 1}}
      - {value: selling, label: Selling, scores: {readiness: 4}}
  - id: goal
    prompt: Goal?
    type: text
    required: false
"""
)


def atom(body: str, atom_id: str = "a") -> Any:
    return parse_atom(
        f"---\nid: {atom_id}\ntitle: T\nkind: lesson\ntags: [t]\n---\n{body}\n", path=f"{atom_id}.md"
    )


def test_lint_quotes_of_optional_answers_need_a_block_that_tests_them() -> None:
    outside = atom("You said:\n\n> {{ answers.goal | something }}")
    assert [str(f) for f in lint_atom(outside, QUIZ)] == [
        "warning: atoms[a]: a.md body line 3: {{ answers.goal }} quotes optional question 'goal' outside a "
        "block that tests it: a buyer who skips it gets the default 'something' instead; "
        "wrap it in {% if answers.goal %} ... {% endif %}"
    ]
    for guarded in (
        "{% if answers.goal %}> {{ answers.goal }}{% endif %}",
        "{% if not answers.goal %}none{% else %}> {{ answers.goal }}{% endif %}",
        "{% if answers.goal and scores.readiness >= 2 %}{{ answers.goal }}{% endif %}",
        '{% if answers.stage == "idea" %}x{% elif answers.goal %}{{ answers.goal }}{% endif %}',
        "{% if answers.goal %}{% if scores.readiness >= 2 %}{{ answers.goal }}{% endif %}{% endif %}",
        "{{ answers.stage }} is required: no block needed",
    ):
        assert lint_atom(atom(guarded), QUIZ) == [], guarded
    for unguarded in (
        "{% if answers.goal or scores.readiness >= 2 %}{{ answers.goal }}{% endif %}",
        "{% if answers.goal %}x{% else %}{{ answers.goal }}{% endif %}",
        "{% if not answers.goal %}{{ answers.goal }}{% endif %}",
    ):
        assert [f.severity for f in lint_atom(atom(unguarded), QUIZ)] == ["warning"], unguarded


def test_lint_unknown_variables_in_conditions_and_placeholders() -> None:
    found = lint_atom(
        atom(
            '{% if answers.mood %}x{% endif %}\n{% if answers.stage == "launching" %}y{% endif %}\n'
            "{% if scores.charm >= 2 %}z{% endif %}\n{{ answers.colour }} {{ scores.charm }}"
        ),
        QUIZ,
    )
    assert [(f.severity, f.message) for f in found] == [
        ("error", "a.md body line 1: {% if %} condition refers to unknown question 'mood' (quiz 'intake')"),
        (
            "error",
            "a.md body line 2: {% if %} condition value 'launching' is not an option of question 'stage' "
            "(options: idea, selling)",
        ),
        (
            "error",
            "a.md body line 3: {% if %} scores.charm >= 2 can never hold: quiz 'intake' does not define score 'charm' "
            "(always 0)",
        ),
        ("error", "a.md body line 4: placeholder refers to unknown question 'colour' (quiz 'intake')"),
        (
            "warning",
            "a.md body line 4: placeholder refers to score 'charm', which quiz 'intake' does not define (always 0)",
        ),
    ]


def test_lint_policy_covers_the_atoms_it_can_place_and_its_own_texts() -> None:
    policy = parse_policy(
        """
id: p
deliverable: workbook
title: "For {{ buyer.first_name }}"
sections:
  - key: s
    title: S
    intro: "You said {{ answers.goal }}"
    slots:
      - key: one
        tags_any: [t]
        fallback: {title: F, markdown: "{% if answers.goal %}x"}
"""
    )
    placed = atom("> {{ answers.goal }}", "placed")
    other = parse_atom(
        "---\nid: other\ntitle: O\nkind: lesson\ntags: [u]\n---\n{{ answers.goal }}\n", path="o.md"
    )
    found = [
        (f.severity, f.location, f.message.split(":")[0]) for f in lint_policy(policy, [placed, other], QUIZ)
    ]
    assert found == [
        (
            "warning",
            "sections[0].intro",
            "{{ answers.goal }} quotes optional question 'goal' outside a block that tests it",
        ),
        ("error", "sections[0].slots[0].fallback", "'{% if %}' is never closed"),
        ("warning", "atoms[placed]", "placed.md body line 1"),
    ]


def test_the_demo_corpus_keeps_merge_tags_and_never_invents_a_quote() -> None:
    atoms, problems = load_corpus(DEMO / "content")
    assert problems == []
    quiz = parse_quiz((DEMO / "quizzes" / "intake.yaml").read_text())
    for name in ("launch-workbook", "pricing-audit"):
        policy = parse_policy((DEMO / "policies" / f"{name}.yaml").read_text())
        assert lint_policy(policy, atoms, quiz) == [], name
    by_id = {a.id: a for a in atoms}
    maya = buyer(name="Maya Lind", answers={"stage": "launching", "goal": "Sell 20 copies"})
    skipped = buyer(name="Maya Lind", answers={"stage": "launching"})
    swipe = fill(by_id["email-open-cart"].body, maya, markdown=True)
    assert "> Hi {{ first_name }}," in swipe and "Maya" not in swipe
    welcome = by_id["welcome-start-here"].body
    assert "you said:\n\n> Sell 20 copies" in fill(welcome, maya, markdown=True)
    without = fill(welcome, skipped, markdown=True)
    assert "you said" not in without and "Get my first product" not in without and "Hi Maya" in without
    seven = fill(by_id["next-steps-seven-days"].body, skipped, markdown=True)
    assert "you told me" not in seven and "write one sentence" in seven
    # composed for real, with the workbook policy: the swipe e-mails of the document keep their tag
    policy = parse_policy((DEMO / "policies" / "launch-workbook.yaml").read_text())
    inputs = buyer(name="Maya Lind", answers={"stage": "building", "goal": "x"}, scores={"readiness": 2.0})
    document = compose(policy, atoms, inputs, quiz).document
    swipes = {b.atom_id: b.markdown for b in document.blocks() if "{{ first_name }}" in b.markdown}
    assert sorted(swipes) == ["delivery-welcome-email", "email-open-cart"]
    assert all("Hi Maya" not in body for body in swipes.values())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{% if " + "not " * 5000 + "answers.goal %}x{% endif %}", "longer than 500 characters"),
        ("{% if " + "(" * 40 + "answers.goal" + ")" * 40 + " %}x{% endif %}", "nested too deeply"),
        ("{% if answers.goal %}" * 40 + "x" + "{% endif %}" * 40, "nested too deeply"),
        ("{% if answers.goal %}\n" * 3 + "x", "never closed"),
        ("{% endif %}" * 5000, "without '{% if %}'"),
        ("{% if 'x' == answers.goal %}x{% endif %}", "expected a variable"),
        ("{% if answers.goal == %}x{% endif %}", "ends too early"),
        ("{% if answers.goal in [1 2] %}x{% endif %}", "missing ']'"),
        ("{% if answers.goal ~ 3 %}x{% endif %}", "unexpected"),
    ],
)
def test_hostile_atom_text_is_refused_with_its_line_over_http(client, secret_headers, body, message) -> None:
    text = f"---\nid: hostile\ntitle: H\nkind: lesson\n---\n{body}\n"
    r = client.post(
        "/v1/content/sync", headers=secret_headers, json={"atoms": [{"text": text, "path": "h.md"}]}
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_content" and message in r.text
    assert error["message"].startswith("h.md:") and int(error["message"].split(":")[1]) >= 6


def test_values_in_markdown_code_are_literal_and_cannot_end_a_code_span() -> None:
    from offerloop.assembly.render.markup import to_html

    evil = buyer(answers={"goal": "a`[x](https://evil.example)`b <i>"})
    text = (
        "Code `{{ answers.goal }}` and {{ answers.goal }}\n\n"
        "```\n{% if answers.goal %}{{ answers.goal }}{% endif %}\n```\n"
    )
    filled = fill(text, evil, markdown=True)
    assert filled == (
        "Code `a\u02cb[x](https://evil.example)\u02cbb <i>` and "
        "a\\`\\[x\\]\\(https\\:\\/\\/evil\\.example\\)\\`b \\<i\\>\n\n"
        "```\na`[x](https://evil.example)`b <i>\n```\n"
    )
    html = to_html(filled)
    assert "href" not in html and "<i>" not in html
    assert "<code>a\u02cb[x](https://evil.example)\u02cbb &lt;i&gt;</code>" in html
    assert "<pre><code>a`[x](https://evil.example)`b &lt;i&gt;\n</code></pre>" in html


def test_a_rewrite_that_unescapes_a_buyer_value_into_a_link_is_rejected_by_the_guard() -> None:
    from offerloop.assembly.voice import guard

    atom_text = "Price after value, every time.\n\nYou said: {{ answers.goal }}\n\nNow write your price down."
    source = fill(
        atom_text, buyer(answers={"goal": "[Claim your refund](https://evil.example/x)"}), markdown=True
    )
    rewrite = source.replace(
        inert_markdown("[Claim your refund](https://evil.example/x)"),
        "[Claim your refund](https://evil.example/x)",
    )
    assert rewrite != source
    verdict = guard(source, rewrite, min_similarity=0.5)
    assert not verdict.ok and "url:https://evil.example/x" in verdict.reasons
