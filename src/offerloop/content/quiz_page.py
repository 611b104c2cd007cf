"""The intake quiz as one self-contained HTML page (a plain form POST, no JavaScript, no external assets)
and the way back: submitted form pairs → an answers dict for ``validate_answers``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, StrictUndefined

from offerloop.content.exceptions import ContentError
from offerloop.content.model import Question, Quiz

__all__ = ["FIELD_PREFIX", "form_errors", "parse_form", "render_quiz_page"]

FIELD_PREFIX: Final = "q."  # form field of a question: "q.<question_id>"
_INT_RE: Final = re.compile(r"[+-]?\d{1,9}")

_PAGE: Final = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ quiz.title }}</title>
<style>
  :root { color-scheme: light; }
  body { margin: 0; background: #f6f5f2; color: #1b1b1b;
         font: 1.05rem/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  main { max-width: 40rem; margin: 0 auto; padding: 2rem 1.25rem 3rem; }
  h1 { font-size: 1.6rem; line-height: 1.25; color: #1f3a5f; margin: 0 0 .5rem; }
  .intro { margin: 0 0 1.5rem; color: #3d3d3d; }
  .question { background: #fff; border: 1px solid #d6d3cc; border-radius: .5rem;
              margin: 0 0 1.25rem; padding: 1rem 1.25rem 1.25rem; }
  fieldset.question { min-width: 0; }
  legend, .prompt { font-weight: 600; padding: 0; display: block; margin-bottom: .5rem; }
  legend { float: left; width: 100%; }
  legend + * { clear: both; }
  .required { font-weight: 400; color: #5a5a5a; font-size: .9em; }
  .choice { display: flex; align-items: flex-start; gap: .5rem; margin: .35rem 0; }
  .choice input { margin-top: .35rem; width: 1.1rem; height: 1.1rem; flex: none; }
  .scale { display: flex; flex-wrap: wrap; gap: .5rem; }
  .scale .choice { flex-direction: column; align-items: center; gap: .1rem; margin: 0; min-width: 2.5rem; }
  .scale .choice input { margin: 0; }
  .hint { color: #5a5a5a; font-size: .9rem; margin: .25rem 0 .5rem; }
  textarea { box-sizing: border-box; width: 100%; min-height: 5rem; font: inherit; padding: .5rem;
             border: 1px solid #8a867d; border-radius: .35rem; }
  input:focus-visible, textarea:focus-visible, button:focus-visible { outline: 3px solid #e07a2f;
             outline-offset: 2px; }
  .error { color: #a32020; font-weight: 600; margin: .5rem 0 0; }
  .has-error { border-color: #a32020; }
  .alert { border: 2px solid #a32020; border-radius: .5rem; background: #fff; padding: .75rem 1rem;
           margin: 0 0 1.25rem; }
  button { font: inherit; font-weight: 600; color: #fff; background: #1f3a5f; border: 0;
           border-radius: .4rem; padding: .7rem 1.4rem; cursor: pointer; }
</style>
</head>
<body>
<main>
<h1>{{ quiz.title }}</h1>
{% if quiz.description %}<p class="intro">{{ quiz.description }}</p>
{% endif %}
{% if has_errors %}<div class="alert" role="alert"><p>Some answers need another look: see the messages below.</p></div>
{% endif %}
<form method="post" action="{{ action_url }}" accept-charset="utf-8">
{% for name, value in hidden %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}
{% for q in questions %}
{% if q.type == "text" %}
<div class="question{% if q.error %} has-error{% endif %}">
<label class="prompt" for="{{ q.dom_id }}">{{ q.prompt }}{% if q.required %} <span class="required">(required)</span>{% endif %}</label>
<p class="hint" id="{{ q.dom_id }}-hint">Up to {{ q.max_length }} characters.</p>
<textarea id="{{ q.dom_id }}" name="{{ q.name }}" rows="3" maxlength="{{ q.max_length }}" aria-describedby="{{ q.described_by }}"{% if q.required %} required{% endif %}{% if q.error %} aria-invalid="true"{% endif %}>{{ q.text }}</textarea>
{% if q.error %}<p class="error" id="{{ q.dom_id }}-error">{{ q.error }}</p>
{% endif %}
</div>
{% else %}
<fieldset class="question{% if q.error %} has-error{% endif %}" id="{{ q.dom_id }}"{% if q.described_by %} aria-describedby="{{ q.described_by }}"{% endif %}>
<legend>{{ q.prompt }}{% if q.required %} <span class="required">(required)</span>{% endif %}</legend>
{% if q.hint %}<p class="hint" id="{{ q.dom_id }}-hint">{{ q.hint }}</p>
{% endif %}
<div class="{{ 'scale' if q.type == 'scale' else 'choices' }}">
{% for c in q.choices %}<div class="choice"><input type="{{ q.input_type }}" id="{{ c.dom_id }}" name="{{ q.name }}" value="{{ c.value }}"{% if c.checked %} checked{% endif %}{% if q.required and q.input_type == "radio" %} required{% endif %}><label for="{{ c.dom_id }}">{{ c.label }}</label></div>
{% endfor %}
</div>
{% if q.error %}<p class="error" id="{{ q.dom_id }}-error">{{ q.error }}</p>
{% endif %}
</fieldset>
{% endif %}
{% endfor %}
<button type="submit">{{ submit_label }}</button>
</form>
</main>
</body>
</html>
"""

_ENV: Final = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_TEMPLATE: Final = _ENV.from_string(_PAGE)


@dataclass(frozen=True, slots=True)
class _Choice:
    dom_id: str
    value: str
    label: str
    checked: bool


@dataclass(frozen=True, slots=True)
class _View:
    """What the template needs for one question (kept out of the template: it only prints)."""

    name: str
    dom_id: str
    prompt: str
    type: str
    input_type: str
    required: bool
    choices: tuple[_Choice, ...]
    hint: str | None
    text: str
    max_length: int | None
    error: str | None
    described_by: str


def answers_url(public_url: str, quiz_id: str, key: str) -> str:
    """Where the hosted page posts its answers: built from the configured public URL (never from the
    request's Host header, which whoever sends the request chooses)."""
    return f"{public_url.rstrip('/')}/v1/quizzes/{quote(quiz_id, safe='')}/answers?{urlencode({'key': key})}"


def render_quiz_page(
    quiz: Quiz,
    *,
    action_url: str,
    hidden: Mapping[str, str],
    answers: Mapping[str, object] | None = None,
    errors: Mapping[str, str] | None = None,
    submit_label: str = "See my results",
) -> str:
    """The quiz as an accessible HTML page whose form POSTs ``q.<question_id>`` fields to ``action_url``.

    ``hidden`` becomes hidden inputs (e.g. ``anonymous_id``). After a refused submission, pass the
    submitted ``answers`` to keep them filled in and ``errors`` (question id → message, see
    ``form_errors``) to show next to each question. Every text is HTML-escaped.
    """
    scheme = urlsplit(action_url).scheme.lower()
    if scheme not in ("", "http", "https"):
        raise ValueError(f"action_url must be an http(s) URL or a path, got scheme {scheme!r}")
    for name in hidden:
        if name.startswith(FIELD_PREFIX):
            raise ValueError(
                f"hidden field {name!r} would be read as an answer: names starting with 'q.' are taken"
            )
    answers = answers or {}
    errors = errors or {}
    views = [_view(q, answers.get(q.id), errors.get(q.id)) for q in quiz.questions]
    return _TEMPLATE.render(
        quiz=quiz,
        questions=views,
        hidden=list(hidden.items()),
        action_url=action_url,
        submit_label=submit_label,
        has_errors=any(v.error for v in views),
    )


def _view(question: Question, answer: object, error: str | None) -> _View:
    dom_id = f"q-{question.id}"
    choices: list[_Choice] = []
    hint: str | None = None
    if question.type == "scale" and question.min is not None and question.max is not None:
        for point in range(question.min, question.max + 1):
            checked = answer == point or answer == str(point)
            choices.append(_Choice(f"{dom_id}-{point - question.min}", str(point), str(point), checked))
        ends = [f"{question.min} = {question.min_label}" if question.min_label else None]
        ends.append(f"{question.max} = {question.max_label}" if question.max_label else None)
        hint = ", ".join(e for e in ends if e) or None
    else:
        picked = set(answer) if isinstance(answer, list | tuple) else {answer}
        for index, option in enumerate(question.options):
            choices.append(_Choice(f"{dom_id}-{index}", option.value, option.label, option.value in picked))
    described = [f"{dom_id}-hint"] if hint or question.type == "text" else []
    if error:
        described.append(f"{dom_id}-error")
    return _View(
        name=f"{FIELD_PREFIX}{question.id}",
        dom_id=dom_id,
        prompt=question.prompt,
        type=question.type,
        input_type="checkbox" if question.type == "multiple" else "radio",
        required=question.required,
        choices=tuple(choices),
        hint=hint,
        text=answer if question.type == "text" and isinstance(answer, str) else "",
        max_length=question.max_length,
        error=error,
        described_by=" ".join(described),
    )


def form_errors(error: ContentError) -> dict[str, str]:
    """A ``validate_answers`` refusal as question id → message, for ``render_quiz_page(errors=...)``."""
    found: dict[str, str] = {}
    for detail in error.details if isinstance(error.details, list) else []:
        qid = detail.get("question") if isinstance(detail, Mapping) else None
        if isinstance(qid, str) and qid not in found:
            found[qid] = str(detail.get("message", "invalid answer"))
    return found


def parse_form(quiz: Quiz, pairs: Iterable[tuple[str, str]]) -> dict[str, object]:
    """Submitted ``(name, value)`` pairs → answers: scale values as ints, multiple choices as lists.

    Fields not starting with ``q.`` (the hidden ones) are ignored. Nothing is validated here: a field
    for an unknown question or a repeated single answer (a list) is passed on for ``validate_answers``
    to refuse.
    """
    submitted: dict[str, list[str]] = {}
    for name, value in pairs:
        if name.startswith(FIELD_PREFIX):
            submitted.setdefault(name[len(FIELD_PREFIX) :], []).append(value)
    answers: dict[str, object] = {}
    for qid, values in submitted.items():
        question = quiz.question(qid)
        if question is not None and question.type == "multiple":
            answers[qid] = [v for v in values if v != ""]
        elif len(values) != 1:
            answers[qid] = values
        elif question is not None and question.type == "scale":
            text = values[0].strip()
            answers[qid] = int(text) if _INT_RE.fullmatch(text) else values[0]
        elif question is not None and question.type == "text":
            answers[qid] = values[0].replace("\r\n", "\n")  # browsers send textarea lines as CRLF
        else:
            answers[qid] = values[0]
    return answers
