"""Intake quizzes: parsing with file:line problems, answer validation, scores, the track message."""

from __future__ import annotations

from typing import Any

import pytest

from offerloop.content.exceptions import ContentError
from offerloop.content.model import Option, Question, Quiz
from offerloop.content.quizzes import (
    answer_tags,
    answer_text,
    answers_to_track,
    default_quiz,
    parse_quiz,
    scores,
    validate_answers,
)

SPEC_QUIZ = """\
id: intake
title: "Three questions to shape your workbook"
description: "optional text"
questions:
  - id: stage
    prompt: "Where are you with your first digital product?"
    type: single
    required: true
    options:
      - {value: idea, label: "Just an idea", tags: [validation], scores: {readiness: 1}}
      - {value: building, label: "Building it", tags: [launch], scores: {readiness: 2}}
  - id: channels
    prompt: "Where do you reach people?"
    type: multiple
    required: false
    options:
      - {value: email, label: "Email list", tags: [email, launch], scores: {reach: 2, readiness: 0.5}}
      - {value: social, label: "Social media", tags: [social]}
      - {value: none, label: "Nowhere yet", tags: [audience]}
  - id: confidence
    prompt: "How confident are you about pricing?"
    type: scale
    min: 1
    max: 5
    min_label: "Not at all"
    max_label: "Very"
    score: pricing_confidence
  - id: goal
    prompt: "In one sentence, what do you want from the next 30 days?"
    type: text
    max_length: 280
"""


@pytest.fixture
def quiz() -> Quiz:
    return parse_quiz(SPEC_QUIZ, path="quizzes/intake.yaml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(ContentError) as caught:
        parse_quiz(text, path="quizzes/intake.yaml")
    assert caught.value.code == "invalid_content"
    return caught.value.problems


def answer_problems(quiz: Quiz, answers: Any) -> tuple[list[str], list[dict[str, Any]]]:
    with pytest.raises(ContentError) as caught:
        validate_answers(quiz, answers)
    error = caught.value
    assert error.code == "invalid_answers"
    assert error.status_code == 422
    return error.problems, error.details


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_spec_quiz(quiz: Quiz) -> None:
    assert quiz == Quiz(
        id="intake",
        title="Three questions to shape your workbook",
        description="optional text",
        version=quiz.version,
        questions=(
            Question(
                id="stage",
                prompt="Where are you with your first digital product?",
                type="single",
                options=(
                    Option("idea", "Just an idea", {"readiness": 1.0}, ("validation",)),
                    Option("building", "Building it", {"readiness": 2.0}, ("launch",)),
                ),
            ),
            Question(
                id="channels",
                prompt="Where do you reach people?",
                type="multiple",
                required=False,
                options=(
                    Option("email", "Email list", {"reach": 2.0, "readiness": 0.5}, ("email", "launch")),
                    Option("social", "Social media", {}, ("social",)),
                    Option("none", "Nowhere yet", {}, ("audience",)),
                ),
            ),
            Question(
                id="confidence",
                prompt="How confident are you about pricing?",
                type="scale",
                min=1,
                max=5,
                min_label="Not at all",
                max_label="Very",
                score="pricing_confidence",
            ),
            Question(
                id="goal",
                prompt="In one sentence, what do you want from the next 30 days?",
                type="text",
                max_length=280,
            ),
        ),
    )
    assert len(quiz.version) == 16
    assert quiz.question("goal") is quiz.questions[3]


def test_text_question_gets_a_default_limit_and_numbers_become_option_values() -> None:
    text = """\
id: q
title: Q
questions:
  - {id: note, prompt: "Anything else?", type: text, required: false}
  - id: size
    prompt: How many?
    type: single
    options: [{value: 1, label: One}, {value: 2, label: Two}]
"""
    quiz = parse_quiz(text)
    assert quiz.questions[0].max_length == 1000
    assert quiz.questions[0].required is False
    assert [o.value for o in quiz.questions[1].options] == ["1", "2"]


def test_version_is_stable_and_changes_with_content(quiz: Quiz) -> None:
    reordered = SPEC_QUIZ.replace(
        '{value: idea, label: "Just an idea", tags: [validation], scores: {readiness: 1}}',
        "{scores: {readiness: 1.0}, tags: [validation], label: Just an idea, value: idea}",
    ).replace("    required: true\n", "")
    assert reordered != SPEC_QUIZ
    assert parse_quiz(reordered).version == quiz.version
    assert parse_quiz(SPEC_QUIZ.replace("max: 5", "max: 6")).version != quiz.version
    assert parse_quiz(SPEC_QUIZ.replace("readiness: 1}", "readiness: 3}")).version != quiz.version


def test_default_quiz() -> None:
    quiz = default_quiz()
    assert quiz.id == "first-product-intake"
    assert [(q.id, q.type) for q in quiz.questions] == [
        ("stage", "single"),
        ("pricing_confidence", "scale"),
        ("goal", "text"),
    ]
    assert [o.value for o in quiz.questions[0].options] == ["idea", "building", "ready", "selling"]
    assert (quiz.questions[1].min, quiz.questions[1].max, quiz.questions[1].score) == (
        1,
        5,
        "pricing_confidence",
    )
    assert quiz.questions[2].max_length == 280
    assert validate_answers(quiz, {"stage": "building", "pricing_confidence": 2}) == {
        "stage": "building",
        "pricing_confidence": 2,
    }


# --- parsing problems ------------------------------------------------------------------------------

BROKEN = """\
id: Intake Quiz
title: ""
colour: blue
questions:
  - id: stage
    prompt: "Where are you?"
    type: single
    options:
      - {value: idea, label: "Just an idea", tags: [Validation], scores: {readiness: high}}
      - {value: idea, label: "Again"}
      - {value: building}
  - id: stage
    prompt: "Again?"
    type: multiple
  - id: confidence
    prompt: "How confident?"
    type: scale
    min: 5
    max: 5
    options: [{value: a, label: b}]
  - id: goal
    prompt: "Goal?"
    type: essay
  - id: note
    prompt: "Note"
    type: text
    max_length: 0
    min: 1
    requird: false
  - "just a string"
  - id: wide
    prompt: Wide
    type: scale
    min: 0
    max: 20
  - id: noscale
    prompt: x
    type: scale
"""


def test_every_quiz_problem_with_its_line() -> None:
    slug = "a slug (lowercase letters, digits and '-', e.g. 'price-anchor')"
    assert problems_of(BROKEN) == [
        f"quizzes/intake.yaml:1: id must be {slug}, got 'Intake Quiz'",
        "quizzes/intake.yaml:2: title must be a non-empty string, got ''",
        "quizzes/intake.yaml:3: unknown key 'colour' (allowed: id, title, description, questions)",
        f"quizzes/intake.yaml:9: tags[0] must be {slug}, got 'Validation'",
        "quizzes/intake.yaml:9: scores.readiness must be a number, got 'high'",
        "quizzes/intake.yaml:10: duplicate option value 'idea' (first at line 9)",
        "quizzes/intake.yaml:11: questions[0].options[2] is missing required key 'label'",
        "quizzes/intake.yaml:12: questions[1] is missing required key 'options' (a multiple question needs options)",
        "quizzes/intake.yaml:12: duplicate question id 'stage' (first at line 5)",
        "quizzes/intake.yaml:18: min (5) must be less than max (5)",
        "quizzes/intake.yaml:20: options is only for single and multiple questions, not scale",
        "quizzes/intake.yaml:23: type must be one of single, multiple, scale, text, got 'essay'",
        "quizzes/intake.yaml:27: max_length must be a positive integer, got 0",
        "quizzes/intake.yaml:28: min is only for scale questions, not text",
        "quizzes/intake.yaml:29: unknown key 'requird' (did you mean 'required'?)",
        "quizzes/intake.yaml:30: questions[5] must be a mapping, got 'just a string'",
        "quizzes/intake.yaml:35: a scale has at most 11 points; 0..20 has 21",
        "quizzes/intake.yaml:36: questions[7] is missing required key 'min'",
        "quizzes/intake.yaml:36: questions[7] is missing required key 'max'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            [
                "quizzes/intake.yaml:1: missing required key 'id'",
                "quizzes/intake.yaml:1: missing required key 'title'",
                "quizzes/intake.yaml:1: missing required key 'questions'",
            ],
        ),
        ("- a\n", ["quizzes/intake.yaml:1: a quiz must be a YAML mapping, got a list"]),
        (
            "id: a\ntitle: t\nquestions: []\n",
            ["quizzes/intake.yaml:3: questions must be a non-empty list, got an empty list"],
        ),
        (
            "id: a\ntitle: [\n",
            [
                "quizzes/intake.yaml:3: invalid YAML (column 1): expected the node content, but found '<stream end>'"
            ],
        ),
        (
            "id: a\ntitle: t\ntitle: u\nquestions: [{id: x, prompt: p, type: text}]\n",
            ["quizzes/intake.yaml:3: duplicate key 'title' (first at line 2)"],
        ),
        (
            "id: a\ntitle: t\nquestions:\n"
            "  - id: x\n    prompt: p\n    type: single\n    options: []\n"
            "  - {id: y, prompt: p, type: text, required: maybe}\n"
            "  - {prompt: p, type: text}\n"
            "  - {id: Bad Id, prompt: '', type: text, max_length: 20000}\n",
            [
                "quizzes/intake.yaml:7: options must be a non-empty list, got an empty list",
                "quizzes/intake.yaml:8: required must be true or false, got 'maybe'",
                "quizzes/intake.yaml:9: questions[2] is missing required key 'id'",
                "quizzes/intake.yaml:10: id must be lowercase letters, digits, '_' and '-', e.g. 'stage', got 'Bad Id'",
                "quizzes/intake.yaml:10: prompt must be a non-empty string, got ''",
                "quizzes/intake.yaml:10: max_length must be at most 10000, got 20000",
            ],
        ),
        (
            "id: a\ntitle: t\nquestions:\n"
            "  - id: s\n    prompt: p\n    type: scale\n    min: 1\n    max: 5.5\n    score: Pricing\n"
            "  - id: m\n    prompt: p\n    type: multiple\n    options:\n"
            "      - {value: a, label: A, scores: {Bad: 1, ok: .inf}, colour: red}\n"
            "      - {value: '', label: B, tags: launch}\n"
            "      - just-a-value\n",
            [
                "quizzes/intake.yaml:8: max must be an integer, got 5.5",
                "quizzes/intake.yaml:9: score must be a score dimension "
                "(lowercase letters, digits, '_' and '-', e.g. 'stage'), got 'Pricing'",
                "quizzes/intake.yaml:14: unknown key 'colour' (allowed: value, label, tags, scores)",
                "quizzes/intake.yaml:14: scores key must be a score dimension "
                "(lowercase letters, digits, '_' and '-', e.g. 'stage'), got 'Bad'",
                "quizzes/intake.yaml:14: scores.ok must be a number, got inf",
                "quizzes/intake.yaml:15: value must be a non-empty string, got ''",
                "quizzes/intake.yaml:15: tags must be a list of slugs, got 'launch'",
                "quizzes/intake.yaml:16: questions[1].options[2] must be a mapping with value and label, "
                "got 'just-a-value'",
            ],
        ),
    ],
)
def test_quiz_problems(text: str, expected: list[str]) -> None:
    assert problems_of(text) == expected


# --- answers ---------------------------------------------------------------------------------------


def test_valid_answers_are_normalized_in_question_order(quiz: Quiz) -> None:
    answers = {
        "goal": "  Launch my first template pack\r\n",
        "channels": ["social", "email", "social"],
        "confidence": 4,
        "stage": "building",
    }
    clean = validate_answers(quiz, answers)
    assert clean == {
        "stage": "building",
        "channels": ["email", "social"],  # option order, once each
        "confidence": 4,
        "goal": "Launch my first template pack",
    }
    assert list(clean) == ["stage", "channels", "confidence", "goal"]


def test_unanswered_optional_question_is_left_out(quiz: Quiz) -> None:
    answers = {"stage": "idea", "channels": [], "confidence": 1, "goal": "Ship"}
    assert validate_answers(quiz, answers) == {"stage": "idea", "confidence": 1, "goal": "Ship"}


def test_every_answer_problem(quiz: Quiz) -> None:
    problems, details = answer_problems(
        quiz, {"stage": "maybe", "channels": "email", "confidence": "3", "goal": "x" * 281, "extra": 1}
    )
    assert problems == [
        "extra: no such question in quiz 'intake'",
        "stage: 'maybe' is not an option (allowed: idea, building)",
        "channels: must be a list of option values, got the string 'email'",
        "confidence: must be an integer from 1 to 5, got '3'",
        "goal: is too long: 281 characters, the limit is 280",
    ]
    assert [(d["question"], d["code"]) for d in details] == [
        ("extra", "unknown_question"),
        ("stage", "invalid_option"),
        ("channels", "invalid_type"),
        ("confidence", "invalid_type"),
        ("goal", "too_long"),
    ]
    assert details[0] == {
        "question": "extra",
        "code": "unknown_question",
        "message": "no such question in quiz 'intake'",
    }


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (
            {},
            [
                ("stage", "required", "an answer is required"),
                ("confidence", "required", "an answer is required"),
                ("goal", "required", "an answer is required"),
            ],
        ),
        (
            {"stage": ["idea"], "confidence": True, "goal": 5},
            [
                ("stage", "invalid_type", "must be one option value (a string), got ['idea']"),
                ("confidence", "invalid_type", "must be an integer from 1 to 5, got True"),
                ("goal", "invalid_type", "must be a string, got 5"),
            ],
        ),
        (
            {"stage": "idea", "channels": ["email", "fax"], "confidence": 0, "goal": "   "},
            [
                ("channels", "invalid_option", "'fax' is not an option (allowed: email, social, none)"),
                ("confidence", "out_of_range", "must be an integer from 1 to 5, got 0"),
                ("goal", "required", "an answer is required"),
            ],
        ),
        (
            {"stage": "idea", "channels": {"email": True}, "confidence": 6, "goal": "ok"},
            [
                ("channels", "invalid_type", "must be a list of option values, got {'email': True}"),
                ("confidence", "out_of_range", "must be an integer from 1 to 5, got 6"),
            ],
        ),
        (
            {"stage": "idea", "confidence": 2.0, "goal": "ok"},
            [("confidence", "invalid_type", "must be an integer from 1 to 5, got 2.0")],
        ),
    ],
)
def test_answer_problems(
    quiz: Quiz, answers: dict[str, object], expected: list[tuple[str, str, str]]
) -> None:
    problems, details = answer_problems(quiz, answers)
    assert [(d["question"], d["code"], d["message"]) for d in details] == expected
    assert problems == [f"{q}: {m}" for q, _, m in expected]


def test_answers_must_be_a_mapping(quiz: Quiz) -> None:
    problems, details = answer_problems(quiz, ["stage", "idea"])
    assert problems == ["answers must be a mapping of question id to answer, got a list"]
    assert details == [{"question": None, "code": "invalid_type", "message": problems[0]}]


# --- scores, tags, text, track ---------------------------------------------------------------------

ANSWERS: dict[str, object] = {
    "stage": "building",
    "channels": ["email", "social"],
    "confidence": 3,
    "goal": "Sell 10 copies",
}


def test_scores(quiz: Quiz) -> None:
    assert scores(quiz, ANSWERS) == {"pricing_confidence": 3.0, "reach": 2.0, "readiness": 2.5}
    # Every declared dimension is present, at zero when nothing adds to it.
    assert scores(quiz, {"stage": "idea"}) == {"pricing_confidence": 0.0, "reach": 0.0, "readiness": 1.0}
    assert list(scores(quiz, ANSWERS)) == ["pricing_confidence", "reach", "readiness"]


def test_answer_tags(quiz: Quiz) -> None:
    assert answer_tags(quiz, ANSWERS, ["stage"]) == {"launch"}
    assert answer_tags(quiz, ANSWERS, ["stage", "channels"]) == {"launch", "email", "social"}
    assert answer_tags(quiz, ANSWERS, ["confidence", "goal", "unknown"]) == set()
    assert answer_tags(quiz, {}, ["stage"]) == set()


def test_answer_text(quiz: Quiz) -> None:
    assert answer_text(quiz, ANSWERS) == "Building it\nEmail list\nSocial media\nSell 10 copies"
    assert answer_text(quiz, {"confidence": 2}) == ""


def test_track_message(quiz: Quiz) -> None:
    message = answers_to_track(
        quiz, {**ANSWERS, "goal": " Sell 10 copies "}, user_id="u_42", anonymous_id="a-1", message_id="m-1"
    )
    assert message == {
        "type": "track",
        "event": "Quiz Completed",
        "userId": "u_42",
        "anonymousId": "a-1",
        "messageId": "m-1",
        "properties": {
            "quiz_id": "intake",
            "quiz_version": quiz.version,
            "answers": {
                "stage": "building",
                "channels": ["email", "social"],
                "confidence": 3,
                "goal": "Sell 10 copies",
            },
            "scores": {"pricing_confidence": 3.0, "reach": 2.0, "readiness": 2.5},
        },
    }


def test_track_message_leaves_out_missing_ids(quiz: Quiz) -> None:
    message = answers_to_track(quiz, ANSWERS, anonymous_id="a-1")
    assert list(message) == ["type", "event", "anonymousId", "properties"]


def test_track_message_needs_an_identity(quiz: Quiz) -> None:
    with pytest.raises(ContentError) as caught:
        answers_to_track(quiz, ANSWERS, user_id="")
    assert caught.value.code == "missing_identity"
    assert caught.value.problems == ["a track message needs a user_id or an anonymous_id"]


def test_track_message_validates_the_answers(quiz: Quiz) -> None:
    with pytest.raises(ContentError) as caught:
        answers_to_track(quiz, {"stage": "idea"}, user_id="u_1")
    assert caught.value.problems == ["confidence: an answer is required", "goal: an answer is required"]


def test_two_documents_are_refused() -> None:
    assert problems_of("id: a\n---\nid: b\n") == [
        "quizzes/intake.yaml:2: invalid YAML (column 1): "
        "expected a single document in the stream but found another document"
    ]


def test_merge_keys_are_not_duplicates() -> None:
    text = """\
id: a
title: t
questions:
  - &base {id: x, prompt: p, type: text, max_length: 50}
  - <<: *base
    id: y
"""
    quiz = parse_quiz(text)
    assert [(q.id, q.max_length) for q in quiz.questions] == [("x", 50), ("y", 50)]
