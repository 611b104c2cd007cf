"""Intake quizzes: parsed from YAML with ``file:line`` problems, answers validated, scored and turned
into the Segment ``Quiz Completed`` track message."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Final

from offerloop.content.atoms import (
    SLUG_HINT,
    SLUG_RE,
    LocatedYaml,
    Problem,
    content_version,
    kind_of,
    load_located_yaml,
    problems_error,
    unknown_key_message,
)
from offerloop.content.exceptions import ContentError
from offerloop.content.model import Option, Question, Quiz
from offerloop.declarative import show

__all__ = [
    "QUESTION_TYPES",
    "TRACK_EVENT",
    "answer_tags",
    "answer_text",
    "answers_to_track",
    "default_quiz",
    "parse_quiz",
    "scores",
    "validate_answers",
]

QUESTION_TYPES: Final = ("single", "multiple", "scale", "text")
TRACK_EVENT: Final = "Quiz Completed"
TEXT_MAX_LENGTH: Final = 1000  # a text question's limit when the quiz sets none
TEXT_MAX_LENGTH_CEILING: Final = 10_000
SCALE_MAX_POINTS: Final = 11  # 0..10: each point is a radio button on the page

NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # question ids and score dimensions
NAME_HINT: Final = "lowercase letters, digits, '_' and '-', e.g. 'stage'"

_QUIZ_KEYS: Final = ("id", "title", "description", "questions")
_QUESTION_KEYS: Final = (
    "id",
    "prompt",
    "type",
    "required",
    "options",
    "min",
    "max",
    "min_label",
    "max_label",
    "score",
    "max_length",
)
_OPTION_KEYS: Final = ("value", "label", "tags", "scores")
# Keys that only make sense for some question types.
_TYPE_KEYS: Final = {
    "options": ("single", "multiple"),
    "min": ("scale",),
    "max": ("scale",),
    "min_label": ("scale",),
    "max_label": ("scale",),
    "score": ("scale",),
    "max_length": ("text",),
}


# --- parsing ---------------------------------------------------------------------------------------


def parse_quiz(text: str, *, path: str = "<string>") -> Quiz:
    """Quiz YAML → a ``Quiz``; raises ``ContentError`` listing every problem as ``"path:line: message"``."""
    doc, problems = load_located_yaml(text.removeprefix("\ufeff"))
    quiz: Quiz | None = None
    if doc is not None:
        quiz = _Checker(doc, problems).quiz()
    if problems or quiz is None:
        raise problems_error(path, problems)
    return quiz


def default_quiz() -> Quiz:
    """The package's intake quiz for a creator selling a first digital product."""
    text = resources.files("offerloop.content").joinpath("default_quiz.yaml").read_text(encoding="utf-8")
    return parse_quiz(text, path="default_quiz.yaml")


class _Checker:
    """Walks a located quiz document, collecting problems; returns None where a value is unusable."""

    def __init__(self, doc: LocatedYaml, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems

    def bad(self, where: tuple[object, ...], message: str) -> None:
        self.problems.append((self.doc.line(*where), message))

    def keys(self, data: Mapping[Any, Any], where: tuple[object, ...], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                self.bad((*where, key), unknown_key_message(key, allowed))

    def required(
        self, data: Mapping[Any, Any], where: tuple[object, ...], keys: Iterable[str], name: str
    ) -> None:
        for key in keys:
            if key not in data:
                self.bad(
                    where,
                    f"{name} is missing required key {key!r}" if name else f"missing required key {key!r}",
                )

    def text(
        self, data: Mapping[Any, Any], where: tuple[object, ...], key: str, *, required: bool
    ) -> str | None:
        """A stripped non-empty string; None when absent (optional) or wrong (reported)."""
        if key not in data or (data[key] is None and not required):
            return None
        value = data[key]
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, str) and not required:
            return None
        self.bad((*where, key), f"{key} must be a non-empty string, got {show(value)}")
        return None

    def integer(
        self, data: Mapping[Any, Any], where: tuple[object, ...], key: str, *, positive: bool
    ) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and (value > 0 or not positive):
            return value
        self.bad(
            (*where, key), f"{key} must be {'a positive' if positive else 'an'} integer, got {show(value)}"
        )
        return None

    def quiz(self) -> Quiz | None:
        doc = self.doc
        data = {} if doc.data is None else doc.data
        if not isinstance(data, dict):
            self.bad((), f"a quiz must be a YAML mapping, got {kind_of(data)}")
            return None
        self.keys(data, (), _QUIZ_KEYS)
        self.required(data, (), ("id", "title", "questions"), "")
        quiz_id = data.get("id")
        if "id" in data and not (isinstance(quiz_id, str) and SLUG_RE.fullmatch(quiz_id)):
            self.bad(("id",), f"id must be a slug ({SLUG_HINT}), got {show(quiz_id)}")
        title = self.text(data, (), "title", required=True)
        description = self.text(data, (), "description", required=False)
        raw_questions = data.get("questions")
        questions: list[Question | None] = []
        if "questions" in data:
            if not isinstance(raw_questions, list) or not raw_questions:
                self.bad(("questions",), f"questions must be a non-empty list, got {kind_of(raw_questions)}")
            else:
                first_at: dict[str, int] = {}
                for index, raw in enumerate(raw_questions):
                    questions.append(self.question(raw, ("questions", index), index))
                    # Checked on the raw id, so a duplicate is reported even when the question has other problems.
                    qid = raw.get("id") if isinstance(raw, dict) else None
                    if not isinstance(qid, str):
                        continue
                    line = doc.line("questions", index, "id")
                    if qid in first_at:
                        self.problems.append(
                            (line, f"duplicate question id {qid!r} (first at line {first_at[qid]})")
                        )
                    else:
                        first_at[qid] = line
        if self.problems or title is None or not isinstance(quiz_id, str):
            return None
        kept = tuple(q for q in questions if q is not None)
        return Quiz(
            id=quiz_id,
            title=title,
            questions=kept,
            version=content_version(
                {
                    "id": quiz_id,
                    "title": title,
                    "description": description,
                    "questions": [_plain(q) for q in kept],
                }
            ),
            description=description,
        )

    def question(self, raw: object, where: tuple[object, ...], index: int) -> Question | None:
        if not isinstance(raw, dict):
            self.bad(where, f"questions[{index}] must be a mapping, got {kind_of(raw)}")
            return None
        before = len(self.problems)
        name = f"questions[{index}]"
        self.keys(raw, where, _QUESTION_KEYS)
        self.required(raw, where, ("id", "prompt", "type"), name)
        qid = raw.get("id")
        if "id" in raw and not (isinstance(qid, str) and NAME_RE.fullmatch(qid)):
            self.bad((*where, "id"), f"id must be {NAME_HINT}, got {show(qid)}")
        prompt = self.text(raw, where, "prompt", required=True)
        qtype = raw.get("type")
        if "type" in raw and qtype not in QUESTION_TYPES:
            self.bad((*where, "type"), f"type must be one of {', '.join(QUESTION_TYPES)}, got {show(qtype)}")
            qtype = None
        required = raw.get("required", True)
        if not isinstance(required, bool):
            self.bad((*where, "required"), f"required must be true or false, got {show(required)}")
        if isinstance(qtype, str):
            for key, types in _TYPE_KEYS.items():
                if key in raw and qtype not in types:
                    self.bad((*where, key), f"{key} is only for {' and '.join(types)} questions, not {qtype}")

        options: tuple[Option, ...] = ()
        low = high = max_length = None
        min_label = max_label = score = None
        if qtype in ("single", "multiple"):
            options = self.options(raw, where, name, str(qtype))
        elif qtype == "scale":
            self.required(raw, where, ("min", "max"), name)
            low = self.integer(raw, where, "min", positive=False)
            high = self.integer(raw, where, "max", positive=False)
            if low is not None and high is not None:
                if low >= high:
                    self.bad((*where, "min"), f"min ({low}) must be less than max ({high})")
                elif high - low + 1 > SCALE_MAX_POINTS:
                    message = (
                        f"a scale has at most {SCALE_MAX_POINTS} points; {low}..{high} has {high - low + 1}"
                    )
                    self.bad((*where, "max"), message)
            min_label = self.text(raw, where, "min_label", required=False)
            max_label = self.text(raw, where, "max_label", required=False)
            score = self.dimension(raw.get("score"), (*where, "score"), "score")
        elif qtype == "text":
            max_length = self.integer(raw, where, "max_length", positive=True)
            if max_length is not None and max_length > TEXT_MAX_LENGTH_CEILING:
                self.bad(
                    (*where, "max_length"),
                    f"max_length must be at most {TEXT_MAX_LENGTH_CEILING}, got {max_length}",
                )
            if max_length is None:
                max_length = TEXT_MAX_LENGTH

        if len(self.problems) > before or not isinstance(qid, str) or prompt is None or qtype is None:
            return None
        return Question(
            id=qid,
            prompt=prompt,
            type=str(qtype),
            required=bool(required),
            options=options,
            min=low,
            max=high,
            min_label=min_label,
            max_label=max_label,
            score=score,
            max_length=max_length,
        )

    def dimension(self, value: object, where: tuple[object, ...], what: str) -> str | None:
        """A score dimension name (optional)."""
        if value is None:
            return None
        if isinstance(value, str) and NAME_RE.fullmatch(value):
            return value
        self.bad(where, f"{what} must be a score dimension ({NAME_HINT}), got {show(value)}")
        return None

    def options(
        self, raw: Mapping[str, Any], where: tuple[object, ...], name: str, qtype: str
    ) -> tuple[Option, ...]:
        if "options" not in raw:
            self.bad(where, f"{name} is missing required key 'options' (a {qtype} question needs options)")
            return ()
        items = raw["options"]
        if not isinstance(items, list) or not items:
            self.bad((*where, "options"), f"options must be a non-empty list, got {kind_of(items)}")
            return ()
        options: list[Option] = []
        first_at: dict[str, int] = {}
        for index, item in enumerate(items):
            at = (*where, "options", index)
            option = self.option(item, at, f"{name}.options[{index}]")
            value = item.get("value") if isinstance(item, dict) else None
            value = (
                str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
            )
            if value is None:
                continue
            line = self.doc.line(*at, "value")
            if value in first_at:
                message = f"duplicate option value {value!r} (first at line {first_at[value]})"
                self.problems.append((line, message))
            else:
                first_at[value] = line
                if option is not None:
                    options.append(option)
        return tuple(options)

    def option(self, item: object, where: tuple[object, ...], name: str) -> Option | None:
        if not isinstance(item, dict):
            self.bad(where, f"{name} must be a mapping with value and label, got {kind_of(item)}")
            return None
        before = len(self.problems)
        self.keys(item, where, _OPTION_KEYS)
        self.required(item, where, ("value", "label"), name)
        value = item.get("value")
        # Numbers are accepted for convenience (`value: 1`): answers arrive as strings from forms.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if "value" in item and not (isinstance(value, str) and value.strip()):
            self.bad((*where, "value"), f"value must be a non-empty string, got {show(item['value'])}")
        label = self.text(item, where, "label", required=True)
        tags: list[str] = []
        raw_tags = item.get("tags")
        if raw_tags is not None and not isinstance(raw_tags, list):
            self.bad((*where, "tags"), f"tags must be a list of slugs, got {show(raw_tags)}")
        for index, tag in enumerate(raw_tags if isinstance(raw_tags, list) else []):
            if not (isinstance(tag, str) and SLUG_RE.fullmatch(tag)):
                self.bad(
                    (*where, "tags", index), f"tags[{index}] must be a slug ({SLUG_HINT}), got {show(tag)}"
                )
            elif tag not in tags:
                tags.append(tag)
        points: dict[str, float] = {}
        raw_scores = item.get("scores")
        if raw_scores is not None and not isinstance(raw_scores, dict):
            self.bad(
                (*where, "scores"), f"scores must be a mapping of dimension to number, got {show(raw_scores)}"
            )
        for dim, amount in (raw_scores if isinstance(raw_scores, dict) else {}).items():
            at = (*where, "scores", dim)
            if self.dimension(dim, at, "scores key") is None:
                continue
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
                self.bad(at, f"scores.{dim} must be a number, got {show(amount)}")
                continue
            points[dim] = float(amount)
        if len(self.problems) > before or not isinstance(value, str) or label is None:
            return None
        return Option(value=value.strip(), label=label, scores=points, tags=tuple(tags))


def _plain(question: Question) -> dict[str, Any]:
    """A question as plain JSON data, for the quiz's content hash."""
    return {
        "id": question.id,
        "prompt": question.prompt,
        "type": question.type,
        "required": question.required,
        "options": [
            {"value": o.value, "label": o.label, "scores": o.scores, "tags": list(o.tags)}
            for o in question.options
        ],
        "min": question.min,
        "max": question.max,
        "min_label": question.min_label,
        "max_label": question.max_label,
        "score": question.score,
        "max_length": question.max_length,
    }


# --- answers ---------------------------------------------------------------------------------------


def validate_answers(quiz: Quiz, answers: Mapping[str, object]) -> dict[str, object]:
    """Checked and normalized answers, in question order; unanswered optional questions are left out.

    Raises ``ContentError`` (code ``invalid_answers``): ``problems`` as ``"question: message"`` lines,
    ``details`` as ``[{"question", "code", "message"}]`` with code one of ``unknown_question``,
    ``required``, ``invalid_type``, ``invalid_option``, ``out_of_range``, ``too_long``.
    An empty (or blank) string or list counts as unanswered; a multiple-choice answer must be a list.
    """
    if not isinstance(answers, Mapping):
        message = f"answers must be a mapping of question id to answer, got {kind_of(answers)}"
        raise ContentError(
            [message],
            details=[{"question": None, "code": "invalid_type", "message": message}],
            code="invalid_answers",
        )
    details: list[dict[str, Any]] = []

    def refuse(qid: str, code: str, message: str) -> None:
        details.append({"question": qid, "code": code, "message": message})

    for qid in answers:
        if quiz.question(str(qid)) is None:
            refuse(str(qid)[:64], "unknown_question", f"no such question in quiz {quiz.id!r}")
    clean: dict[str, object] = {}
    for question in quiz.questions:
        value = answers.get(question.id)
        if value is None or (isinstance(value, str) and not value.strip()) or value == [] or value == ():
            if question.required:
                refuse(question.id, "required", "an answer is required")
            continue
        problem = _check_answer(question, value)
        if isinstance(problem, tuple):
            refuse(question.id, *problem)
        else:
            clean[question.id] = problem.value
    if details:
        raise ContentError(
            [f"{d['question']}: {d['message']}" for d in details], details=details, code="invalid_answers"
        )
    return clean


class _Ok:
    """A valid answer, normalized."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def _check_answer(question: Question, value: object) -> _Ok | tuple[str, str]:
    """The normalized answer, or (code, message)."""
    allowed = [o.value for o in question.options]
    if question.type == "single":
        if not isinstance(value, str):
            return "invalid_type", f"must be one option value (a string), got {show(value)}"
        if value not in allowed:
            return "invalid_option", f"{show(value)} is not an option (allowed: {', '.join(allowed)})"
        return _Ok(value)
    if question.type == "multiple":
        if isinstance(value, str):
            return "invalid_type", f"must be a list of option values, got the string {show(value)}"
        if not isinstance(value, list | tuple):
            return "invalid_type", f"must be a list of option values, got {show(value)}"
        for item in value:
            if not isinstance(item, str) or item not in allowed:
                return "invalid_option", f"{show(item)} is not an option (allowed: {', '.join(allowed)})"
        chosen = set(value)
        return _Ok([v for v in allowed if v in chosen])  # option order: the same choice, the same answer
    if question.type == "scale":
        low, high = question.min, question.max
        if isinstance(value, bool) or not isinstance(value, int):
            return "invalid_type", f"must be an integer from {low} to {high}, got {show(value)}"
        if (low is not None and value < low) or (high is not None and value > high):
            return "out_of_range", f"must be an integer from {low} to {high}, got {value}"
        return _Ok(value)
    # text
    if not isinstance(value, str):
        return "invalid_type", f"must be a string, got {show(value)}"
    text = value.replace("\r\n", "\n").strip()
    limit = question.max_length or TEXT_MAX_LENGTH
    if len(text) > limit:
        return "too_long", f"is too long: {len(text)} characters, the limit is {limit}"
    return _Ok(text)


def scores(quiz: Quiz, answers: Mapping[str, object]) -> dict[str, float]:
    """Points per dimension (every dimension the quiz declares, sorted, 0.0 when nothing adds to it).

    ``answers`` should come from ``validate_answers``; values that do not fit their question add nothing.
    """
    totals: dict[str, float] = {}
    for question in quiz.questions:
        if question.score:
            totals[question.score] = 0.0
        for option in question.options:
            totals.update(dict.fromkeys(option.scores, 0.0))
    totals = dict(sorted(totals.items()))
    for question in quiz.questions:
        value = answers.get(question.id)
        if question.type == "scale":
            if question.score and isinstance(value, int) and not isinstance(value, bool):
                totals[question.score] += float(value)
            continue
        for option in _chosen(question, value):
            for dim, points in option.scores.items():
                totals[dim] += points
    return totals


def answers_to_track(
    quiz: Quiz,
    answers: Mapping[str, object],
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """The Segment track message for a completed quiz (answers validated first; needs an identity).

    ``messageId`` is left out when not given: ingestion then derives one from the content.
    """
    if not user_id and not anonymous_id:
        message = "a track message needs a user_id or an anonymous_id"
        raise ContentError(
            [message],
            details=[{"question": None, "code": "missing_identity", "message": message}],
            code="missing_identity",
        )
    clean = validate_answers(quiz, answers)
    message_body: dict[str, Any] = {"type": "track", "event": TRACK_EVENT}
    if user_id:
        message_body["userId"] = user_id
    if anonymous_id:
        message_body["anonymousId"] = anonymous_id
    if message_id:
        message_body["messageId"] = message_id
    message_body["properties"] = {
        "quiz_id": quiz.id,
        "quiz_version": quiz.version,
        "answers": clean,
        "scores": scores(quiz, clean),
    }
    return message_body


def answer_tags(quiz: Quiz, answers: Mapping[str, object], question_ids: Iterable[str]) -> set[str]:
    """The tags of the options chosen in ``question_ids`` (unknown ids and non-choice questions add none)."""
    tags: set[str] = set()
    for qid in question_ids:
        question = quiz.question(qid)
        if question is not None:
            for option in _chosen(question, answers.get(qid)):
                tags.update(option.tags)
    return tags


def answer_text(quiz: Quiz, answers: Mapping[str, object]) -> str:
    """Labels of the chosen options and the free-text answers, one per line in quiz order (a relevance query)."""
    parts: list[str] = []
    for question in quiz.questions:
        value = answers.get(question.id)
        if question.type == "text":
            if isinstance(value, str) and value.strip():
                parts.append(value.strip())
        else:
            parts.extend(option.label for option in _chosen(question, value))
    return "\n".join(parts)


def _chosen(question: Question, value: object) -> list[Option]:
    """The options an answer picks, in option order (none for a scale or text question)."""
    if question.type == "single":
        picked = {value} if isinstance(value, str) else set()
    elif question.type == "multiple" and isinstance(value, list | tuple):
        picked = {v for v in value if isinstance(v, str)}
    else:
        return []
    return [o for o in question.options if o.value in picked]
