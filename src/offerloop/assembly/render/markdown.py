"""Markdown rendering of a whole document: a title block, then ``##`` sections and ``###`` blocks.

Block Markdown is passed through with its top-level headings demoted under the block headings;
document values (title, names, section and block titles) are escaped so they stay plain text.
"""

from __future__ import annotations

import re

from offerloop.assembly.document import Block, Document, Theme
from offerloop.assembly.render.markup import shift_markdown_headings

__all__ = ["AI_LABEL", "escape_markdown", "render_markdown"]

AI_LABEL = "AI-assisted"
_DEFAULT = Theme()
_SPECIAL = re.compile(r"([\\`*_\[\]{}<>#|!~])")
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])(?=\s|$)")


def escape_markdown(text: str) -> str:
    """One line of plain text that Markdown shows literally (newlines become spaces)."""
    flat = " ".join(text.split())
    escaped = _SPECIAL.sub(r"\\\1", flat)
    return _LINE_START.sub(
        lambda m: m.group(1) + "".join("\\" + c if not c.isdigit() else c for c in m.group(2)), escaped
    )


def _block(block: Block) -> str:
    parts: list[str] = []
    if block.title:
        parts.append(f"### {escape_markdown(block.title)}")
    meta = []
    if block.ai_assisted:
        meta.append(f"**{AI_LABEL}**")
    if block.minutes is not None and block.minutes >= 0:
        meta.append(f"{block.minutes} min")
    if meta:
        parts.append("_" + " · ".join(meta) + "_" if not block.ai_assisted else " · ".join(meta))
    body = shift_markdown_headings(block.markdown, 3 if block.title else 2).strip()
    if body:
        parts.append(body)
    return "\n\n".join(parts)


def render_markdown(document: Document, theme: Theme = _DEFAULT) -> str:
    """The document as one Markdown file (CommonMark + GitHub tables and task lists)."""
    out = [f"# {escape_markdown(document.title)}"]
    if document.subtitle:
        out.append(f"_{escape_markdown(document.subtitle)}_")
    facts = []
    if document.buyer_name:
        facts.append(f"Prepared for **{escape_markdown(document.buyer_name)}**")
    if theme.creator_name:
        facts.append(f"By {escape_markdown(theme.creator_name)}")
    if document.created_on:
        facts.append(escape_markdown(document.created_on))
    if facts:
        out.append(" · ".join(facts))
    for section in document.sections:
        out.append(f"## {escape_markdown(section.title)}")
        if section.intro:
            out.append(shift_markdown_headings(section.intro, 2).strip())
        out.extend(_block(b) for b in section.blocks)
    return "\n\n".join(p for p in out if p) + "\n"
