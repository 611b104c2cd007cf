"""Stored composition policies: one current version per policy id, parsed once per process, linted on
the corpus."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.orm import Session

from offerloop.assembly import repository
from offerloop.assembly.exceptions import (
    AssemblyError,
    PolicyNotFound,
)
from offerloop.assembly.lint import Finding, lint_policy
from offerloop.assembly.policy import Policy, parse_policy
from offerloop.assembly.schemas import (
    LintFinding,
    PolicyPage,
    PolicyRead,
    PolicyStored,
)
from offerloop.content import service as content_service
from offerloop.content.model import Quiz
from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.core.pages import decode_cursor, page_of
from offerloop.models import CompositionPolicy
from offerloop.workspaces import service as workspace_service

_policies: VersionedCache[Policy] = VersionedCache(max_size=4096)


def put_policy(
    *,
    session: Session,
    workspace_id: str,
    text: str,
    triggers: list[dict[str, Any]] | None = None,
    actor: str = "api",
) -> PolicyStored:
    """Store a composition policy (a new version when its content changed) and lint it on the corpus."""
    policy = parse_policy(text, path="<policy>")
    triggers = list(triggers or [])
    for t in triggers:
        if not isinstance(t, dict) or not isinstance(t.get("event"), str) or not t["event"]:
            raise AssemblyError(
                "each trigger needs an event name, e.g. {event: Quiz Completed}", code="invalid_trigger"
            )
    row = repository.policy(session, workspace_id, policy.id)
    if row is None or row.version != policy.version or row.triggers != triggers:
        repository.retire_policy(session, workspace_id, policy.id)
        earlier = repository.policy(session, workspace_id, policy.id, policy.version)
        if earlier is not None:
            earlier.current, earlier.triggers, earlier.source = True, triggers, text
        else:
            repository.add(session, CompositionPolicy(workspace_id=workspace_id, policy_id=policy.id, version=policy.version,
                                                      source=text, triggers=triggers, current=True, created_at=utcnow()))  # fmt: skip
        repository.flush(session)
        workspace_service.audit(session, workspace_id, actor=actor, action="policy.update", target_type="policy",
                                target_id=policy.id, details={"version": policy.version})  # fmt: skip
    findings = lint(session=session, workspace_id=workspace_id, policy=policy)
    return PolicyStored(
        id=policy.id, version=policy.version, triggers=triggers, findings=[lint_finding(f) for f in findings]
    )


def lint_finding(f: Finding) -> LintFinding:
    return LintFinding(severity=f.severity, location=f.location, message=f.message, line=f.line)


def get_policy(*, session: Session, workspace_id: str, policy_id: str, version: str | None = None) -> Policy:
    row = repository.policy(session, workspace_id, policy_id, version)
    if row is None:
        raise PolicyNotFound(
            f"policy {policy_id!r}" + (f" version {version}" if version else "") + " does not exist"
        )
    # parsed once per process per version (YAML parsing is the slow part of a request), with the stored
    # row's version, not one recomputed from its text: the canonical form may have changed since it was
    # stored, and artifacts record (and audits look up) the version that has a row
    return _policies.get_or_load(
        (workspace_id, policy_id),
        row.version,
        lambda: dataclasses.replace(
            parse_policy(row.source, path=f"policy {policy_id}"), version=row.version
        ),
    )


def _policy_read(row: CompositionPolicy) -> PolicyRead:
    return PolicyRead(id=row.policy_id, version=row.version, triggers=row.triggers, created_at=row.created_at)


def list_policies(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None = None
) -> PolicyPage:
    """The current policies by id (a workspace has a handful: paged in memory)."""
    after = decode_cursor(cursor, types=(str,))
    rows = [r for r in repository.policies(session, workspace_id) if after is None or r.policy_id > after[0]]
    return PolicyPage(**dict(page_of(rows, limit, key=lambda r: (r.policy_id,), item=_policy_read)))


def lint(*, session: Session, workspace_id: str, policy: Policy, quiz: Quiz | None = None) -> list[Finding]:
    _, atoms = content_service.corpus(session=session, workspace_id=workspace_id)
    if quiz is None:
        try:
            quiz = content_service.get_quiz(session=session, workspace_id=workspace_id)
        except OfferloopError:
            quiz = None
    return lint_policy(policy, atoms, quiz)
