"""Issue 9 item 3: buyer text is plain text in every output (PDF, web HTML, e-mail HTML, preview,
Markdown), through the HTTP API on the real database: hostile quiz answers and names never become
links, images, HTML, headings or lists, and their literal text is what the buyer reads."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pypdf
import pytest
from markdown_it import MarkdownIt
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.assembly.template import MAX_VALUE_CHARS, plain_value

EVIL = "evil.example"

ATOM = """---
id: your-goal
title: "Your goal, {{ buyer.first_name | friend }}"
kind: lesson
tags: [welcome]
---
You said {{ answers.goal }} and we wrote it down.

{{ answers.goal }}

> {{ answers.goal }}

- first: {{ answers.goal }}

| Goal | Name |
| --- | --- |
| {{ answers.goal }} | {{ buyer.name }} |

Prepared for {{ buyer.name }}.
"""

QUIZ = """
id: intake
title: One question
questions:
  - id: goal
    prompt: Your goal?
    type: text
    required: false
    max_length: 8000
"""

POLICY = """
id: goal-workbook
deliverable: workbook
title: "{{ buyer.first_name | Your }} workbook"
sections:
  - key: start
    title: "Start, {{ buyer.name }}"
    intro: "Your words: {{ answers.goal }}"
    slots:
      - key: goal
        tags_any: [welcome]
        fallback: {title: Hello, markdown: "Welcome."}
"""

HOSTILE = {
    "link": "[Claim your refund](https://evil.example/x)",
    "html": '<a href="https://evil.example/x">Claim</a> <img src="https://evil.example/p.png"> <b>bold</b>',
    "bare-url": "see https://evil.example/x and www.evil.example",
    "autolink": "<https://evil.example/x> <mailto:a@evil.example>",
    "image": "![refund](https://evil.example/x.png)",
    "entities": "&lt;a href=&quot;https://evil.example/x&quot;&gt;hi&lt;/a&gt; &amp; &#x41;",
    "line-start": "# Claim heading",
    "list": "1. Claim item",
    "backslash": "\\[Claim\\](https://evil.example/x) \\\\[x](https://evil.example/y)",
    "newlines": "first line\n# Claim heading\n\n- item\n[Claim](https://evil.example/x)",
    "template": "{{ buyer.name }} {% if answers.goal %}twice{% endif %} \\{{ raw }}",
    "reference": "[Claim][r]\n\n[r]: https://evil.example/x",
    "emphasis": "**Claim** _now_ `code` ~~gone~~ | pipe |",
    "long": "Claim" + "x" * 5000 + " https://evil.example/x",
}
NAME = "Maya [Refund](https://evil.example/n)"


class _Html(HTMLParser):
    """Text (whitespace-normalized), URLs in attributes and tag names of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.heading_text: list[str] = []
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("href", "src", "action", "srcset")]
        if re.fullmatch(r"h[1-6]", tag):
            self._heading += 1

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._heading -= 1

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._heading:
            self.heading_text.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


def _html(page: str) -> _Html:
    parser = _Html()
    parser.feed(page)
    parser.close()
    return parser


def _squash(text: str) -> str:
    """Text without whitespace, with typographic quotes made straight (Typst prints smart quotes)."""
    text = text.translate(str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"}))
    return "".join(text.split())


def _check_html(page: str, expected: str) -> None:
    parsed = _html(page)
    assert not [u for u in parsed.urls if EVIL in u]
    assert "img" not in parsed.tags and "b" not in parsed.tags
    assert not any("Claim" in t for t in parsed.heading_text)
    assert " ".join(expected.split()) in parsed.text
    assert NAME in parsed.text


def _setup(client, secret_headers) -> None:
    r = client.post(
        "/v1/content/sync", headers=secret_headers, json={"atoms": [{"text": ATOM, "path": "goal.md"}]}
    )
    assert r.status_code == 200, r.text
    assert client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ}).status_code == 200
    r = client.put("/v1/policies", headers=secret_headers, json={"text": POLICY})
    assert r.status_code == 200, r.text


def _buyer(client, write_headers, user_id: str, goal: str) -> None:
    r = client.post(
        "/v1/identify",
        headers=write_headers,
        json=msg(userId=user_id, messageId=f"{user_id}-id", traits={"name": NAME}),
    )
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/quizzes/intake/answers",
        headers=write_headers,
        json={"user_id": user_id, "answers": {"goal": goal}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted", r.text


def _download(client, secret_headers, artifact_id: str, fmt: str) -> bytes:
    link = client.get(f"/v1/artifacts/{artifact_id}/download", headers=secret_headers, params={"format": fmt})
    assert link.status_code == 200, link.text
    got = client.get(link.json()["url"])
    assert got.status_code == 200
    return got.content


def _pdf_links(reader: pypdf.PdfReader) -> list[str]:
    uris: list[str] = []
    for page in reader.pages:
        for annot in page.get("/Annots") or []:
            action = annot.get_object().get("/A")
            if action is not None and "/URI" in action:
                uris.append(str(action["/URI"]))
    return uris


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_buyer_text_is_plain_text_in_every_format(client, db, write_headers, secret_headers, case):
    answer = HOSTILE[case]
    expected = plain_value(answer)  # what the buyer reads: one line, at most MAX_VALUE_CHARS
    _setup(client, secret_headers)
    _buyer(client, write_headers, "maya", answer)
    made = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "maya", "policy": "goal-workbook"}
    )
    assert made.status_code == 202, made.text
    _check_html(made.json()["preview_html"], expected)
    assert [status for _, _, status in assembly_service.run_pending(db=db)] == ["ready"]
    artifact_id = made.json()["id"]

    for fmt in ("html", "email"):
        _check_html(_download(client, secret_headers, artifact_id, fmt).decode("utf-8"), expected)

    reader = pypdf.PdfReader(io.BytesIO(_download(client, secret_headers, artifact_id, "pdf")))
    assert not [u for u in _pdf_links(reader) if EVIL in u]
    pdf_text = _squash("".join(page.extract_text() for page in reader.pages))
    assert _squash(expected) in pdf_text
    assert _squash(NAME) in pdf_text

    markdown = _download(client, secret_headers, artifact_id, "markdown").decode("utf-8")
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)
    inline = [child for token in tokens for child in (token.children or [])]
    assert not [t for t in inline if t.type in ("link_open", "image") and EVIL in str(t.attrs)]
    assert not [t for t in tokens if t.type == "html_block"] and not [
        t for t in inline if t.type == "html_inline"
    ]


def test_a_value_never_takes_part_in_a_second_substitution_and_long_values_are_cut(
    client, db, write_headers, secret_headers
):
    _setup(client, secret_headers)
    _buyer(client, write_headers, "maya", "{{ buyer.name }} " + "y" * 3000)
    made = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "maya", "policy": "goal-workbook"}
    )
    assembly_service.run_pending(db=db)
    page = _html(_download(client, secret_headers, made.json()["id"], "html").decode("utf-8")).text
    assert "{{ buyer.name }} yyy" in page  # literal, not the buyer's name
    assert "y" * (MAX_VALUE_CHARS - 18) + "\u2026" in page and "y" * MAX_VALUE_CHARS not in page
