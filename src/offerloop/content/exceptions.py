"""The content domain's errors: one class, every problem listed at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offerloop.core.errors import OfferloopError


class ContentError(OfferloopError):
    """An atom, quiz or set of answers that cannot be used.

    ``problems`` holds one human-readable line per problem (``"file:line: message"`` for files,
    ``"question: message"`` for answers); ``str(error)`` is those lines joined by newlines.
    ``details`` is the machine-readable form of the same problems.
    """

    status_code = 422
    code = "invalid_content"

    def __init__(self, problems: Sequence[str], *, details: Any = None, code: str | None = None) -> None:
        self.problems: list[str] = list(problems)
        super().__init__(
            "\n".join(self.problems),
            details=details if details is not None else [{"message": p} for p in self.problems],
            code=code,
        )


class NotFound(ContentError):
    status_code = 404
    code = "not_found"

    def __init__(self, message: str) -> None:
        super().__init__([message], code="not_found")
