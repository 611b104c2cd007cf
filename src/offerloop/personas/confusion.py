"""How well inferred personas match known ones: a confusion matrix with accuracy, precision and recall.

Pure arithmetic over ``(true persona, inferred persona)`` pairs -- for a labelled audience such as the
simulator's, whose true personas are known. An inferred ``"unassigned"`` counts as a miss in accuracy
and recall, and in no persona's precision.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from offerloop.personas.templates import UNASSIGNED

__all__ = ["PersonaConfusion"]


@dataclass(frozen=True, slots=True)
class PersonaConfusion:
    """Counts of (true, inferred) persona pairs; ``personas`` fixes the row and column order."""

    personas: tuple[str, ...]
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], personas: Sequence[str]) -> PersonaConfusion:
        counts: Counter[tuple[str, str]] = Counter(pairs)
        order = list(personas)
        for true, inferred in counts:  # a persona only one side knows still gets its row and column
            for name in (true, inferred):
                if name != UNASSIGNED and name not in order:
                    order.append(name)
        return cls(tuple(order), counts)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.personas, UNASSIGNED)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, true: str, inferred: str) -> int:
        return self.counts.get((true, inferred), 0)

    def support(self, persona: str) -> int:
        """Buyers whose true persona is ``persona``."""
        return sum(n for (true, _), n in self.counts.items() if true == persona)

    def predicted(self, persona: str) -> int:
        """Buyers inferred as ``persona``."""
        return sum(n for (_, inferred), n in self.counts.items() if inferred == persona)

    @property
    def accuracy(self) -> float:
        """Share of all buyers (the unassigned included) whose inferred persona is their true one."""
        hits = sum(n for (true, inferred), n in self.counts.items() if true == inferred)
        return hits / self.total if self.total else 0.0

    @property
    def unassigned_share(self) -> float:
        unassigned = sum(n for (_, inferred), n in self.counts.items() if inferred == UNASSIGNED)
        return unassigned / self.total if self.total else 0.0

    def recall(self, persona: str) -> float:
        support = self.support(persona)
        return self.count(persona, persona) / support if support else 0.0

    def precision(self, persona: str) -> float:
        predicted = self.predicted(persona)
        return self.count(persona, persona) / predicted if predicted else 0.0

    def table(self, *, short_rows: bool = False) -> list[list[str]]:
        """Header row, one row per true persona (counts per inferred column, recall, precision), totals.

        Inferred columns are headed by :meth:`abbreviation` (see :meth:`legend`) to keep the table narrow;
        ``short_rows`` names the rows that way too (an 80-column terminal).
        """
        header = ["true \\ inferred", *map(self.abbreviation, self.columns), "buyers", "recall", "precision"]
        rows = [header]
        for true in self.personas:
            rows.append(
                [
                    self.abbreviation(true) if short_rows else true,
                    *(str(self.count(true, inferred)) for inferred in self.columns),
                    str(self.support(true)),
                    f"{self.recall(true):.1%}",
                    f"{self.precision(true):.1%}",
                ]
            )
        rows.append(["inferred", *(str(self.predicted(c)) for c in self.columns), str(self.total), "", ""])
        return rows

    @staticmethod
    def abbreviation(name: str) -> str:
        """``weekend_collector`` -> ``WC``; ``unassigned`` -> ``none``."""
        if name == UNASSIGNED:
            return "none"
        return "".join(part[:1] for part in name.split("_")).upper() or name

    def legend(self) -> str:
        return ", ".join(f"{self.abbreviation(p)} = {p}" for p in self.personas)

    def summary(self) -> str:
        return (
            f"accuracy {self.accuracy:.1%} of {self.total:,} identified buyers; "
            f"unassigned {self.unassigned_share:.1%}; lowest recall "
            f"{min((self.recall(p) for p in self.personas if self.support(p)), default=0.0):.1%}"
        )

    def format(self) -> str:
        """The table as aligned plain text, then the summary line."""
        rows = self.table()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        return "\n".join([*lines, f"columns: {self.legend()}", self.summary()])
