"""A deliverable that became available to its buyer is an event on their record (``Artifact Ready``), so
journeys (the "your plan is ready" message), features and attribution react to it like to any event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from offerloop.assembly import repository
from offerloop.events import service as events_service

EVENT = "Artifact Ready"


def ready(session: Session, workspace_id: str, artifact_id: str, version: int) -> None:
    """Record that ``artifact_id`` v``version`` is ready for its buyer (once per version)."""
    artifact = repository.artifact(session, workspace_id, artifact_id)
    if artifact is None:
        return
    message = events_service.buyer_track(
        session, workspace_id, artifact.buyer_id, EVENT,
        {"artifact_id": artifact_id, "version": version, "policy_id": artifact.policy_id},
        f"artifact-{artifact_id}-v{version}-ready",
    )  # fmt: skip
    events_service.record_server_events(session, workspace_id, [message])
