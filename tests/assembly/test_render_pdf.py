"""PDF through Typst: the generated source is deterministic and escaped; the PDF opens and says what it should."""

from __future__ import annotations

import io

import pytest
import typst
from pypdf import PdfReader

from offerloop.assembly.document import Block, Document, Section, Theme
from offerloop.assembly.render.markup import escape_typst
from offerloop.assembly.render.pdf import compile_typst, render_pdf, typst_source

LESSON = """Every offer starts with one **clear** promise and a _reason_ to act now.

## What to decide

1. Who the offer is for
2. What changes for them
   - in a week
   - in a month

| Tier | Price | Includes |
|:-----|------:|:---------|
| Starter | 29 | Workbook |
| Pro | 99 | Workbook + calls |

> Price the outcome, not the hours.

```text
promise = outcome + deadline
```
"""

BLOCK_TITLES = ("Your promise", "Launch checklist", "Pricing: $ and #tiers", "Next steps")


def _doc(buyer: str = "Ada Lovelace") -> Document:
    return Document(
        title="Launch Workbook",
        subtitle="The first thirty days",
        buyer_name=buyer,
        created_on="2025-03-01",
        sections=(
            Section(
                key="start",
                title="Getting started",
                intro="Read this *first*.",
                blocks=(
                    Block(markdown=LESSON, title=BLOCK_TITLES[0], minutes=15, kind="lesson"),
                    Block(
                        markdown="- [ ] Draft the sales page\n- [x] Pick a launch date\n- [ ] Email the list",
                        title=BLOCK_TITLES[1],
                        kind="checklist",
                        ai_assisted=True,
                    ),
                ),
            ),
            Section(
                key="grow",
                title="Growing",
                blocks=(
                    Block(markdown=LESSON, title=BLOCK_TITLES[2], ai_assisted=True),
                    Block(
                        markdown='Injection stays text: #import "x" $x$ <script>alert(1)</script> @ref *not bold*'
                    ),
                    Block(markdown="Book a call when you are ready.", title=BLOCK_TITLES[3], fallback=True),
                ),
            ),
        ),
    )


THEME = Theme(creator_name="Grace Hopper")


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(_doc(), THEME)


@pytest.fixture(scope="module")
def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_opens_with_exact_page_count(pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 4  # cover, contents, one page per section
    assert reader.metadata is not None and reader.metadata.title == "Launch Workbook"


def test_pdf_text_has_buyer_titles_and_ai_label(pdf_text: str) -> None:
    assert "Ada Lovelace" in pdf_text
    assert "Grace Hopper" in pdf_text
    for title in BLOCK_TITLES:
        assert title in pdf_text
    assert "AI-assisted" in pdf_text
    assert "Contents" in pdf_text
    assert "#import “x” $x$ <script>alert(1)</script> @ref not bold" in pdf_text


def test_pdf_is_byte_for_byte_reproducible(pdf: bytes) -> None:
    assert render_pdf(_doc(), THEME) == pdf


def test_typst_source_is_deterministic_and_escaped() -> None:
    src = typst_source(_doc(), THEME)
    assert src == typst_source(_doc(), THEME)
    assert '\\#import "x" \\$x\\$ \\<script\\>alert(1)\\<\\/script\\> \\@ref #emph[not bold];' in src
    assert "#heading(level: 2)[Pricing: \\$ and \\#tiers];" in src
    assert "#ol-block-meta(ai: true, minutes: none);" in src
    assert "#ol-block-meta(ai: false, minutes: 15);" in src
    assert "ol-check(true), [Pick a launch date]" in src
    assert '#set page(paper: "a4"' in src
    assert "#outline(" in src


def test_hostile_document_values_stay_text() -> None:
    buyer = '"]; #read("/etc/passwd") //'
    doc = _doc(buyer=buyer)
    theme = Theme(creator_name='x", date: auto, title: "y', body_font='Evil") #read("/etc/hosts')
    src = typst_source(doc, theme)
    assert escape_typst(buyer) in src
    # a read() that ran would fail: the compiler's root is an empty directory
    assert compile_typst(src).startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(render_pdf(doc, THEME)))
    assert any(
        '#read("/etc/passwd")' in p.extract_text().replace("“", '"').replace("”", '"') for p in reader.pages
    )


def test_hostile_theme_compiles() -> None:
    theme = Theme(primary='red") #panic("x', body_font='Evil") + panic("x', logo_svg="<svg not really")
    assert render_pdf(_doc(), theme).startswith(b"%PDF-")  # bad logo dropped, bad colour replaced


def test_logo_is_embedded() -> None:
    logo = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    )
    src = typst_source(_doc(), Theme(logo_svg=logo))
    assert '#image(bytes("<svg xmlns=\\"http://www.w3.org/2000/svg\\"' in src
    assert render_pdf(_doc(), Theme(logo_svg=logo)).startswith(b"%PDF-")


def test_invalid_typst_raises_typst_error() -> None:
    with pytest.raises(typst.TypstError):
        compile_typst("#panic(1)")
