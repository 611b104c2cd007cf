"""The quiz page: field names and values, escaping, and the form → answers → validation round trip."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from offerloop.content.exceptions import ContentError
from offerloop.content.model import Quiz
from offerloop.content.quiz_page import form_errors, parse_form, render_quiz_page
from offerloop.content.quizzes import parse_quiz, validate_answers

QUIZ = """\
id: intake
title: "Shape your <workbook> & more"
description: "Three quick questions"
questions:
  - id: stage
    prompt: "Where are you?"
    type: single
    options:
      - {value: idea, label: "Just an idea"}
      - {value: building, label: "<script>alert('x')</script>"}
  - id: channels
    prompt: "Where do you reach people?"
    type: multiple
    required: false
    options:
      - {value: email, label: "Email list"}
      - {value: 'a"b', label: "Quote & co"}
  - id: confidence
    prompt: "How confident are you about pricing?"
    type: scale
    min: 1
    max: 4
    min_label: "Not at all"
    max_label: "Very"
    score: pricing_confidence
  - id: goal
    prompt: "What do you want next?"
    type: text
    max_length: 140
"""


class Inputs(HTMLParser):
    """Collects form controls as attribute dicts, plus the text of every element."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.forms: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("input", "textarea"):
            self.controls.append({"tag": tag, **dict(attrs)})
        if tag == "form":
            self.forms.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def quiz() -> Quiz:
    return parse_quiz(QUIZ)


def parsed(html: str) -> Inputs:
    parser = Inputs()
    parser.feed(html)
    parser.close()
    return parser


def test_page_has_the_form_and_every_input(quiz: Quiz) -> None:
    html = render_quiz_page(quiz, action_url="/w/acme/quiz?x=1&y=2", hidden={"anonymous_id": "anon-1"})
    page = parsed(html)
    assert page.forms == [{"method": "post", "action": "/w/acme/quiz?x=1&y=2", "accept-charset": "utf-8"}]
    fields = [(c["tag"], c.get("type"), c.get("name"), c.get("value")) for c in page.controls]
    assert fields == [
        ("input", "hidden", "anonymous_id", "anon-1"),
        ("input", "radio", "q.stage", "idea"),
        ("input", "radio", "q.stage", "building"),
        ("input", "checkbox", "q.channels", "email"),
        ("input", "checkbox", "q.channels", 'a"b'),
        ("input", "radio", "q.confidence", "1"),
        ("input", "radio", "q.confidence", "2"),
        ("input", "radio", "q.confidence", "3"),
        ("input", "radio", "q.confidence", "4"),
        ("textarea", None, "q.goal", None),
    ]
    # Required radio groups are required natively; the optional checkbox group and hidden input are not.
    assert [("required" in c) for c in page.controls] == [
        False,
        True,
        True,
        False,
        False,
        True,
        True,
        True,
        True,
        True,
    ]
    textarea = page.controls[-1]
    assert (textarea["maxlength"], textarea["id"]) == ("140", "q-goal")
    assert "script" not in page.tags  # no JavaScript at all
    assert "<link" not in html and "src=" not in html  # no external assets
    assert '<html lang="en">' in html


def test_every_control_has_a_label_and_groups_have_a_legend(quiz: Quiz) -> None:
    html = render_quiz_page(quiz, action_url="/quiz", hidden={})
    page = parsed(html)
    for control in page.controls:
        assert (
            f'<label for="{control["id"]}"' in html or f'<label class="prompt" for="{control["id"]}"' in html
        )
    assert html.count("<fieldset") == 3
    assert html.count("<legend>") == 3
    assert "1 = Not at all, 4 = Very" in "".join(page.text)


def test_everything_is_escaped(quiz: Quiz) -> None:
    html = render_quiz_page(
        quiz, action_url='/quiz"><script>', hidden={"next": '"><script>alert(1)</script>'}
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # the option label
    assert 'value="a&#34;b"' in html
    assert "<title>Shape your &lt;workbook&gt; &amp; more</title>" in html
    assert 'action="/quiz&#34;&gt;&lt;script&gt;"' in html
    page = parsed(html)
    assert page.controls[0]["value"] == '"><script>alert(1)</script>'


def test_action_url_and_hidden_names_are_checked(quiz: Quiz) -> None:
    with pytest.raises(ValueError, match="action_url must be an http"):
        render_quiz_page(quiz, action_url="javascript:alert(1)", hidden={})
    with pytest.raises(ValueError, match="would be read as an answer"):
        render_quiz_page(quiz, action_url="https://example.com/q", hidden={"q.stage": "idea"})


def test_refused_answers_are_shown_again_with_messages(quiz: Quiz) -> None:
    answers = parse_form(quiz, [("q.stage", "building"), ("q.channels", "email"), ("q.goal", "x" * 141)])
    with pytest.raises(ContentError) as caught:
        validate_answers(quiz, answers)
    errors = form_errors(caught.value)
    assert errors == {
        "confidence": "an answer is required",
        "goal": "is too long: 141 characters, the limit is 140",
    }
    html = render_quiz_page(quiz, action_url="/quiz", hidden={}, answers=answers, errors=errors)
    page = parsed(html)
    checked = [(c["name"], c["value"]) for c in page.controls if "checked" in c]
    assert checked == [("q.stage", "building"), ("q.channels", "email")]
    assert '<p class="error" id="q-confidence-error">an answer is required</p>' in html
    assert 'aria-describedby="q-confidence-hint q-confidence-error"' in html
    assert f'aria-invalid="true">{"x" * 141}</textarea>' in html
    assert 'role="alert"' in html


def test_parse_form_round_trip(quiz: Quiz) -> None:
    pairs = [
        ("anonymous_id", "anon-1"),
        ("q.stage", "idea"),
        ("q.channels", "email"),
        ("q.channels", 'a"b'),
        ("q.confidence", " 3 "),
        ("q.goal", "Line one\r\nLine two"),
    ]
    answers = parse_form(quiz, pairs)
    assert answers == {
        "stage": "idea",
        "channels": ["email", 'a"b'],
        "confidence": 3,
        "goal": "Line one\nLine two",
    }
    assert validate_answers(quiz, answers) == answers


def test_parse_form_leaves_validation_to_validate_answers(quiz: Quiz) -> None:
    pairs = [
        ("q.stage", "idea"),
        ("q.stage", "building"),  # a tampered form: two answers to a single question
        ("q.confidence", "three"),
        ("q.goal", ""),
        ("q.bogus", "1"),
        ("csrf", "token"),
    ]
    answers = parse_form(quiz, pairs)
    assert answers == {"stage": ["idea", "building"], "confidence": "three", "goal": "", "bogus": "1"}
    with pytest.raises(ContentError) as caught:
        validate_answers(quiz, answers)
    assert caught.value.problems == [
        "bogus: no such question in quiz 'intake'",
        "stage: must be one option value (a string), got ['idea', 'building']",
        "confidence: must be an integer from 1 to 4, got 'three'",
        "goal: an answer is required",
    ]


def test_parse_form_with_nothing_checked(quiz: Quiz) -> None:
    assert parse_form(quiz, []) == {}
    assert parse_form(quiz, [("q.channels", "")]) == {"channels": []}
