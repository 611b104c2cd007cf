"""The render job of an artifact version: rewrite allowed atoms in the creator's voice, render every format,
leave the version *ready* or *awaiting_review* (kind ``assembly.render``, one job per version)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pypdf
from sqlalchemy.orm import Session

from offerloop.assembly import announce, repository
from offerloop.assembly import review as review_rules
from offerloop.assembly.document import (
    Document,
    document_from_dict,
    document_to_dict,
)
from offerloop.assembly.exceptions import (
    ArtifactNotFound,
)
from offerloop.assembly.policy import Policy
from offerloop.assembly.policy_store import get_policy
from offerloop.assembly.render import RENDER_ENGINE, render
from offerloop.assembly.render.audit import audit_view, with_audit
from offerloop.assembly.rewriter import rewrite_all
from offerloop.assembly.themes import theme_for
from offerloop.assembly.voice import RewriterConfig, prompt_hash
from offerloop.content import service as content_service
from offerloop.content.model import Quiz
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.identity import service as identity_service
from offerloop.jobs import queue, runner
from offerloop.models import Artifact, ArtifactFile, ArtifactVersion

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "email": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
}


RENDER_KIND = "assembly.render"


def enqueue_render(session: Session, row: ArtifactVersion) -> None:
    """The version's render job, in the caller's transaction (workers wake once it commits)."""
    queue.enqueue(session, kind=RENDER_KIND, key=render_key(row.artifact_id, row.version),
                  workspace_id=row.workspace_id)  # fmt: skip


def render_key(artifact_id: str, version: int) -> str:
    return f"{artifact_id}:{version}"


def _rewrite(
    document: Document, config: RewriterConfig | None, allowed: set[str], *, identifiers: Iterable[str] = (),
    consent: str = "allowed", frozen: frozenset[str] = frozenset(),
) -> tuple[Document, list[dict[str, Any]]]:  # fmt: skip
    """Voice rewriting of the blocks whose atom allows it; the guard keeps the original on any doubt.
    No call is made for a buyer who asked for originals only; ``identifiers`` never reach the model;
    ``frozen`` blocks (a reviewer's edits carried onto this version) are never rewritten."""
    if config is None or consent == "originals_only":
        return document, []
    places = [
        (si, bi)
        for si, section in enumerate(document.sections)
        for bi, block in enumerate(section.blocks)
        if block.atom_id is not None
        and block.atom_id in allowed
        and not block.fallback
        and review_rules.block_key(section.key, bi) not in frozen
    ]
    outcomes = rewrite_all([document.sections[si].blocks[bi].markdown for si, bi in places], config,
                           identifiers=identifiers)  # fmt: skip
    sections = [list(section.blocks) for section in document.sections]
    results: list[dict[str, Any]] = []
    for (si, bi), out in zip(places, outcomes, strict=True):
        block = sections[si][bi]
        verdict = out.result.guard if out.result is not None else None
        rejected = out.result.rejected if out.result is not None else ()
        results.append({
            "atom_id": block.atom_id, "rewritten": out.rewritten, "error": out.error,
            "guard": None if verdict is None else {"ok": verdict.ok, "reasons": list(verdict.reasons),
                                                   "similarity": round(verdict.similarity, 4)},
            "rejected": [{"text": text, "reasons": list(reasons)} for text, reasons in rejected],
            "cached": out.cached, "redacted": out.redacted,
        })  # fmt: skip
        if out.rewritten:
            sections[si][bi] = dataclasses.replace(block, markdown=out.text, ai_assisted=True)
    return dataclasses.replace(document, sections=tuple(
        dataclasses.replace(s, blocks=tuple(blocks)) for s, blocks in zip(document.sections, sections, strict=True)
    )), results  # fmt: skip


def _needs_review(
    policy_review: Any, provenance: Mapping[str, Any], guard: list[dict[str, Any]]
) -> str | None:
    if policy_review == "always":
        return "policy requires review"
    # The guard fired when it turned down any candidate, even if a retry then failed another way.
    if policy_review == "guard_fired" and any(
        g["error"] == "guard_rejected" or g.get("rejected") for g in guard
    ):
        return "the grounding guard rejected a rewrite"
    if provenance.get("ai_rewrite_consent") == "reviewed_only" and any(g["rewritten"] for g in guard):
        return "the buyer accepts AI-rewritten content only after human review"
    if isinstance(policy_review, Mapping) and "above_offer_value" in policy_review:
        value = provenance.get("offer_value_minor")
        if value is not None and value > float(policy_review["above_offer_value"]):
            return f"offer value {value} above {policy_review['above_offer_value']}"
    return None


def render_version(
    *, db: Any, workspace_id: str, artifact_id: str, version: int, rewriter: RewriterConfig | None = None
) -> str:
    """Render one claimed version (status rendering): rewrite, render every format, store, set the status.
    The slow part runs outside any transaction; returns the final status."""
    with db.read() as session:
        row = repository.version(session, workspace_id, artifact_id, version)
        if row is None:
            raise ArtifactNotFound(f"artifact {artifact_id} v{version} does not exist")
        stored, provenance = dict(row.document), dict(row.provenance)
        reviewed = row.reviewed_at is not None
        theme = theme_for(session=session, workspace_id=workspace_id)
        identifiers, consent = _buyer_privacy(session, workspace_id, artifact_id, provenance)
        allowed = {
            a.id
            for a in content_service.corpus(session=session, workspace_id=workspace_id)[1]
            if a.ai_rewrite
        }
        scored_by, chosen_by = _audit_sources(session, workspace_id, provenance)
    document = document_from_dict(stored)
    started = time.perf_counter()
    try:
        if not reviewed:  # a reviewer's edited text is final: never rewrite it again
            frozen = frozenset(
                str(e["block"])
                for e in provenance.get(review_rules.EDITS) or []
                if isinstance(e, dict) and "block" in e
            )
            document, guard = _rewrite(
                document, rewriter, allowed, identifiers=identifiers, consent=consent, frozen=frozen
            )
        else:
            guard = list(provenance.get("guard") or [])
        audit = audit_view(provenance, document, scored_by, chosen_by)  # the buyer's scores, tiers, reasons
        shown = with_audit(document, audit) if document.deliverable == "audit_report" else document
        outputs: dict[str, bytes] = {}
        for fmt in ("pdf", "html", "email", "markdown"):
            out = render(shown, fmt=fmt, theme=theme)
            outputs[fmt] = out if isinstance(out, bytes) else out.encode("utf-8")
    except Exception as exc:  # a render bug must fail this version, visibly, not the worker
        with db.write() as session:
            row = repository.version(session, workspace_id, artifact_id, version)
            if row is not None:
                row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"
        return "failed"
    seconds = time.perf_counter() - started
    pages = _pdf_pages(outputs["pdf"])
    with db.write() as session:
        row = repository.version(session, workspace_id, artifact_id, version)
        if row is None or row.status != "rendering":
            return row.status if row is not None else "missing"
        provenance.update(
            render_engine=RENDER_ENGINE, render_seconds=round(seconds, 3), guard=guard, audit=audit,
            **({} if reviewed else {"ai_rewrite_consent": consent}),
            rewriter=None if rewriter is None or reviewed or consent == "originals_only" else {"model": rewriter.model, "prompt_hash": prompt_hash(rewriter),
                                                                "endpoint": rewriter.base_url},
        )  # fmt: skip
        row.document, row.provenance = document_to_dict(document), provenance
        repository.delete_files(session, workspace_id, artifact_id, version)
        for fmt, content in outputs.items():
            repository.add(session, ArtifactFile(
                workspace_id=workspace_id, artifact_id=artifact_id, version=version, format=fmt,
                media_type=MEDIA_TYPES[fmt], sha256=hashlib.sha256(content).hexdigest(), size=len(content),
                pages=pages if fmt == "pdf" else None, content=content, created_at=utcnow(),
            ))  # fmt: skip
        reason = None if reviewed else _needs_review(stored.get("meta", {}).get("review"), provenance, guard)
        row.status = "awaiting_review" if reason else "ready"
        row.review_reason = reason if reason else row.review_reason
        row.rendered_at, row.error = utcnow(), None
        if row.status == "ready":
            announce.ready(session, workspace_id, artifact_id, version)
        return row.status


def _buyer_privacy(
    session: Session, workspace_id: str, artifact_id: str, provenance: Mapping[str, Any]
) -> tuple[list[str], str]:
    """What must never reach the rewriter about this artifact's buyer, and their AI-rewrite consent."""
    inputs = provenance.get("inputs") or {}
    names: list[Any] = [inputs.get("name"), inputs.get("first_name")]
    found: list[Any] = [inputs.get("goal_text")]
    # Free-text answers are the buyer's words; a chosen option's value ("idea") is the creator's. Without
    # the quiz that scored them every string answer counts as the buyer's (privacy before caching).
    quiz = None
    with contextlib.suppress(OfferloopError):
        if provenance.get("quiz_id"):
            quiz = content_service.get_quiz(session=session, workspace_id=workspace_id,
                                            quiz_id=provenance["quiz_id"], version=provenance.get("quiz_version"))  # fmt: skip
    for qid, value in (inputs.get("answers") or {}).items():
        question = quiz.question(str(qid)) if quiz is not None else None
        if isinstance(value, str) and (question is None or question.type == "text" or not question.options):
            found.append(value)
    consent = "allowed"
    artifact = repository.artifact(session, workspace_id, artifact_id)
    if artifact is not None:
        try:
            buyer = identity_service.get_buyer(
                session=session, workspace_id=workspace_id, buyer_id=artifact.buyer_id
            )
        except OfferloopError:
            buyer = None
        if buyer is not None:
            consent = buyer.consent.ai_rewrite or "allowed"
            found += [buyer.user_id, *(i.value for i in buyer.identities)]
            traits = {k.lower().replace("_", ""): v for k, v in buyer.traits.items()}
            names += [traits.get(k) for k in ("name", "firstname", "lastname")]
            found += [v for k, v in traits.items() if k in _IDENTIFYING_TRAITS]
    identifiers = [v.strip() for v in (*names, *found) if isinstance(v, str) and v.strip()]
    identifiers += [part for v in names if isinstance(v, str) for part in v.split()]  # "Ana" of "Ana Lima"
    return list(dict.fromkeys(identifiers)), consent


_IDENTIFYING_TRAITS = frozenset(
    ("name", "firstname", "lastname", "email", "phone", "username", "company", "address", "city")
)


def _audit_sources(
    session: Session, workspace_id: str, provenance: Mapping[str, Any]
) -> tuple[Quiz | None, Policy | None]:
    """The quiz version that scored the buyer's answers and the policy version that chose the sections
    (for the score ranges and slot conditions of the audit); None where one is gone."""
    quiz = policy = None
    with contextlib.suppress(OfferloopError):
        if provenance.get("quiz_id"):
            quiz = content_service.get_quiz(session=session, workspace_id=workspace_id,
                                            quiz_id=provenance["quiz_id"], version=provenance.get("quiz_version"))  # fmt: skip
    with contextlib.suppress(OfferloopError):
        policy = get_policy(session=session, workspace_id=workspace_id, policy_id=str(provenance.get("policy_id")),
                            version=provenance.get("policy_version"))  # fmt: skip
    return quiz, policy


def _pdf_pages(pdf: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def render_queued(
    *, db: Any, workspace_id: str, artifact_id: str, version: int, rewriter: RewriterConfig | None = None
) -> str | None:
    """The render job's work: render a queued version (or one a killed worker left *rendering*) and set its
    status; None, doing nothing, when the version is no longer waiting (rendered, superseded, gone)."""
    with db.write() as session:
        row = repository.version(session, workspace_id, artifact_id, version, lock=True)
        if row is None or row.status not in ("queued", "rendering"):
            return None
        row.status = "rendering"
    status = render_version(
        db=db, workspace_id=workspace_id, artifact_id=artifact_id, version=version, rewriter=rewriter
    )
    if status == "ready":  # a regenerated version of a reviewed artifact goes back to a human
        with db.write() as session:
            status = hold_for_review(
                session=session, workspace_id=workspace_id, artifact_id=artifact_id, version=version
            )
    return status


def render_failed(*, session: Session, workspace_id: str, artifact_id: str, version: int, error: str) -> None:
    """The render job gave up: a version still waiting shows it failed, with the reason."""
    row = repository.version(session, workspace_id, artifact_id, version, lock=True)
    if row is not None and row.status in ("queued", "rendering"):
        row.status, row.error = "failed", error[:2000]


def run_pending(
    *, db: Any, rewriter: RewriterConfig | None = None, now: datetime | None = None
) -> list[tuple[str, int, str]]:
    """Run the render jobs due now in this thread (tests, ``offerloop worker --once``): (artifact, version,
    status) of each version rendered."""
    from offerloop.assembly import tasks  # noqa: F401  (registers the render job; it imports this module)

    rendered: list[tuple[str, int, str]] = []
    owner = runner.owner_id(":pending")
    while runner.run_due(db, owner=owner, now=now, only=(RENDER_KIND,),
                         deps={"rewriter": rewriter, "rendered": rendered}):  # fmt: skip
        pass
    return rendered


def load_artifact(session: Session, workspace_id: str, artifact_id: str, *, lock: bool = False) -> Artifact:
    artifact = repository.artifact(session, workspace_id, artifact_id, lock=lock)
    if artifact is None:
        raise ArtifactNotFound(f"artifact {artifact_id} does not exist")
    return artifact


def deliverable_version(versions: list[ArtifactVersion], current: int) -> ArtifactVersion | None:
    """What a buyer gets: the latest version that is ready and, when held for review, approved by a human.
    While a newer version waits for review (or renders), buyers keep the last deliverable one."""
    return next((v for v in reversed(versions) if v.version <= current and review_rules.deliverable(v)), None)


def hold_for_review(*, session: Session, workspace_id: str, artifact_id: str, version: int) -> str:
    """After rendering: a held version (regenerated after a human review) waits for a human instead of being ready."""
    row = repository.version(session, workspace_id, artifact_id, version, lock=True)
    if row is None:
        return "missing"
    if row.status == "ready" and not review_rules.deliverable(row):
        row.status = "awaiting_review"
        row.review_reason = (row.review_reason or review_rules.reasons(row)[0])[:200]
    return row.status
