"""What the composer knows about one buyer, and the ``{{ placeholder }}`` filling that uses it.

Placeholders are ``{{ root.path }}`` or ``{{ root.path | default }}`` with the roots:

==========  ====================================================================================
buyer       ``name``, ``first_name`` (the first word of ``name`` when not given), ``level``
answers     ``answers.<question_id>``: the answer; a list is joined with ", "
scores      ``scores.<dimension>``: the score, without a trailing ".0" (2.0 -> "2", 2.5 -> "2.5")
date        ``today`` (ISO date), ``year``
persona     ``name``, ``confidence``
==========  ====================================================================================

An unknown root or path, a missing value or an empty one gives the default, or "" without one.
Filling never raises. The rest of the atom language (``{% if %}`` blocks, literal ``\\{{`` tags) and the
escaping of buyer values in Markdown are in :mod:`offerloop.assembly.template`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = ["BuyerInputs", "fill", "format_number", "format_value", "make_filler", "placeholder_values"]


@dataclass(frozen=True, kw_only=True)
class BuyerInputs:
    """Everything composition may use about one buyer; ``today`` is explicit so results are reproducible."""

    today: date
    name: str | None = None
    first_name: str | None = None
    persona: str | None = None  # the buyer's persona name, None when unassigned
    persona_confidence: float | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)  # question id -> str | list[str] | int
    scores: Mapping[str, float] = field(default_factory=dict)  # dimension -> score
    level: int | None = None  # the buyer's level (1..3) when known
    goal_text: str = ""

    def __post_init__(self) -> None:
        # Own copies: a caller mutating its dicts afterwards must not change these inputs.
        object.__setattr__(self, "answers", dict(self.answers))
        object.__setattr__(self, "scores", dict(self.scores))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as recorded in provenance)."""
        return {
            "name": self.name,
            "first_name": self.first_name,
            "persona": self.persona,
            "persona_confidence": self.persona_confidence,
            "answers": {k: list(v) if isinstance(v, list | tuple) else v for k, v in self.answers.items()},
            "scores": dict(self.scores),
            "level": self.level,
            "goal_text": self.goal_text,
            "today": self.today.isoformat(),
        }


def format_number(value: float) -> str:
    """A number as shown to buyers: at most two decimals, no trailing ".0"."""
    rounded = round(float(value), 2)
    if rounded.is_integer():
        return str(int(rounded))
    return str(rounded)


def format_value(value: Any) -> str:
    """Any answer or score as text: lists joined with ", ", numbers via :func:`format_number`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value) if value == value and abs(value) != float("inf") else ""
    if isinstance(value, list | tuple):
        return ", ".join(part for part in (format_value(v) for v in value) if part)
    return str(value)


def _first_name(inputs: BuyerInputs) -> str:
    if inputs.first_name and inputs.first_name.strip():
        return inputs.first_name.strip()
    if inputs.name and inputs.name.strip():
        return inputs.name.split()[0]
    return ""


def placeholder_values(inputs: BuyerInputs) -> dict[str, dict[str, str]]:
    """Every placeholder value as text, by root then path (``values["buyer"]["first_name"]``)."""
    try:
        return {
            "buyer": {
                "name": (inputs.name or "").strip(),
                "first_name": _first_name(inputs),
                "level": format_value(inputs.level),
            },
            "answers": {str(k): format_value(v) for k, v in inputs.answers.items()},
            "scores": {str(k): format_value(v) for k, v in inputs.scores.items()},
            "date": {"today": inputs.today.isoformat(), "year": str(inputs.today.year)},
            "persona": {
                "name": inputs.persona or "",
                "confidence": format_value(inputs.persona_confidence),
            },
        }
    except Exception:  # filling never raises, whatever odd values the inputs hold
        return {}


def make_filler(inputs: BuyerInputs, *, markdown: bool = False) -> Callable[[str], str]:
    """A function filling texts for these inputs (the values are computed once); ``markdown``: values are
    escaped so they stay plain text in Markdown. See :mod:`offerloop.assembly.template`."""
    from offerloop.assembly.template import make_renderer  # the template language builds on this module

    return make_renderer(inputs, markdown=markdown)


def fill(text: str, inputs: BuyerInputs, *, markdown: bool = False) -> str:
    """``text`` filled for ``inputs``: placeholders, ``{% if %}`` blocks and literal ``\\{{`` tags."""
    if "{" not in text:
        return text
    return make_filler(inputs, markdown=markdown)(text)
