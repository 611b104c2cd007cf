"""Worksheet-grade output (issue 9, item 8): writing space in fill-in tables, headings kept with their
text, tables not split to leave a lone row, emoji drawn from a shipped font, heading levels and sizes.

Measured on the real PDF (positions, pages and fonts read back with pypdf) and the real HTML."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass

import pypdf

from offerloop.assembly.document import Block, Document, Section, Theme
from offerloop.assembly.render.html import page_css, render_email, render_html
from offerloop.assembly.render.markdown import render_markdown
from offerloop.assembly.render.pdf import render_pdf

BODY_PT = 11  # the PDF's body text size
EMAIL_BODY_PX = 16  # the e-mail's body text size

A4_WIDTH = 595.2756
MARGIN_X = 2.2 / 2.54 * 72  # 2.2cm
TEXT_WIDTH = A4_WIDTH - 2 * MARGIN_X


@dataclass(frozen=True)
class Run:
    text: str
    page: int
    x: float
    y: float
    size: float
    font: str


def runs(pdf: bytes) -> list[Run]:
    """Every text run of a PDF with its page, position, size and font (as pypdf reads them)."""
    out: list[Run] = []
    for number, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages):

        def visit(text, cm, tm, font_dict, font_size, number=number):
            if text.strip():
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                font = str(font_dict.get("/BaseFont", "")) if font_dict else ""
                out.append(Run(text.strip(), number, x, y, font_size * tm[0] * cm[0], font))

        page.extract_text(visitor_text=visit)
    return out


def first(found: list[Run], text: str, *, after_page: int = 1) -> Run:
    """The first run containing ``text`` after the cover and contents pages."""
    return next(r for r in found if text in r.text and r.page > after_page)


def doc(*blocks: Block, title: str = "Sec") -> Document:
    return Document(title="Workbook", created_on="2026-12-05", sections=(Section("s", title, tuple(blocks)),))


def filler(lines: int) -> Block:
    """Prose that pushes what follows it further down the page, a line at a time."""
    para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 2
    body = "\n\n".join(f"Line {i} {para}" for i in range(lines // 3)) + "\n\n" + "Word " * (lines * 4)
    return Block(markdown=body, title="Filler")


WORKSHEET = "| Question | My answer |\n|---|---|\n| Goal | |\n| Date | |\n| Price | |\n\nAfterwards."


# ------------------------------------------------------------------------------- fill-in table cells
def test_worksheet_table_is_full_width_with_three_lines_per_empty_cell() -> None:
    found = runs(render_pdf(doc(Block(markdown=WORKSHEET, title="Terms"))))
    question, answer = first(found, "Question"), first(found, "My answer")
    goal, date, price = first(found, "Goal"), first(found, "Date"), first(found, "Price")
    # equal columns across the text width: the answer column starts half way, not after "Question"
    assert answer.x - question.x >= TEXT_WIDTH / 2 - 1
    # every fill-in row is at least three lines of body text tall
    three_lines = 3 * BODY_PT * 1.35
    assert goal.y - date.y >= three_lines and date.y - price.y >= three_lines
    assert price.y - first(found, "Afterwards").y >= three_lines


def test_a_table_without_blanks_keeps_its_natural_rows() -> None:
    md = "| Plan | Price |\n|---|---|\n| Basic | 10 |\n| Pro | 20 |"
    found = runs(render_pdf(doc(Block(markdown=md, title="Plans"))))
    assert first(found, "Basic").y - first(found, "Pro").y < 2 * BODY_PT * 1.35


def test_worksheet_html_and_email_give_writing_space() -> None:
    d = doc(Block(markdown=WORKSHEET, title="Terms"))
    html = render_html(d)
    assert '<table class="worksheet">' in html and html.count('<td class="blank"></td>') == 3
    css = page_css()
    assert "table { border-collapse: collapse; margin: 1rem 0; width: 100%; }" in css
    assert "td.blank { height: 4.5em; }" in css
    email = render_email(d)
    blank = re.findall(r'<td class="blank" style="[^"]*height:(\d+)px', email)
    assert len(blank) == 3 and all(int(h) >= 3 * EMAIL_BODY_PX * 1.5 for h in blank)
    assert re.search(r'<table class="worksheet" style="[^"]*width:100%;table-layout:fixed"', email)


# ------------------------------------------------------------------------------- page breaks
def test_headings_are_never_stranded_at_the_bottom_of_a_page() -> None:
    """The heading (and its meta line) moves with what follows, wherever the break falls."""
    followers = {
        "table": "| Zebra head | B |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n| 5 | 6 |",
        "quote": "> Zebra quoted words",
        "code": "```\nZebra code line\nmore\n```",
    }
    for kind, body in followers.items():
        for lines in range(34, 46):  # the break falls between the heading and what follows around 39-41
            titled = Block(markdown=body, title="Stranded Title", minutes=10)
            nested = Block(markdown="# Nested Heading\n\n" + body)
            for block, heading in ((titled, "Stranded Title"), (nested, "Nested Heading"))[
                : 2 if kind == "table" else 1
            ]:
                found = runs(render_pdf(doc(filler(lines), block)))
                head, nxt = first(found, heading), first(found, "Zebra")
                assert head.page == nxt.page, (kind, lines, heading)


def test_short_tables_are_not_split_and_long_ones_repeat_their_header() -> None:
    rows = "\n".join(f"| Row{i} | value {i} |" for i in range(1, 7))
    table = f"| Item | Value |\n|---|---|\n{rows}"
    for lines in range(30, 42):  # the page break falls inside the table around 33-38
        found = runs(render_pdf(doc(filler(lines), Block(markdown=table, title="Six rows"))))
        pages = {first(found, f"Row{i}").page for i in range(1, 7)}
        assert len(pages) == 1, lines  # no lone row before (or after) a break
    thirty = "\n".join(f"| Row{i} | value {i} |" for i in range(1, 31))
    splits = 0
    for lines in range(6):  # the last row alone on the next page around 1-2 without the row-keeping cell
        found = runs(
            render_pdf(
                doc(filler(lines), Block(markdown=f"| Item | Value |\n|---|---|\n{thirty}", title="T"))
            )
        )
        page_of = {r.text: r.page for r in found if r.page > 1}
        per_page = Counter(page_of[f"Row{i}"] for i in range(1, 31))
        pages = sorted(per_page)
        assert per_page[pages[0]] >= 2 and per_page[pages[-1]] >= 2, (lines, per_page)
        splits += len(pages) > 1
    assert splits >= 4
    long_rows = "\n".join(f"| Row{i} | value {i} |" for i in range(1, 61))
    found = runs(render_pdf(doc(Block(markdown=f"| Item | Value |\n|---|---|\n{long_rows}", title="Long"))))
    body_pages = {r.page for r in found if r.text.startswith("Row")}
    header_pages = {r.page for r in found if r.text == "Item"}
    assert len(body_pages) >= 2 and body_pages <= header_pages


def test_html_print_keeps_headings_with_their_text_and_rows_whole() -> None:
    css = page_css()
    assert "h1, h2, h3, h4, h5, h6, .block-meta { break-after: avoid; }" in css
    assert "tr, .block-meta { break-inside: avoid; }" in css
    assert "thead { display: table-header-group; }" in css


# ------------------------------------------------------------------------------- emoji
def test_emoji_are_drawn_from_the_shipped_emoji_font() -> None:
    d = doc(Block(markdown="Launch day 🚀 and done ✅ with a bright idea 💡", title="Go 🎯"))
    found = runs(render_pdf(d, Theme()))
    for emoji in ("🚀", "✅", "💡", "🎯"):
        drawn = [r for r in found if emoji in r.text]
        assert drawn and all("NotoEmoji" in r.font for r in drawn), (emoji, drawn)
    # and each is a real glyph of that font: its ToUnicode map gives it a glyph id other than 0 (.notdef)
    mapped: dict[str, str] = {}
    for page in pypdf.PdfReader(io.BytesIO(render_pdf(d, Theme()))).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            if "NotoEmoji" in str(font["/BaseFont"]):
                cmap = font["/ToUnicode"].get_object().get_data().decode("latin-1")
                for gid, utf16 in re.findall(r"<([0-9A-F]{4})> <([0-9A-F]+)>", cmap):
                    mapped[bytes.fromhex(utf16).decode("utf-16-be")] = gid
    assert {e: mapped[e] != "0000" for e in ("🚀", "✅", "💡", "🎯")} == dict.fromkeys(
        ("🚀", "✅", "💡", "🎯"), True
    )
    # the body text itself stays in the theme's font
    assert "LibertinusSerif" in first(found, "Launch day").font
    assert '"Noto Emoji"' in page_css()
    assert "Noto Emoji" in render_email(d)


# ------------------------------------------------------------------------------- heading levels and sizes
def _tags(html: str) -> list[int]:
    return [int(m) for m in re.findall(r"<h([1-6])[ >]", html)]


def test_atom_headings_nest_under_their_block_without_skipping_levels() -> None:
    md = "## Why\n\ntext\n\n#### Deep\n\nmore\n\n## Again"
    d = doc(Block(markdown=md, title="Titled"), Block(markdown="#### Untitled block heading\n\nx"))
    html = render_html(d)
    main = html[html.index("<main>") :]
    # h2 section, h3 block title, its headings h4 then h5 (not h6), the untitled block's heading h3
    assert _tags(main) == [2, 3, 4, 5, 4, 3]
    email = render_email(d)
    assert _tags(email[email.index('id="section-1"') :]) == [2, 3, 4, 5, 4, 3]
    md_out = render_markdown(d)
    assert re.findall(r"^(#+) ", md_out, flags=re.M) == ["#", "##", "###", "####", "#####", "####", "###"]


def test_heading_sizes_decrease_and_never_go_below_the_body() -> None:
    sizes = [float(x) for x in re.findall(r"^h[1-6] \{ font-size: ([\d.]+)em; \}$", page_css(), flags=re.M)]
    assert len(sizes) == 6 and sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 6
    assert min(sizes) >= 1.0
    email = render_email(doc(Block(markdown="# a\n\n## b\n\n### c\n\n#### d", title="T")))
    px = {int(h): int(s) for h, s in re.findall(r'<h([1-6]) style="[^"]*font-size:(\d+)px', email)}
    assert sorted(px) == [1, 2, 3, 4, 5, 6]
    ordered = [px[level] for level in sorted(px)]
    assert ordered == sorted(ordered, reverse=True) and len(set(ordered)) == 6
    assert min(ordered) >= EMAIL_BODY_PX
    # the PDF, measured: section > block title > the block's headings, each at least the body size
    md = "# One\n\n## Two\n\n### Three\n\n#### Four\n\nBody text here."
    found = runs(render_pdf(doc(Block(markdown=md, title="Title"), title="Section")))
    measured = [first(found, t).size for t in ("Section", "Title", "One", "Two", "Three", "Four")]
    assert measured == sorted(measured, reverse=True) and len(set(measured)) == 6
    assert min(measured) >= first(found, "Body text").size == BODY_PT
