"""The fonts a theme may name, and the emoji fallback every rendering uses.

A theme font is honoured only if the PDF engine really has it: the families embedded in the Typst
compiler, and the ones shipped in ``fonts/`` beside this module (with their licences). Any other name
is refused when the theme is set (``unsupported_font``), never silently replaced at render time.
HTML cannot embed them without bloating every page and e-mail, so it names the family first and then a
close, widely installed fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "EMOJI_CSS",
    "EMOJI_FONT",
    "FONTS",
    "FONT_DIR",
    "SUPPORTED_FONTS",
    "FontFamily",
    "canonical_font",
    "css_stack",
]

FONT_DIR: Final = Path(__file__).parent / "fonts"


@dataclass(frozen=True, slots=True)
class FontFamily:
    name: str
    css_fallback: str  # what a browser or mail client uses when it lacks the family
    shipped_in: str  # "typst" (embedded in the compiler) or "offerloop" (a file in fonts/)
    licence: str


FONTS: Final[dict[str, FontFamily]] = {
    f.name: f
    for f in (
        FontFamily("Libertinus Serif", 'Georgia, "Times New Roman", serif', "typst", "OFL-1.1"),
        FontFamily(
            "New Computer Modern", '"Latin Modern Roman", "CMU Serif", Georgia, serif', "typst", "GUST"
        ),
        FontFamily("Open Sans", '"Helvetica Neue", Arial, sans-serif', "offerloop", "Apache-2.0"),
        FontFamily(
            "DejaVu Sans Mono", 'Menlo, Consolas, "Courier New", monospace', "typst", "Bitstream Vera"
        ),
    )
}
SUPPORTED_FONTS: Final[tuple[str, ...]] = tuple(sorted(FONTS))

# Shipped in fonts/ (SIL OFL): the last family of every font list, so an emoji or symbol none of the
# text fonts has is drawn from it instead of as an empty box.
EMOJI_FONT: Final = "Noto Emoji"
EMOJI_CSS: Final = '"Noto Emoji", "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji"'


def canonical_font(name: object) -> str | None:
    """The supported family ``name`` designates (case and surrounding space ignored), else None."""
    if not isinstance(name, str):
        return None
    wanted = " ".join(name.split()).casefold()
    return next((n for n in SUPPORTED_FONTS if n.casefold() == wanted), None)


def css_stack(name: str, default: str, *, emoji: bool = True) -> str:
    """A CSS font-family list for a theme font: the family, its close fallbacks, then (unless ``emoji``
    is false) the emoji fonts before the generic family."""
    family = FONTS.get(canonical_font(name) or "") or FONTS[default]
    fallback = _before_generic(family.css_fallback) if emoji else family.css_fallback
    return f'"{family.name}", {fallback}'


def _before_generic(stack: str) -> str:
    """Insert the emoji families before the trailing generic family (serif, sans-serif, monospace)."""
    head, _, generic = stack.rpartition(", ")
    return f"{head}, {EMOJI_CSS}, {generic}" if head else f"{EMOJI_CSS}, {generic}"
