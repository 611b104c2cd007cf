"""Renderers for assembled documents: web HTML, email-safe HTML, Markdown, and PDF through Typst.

``render`` is the one entry point; ``RENDER_ENGINE`` names the PDF engine for an artifact's provenance.
These modules see only :mod:`offerloop.assembly.document` values, never the database.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal, overload

from offerloop.assembly.document import Document, Theme
from offerloop.assembly.render.html import render_email, render_html, render_preview
from offerloop.assembly.render.markdown import render_markdown
from offerloop.assembly.render.pdf import render_pdf, typst_source

__all__ = [
    "RENDER_ENGINE",
    "RENDER_VERSIONS",
    "Format",
    "render",
    "render_email",
    "render_html",
    "render_markdown",
    "render_pdf",
    "render_preview",
    "typst_source",
]

Format = Literal["html", "email", "markdown", "pdf"]
FORMATS: tuple[Format, ...] = ("html", "email", "markdown", "pdf")


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


RENDER_VERSIONS: dict[str, str] = {
    "typst": _version("typst"),
    "markdown-it-py": _version("markdown-it-py"),
    "jinja2": _version("jinja2"),
}
RENDER_ENGINE = f"typst {RENDER_VERSIONS['typst']}"


@overload
def render(document: Document, *, fmt: Literal["pdf"], theme: Theme = ...) -> bytes: ...
@overload
def render(document: Document, *, fmt: Literal["html", "email", "markdown"], theme: Theme = ...) -> str: ...
@overload
def render(document: Document, *, fmt: Format, theme: Theme = ...) -> bytes | str: ...
def render(document: Document, *, fmt: Format, theme: Theme = Theme()) -> bytes | str:
    """Render a document: ``pdf`` gives bytes, the others text."""
    if fmt == "pdf":
        return render_pdf(document, theme)
    if fmt == "html":
        return render_html(document, theme)
    if fmt == "email":
        return render_email(document, theme)
    if fmt == "markdown":
        return render_markdown(document, theme)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
