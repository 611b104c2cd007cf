"""Content atoms: parsing, versions, every file:line problem, placeholders and corpus loading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from offerloop.content.atoms import (
    Placeholder,
    content_version,
    load_corpus,
    parse_atom,
    placeholders,
    scan_placeholders,
)
from offerloop.content.exceptions import ContentError
from offerloop.content.model import Atom
from offerloop.core.errors import OfferloopError

GOOD = """\
---
id: price-anchor-basics
title: "Anchor your price before you show it"
kind: lesson
tags: [pricing, launch]
level: 2
persona_fit: [deal_seeker]
outcome: "Pick a launch price with a visible anchor"
minutes: 10
source: "offerloop demo corpus"
licence: "CC-BY-4.0"
ai_rewrite: true
---

Hi {{ buyer.first_name | there }}, you said: {{ answers.goal }}.

- [ ] Write your anchor price
"""

GOOD_REORDERED = """\
---
ai_rewrite: yes
licence:   CC-BY-4.0
source: offerloop demo corpus
minutes: 10
outcome: Pick a launch price with a visible anchor
persona_fit:
  - deal_seeker
level: 2
tags:
  - pricing
  - launch
kind: lesson
title: Anchor your price before you show it
id: price-anchor-basics
---
Hi {{ buyer.first_name | there }}, you said: {{ answers.goal }}.

- [ ] Write your anchor price


"""

MINIMAL = "---\nid: tiny\ntitle: Tiny\nkind: snippet\n---\nJust this.\n"


def problems_of(text: str, path: str = "content/x.md") -> list[str]:
    with pytest.raises(ContentError) as caught:
        parse_atom(text, path=path)
    return caught.value.problems


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_full_atom() -> None:
    atom = parse_atom(GOOD, path="content/pricing.md")
    assert atom == Atom(
        id="price-anchor-basics",
        title="Anchor your price before you show it",
        kind="lesson",
        body="Hi {{ buyer.first_name | there }}, you said: {{ answers.goal }}.\n\n- [ ] Write your anchor price",
        version=atom.version,
        tags=("pricing", "launch"),
        level=2,
        persona_fit=("deal_seeker",),
        outcome="Pick a launch price with a visible anchor",
        minutes=10,
        source="offerloop demo corpus",
        licence="CC-BY-4.0",
        ai_rewrite=True,
        path="content/pricing.md",
    )
    assert len(atom.version) == 16
    assert all(c in "0123456789abcdef" for c in atom.version)


def test_defaults() -> None:
    atom = parse_atom(MINIMAL)
    assert atom == Atom(
        id="tiny", title="Tiny", kind="snippet", body="Just this.", version=atom.version, path="<string>"
    )
    assert (atom.tags, atom.level, atom.persona_fit, atom.ai_rewrite) == ((), 1, (), False)
    assert (atom.outcome, atom.minutes, atom.source, atom.licence) == (None, None, None, None)


def test_null_optional_values_mean_not_given() -> None:
    text = "---\nid: tiny\ntitle: Tiny\nkind: snippet\ntags:\noutcome: ~\nminutes: null\n---\nJust this.\n"
    assert parse_atom(text).version == parse_atom(MINIMAL).version


def test_crlf_and_bom_are_accepted() -> None:
    text = "\ufeff" + MINIMAL.replace("\n", "\r\n")
    atom = parse_atom(text)
    assert atom.body == "Just this."
    assert atom.version == parse_atom(MINIMAL).version


def test_repeated_tags_are_kept_once() -> None:
    text = MINIMAL.replace("kind: snippet\n", "kind: snippet\ntags: [a, b, a]\n")
    assert parse_atom(text).tags == ("a", "b")


def test_dates_stay_strings() -> None:
    # A date-looking title is text, not a datetime.date.
    atom = parse_atom(MINIMAL.replace("title: Tiny", "title: 2024-05-01"))
    assert atom.title == "2024-05-01"


# --- versions --------------------------------------------------------------------------------------


def test_version_ignores_key_order_quoting_and_whitespace() -> None:
    assert parse_atom(GOOD).version == parse_atom(GOOD_REORDERED).version


def test_version_is_the_hash_of_canonical_front_matter_and_body() -> None:
    front = {
        "id": "tiny",
        "title": "Tiny",
        "kind": "snippet",
        "tags": [],
        "level": 1,
        "persona_fit": [],
        "outcome": None,
        "minutes": None,
        "source": None,
        "licence": None,
        "ai_rewrite": False,
    }
    canonical = json.dumps(
        {"front_matter": front, "body": "Just this."},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert parse_atom(MINIMAL).version == expected
    assert content_version({"b": 1, "a": [1, 2]}) == content_version({"a": [1, 2], "b": 1})


def test_explicit_defaults_give_the_same_version() -> None:
    explicit = MINIMAL.replace("kind: snippet\n", "kind: snippet\nlevel: 1\ntags: []\nai_rewrite: false\n")
    assert parse_atom(explicit).version == parse_atom(MINIMAL).version


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Write your anchor price", "Write your anchor price now"),  # body
        ("level: 2", "level: 3"),
        ("tags: [pricing, launch]", "tags: [launch, pricing]"),  # tag order is meaningful (display)
        ("ai_rewrite: true", "ai_rewrite: false"),
        ('title: "Anchor your price before you show it"', 'title: "Anchor your price first"'),
        ("minutes: 10", "minutes: 11"),
    ],
)
def test_any_meaningful_change_gives_a_new_version(old: str, new: str) -> None:
    assert old in GOOD
    assert parse_atom(GOOD.replace(old, new)).version != parse_atom(GOOD).version


# --- problems, each with its file and line ---------------------------------------------------------


def test_error_is_an_offerloop_error_with_every_problem() -> None:
    text = "---\nid: pricing\ntitle: Pricing\nkind: lesson\nlevel: high\n---\nBody\n"
    with pytest.raises(ContentError) as caught:
        parse_atom(text, path="content/pricing.md")
    error = caught.value
    assert isinstance(error, OfferloopError)
    assert error.status_code == 422
    assert error.code == "invalid_content"
    assert error.problems == ["content/pricing.md:5: level: must be an integer, got 'high'"]
    assert str(error) == "content/pricing.md:5: level: must be an integer, got 'high'"
    assert error.to_dict()["error"]["details"] == [
        {"path": "content/pricing.md", "line": 5, "message": "level: must be an integer, got 'high'"}
    ]


def test_missing_front_matter() -> None:
    assert problems_of("# Pricing\n\nBody\n") == [
        "content/x.md:1: missing front matter: the file must start with a '---' line, then YAML, then '---'"
    ]


def test_front_matter_not_closed() -> None:
    assert problems_of("---\nid: a\ntitle: b\n") == [
        "content/x.md:1: front matter is not closed: add a '---' line after it"
    ]


def test_bad_yaml_line_is_the_file_line() -> None:
    # YAML line 3 ("kind: lesson" after an unclosed flow list) is file line 4.
    text = "---\nid: a\ntitle: [b\nkind: lesson\n---\nbody\n"
    assert problems_of(text) == ["content/x.md:4: invalid YAML (column 5): expected ',' or ']', but got ':'"]
    text = "---\nid: a\ntitle: b\n  kind: lesson\n---\nbody\n"
    assert problems_of(text) == [
        "content/x.md:4: invalid YAML (column 7): mapping values are not allowed here"
    ]


def test_bad_yaml_still_reports_body_problems() -> None:
    text = "---\nid: [a\n---\nHello {{ buyer.name\n"
    assert problems_of(text) == [
        "content/x.md:2: invalid YAML (column 7): expected ',' or ']', but got '<stream end>'",
        "content/x.md:4: unbalanced '{{': no closing '}}' on the same line",
    ]


def test_front_matter_must_be_a_mapping() -> None:
    assert problems_of("---\n- a\n- b\n---\nbody\n") == ["content/x.md:2: must be a mapping, got ['a', 'b']"]


def test_missing_required_keys() -> None:
    assert problems_of("---\n---\nbody\n") == [
        # The front matter starts on line 2 (after the opening '---').
        "content/x.md:2: missing required key 'id'",
        "content/x.md:2: missing required key 'title'",
        "content/x.md:2: missing required key 'kind'",
    ]


def test_duplicate_key() -> None:
    assert problems_of("---\nid: a\nid: b\ntitle: t\nkind: lesson\n---\nx\n") == [
        "content/x.md:3: duplicate key 'id' (first at line 2)"
    ]


def test_empty_body() -> None:
    assert problems_of("---\nid: a\ntitle: t\nkind: lesson\n---\n\n   \n") == [
        "content/x.md:5: the body is empty: write the Markdown after the closing '---'"
    ]


def test_every_problem_at_once_in_line_order() -> None:
    text = (
        "---\n"  # 1
        "id: Bad Slug\n"  # 2
        "title: ''\n"  # 3
        "kind: video\n"  # 4
        "tags: [ok, Not Ok]\n"  # 5
        "level: high\n"  # 6
        "persona_fit: deal_seeker\n"  # 7
        "minutes: 0\n"  # 8
        "outcome: 5\n"  # 9
        "ai_rewrite: maybe\n"  # 10
        "colour: red\n"  # 11
        "tag: [x]\n"  # 12
        "---\n"  # 13
        "\n"  # 14
        "{{ buyer.first_name | there }}\n"  # 15
        "{{ user.name }} and {{ buyer }}\n"  # 16
        "{{ }} {{ buyer..x }}\n"  # 17
        "{{ answers.stage\n"  # 18
    )
    slug = "a slug (lowercase letters, digits and '-', e.g. 'price-anchor')"
    allowed = "id, title, kind, tags, level, persona_fit, outcome, minutes, source, licence, ai_rewrite"
    assert problems_of(text) == [
        f"content/x.md:2: id: must be {slug}, got 'Bad Slug'",
        "content/x.md:3: title: must not be empty, got ''",
        "content/x.md:4: kind: must be one of lesson, template, checklist, snippet, exercise, got 'video'",
        f"content/x.md:5: tags[1]: must be {slug}, got 'Not Ok'",
        "content/x.md:6: level: must be an integer, got 'high'",
        "content/x.md:7: persona_fit: must be a list, got 'deal_seeker'",
        "content/x.md:8: minutes: must be at least 1, got 0",
        "content/x.md:9: outcome: must be a string, got 5",
        "content/x.md:10: ai_rewrite: must be true or false, got 'maybe'",
        f"content/x.md:11: colour: unknown key 'colour' (allowed: {allowed})",
        "content/x.md:12: tag: unknown key 'tag' (did you mean 'tags'?)",
        "content/x.md:16: unknown placeholder root 'user' in '{{ user.name }}' "
        "(allowed: buyer, answers, scores, date, persona)",
        "content/x.md:16: placeholder '{{ buyer }}' needs a field, e.g. buyer.first_name",
        "content/x.md:17: empty placeholder '{{ }}'",
        "content/x.md:17: invalid placeholder '{{ buyer..x }}': expected a dotted path like buyer.first_name",
        "content/x.md:18: unbalanced '{{': no closing '}}' on the same line",
    ]


def test_list_items_are_reported_on_their_own_line() -> None:
    text = "---\nid: a\ntitle: t\nkind: lesson\ntags:\n  - ok\n  - BAD\npersona_fit:\n  - 9lives\n---\nx\n"
    assert problems_of(text) == [
        "content/x.md:7: tags[1]: must be a slug (lowercase letters, digits and '-', e.g. 'price-anchor'), got 'BAD'",
        "content/x.md:9: persona_fit[0]: must be a persona name "
        "(lowercase letters, digits and '_', starting with a letter), got '9lives'",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("level: 0", "level: must be at least 1, got 0"),
        ("level: 4", "level: must be at most 3, got 4"),
        ("level: true", "level: must be an integer, got true"),
        ("level: 1.5", "level: must be an integer, got 1.5"),
        ("minutes: -3", "minutes: must be at least 1, got -3"),
        ("minutes: ten", "minutes: must be an integer, got 'ten'"),
        ("tags: pricing", "tags: must be a list, got 'pricing'"),
        ("source: [a]", "source: must be a string, got ['a']"),
        ("licence: 4", "licence: must be a string, got 4"),
        ("ai_rewrite: 1", "ai_rewrite: must be true or false, got 1"),
        (
            "kind: Lesson",
            "kind: must be one of lesson, template, checklist, snippet, exercise, got 'Lesson' (did you mean 'lesson'?)",
        ),
    ],
)
def test_wrong_types(line: str, message: str) -> None:
    text = f"---\nid: a\ntitle: t\nkind: lesson\n{line}\n---\nx\n"
    if line.startswith("kind:"):
        text = f"---\nid: a\ntitle: t\n{line}\n---\nx\n"
        assert problems_of(text) == [f"content/x.md:4: {message}"]
    else:
        assert problems_of(text) == [f"content/x.md:5: {message}"]


def test_placeholder_problem_in_title() -> None:
    text = "---\nid: a\ntitle: 'Hi {{ name }}'\nkind: lesson\n---\nx\n"
    assert problems_of(text) == [
        "content/x.md:3: unknown placeholder root 'name' in '{{ name }}' "
        "(allowed: buyer, answers, scores, date, persona)"
    ]


def test_lone_closing_braces_are_not_a_problem() -> None:
    body = "```python\nd = {'a': {'b': 1}}\n```\n"
    atom = parse_atom(MINIMAL.replace("Just this.\n", body))
    assert atom.body == body.rstrip()


# --- placeholders ----------------------------------------------------------------------------------


def test_placeholders_lists_each_path_once_in_order() -> None:
    text = (
        "{{ buyer.first_name | there }} {{ date.today }}\n{{buyer.first_name}} {{ scores.readiness }} {{ bad"
    )
    assert placeholders(text) == ["buyer.first_name", "date.today", "scores.readiness"]


def test_scan_placeholders_gives_defaults_offsets_and_lines() -> None:
    text = "Hi {{ buyer.first_name | there }}!\n{{ persona.name }} {{ answers.goal |}}"
    found, problems = scan_placeholders(text, first_line=10)
    assert problems == []
    assert found == [
        Placeholder("buyer.first_name", "there", 3, 33, 10),
        Placeholder("persona.name", None, 35, 53, 11),
        Placeholder("answers.goal", "", 54, 73, 11),
    ]
    assert text[3:33] == "{{ buyer.first_name | there }}"


def test_placeholder_closing_on_another_line_is_unbalanced() -> None:
    found, problems = scan_placeholders("a {{ buyer.name\n}} b")
    assert found == []
    assert problems == [(1, "unbalanced '{{': no closing '}}' on the same line")]


def test_nested_opening_is_unbalanced() -> None:
    found, problems = scan_placeholders("{{ x {{ buyer.name }}")
    assert [p.path for p in found] == ["buyer.name"]
    assert problems == [(1, "unbalanced '{{': no closing '}}' on the same line")]


# --- corpus ----------------------------------------------------------------------------------------


def write(root: Path, rel: str, text: str) -> None:
    file = root / rel
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")


def test_load_corpus_with_a_duplicate_and_a_broken_file(tmp_path: Path) -> None:
    write(tmp_path, "z-last.md", MINIMAL.replace("id: tiny", "id: zeta"))
    write(tmp_path, "a/pricing.md", GOOD)
    write(tmp_path, "b/copy.md", "---\ntitle: Copy\n\nid: price-anchor-basics\nkind: snippet\n---\nCopy.\n")
    write(tmp_path, "broken.md", "---\nid: broken\ntitle: Broken\nkind: lesson\nlevel: high\n---\nBody\n")
    write(tmp_path, "notes.txt", "not markdown, ignored")
    write(tmp_path, ".drafts/hidden.md", "no front matter, but hidden")
    write(tmp_path, "c/latin1.md", "")
    (tmp_path / "c" / "latin1.md").write_bytes(b"---\nid: caf\xe9\n---\n")

    atoms, problems = load_corpus(tmp_path)

    assert [(a.id, a.path) for a in atoms] == [("price-anchor-basics", "a/pricing.md"), ("zeta", "z-last.md")]
    assert problems == [
        "b/copy.md:4: duplicate id 'price-anchor-basics': already used by a/pricing.md:2",
        "broken.md:5: level: must be an integer, got 'high'",
        "c/latin1.md:1: not UTF-8 text",
    ]
    assert atoms[0] == parse_atom(GOOD, path="a/pricing.md")


def test_load_corpus_of_an_empty_directory(tmp_path: Path) -> None:
    assert load_corpus(tmp_path) == ([], [])


def test_load_corpus_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ContentError) as caught:
        load_corpus(tmp_path / "nope")
    assert caught.value.problems == [f"{tmp_path / 'nope'}: not a directory"]
