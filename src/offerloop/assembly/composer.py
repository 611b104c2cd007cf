"""Composition: a policy, a corpus and one buyer's inputs -> a :class:`Document` and its provenance.

Sections and slots are walked in policy order.  A section or slot whose ``when`` is false is skipped; a
slot that matches no atom uses its fallback (a text block, or the named atom, marked ``fallback=True``).
No atom appears twice: atoms used by earlier slots are excluded from later ones, and an atom fallback
already in the document adds nothing.  A section with neither blocks nor intro is left out.  Titles,
intros and bodies are filled for the buyer in the atom language (:mod:`offerloop.assembly.template`:
placeholders, ``{% if %}`` blocks, literal ``\\{{`` tags); buyer values are plain text, escaped in
Markdown so a quiz answer can never become a link, an image or a heading.

Provenance has one entry per section (rendered / skipped / empty) and, for rendered sections, one per
slot (selected / fallback / skipped / empty) with the atom ids, versions, BM25 scores and reasons, the
candidate counts and the effective tag filter; :class:`Composition` adds the policy id and version,
the quiz id and version and the inputs used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from offerloop.assembly.document import Block, Document, Section
from offerloop.assembly.exceptions import EMPTY_DOCUMENT, UNKNOWN_FALLBACK_ATOM, AssemblyError
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import (
    AtomFallback,
    Policy,
    PolicySection,
    Slot,
    TextFallback,
    facts,
    format_path,
    holds,
)
from offerloop.assembly.selector import CorpusIndex, Relevance
from offerloop.assembly.template import make_renderer
from offerloop.content.model import Atom, Quiz
from offerloop.core.conditions import describe

__all__ = ["ChosenAtom", "Composition", "ProvenanceEntry", "compose"]

Status = Literal["rendered", "skipped", "empty", "selected", "fallback"]


@dataclass(frozen=True, slots=True)
class ChosenAtom:
    """An atom placed in the document: which version, its BM25 score and why."""

    id: str
    version: str
    score: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "score": self.score, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ProvenanceEntry:
    """What happened to one section (``slot`` None) or one slot of a rendered section."""

    location: str  # "sections[0]" or "sections[0].slots[1]"
    section: str
    slot: str | None
    status: Status
    atoms: tuple[ChosenAtom, ...] = ()
    fallback: str | None = None  # "text" or "atom:<id>" when the fallback was used
    candidates: int = 0  # atoms that passed every rule
    excluded: int = 0  # atoms that passed the static rules but were already in the document
    tags: tuple[str, ...] | None = None  # the effective tags_any filter (None: no tag filter)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "section": self.section,
            "slot": self.slot,
            "status": self.status,
            "atoms": [atom.to_dict() for atom in self.atoms],
            "fallback": self.fallback,
            "candidates": self.candidates,
            "excluded": self.excluded,
            "tags": None if self.tags is None else list(self.tags),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Composition:
    """The composed document and the record of how it was composed."""

    document: Document
    provenance: tuple[ProvenanceEntry, ...]
    policy_id: str
    policy_version: str
    inputs: Mapping[str, Any] = field(default_factory=dict)  # BuyerInputs.to_dict()
    quiz_id: str | None = None
    quiz_version: str | None = None

    def atoms(self) -> list[tuple[str, str]]:
        """(atom id, version) of every atom in the document, in document order."""
        return [(b.atom_id, b.atom_version or "") for b in self.document.blocks() if b.atom_id is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready provenance (the document itself is not included)."""
        return {
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "quiz_id": self.quiz_id,
            "quiz_version": self.quiz_version,
            "inputs": dict(self.inputs),
            "provenance": [entry.to_dict() for entry in self.provenance],
        }


def _atom_block(
    atom: Atom, fill: Callable[[str], str], fill_markdown: Callable[[str], str], *, fallback: bool = False
) -> Block:
    return Block(
        markdown=fill_markdown(atom.body),
        title=fill(atom.title),
        atom_id=atom.id,
        atom_version=atom.version,
        kind=atom.kind,
        minutes=atom.minutes,
        fallback=fallback,
    )


class _Composer:
    """The state of one composition: used atoms, blocks and provenance entries."""

    def __init__(
        self, index: CorpusIndex, inputs: BuyerInputs, quiz: Quiz | None, relevance: Relevance | None = None
    ) -> None:
        self.index = index
        self.inputs = inputs
        self.facts = facts(inputs)  # what section and slot conditions read, built once per buyer
        self.quiz = quiz
        # Buyer values are plain text: escaped in Markdown (bodies, intros), flattened in titles.
        self.fill = make_renderer(inputs, markdown=False)
        self.fill_markdown = make_renderer(inputs, markdown=True)
        self.relevance: Relevance = relevance if relevance is not None else index.relevance(inputs, quiz)
        self.used: set[str] = set()
        self.entries: list[ProvenanceEntry] = []

    def section(self, number: int, section: PolicySection) -> Section | None:
        location = format_path(("sections", number))
        if section.when is not None and not holds(section.when, self.facts):
            reason = f"when is false: {describe(section.when)}"
            self.entries.append(ProvenanceEntry(location, section.key, None, "skipped", reason=reason))
            return None
        position = len(self.entries)
        blocks: list[Block] = []
        for slot_number, slot in enumerate(section.slots):
            blocks.extend(self.slot(f"{location}.slots[{slot_number}]", section, slot))
        intro = self.fill_markdown(section.intro) if section.intro is not None else None
        if not blocks and intro is None:
            entry = ProvenanceEntry(location, section.key, None, "empty", reason="no block and no intro")
            self.entries.insert(position, entry)
            return None
        reason = f"when is true: {describe(section.when)}" if section.when is not None else "unconditional"
        self.entries.insert(position, ProvenanceEntry(location, section.key, None, "rendered", reason=reason))
        return Section(key=section.key, title=self.fill(section.title), blocks=tuple(blocks), intro=intro)

    def slot(self, location: str, section: PolicySection, slot: Slot) -> list[Block]:
        if slot.when is not None and not holds(slot.when, self.facts):
            reason = f"when is false: {describe(slot.when)}"
            self.entries.append(ProvenanceEntry(location, section.key, slot.key, "skipped", reason=reason))
            return []
        selection = self.index.select(
            slot, self.inputs, quiz=self.quiz, exclude=self.used, relevance=self.relevance
        )
        common: dict[str, Any] = {
            "candidates": selection.candidates,
            "excluded": selection.excluded,
            "tags": selection.tags_any,
        }
        if selection.picks:
            self.used.update(pick.atom.id for pick in selection.picks)
            chosen = tuple(
                ChosenAtom(pick.atom.id, pick.atom.version, pick.score, pick.reason)
                for pick in selection.picks
            )
            reason = f"{len(chosen)} of {selection.candidates} candidates (choose {slot.choose})"
            self.entries.append(
                ProvenanceEntry(location, section.key, slot.key, "selected", chosen, reason=reason, **common)
            )
            return [_atom_block(pick.atom, self.fill, self.fill_markdown) for pick in selection.picks]
        why = "no atom passed the rules"
        if selection.excluded:
            why += f" ({selection.excluded} already in the document)"
        fallback = slot.fallback
        if isinstance(fallback, TextFallback):
            self.entries.append(
                ProvenanceEntry(
                    location, section.key, slot.key, "fallback", fallback="text", reason=why, **common
                )
            )
            title = self.fill(fallback.title) if fallback.title is not None else None
            return [Block(markdown=self.fill_markdown(fallback.markdown), title=title, fallback=True)]
        assert isinstance(fallback, AtomFallback)
        atom = selection.fallback_atom
        if atom is None:
            raise AssemblyError(
                f"{location}: fallback atom {fallback.atom!r} is not in the corpus",
                code=UNKNOWN_FALLBACK_ATOM,
            )
        tag = f"atom:{atom.id}"
        if atom.id in self.used:
            reason = f"{why}; fallback atom {atom.id!r} is already in the document"
            self.entries.append(
                ProvenanceEntry(
                    location, section.key, slot.key, "empty", fallback=tag, reason=reason, **common
                )
            )
            return []
        self.used.add(atom.id)
        chosen = (ChosenAtom(atom.id, atom.version, self.relevance.score(atom.id), "fallback atom"),)
        self.entries.append(
            ProvenanceEntry(
                location, section.key, slot.key, "fallback", chosen, fallback=tag, reason=why, **common
            )
        )
        return [_atom_block(atom, self.fill, self.fill_markdown, fallback=True)]


def compose(
    policy: Policy,
    index_or_corpus: CorpusIndex | Iterable[Atom],
    inputs: BuyerInputs,
    quiz: Quiz | None = None,
    relevance: Relevance | None = None,
) -> Composition:
    """The buyer's document for ``policy`` from the corpus, with provenance.

    Pass a :class:`CorpusIndex` to reuse one index across buyers.  Raises :class:`AssemblyError` when an
    atom fallback names an atom missing from the corpus (``unknown_fallback_atom``) or when nothing at
    all would be rendered (``empty_document``; :func:`~offerloop.assembly.lint.lint_policy` reports
    the policies that allow it).
    """
    index = index_or_corpus if isinstance(index_or_corpus, CorpusIndex) else CorpusIndex(index_or_corpus)
    composer = _Composer(index, inputs, quiz, relevance)
    sections = [
        rendered
        for number, section in enumerate(policy.sections)
        if (rendered := composer.section(number, section)) is not None
    ]
    if not sections:
        raise AssemblyError(f"policy {policy.id!r} rendered no section for these inputs", code=EMPTY_DOCUMENT)
    meta: dict[str, Any] = {
        "policy_id": policy.id,
        "policy_version": policy.version,
        "review": policy.review.to_dict(),
        "quiz_id": quiz.id if quiz is not None else None,
        "quiz_version": quiz.version if quiz is not None else None,
        "persona": inputs.persona,
    }
    document = Document(
        title=composer.fill(policy.title),
        subtitle=composer.fill(policy.subtitle) if policy.subtitle is not None else None,
        sections=tuple(sections),
        deliverable=policy.deliverable,
        buyer_name=inputs.name,
        created_on=inputs.today.isoformat(),
        meta=meta,
    )
    return Composition(
        document=document,
        provenance=tuple(composer.entries),
        policy_id=policy.id,
        policy_version=policy.version,
        inputs=inputs.to_dict(),
        quiz_id=meta["quiz_id"],
        quiz_version=meta["quiz_version"],
    )
