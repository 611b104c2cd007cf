"""Journey text (YAML/JSON) or data -> a validated :class:`~offerloop.delivery.journeys.spec.Journey`."""

from __future__ import annotations

from typing import Any

from offerloop.core import conditions
from offerloop.declarative import Reporter, load_document, validate
from offerloop.declarative.document import Document
from offerloop.delivery.exceptions import JourneyError
from offerloop.delivery.journeys.spec import BranchStep, Journey, SendStep

_PUSH_OR_INAPP_TITLE = ("push", "inapp")


def parse_journey(text: str, *, path: str = "<string>") -> Journey:
    """Raises :class:`JourneyError` naming every problem by line."""
    return validate(Journey, load_document(text, file=path), error=JourneyError, check=_check,
                    empty="the journey is empty (expected a mapping with name, trigger and steps)")  # fmt: skip


def journey_from_data(data: Any) -> Journey:
    """An already-parsed journey (a JSON body, a stored definition)."""
    return validate(Journey, Document.of(data), error=JourneyError, check=_check)


def _check(journey: Journey, report: Reporter) -> None:
    """What one field cannot see: e-mail needs a subject, ids are unique, a send's channel fits its fields."""
    seen: dict[str, tuple[Any, ...]] = {}

    def walk(steps: Any, at: tuple[Any, ...]) -> None:
        for i, step in enumerate(steps):
            here = (*at, i)
            if step.id is not None:
                if step.id in seen:
                    report((*here, "id"), f"duplicate step id {step.id!r}")
                seen[step.id] = here
            if isinstance(step, SendStep):
                send = step.send
                if send.channel == "email" and send.subject is None:
                    report((*here, "send", "subject"), "required for channel email")
                if send.html is not None and send.channel != "email":
                    report((*here, "send", "html"), f"only for channel email, not {send.channel}")
                if send.url is not None and send.channel not in _PUSH_OR_INAPP_TITLE:
                    report((*here, "send", "url"), "only for channels push and inapp")
                if send.event is not None and send.channel != "webhook":
                    report((*here, "send", "event"), "only for channel webhook")
            elif isinstance(step, BranchStep):
                if any(
                    leaf.root == "experiments" and not leaf.key
                    for leaf in conditions.leaves(step.branch.when)
                ):
                    report((*here, "branch", "when"), "experiments is read per experiment: experiments.<key>")
                walk(step.branch.then, (*here, "branch", "then"))
                walk(step.branch.else_, (*here, "branch", "else"))

    walk(journey.steps, ("steps",))
