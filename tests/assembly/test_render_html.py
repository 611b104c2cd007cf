"""Web page, email-safe page, preview fragment, Markdown, and the render() dispatch."""

from __future__ import annotations

import re

import pytest

from offerloop.assembly.document import Block, Document, Section, Theme
from offerloop.assembly.render import RENDER_ENGINE, render, render_preview
from offerloop.assembly.render.html import page_css, render_email, render_html
from offerloop.assembly.render.markdown import escape_markdown, render_markdown

EVIL = "<script>alert(1)</script>"


def _doc() -> Document:
    return Document(
        title=f"Launch {EVIL}",
        subtitle="Your first 30 days",
        buyer_name="Ada <b>Lovelace</b>",
        created_on="2025-03-01",
        sections=(
            Section(
                key="start",
                title="Getting started",
                intro="Read *this* first.",
                blocks=(
                    Block(
                        markdown="Hello **world** " + EVIL, title="Offer basics", minutes=10, kind="lesson"
                    ),
                    Block(
                        markdown="- [ ] one\n- [x] two", title="Checklist", ai_assisted=True, kind="checklist"
                    ),
                ),
            ),
            Section(
                key="grow",
                title="Growing",
                blocks=(
                    Block(
                        markdown="| a | b |\n|---|--:|\n| 1 | 2 |", title="Pricing table", ai_assisted=True
                    ),
                    Block(markdown="Fallback text.", fallback=True),
                ),
            ),
        ),
    )


THEME = Theme(creator_name="Grace Hopper", primary="#112233")


def test_web_page_is_complete_and_escaped() -> None:
    html = render_html(_doc(), THEME)
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "<script" not in html
    assert "<title>Launch &lt;script&gt;alert(1)&lt;/script&gt;</title>" in html
    assert "Prepared for <strong>Ada &lt;b&gt;Lovelace&lt;/b&gt;</strong>" in html
    assert "By Grace Hopper" in html
    assert '<time datetime="2025-03-01">2025-03-01</time>' in html
    assert '<p class="subtitle">Your first 30 days</p>' in html
    # table of contents links every section and titled block
    for anchor, title in [
        ("section-1", "Getting started"),
        ("section-1-block-1", "Offer basics"),
        ("section-1-block-2", "Checklist"),
        ("section-2", "Growing"),
        ("section-2-block-1", "Pricing table"),
    ]:
        assert f'<a href="#{anchor}">{title}</a>' in html
        assert f'id="{anchor}"' in html
    assert html.count('<span class="ai-tag">AI-assisted</span>') == 2
    assert '<span class="minutes">10 min</span>' in html
    assert '<input type="checkbox" disabled checked> two' in html
    assert "Fallback text." in html
    assert "background: #112233" in html


def test_web_page_has_no_external_assets() -> None:
    html = render_html(_doc(), Theme(logo_svg='<svg xmlns="http://www.w3.org/2000/svg"/>'))
    assert re.search(r"""(src|href)=["']?(https?:)?//""", html) is None
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert '<img class="logo" src="data:image/svg+xml;base64,' in html


def test_hostile_theme_values_fall_back() -> None:
    css = page_css(Theme(primary="red;}</style><script>", body_font="x'; } * { display: none"))
    assert "</style>" not in css and "display: none" not in css
    assert "background: #1f3a5f" in css
    assert 'font-family: "Libertinus Serif", Georgia, "Times New Roman", ' in css  # the default family


def test_email_is_table_layout_with_inline_styles() -> None:
    html = render_email(_doc(), THEME)
    assert "<style" not in html and "<script" not in html and "<img" not in html
    assert 'role="presentation"' in html
    assert "max-width:600px" in html
    assert 'width="600"' in html
    assert html.count(">AI-assisted</span>") == 2
    assert "\u2610</span> one" in html and "\u2611</span> two" in html
    assert '<p style="margin:0 0 12px 0">Hello <strong>world</strong> &lt;script&gt;' in html
    assert '<td style="border:1px solid #cfcfcf;padding:6px 8px;text-align:right">2</td>' in html
    assert "Prepared for <strong>Ada &lt;b&gt;Lovelace&lt;/b&gt;</strong>" in html
    # every block-level tag coming from Markdown carries its own style
    assert re.search(r"<(p|h[1-6]|ul|ol|li|table|th|td)>", html) is None


def test_preview_has_outline_and_first_section_only() -> None:
    frag = render_preview(_doc(), THEME)
    assert frag.startswith('<div class="offerloop-preview">')
    assert "<html" not in frag and "<style" not in frag
    for title in ("Getting started", "Offer basics", "Checklist", "Growing", "Pricing table"):
        assert title in frag
    assert "Hello <strong>world</strong>" in frag
    assert '<span class="ai-tag">AI-assisted</span>' in frag
    assert "<table>" not in frag  # the second section's block is not rendered
    assert render_preview(Document(title="Empty", sections=())) == (
        '<div class="offerloop-preview">\n<nav class="outline" aria-label="Outline">\n<ol>\n</ol>\n</nav>\n</div>\n'
    )


def test_markdown_rendering() -> None:
    doc = Document(
        title="Plan *A*",
        buyer_name="Ada",
        created_on="2025-03-01",
        sections=(
            Section(
                key="s",
                title="First #1",
                blocks=(
                    Block(markdown="# Inner\n\nBody.", title="Step", ai_assisted=True, minutes=5),
                    Block(markdown="- [ ] box"),
                ),
            ),
        ),
    )
    assert render_markdown(doc, Theme(creator_name="Grace")) == (
        "# Plan \\*A\\*\n\n"
        "Prepared for **Ada** · By Grace · 2025-03-01\n\n"
        "## First \\#1\n\n"
        "### Step\n\n"
        "**AI-assisted** · 5 min\n\n"
        "#### Inner\n\nBody.\n\n"
        "- [ ] box\n"
    )
    assert escape_markdown("- [x] <b>1. a</b>") == "\\- \\[x\\] \\<b\\>1. a\\</b\\>"
    assert escape_markdown("12. twelve") == "12\\. twelve"


def test_render_dispatch() -> None:
    doc = _doc()
    assert render(doc, fmt="html") == render_html(doc)
    assert render(doc, fmt="email", theme=THEME) == render_email(doc, THEME)
    assert render(doc, fmt="markdown") == render_markdown(doc)
    assert isinstance(render(doc, fmt="pdf"), bytes)
    with pytest.raises(ValueError, match="unknown format"):
        render(doc, fmt="docx")  # type: ignore[call-overload]
    assert re.fullmatch(r"typst \d+\.\d+\.\d+", RENDER_ENGINE)


def test_renderings_are_deterministic() -> None:
    for fmt in ("html", "email", "markdown"):
        assert render(_doc(), fmt=fmt, theme=THEME) == render(_doc(), fmt=fmt, theme=THEME)
