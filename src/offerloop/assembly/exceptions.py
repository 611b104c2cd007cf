"""Errors of the assembly domain: invalid composition policies and compositions that cannot be built."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from offerloop.core.errors import OfferloopError
from offerloop.declarative import ConfigError

# Stable machine-readable codes (``error.code``).
INVALID_POLICY: Final = "invalid_policy"
DUPLICATE_ATOM: Final = "duplicate_atom"
UNKNOWN_FALLBACK_ATOM: Final = "unknown_fallback_atom"
EMPTY_DOCUMENT: Final = "empty_document"


class AssemblyError(OfferloopError):
    """A policy or composition that cannot be used; ``problems`` lists every problem, one per entry."""

    status_code = 422
    code = "assembly_failed"

    def __init__(
        self,
        message: str,
        *,
        problems: Sequence[str] = (),
        details: Any = None,
        code: str | None = None,
    ) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or (message,)
        if details is None:
            details = {"problems": list(self.problems)}
        super().__init__(message, details=details, code=code)

    @classmethod
    def from_problems(cls, problems: Sequence[str], *, code: str | None = None) -> AssemblyError:
        """One error whose message holds every problem, one per line."""
        return cls("\n".join(problems), problems=problems, code=code)


class InvalidPolicy(ConfigError):
    """A composition policy that does not parse or validate (status 422, code ``invalid_policy``).

    ``problems`` holds one line per problem (``"file:line: path: message"``), in file order; ``details``
    is the machine-readable form (``[{"path", "line", "location", "message"}]``).
    """

    code = INVALID_POLICY


class ArtifactNotFound(OfferloopError):
    status_code = 404
    code = "artifact_not_found"


class PolicyNotFound(OfferloopError):
    status_code = 404
    code = "policy_not_found"


class NotDeliverable(OfferloopError):
    status_code = 409
    code = "not_deliverable"


class InvalidReview(OfferloopError):
    status_code = 409
    code = "invalid_review"


class BadLink(OfferloopError):
    status_code = 403
    code = "invalid_link"
