"""What a buyer's answers did to their deliverable: their scores with a tier, and why each section and
piece is there (the composer's conditions and the selector's reasons, in plain words).

:func:`audit_view` builds it from a version's provenance and the quiz that scored the answers (stored
in the provenance as ``audit`` and shown by ``GET /v1/artifacts/{id}``); :func:`with_audit` puts it
in front of an audit report, as its first section. Every value that came from the buyer or the
creator is escaped, so it is plain text in every rendering.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from offerloop.assembly.document import Block, Document, Section
from offerloop.assembly.inputs import format_number
from offerloop.assembly.policy import Policy
from offerloop.assembly.render.markdown import escape_markdown
from offerloop.content.model import Quiz
from offerloop.core.conditions import describe

__all__ = ["AUDIT_SECTION_KEY", "audit_view", "score_ranges", "tier", "with_audit"]

AUDIT_SECTION_KEY = "your-scores"
TIERS = ("low", "medium", "high")  # thirds of the range a quiz allows for a score
_CONDITION = re.compile(r"^when is (true|false): (.*)$")


def score_ranges(quiz: Quiz) -> dict[str, tuple[float, float]]:
    """The lowest and highest total each score dimension of a quiz can reach."""
    low: dict[str, float] = {}
    high: dict[str, float] = {}

    def add(dim: str, lo: float, hi: float) -> None:
        low[dim] = low.get(dim, 0.0) + lo
        high[dim] = high.get(dim, 0.0) + hi

    for q in quiz.questions:
        if q.type == "scale" and q.score and q.max is not None:
            span = [float(q.min or 0), float(q.max)] + ([] if q.required else [0.0])  # skipped adds 0
            add(q.score, min(span), max(span))
        for dim in sorted({d for o in q.options for d in o.scores}):
            points = [o.scores.get(dim, 0.0) for o in q.options]
            if q.type == "multiple":  # any subset, including none
                add(dim, sum(p for p in points if p < 0), sum(p for p in points if p > 0))
            else:  # one option, or none when the question may be skipped
                points += [] if q.required else [0.0]
                add(dim, min(points), max(points))
    return {d: (low[d], high[d]) for d in sorted(low)}


def tier(score: float, low: float, high: float) -> str:
    """``low``, ``medium`` or ``high``: the third of the quiz's range the score falls in."""
    if high <= low:
        return TIERS[-1]
    share = (score - low) / (high - low)
    return TIERS[0] if share < 1 / 3 else TIERS[1] if share < 2 / 3 else TIERS[2]


def _label(key: str) -> str:
    return key.replace("_", " ").replace("-", " ").strip().capitalize() or key


def _why_atom(reason: str) -> str:
    """The selector's reason (``rank 1; bm25 2.1 (pricing, anchor); tags tiers; persona x``) in words."""
    if reason == "fallback atom":
        return "the standard piece for this part"
    words: list[str] = []
    for part in (p.strip() for p in reason.split(";")):
        if m := re.fullmatch(r"bm25 [\d.]+ \((.+)\)", part):
            terms = [t for t in m.group(1).split(", ") if len(t) > 2]  # "m" of "I'm" says nothing
            if terms:
                words.append(f"matches your answers on {', '.join(terms)}")
        elif part.startswith("tags ") and part[5:].strip():
            words.append(f"covers {part[5:].strip()}")
        elif part.startswith("persona "):
            words.append(f"suits buyers like you ({_label(part[8:])})")
    return "; ".join(words) or "the closest match in the library"


def _words(condition: str) -> str:
    """A described condition with readable names and signs: ``pricing confidence ≤ 2``."""
    for sign, symbol in (("<=", "≤"), (">=", "≥"), ("!=", "≠")):
        condition = condition.replace(f" {sign} ", f" {symbol} ")
    return re.sub(r"\b(?:answers|scores)\.", "", condition).replace("_", " ")  # the buyer's own words


def _why_section(reason: str) -> str:
    if reason == "unconditional":
        return "included for every buyer"
    m = _CONDITION.match(reason)
    if m is None:
        return reason
    verdict = "included because " if m.group(1) == "true" else "left out because this was not the case: "
    return verdict + _words(m.group(2))


def _slot_conditions(policy: Policy | None) -> dict[str, str]:
    """location ("sections[0].slots[1]") -> the slot's condition in words, for slots that have one."""
    if policy is None:
        return {}
    return {
        f"sections[{i}].slots[{j}]": _words(describe(slot.when))
        for i, section in enumerate(policy.sections)
        for j, slot in enumerate(section.slots)
        if slot.when is not None
    }


def audit_view(
    provenance: Mapping[str, Any], document: Document, quiz: Quiz | None = None, policy: Policy | None = None
) -> dict[str, Any]:
    """Scores (with the range the quiz allows and a tier) and, per section of the policy, whether it was
    included and why, each piece chosen for it with the condition and the selector's reason, and the
    parts left out with the condition that was not met."""
    inputs = provenance.get("inputs") or {}
    scores: dict[str, Any] = inputs.get("scores") or {}
    ranges = score_ranges(quiz) if quiz is not None else {}
    rows = []
    for dim, value in sorted(scores.items()):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            continue
        row: dict[str, Any] = {"dimension": dim, "score": value, "min": None, "max": None, "tier": None}
        if dim in ranges:
            lo, hi = ranges[dim]
            row.update(min=lo, max=hi, tier=tier(float(value), lo, hi))
        rows.append(row)
    titles = {s.key: s.title for s in document.sections}
    blocks = {b.atom_id: b.title for b in document.blocks() if b.atom_id}
    conditions = _slot_conditions(policy)
    sections: list[dict[str, Any]] = []
    for entry in provenance.get("provenance") or []:
        if not isinstance(entry, Mapping):
            continue
        key = str(entry.get("section"))
        if entry.get("slot") is None:
            sections.append({
                "section": key, "title": titles.get(key, _label(key)), "included": entry.get("status") == "rendered",
                "reason": _why_section(str(entry.get("reason", ""))), "pieces": [], "left_out": [],
            })  # fmt: skip
            continue
        if not sections:
            continue
        status, slot = entry.get("status"), _label(str(entry.get("slot")))
        if status == "skipped":
            sections[-1]["left_out"].append(
                {"slot": slot, "reason": _why_section(str(entry.get("reason", "")))}
            )
            continue
        if status not in ("selected", "fallback"):
            continue
        condition = conditions.get(str(entry.get("location")))
        because = f"included because {condition}" if condition else None
        pieces = [
            {"atom": a.get("id"), "title": str(blocks.get(str(a.get("id"))) or a.get("id")), "condition": because,
             "reason": str(a.get("reason", "")), "why": _why_atom(str(a.get("reason", "")))}
            for a in entry.get("atoms") or [] if isinstance(a, Mapping)
        ]  # fmt: skip
        if not pieces and entry.get("fallback") == "text":
            pieces = [{"atom": None, "title": None, "condition": because, "reason": str(entry.get("reason", "")),
                       "why": "general guidance: nothing in the library fit your answers more closely"}]  # fmt: skip
        sections[-1]["pieces"].extend(pieces)
    return {
        "persona": inputs.get("persona"),
        "level": inputs.get("level"),
        "scores": rows,
        "sections": sections,
    }


def _audit_markdown(view: Mapping[str, Any]) -> str:
    out: list[str] = []
    if view["scores"]:
        out.append("| Score | Yours | Range | Tier |\n| --- | --: | --- | --- |")
        for row in view["scores"]:
            span = (
                f"{format_number(row['min'])} to {format_number(row['max'])}"
                if row["max"] is not None
                else "—"
            )
            cells = (_label(row["dimension"]), format_number(row["score"]), span, row["tier"] or "—")
            out[-1] += "\n| " + " | ".join(escape_markdown(c) for c in cells) + " |"
    else:
        out.append("Your answers gave no scores.")
    lines = []
    for s in view["sections"]:
        verdict = "" if s["included"] else " (not in your report)"
        lines.append(f"- **{escape_markdown(s['title'])}**{verdict}: {escape_markdown(s['reason'])}.")
        for p in s["pieces"]:
            why = "; ".join(w for w in (p["condition"], p["why"]) if w)
            lines.append(f"  - {escape_markdown(p['title'])}: {escape_markdown(why)}." if p["title"] else
                         f"  - {escape_markdown(why)}.")  # fmt: skip
        lines.extend(
            f"  - Not included, {escape_markdown(x['slot'].lower())}: {escape_markdown(x['reason'].removeprefix('left out because '))}."
            for x in s["left_out"]
        )
    if lines:
        out.append("Why each part of this report is here:")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def with_audit(document: Document, view: Mapping[str, Any]) -> Document:
    """The document with a first section showing the buyer's scores, tiers and why each part is there."""
    section = Section(
        key=AUDIT_SECTION_KEY,
        title="Your scores and how this report was chosen",
        intro="Your quiz answers, scored, and what they decided in this report.",
        blocks=(Block(markdown=_audit_markdown(view), kind="snippet"),),
    )
    return replace(document, sections=(section, *document.sections))
