"""Atom selection for one slot: hard rules first, then relevance ranking with Okapi BM25.

Rules (an atom must pass all of them):

* ``kinds``: its kind is listed (an empty list allows every kind);
* tags: when the slot gives ``tags_any`` or ``tags_from_answers``, the atom has at least one tag of
  ``tags_any`` plus the tags of the options the buyer chose in the ``tags_from_answers`` questions (so a
  buyer who skipped those questions, with an empty ``tags_any``, matches nothing: the fallback is used);
* ``tags_all``: it has every one of them;
* ``level``: its level is in the range;
* ``persona: require``: the buyer has a persona and the atom's ``persona_fit`` lists it;
* it is not already used in the document.

Ranking: atoms fitting the buyer's persona first (``persona: prefer`` only), then BM25 relevance
(highest first), then atom id, so the result is the same for the same inputs whatever the corpus order.
The top ``choose`` atoms are then re-sorted by the slot's ``order`` (level, minutes or title; relevance
keeps the ranking), ties keeping their rank.

BM25 (Okapi, k1 = 1.2, b = 0.75) runs over each atom's title + tags + body (placeholders removed) against
the buyer's query: the labels of chosen options, free-text answers and the goal text (without a quiz,
string answers are used as they are).  Each distinct query term counts once.  IDF is
``ln(1 + (N - n + 0.5) / (n + 0.5))`` (never negative), over the whole corpus.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Final

from offerloop.assembly.exceptions import DUPLICATE_ATOM, AssemblyError
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import AtomFallback, Fallback, Slot
from offerloop.content.model import Atom, Quiz

__all__ = [
    "K1",
    "STOP_WORDS",
    "B",
    "CorpusIndex",
    "Pick",
    "Relevance",
    "SlotSelection",
    "answer_tags",
    "passes_filters",
    "query_text",
    "tokenize",
]

K1: Final = 1.2
B: Final = 0.75

STOP_WORDS: Final[frozenset[str]] = frozenset(
    [
        "a",
        "about",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "get",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "out",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)

_TOKEN: Final = re.compile(r"[^\W_]+")
_PLACEHOLDER: Final = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def tokenize(text: str) -> list[str]:
    """Lowercase words: split on anything not a letter or digit, stop words dropped."""
    return [token for token in _TOKEN.findall(text.lower()) if token not in STOP_WORDS]


def atom_text(atom: Atom) -> str:
    """What BM25 indexes for an atom: title, tags (hyphens split) and body without placeholders."""
    return " ".join((atom.title, " ".join(atom.tags), _PLACEHOLDER.sub(" ", atom.body)))


def _chosen_values(answer: Any) -> list[str]:
    items = answer if isinstance(answer, list | tuple) else [answer]
    return [item for item in items if isinstance(item, str)]


def query_text(inputs: BuyerInputs, quiz: Quiz | None = None) -> str:
    """The buyer's query: chosen options' labels, free-text answers and the goal text.

    Questions are taken in quiz order (answers without a quiz question: in sorted id order); a
    scale answer adds nothing; without a quiz, string answers are used as given.
    """
    parts: list[str] = []
    known: set[str] = set()
    if quiz is not None:
        for question in quiz.questions:
            known.add(question.id)
            answer = inputs.answers.get(question.id)
            if answer is None:
                continue
            if question.options:
                labels = {option.value: option.label for option in question.options}
                parts.extend(labels[value] for value in _chosen_values(answer) if value in labels)
            elif question.type == "text":
                parts.extend(_chosen_values(answer))
    for qid in sorted(k for k in inputs.answers if k not in known):
        parts.extend(_chosen_values(inputs.answers[qid]))
    if inputs.goal_text:
        parts.append(inputs.goal_text)
    return "\n".join(parts)


def answer_tags(questions: Iterable[str], inputs: BuyerInputs, quiz: Quiz | None) -> tuple[str, ...]:
    """The tags of the options the buyer chose in ``questions`` (none without a quiz), first-seen order."""
    tags: list[str] = []
    if quiz is None:
        return ()
    for qid in questions:
        question = quiz.question(qid)
        if question is None:
            continue
        chosen = set(_chosen_values(inputs.answers.get(qid)))
        for option in question.options:
            if option.value in chosen:
                tags.extend(tag for tag in option.tags if tag not in tags)
    return tuple(tags)


def passes_filters(
    atom: Atom,
    slot: Slot,
    *,
    tags_any: Collection[str] | None,
    persona: str | None,
    any_persona: bool = False,
) -> bool:
    """The slot's static rules (kinds, tags, level, persona ``require``), without the no-duplicates rule.

    ``tags_any`` is the effective tag set (None: no tag filter).  With ``any_persona`` a ``require``
    slot accepts any atom that fits some persona (used by lint, which knows no buyer).
    """
    if slot.kinds and atom.kind not in slot.kinds:
        return False
    if tags_any is not None and not any(tag in tags_any for tag in atom.tags):
        return False
    if slot.tags_all and not all(tag in atom.tags for tag in slot.tags_all):
        return False
    if slot.level is not None and not slot.level.contains(atom.level):
        return False
    if slot.persona == "require":
        if any_persona:
            return bool(atom.persona_fit)
        return persona is not None and persona in atom.persona_fit
    return True


@dataclass(frozen=True, slots=True)
class Pick:
    """One chosen atom, its BM25 score and why it was chosen (for provenance)."""

    atom: Atom
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class SlotSelection:
    """A slot's outcome: the picks, or (when nothing matched) the fallback."""

    slot_key: str
    picks: tuple[Pick, ...]
    fallback: Fallback | None = None  # set when no atom matched
    fallback_atom: Atom | None = None  # the atom of an ``AtomFallback``, when it is in the corpus
    candidates: int = 0  # atoms that passed every rule
    excluded: int = 0  # atoms that passed the static rules but were already used in the document
    tags_any: tuple[str, ...] | None = None  # the effective tag filter (None: none)

    @property
    def used_fallback(self) -> bool:
        return self.fallback is not None


@dataclass(frozen=True, slots=True)
class Relevance:
    """BM25 scores of every atom for one buyer's query (atoms absent from ``scores`` score 0)."""

    terms: tuple[str, ...]  # distinct query terms, sorted
    scores: Mapping[str, float] = field(default_factory=dict)

    def score(self, atom_id: str) -> float:
        return self.scores.get(atom_id, 0.0)


class CorpusIndex:
    """The corpus, sorted by atom id, with its BM25 index; build once, select for many buyers."""

    def __init__(self, atoms: Iterable[Atom], *, k1: float = K1, b: float = B) -> None:
        ordered = sorted(atoms, key=lambda atom: atom.id)
        duplicates = sorted({a.id for a, n in pairwise(ordered) if a.id == n.id})
        if duplicates:
            raise AssemblyError(
                f"duplicate atom ids in the corpus: {', '.join(duplicates)}", code=DUPLICATE_ATOM
            )
        self.atoms: tuple[Atom, ...] = tuple(ordered)
        self.k1 = k1
        self.b = b
        self._by_id: dict[str, Atom] = {atom.id: atom for atom in ordered}
        self._index: dict[str, int] = {atom.id: i for i, atom in enumerate(ordered)}
        self._tf: list[Counter[str]] = [Counter(tokenize(atom_text(atom))) for atom in ordered]
        lengths = [sum(tf.values()) for tf in self._tf]
        average = sum(lengths) / len(lengths) if lengths else 0.0
        # k1 * (1 - b + b * dl / avgdl), the per-document part of the BM25 denominator.
        self._norm: list[float] = [
            k1 * (1 - b + b * (length / average if average else 0.0)) for length in lengths
        ]
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for index, tf in enumerate(self._tf):
            for term, count in tf.items():
                self._postings.setdefault(term, []).append((index, count))

    def __len__(self) -> int:
        return len(self.atoms)

    def __contains__(self, atom_id: object) -> bool:
        return atom_id in self._by_id

    def get(self, atom_id: str) -> Atom | None:
        return self._by_id.get(atom_id)

    def idf(self, term: str) -> float:
        """``ln(1 + (N - n + 0.5) / (n + 0.5))`` with n the number of atoms holding ``term``."""
        n = len(self._postings.get(term, ()))
        return math.log(1 + (len(self.atoms) - n + 0.5) / (n + 0.5))

    def term_score(self, atom_id: str, term: str) -> float:
        """One query term's BM25 contribution to one atom's score."""
        index = self._index.get(atom_id)
        if index is None:
            return 0.0
        tf = self._tf[index][term]
        if tf == 0:
            return 0.0
        return self.idf(term) * tf * (self.k1 + 1) / (tf + self._norm[index])

    def scores(self, query: str | Sequence[str]) -> Relevance:
        """BM25 scores of the atoms for a query (text, or tokens already split)."""
        tokens = tokenize(query) if isinstance(query, str) else [t for t in query if t]
        terms = tuple(sorted(set(tokens)))
        totals: dict[int, float] = {}
        for term in terms:  # sorted: the float sums do not depend on the query's word order
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = self.idf(term)
            for index, tf in postings:
                contribution = idf * tf * (self.k1 + 1) / (tf + self._norm[index])
                totals[index] = totals.get(index, 0.0) + contribution
        return Relevance(terms=terms, scores={self.atoms[i].id: s for i, s in totals.items()})

    def relevance(self, inputs: BuyerInputs, quiz: Quiz | None = None) -> Relevance:
        """BM25 scores for the buyer's query (see :func:`query_text`)."""
        return self.scores(query_text(inputs, quiz))

    def select(
        self,
        slot: Slot,
        inputs: BuyerInputs,
        *,
        quiz: Quiz | None = None,
        exclude: Collection[str] = (),
        relevance: Relevance | None = None,
    ) -> SlotSelection:
        """The slot's atoms for this buyer (or its fallback), never one of ``exclude``."""
        if relevance is None:
            relevance = self.relevance(inputs, quiz)
        tags: tuple[str, ...] | None = None
        if slot.tags_any or slot.tags_from_answers:
            from_answers = answer_tags(slot.tags_from_answers, inputs, quiz)
            tags = tuple(dict.fromkeys((*slot.tags_any, *from_answers)))
        tag_set = None if tags is None else frozenset(tags)
        passing = [
            atom
            for atom in self.atoms
            if passes_filters(atom, slot, tags_any=tag_set, persona=inputs.persona)
        ]
        candidates = [atom for atom in passing if atom.id not in exclude]
        excluded = len(passing) - len(candidates)
        if not candidates:
            fallback_atom = None
            if isinstance(slot.fallback, AtomFallback):
                fallback_atom = self.get(slot.fallback.atom)
            return SlotSelection(
                slot_key=slot.key,
                picks=(),
                fallback=slot.fallback,
                fallback_atom=fallback_atom,
                candidates=0,
                excluded=excluded,
                tags_any=tags,
            )

        prefer = slot.persona == "prefer" and inputs.persona is not None

        def fits(atom: Atom) -> bool:
            return inputs.persona is not None and inputs.persona in atom.persona_fit

        ranked = sorted(
            candidates,
            key=lambda atom: (-(prefer and fits(atom)), -relevance.score(atom.id), atom.id),
        )
        chosen = ranked[: slot.choose]
        rank = {atom.id: position for position, atom in enumerate(chosen, start=1)}
        if slot.order == "level":
            chosen.sort(key=lambda atom: atom.level)
        elif slot.order == "minutes":
            chosen.sort(key=lambda atom: (atom.minutes is None, atom.minutes or 0))
        elif slot.order == "title":
            chosen.sort(key=lambda atom: (atom.title.casefold(), atom.title))
        picks = tuple(
            Pick(
                atom=atom,
                score=relevance.score(atom.id),
                reason=self._reason(
                    atom, rank[atom.id], relevance, tag_set, inputs.persona if fits(atom) else None, slot
                ),
            )
            for atom in chosen
        )
        return SlotSelection(
            slot_key=slot.key,
            picks=picks,
            candidates=len(candidates),
            excluded=excluded,
            tags_any=tags,
        )

    def _reason(
        self,
        atom: Atom,
        rank: int,
        relevance: Relevance,
        tags: frozenset[str] | None,
        persona: str | None,
        slot: Slot,
    ) -> str:
        """``rank 1; bm25 1.234 (pricing, anchor); tags pricing; persona deal_seeker``."""
        parts = [f"rank {rank}"]
        matched = [(self.term_score(atom.id, term), term) for term in relevance.terms]
        top = [term for score, term in sorted(matched, key=lambda x: (-x[0], x[1])) if score > 0][:3]
        score = relevance.score(atom.id)
        parts.append(f"bm25 {score:.3f} ({', '.join(top)})" if top else "bm25 0 (no query term)")
        if tags is not None:
            parts.append("tags " + ", ".join(tag for tag in atom.tags if tag in tags))
        if persona is not None and slot.persona != "ignore":
            parts.append(f"persona {persona}")
        return "; ".join(parts)
