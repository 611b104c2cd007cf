"""Human review that stands: what a reviewer sees, and what a regeneration keeps of their decision.

A version a human reviewed (approved, edited or rejected) is a decision. A later version of the same
artifact — regenerated after an atom or policy change — is *held*: it is rendered, then goes back to the
review queue instead of becoming ready, with a diff against the last reviewed version. The reviewer's
edits are carried onto the new version where the edited block still exists, and flagged where it does
not. These are pure functions over stored versions; the service owns the transaction.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from offerloop.assembly.document import Document, Section
from offerloop.models import ArtifactVersion

HELD = "review_hold"  # provenance key of a held version: why, against which version, edits not carried
EDITS = "edits"  # provenance key: the reviewer edits in effect on this version (made here or carried)
ACTIONS = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def block_key(section_key: str, index: int) -> str:
    return f"{section_key}/{index}"


def last_reviewed(versions: Sequence[ArtifactVersion], below: int | None = None) -> ArtifactVersion | None:
    """The latest version a human reviewed (below ``below`` when given)."""
    done = [v for v in versions if v.reviewed_at is not None and (below is None or v.version < below)]
    return max(done, key=lambda v: v.version) if done else None


def review_outcome(row: ArtifactVersion) -> str | None:
    """approved | edited | rejected for a reviewed version (None if no human reviewed it)."""
    if row.reviewed_at is None:
        return None
    return str(
        (row.provenance or {}).get("review_action")
        or ("rejected" if row.status == "rejected" else "approved")
    )


def deliverable(row: ArtifactVersion) -> bool:
    """Ready, and not a held version that no human has approved yet."""
    return row.status == "ready" and (row.reviewed_at is not None or not (row.provenance or {}).get(HELD))


# -- edits -----------------------------------------------------------------------------------------


def edit_records(
    document: Document, edits: Mapping[str, str], *, reviewer: str, version: int
) -> list[dict[str, Any]]:
    """What each edit replaced: the block, its atom and the text before, so it can be carried later."""
    out = []
    for si, section in enumerate(document.sections):
        for bi, block in enumerate(section.blocks):
            key = block_key(section.key, bi)
            if key in edits:
                out.append({"block": key, "section": document.sections[si].key, "atom_id": block.atom_id,
                            "atom_version": block.atom_version, "title": block.title, "original": block.markdown,
                            "text": edits[key], "reviewer": reviewer, "version": version})  # fmt: skip
    return out


def merge_edits(
    earlier: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The edits in effect after ``new``: a block edited again keeps only its latest edit."""
    replaced = {e["block"] for e in new}
    return [dict(e) for e in earlier if e["block"] not in replaced] + [dict(e) for e in new]


def _find(document: Document, edit: Mapping[str, Any], taken: set[str]) -> str | None:
    """Where an edit goes in a new document: the block of the same atom (same section first); for policy
    text (no atom), the same position holding the same original text."""
    if edit.get("atom_id"):
        spots = [
            (s.key != edit.get("section"), block_key(s.key, i))
            for s in document.sections
            for i, b in enumerate(s.blocks)
            if b.atom_id == edit["atom_id"]
        ]
        free = sorted(spot for spot in spots if spot[1] not in taken)
        return free[0][1] if free else None
    for s in document.sections:
        for i, b in enumerate(s.blocks):
            key = block_key(s.key, i)
            if (
                key == edit["block"]
                and b.atom_id is None
                and b.markdown == edit.get("original")
                and key not in taken
            ):
                return key
    return None


def carry_edits(
    document: Document, edits: Sequence[Mapping[str, Any]]
) -> tuple[Document, list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply earlier reviewer edits to a newly composed document: (document, carried, not carried)."""
    positions = {
        block_key(s.key, i): (si, i) for si, s in enumerate(document.sections) for i in range(len(s.blocks))
    }
    sections = [list(s.blocks) for s in document.sections]
    carried: list[dict[str, Any]] = []
    unplaced: list[dict[str, Any]] = []
    taken: set[str] = set()
    for edit in edits:
        key = _find(document, edit, taken)
        if key is None:
            unplaced.append({**edit, "problem": "the edited block is no longer in the document"})
            continue
        taken.add(key)
        si, bi = positions[key]
        block = sections[si][bi]
        carried.append({**edit, "block": key, "section": document.sections[si].key, "carried_from": edit["block"],
                        "atom_changed": bool(edit.get("atom_id")) and block.atom_version != edit.get("atom_version"),
                        "new_atom_version": block.atom_version, "replaces": block.markdown})  # fmt: skip
        sections[si][bi] = dataclasses.replace(block, markdown=str(edit["text"]), ai_assisted=False)
    new = dataclasses.replace(document, sections=tuple(
        Section(key=s.key, title=s.title, intro=s.intro, blocks=tuple(b)) for s, b in zip(document.sections, sections, strict=True)
    ))  # fmt: skip
    return new, carried, unplaced


# -- diff ------------------------------------------------------------------------------------------


def _blocks(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {**b, "block": block_key(s["key"], i), "section": s["key"]}
        for s in document.get("sections", [])
        for i, b in enumerate(s.get("blocks", []))
    ]


def _identity(block: Mapping[str, Any]) -> tuple[str, str]:
    return block["section"], f"atom:{block['atom_id']}" if block.get(
        "atom_id"
    ) else f"policy:{block['block']}"


def diff(before: ArtifactVersion, after: ArtifactVersion) -> dict[str, Any]:
    """What changed from the last reviewed version: atoms (id and version) and each block's text."""
    old_atoms = {a["id"]: a["version"] for a in (before.provenance or {}).get("atoms", [])}
    new_atoms = {a["id"]: a["version"] for a in (after.provenance or {}).get("atoms", [])}
    atoms = [{"id": a, "change": "changed", "from": old_atoms[a], "to": new_atoms[a]}
             for a in sorted(set(old_atoms) & set(new_atoms)) if old_atoms[a] != new_atoms[a]]  # fmt: skip
    atoms += [
        {"id": a, "change": "added", "from": None, "to": new_atoms[a]}
        for a in sorted(set(new_atoms) - set(old_atoms))
    ]
    atoms += [
        {"id": a, "change": "removed", "from": old_atoms[a], "to": None}
        for a in sorted(set(old_atoms) - set(new_atoms))
    ]
    old = {_identity(b): b for b in reversed(_blocks(before.document))}
    new_blocks = _blocks(after.document)
    seen: set[tuple[str, str]] = set()
    blocks: list[dict[str, Any]] = []
    for b in new_blocks:
        ident = _identity(b)
        seen.add(ident)
        prior = old.get(ident)
        if prior is None:
            blocks.append({"block": b["block"], "atom_id": b.get("atom_id"), "title": b.get("title"), "change": "added",
                           "text_diff": _text_diff("", b["markdown"], before.version, after.version, b["block"])})  # fmt: skip
        elif prior["markdown"] != b["markdown"] or prior.get("title") != b.get("title"):
            text_diff = _text_diff(f"{prior.get('title') or ''}\n{prior['markdown']}", f"{b.get('title') or ''}\n{b['markdown']}",
                                   before.version, after.version, b["block"])  # fmt: skip
            blocks.append({"block": b["block"], "was_block": prior["block"], "atom_id": b.get("atom_id"),
                           "title": b.get("title"), "change": "changed", "text_diff": text_diff})  # fmt: skip
    for ident, prior in old.items():
        if ident not in seen:
            blocks.append({"block": None, "was_block": prior["block"], "atom_id": prior.get("atom_id"), "title": prior.get("title"),
                           "change": "removed", "text_diff": _text_diff(prior["markdown"], "", before.version, after.version, prior["block"])})  # fmt: skip
    return {"against_version": before.version, "against_outcome": review_outcome(before), "against_reviewer": before.reviewer,
            "atoms": atoms, "blocks": blocks}  # fmt: skip


def _text_diff(a: str, b: str, va: int, vb: int, where: str) -> str:
    lines = difflib.unified_diff(
        a.splitlines(), b.splitlines(), f"v{va} {where}", f"v{vb} {where}", lineterm="", n=1
    )
    return "\n".join(lines)


def edits_view(row: ArtifactVersion) -> dict[str, Any]:
    """The reviewer edits in effect on a version, whether each still reads as written, and those not carried."""
    blocks = {b["block"]: b for b in _blocks(row.document)}
    in_effect = [
        {**e, "kept": blocks.get(e["block"], {}).get("markdown") == e["text"]}
        for e in (row.provenance or {}).get(EDITS, [])
    ]
    held = (row.provenance or {}).get(HELD) or {}
    return {"in_effect": in_effect, "not_carried": list(held.get("unplaced_edits", []))}


def reasons(row: ArtifactVersion) -> list[str]:
    """Every reason a version needs a human, most specific first."""
    out: list[str] = []
    held = (row.provenance or {}).get(HELD) or {}
    if held.get("reason"):
        out.append(str(held["reason"]))
    if held.get("unplaced_edits"):
        out.append(f"{len(held['unplaced_edits'])} reviewer edit(s) could not be carried onto this version")
    if row.review_reason and row.review_reason not in out:
        out.append(row.review_reason)
    return out


# -- reviewer preview links ----------------------------------------------------------------------------


def preview_signature(secret: str, artifact_id: str, version: int, fmt: str, expires: int) -> str:
    """A reviewer preview link's HMAC; its "review:" prefix keeps it from ever passing as a buyer's download link."""
    message = f"review:{artifact_id}:{version}:{fmt}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


OPEN_WINDOW_S = 30 * 60  # uses of one link within this window are one open; a later use is a re-open


def open_message_id(sig: str, at: float) -> str:
    """One download event per signed link and half hour: range requests, retries and reloads of a link are one
    open, and the same link used again later (a long-lived e-mail link) is a re-open."""
    window = int(at // OPEN_WINDOW_S)
    return "artifact-open-" + hashlib.sha256(f"{sig}:{window}".encode("utf-8", "replace")).hexdigest()[:40]
