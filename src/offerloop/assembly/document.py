"""The document model every composer produces and every renderer consumes.

A deliverable is a title, some metadata and ordered sections; a section holds blocks; a block is one
content atom's Markdown (placeholders already filled) plus where it came from. Renderers (HTML, email-safe
HTML, Markdown, PDF through Typst) only ever see these frozen values, never the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Block:
    """One piece of content: an atom's body, or fallback/intro text written in the policy."""

    markdown: str
    title: str | None = None
    atom_id: str | None = None  # None for text that comes from the policy itself
    atom_version: str | None = None  # the atom's content hash
    kind: str = "snippet"  # lesson | template | checklist | snippet | exercise
    minutes: int | None = None
    ai_assisted: bool = False  # the voice rewriter changed this block (labelled in every rendering)
    fallback: bool = False  # the slot had no match and the policy's fallback filled it


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...]
    intro: str | None = None  # Markdown shown before the blocks


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    sections: tuple[Section, ...]
    subtitle: str | None = None
    deliverable: str = "workbook"  # workbook | audit_report | course_pathway
    buyer_name: str | None = None
    created_on: str | None = None  # ISO date shown on the cover
    meta: dict[str, Any] = field(default_factory=dict)  # policy id/version etc.; not rendered

    def blocks(self) -> list[Block]:
        return [b for s in self.sections for b in s.blocks]


@dataclass(frozen=True, slots=True)
class Theme:
    """Per-workspace look. Fonts must be ones shipped with the package (or typst's embedded ones)."""

    name: str = "default"
    primary: str = "#1f3a5f"  # headings, cover band
    accent: str = "#e07a2f"  # callouts, checkboxes
    text: str = "#1b1b1b"
    body_font: str = "Libertinus Serif"
    heading_font: str = "New Computer Modern"
    mono_font: str = "DejaVu Sans Mono"
    logo_svg: str | None = None  # inline SVG markup, shipped with the workspace's theme
    creator_name: str | None = None


def document_to_dict(document: Document) -> dict[str, Any]:
    """JSON-ready form, as stored with each artifact version."""
    return {
        "title": document.title,
        "subtitle": document.subtitle,
        "deliverable": document.deliverable,
        "buyer_name": document.buyer_name,
        "created_on": document.created_on,
        "meta": dict(document.meta),
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "intro": s.intro,
                "blocks": [
                    {
                        "markdown": b.markdown,
                        "title": b.title,
                        "atom_id": b.atom_id,
                        "atom_version": b.atom_version,
                        "kind": b.kind,
                        "minutes": b.minutes,
                        "ai_assisted": b.ai_assisted,
                        "fallback": b.fallback,
                    }
                    for b in s.blocks
                ],
            }
            for s in document.sections
        ],
    }


def document_from_dict(data: dict[str, Any]) -> Document:
    return Document(
        title=data["title"],
        subtitle=data.get("subtitle"),
        deliverable=data.get("deliverable", "workbook"),
        buyer_name=data.get("buyer_name"),
        created_on=data.get("created_on"),
        meta=dict(data.get("meta") or {}),
        sections=tuple(
            Section(
                key=s["key"],
                title=s["title"],
                intro=s.get("intro"),
                blocks=tuple(Block(**b) for b in s["blocks"]),
            )
            for s in data["sections"]
        ),
    )
