"""The assembly domain: composition policies, per-buyer artifacts, rendering, voice, review, provenance.

An artifact request composes at once (selection is milliseconds) and stores a *queued* version with its
preview, and enqueues its render job (kind ``assembly.render``, one per version) in the same transaction.
The job (``render_queued``) rewrites allowed atoms through the optional voice rewriter, renders
PDF/HTML/email/Markdown, and leaves the version *ready* or *awaiting_review*. Jobs are rows claimed with a
lease by any server thread or ``offerloop worker`` process, so nothing queued is lost when a process dies:
a version left *rendering* by a killed worker is rendered again when its job's lease runs out.

This module is the domain's one entry point for other domains (``__all__``); it composes and requests
artifacts, reacts to events and regenerates. The rest lives beside it and is re-exported here: stored
policies (:mod:`.policy_store`), themes (:mod:`.themes`), the render job (:mod:`.rendering`), the review
queue (:mod:`.review_queue`) and signed download links (:mod:`.links`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.assembly import repository
from offerloop.assembly import review as review_rules
from offerloop.assembly.composer import Composition, compose
from offerloop.assembly.document import (
    Document,
    document_from_dict,
    document_to_dict,
)
from offerloop.assembly.exceptions import (
    AssemblyError,
)
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.links import buyer_file, download_link, open_link
from offerloop.assembly.policy import Policy
from offerloop.assembly.policy_store import get_policy, lint, lint_finding, list_policies, put_policy
from offerloop.assembly.render import render_preview
from offerloop.assembly.rendering import (
    MEDIA_TYPES,
    RENDER_KIND,
    deliverable_version,
    enqueue_render,
    hold_for_review,
    load_artifact,
    render_failed,
    render_key,
    render_queued,
    render_version,
    run_pending,
)
from offerloop.assembly.review_queue import (
    open_preview,
    review,
    review_detail,
    review_file,
    review_page,
    review_queue,
)
from offerloop.assembly.schemas import (
    AffectedArtifact,
    AffectedPage,
    ArtifactFileRead,
    ArtifactRead,
    ArtifactReview,
    ArtifactSummary,
    ArtifactVersionRead,
    AtomUseRead,
    OutlineSection,
)
from offerloop.assembly.selector import CorpusIndex
from offerloop.assembly.themes import set_theme, theme_for
from offerloop.content import service as content_service
from offerloop.content.model import Quiz
from offerloop.content.quizzes import TRACK_EVENT as QUIZ_EVENT
from offerloop.content.quizzes import scores as quiz_scores
from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.core.ids import new_id
from offerloop.core.pages import decode_cursor, page_of
from offerloop.identity import service as identity_service
from offerloop.models import Artifact, ArtifactVersion, AtomUse
from offerloop.personas import service as persona_service

__all__ = [
    "MEDIA_TYPES",
    "RENDER_KIND",
    "SOURCE_EVENT",
    "TriggerFailed",
    "affected_by",
    "affected_page",
    "buyer_artifacts",
    "buyer_file",
    "buyer_inputs",
    "corpus_index",
    "download_link",
    "get_artifact",
    "get_policy",
    "hold_for_review",
    "lint",
    "lint_finding",
    "list_policies",
    "on_events",
    "on_logged_events",
    "open_link",
    "open_preview",
    "put_policy",
    "regenerate",
    "regenerate_affected",
    "render_failed",
    "render_key",
    "render_queued",
    "render_version",
    "request_artifact",
    "review",
    "review_detail",
    "review_file",
    "review_page",
    "review_queue",
    "run_pending",
    "semantic_index",
    "set_theme",
    "theme_for",
]

# Per workspace (and policy) its current version: one bounded cache each (offerloop.core.cache).
_indexes: VersionedCache[CorpusIndex] = VersionedCache(max_size=256)
_semantic: VersionedCache[Any] = VersionedCache(max_size=64)  # embeddings: the largest entries


# -- composition -----------------------------------------------------------------------------------


def corpus_index(*, session: Session, workspace_id: str) -> CorpusIndex:
    """The BM25 index of the current corpus, built once per process per corpus version."""
    version, atoms = content_service.corpus(session=session, workspace_id=workspace_id)
    return _indexes.get_or_load(workspace_id, version, lambda: CorpusIndex(atoms))


def buyer_inputs(
    *, session: Session, workspace_id: str, buyer_id: str, quiz: Quiz | None, today: date | None = None
) -> BuyerInputs:
    """What composition may use about a buyer: name traits, persona, latest quiz answers and their scores."""
    buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    traits = buyer.traits
    first = traits.get("first_name") or traits.get("firstName")
    name = (
        traits.get("name")
        or " ".join(str(p) for p in (first, traits.get("last_name") or traits.get("lastName")) if p)
        or None
    )
    if first is None and isinstance(name, str) and name.strip():
        first = name.split()[0]
    answers: dict[str, Any] = {}
    scores: dict[str, float] = {}
    goal = ""
    if quiz is not None:
        # The answers of the buyer's latest completion of this quiz, exactly as submitted.
        event = identity_service.latest_event(session=session, workspace_id=workspace_id, buyer_id=buyer_id,
                                              name=QUIZ_EVENT, where={"quiz_id": quiz.id})  # fmt: skip
        raw = (event.properties or {}).get("answers") if event is not None else None
        if isinstance(raw, Mapping):
            answers = {k: v for k, v in raw.items() if quiz.question(k) is not None}
        try:
            scores = quiz_scores(quiz, answers)
        except (ValueError, TypeError, KeyError):
            scores = {}
        goal = " ".join(str(answers[q.id]) for q in quiz.questions if q.type == "text" and answers.get(q.id))
    persona = persona_service.brief(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    return BuyerInputs(
        today=today or utcnow().date(), name=str(name) if name else None, first_name=str(first) if first else None,
        persona=persona["name"] if persona and persona["name"] != "unassigned" else None,
        persona_confidence=persona["confidence"] if persona else None, answers=answers, scores=scores, goal_text=goal,
    )  # fmt: skip


def _outline(document: Document) -> list[OutlineSection]:
    return [
        OutlineSection(key=s.key, title=s.title, blocks=[b.title for b in s.blocks if b.title])
        for s in document.sections
    ]


def _preview_document(document: Document) -> Document:
    return dataclasses.replace(document, sections=document.sections[:1])


def request_artifact(
    *, session: Session, workspace_id: str, buyer_id: str, policy_id: str, offer_value_minor: int | None = None,
    trigger: str = "api", quiz_id: str | None = None, ranking: str = "bm25",
    source_event: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Compose the buyer's deliverable now and queue its full render; returns id, status and the preview.
    ``ranking`` is "bm25" (default) or "semantic" (the optional extra's embedding model); ``source_event``
    (the logged event that triggered it) is kept in the provenance."""
    identity_service.live_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    policy = get_policy(session=session, workspace_id=workspace_id, policy_id=policy_id)
    quiz = _quiz(session, workspace_id, quiz_id)
    composition = _compose(session, workspace_id, policy, buyer_id, quiz, ranking)
    document, hold, edits = _prior_decision(session, workspace_id, buyer_id, policy.id, composition.document)
    now = utcnow()
    artifact = Artifact(id=new_id("art"), workspace_id=workspace_id, buyer_id=buyer_id, policy_id=policy.id,
                        current_version=1, created_at=now, updated_at=now)  # fmt: skip
    repository.add(session, artifact)
    repository.flush(session)
    changelog = "; ".join(
        [f"first version ({trigger})", *(f"reviewer edit kept on {e['block']}" for e in edits)]
    )
    row = _add_version(session, artifact, 1, composition, trigger=trigger, offer_value_minor=offer_value_minor, ranking=ranking,
                       changelog=changelog, document=document, held=hold, edits=edits, source_event=source_event)  # fmt: skip
    # JSON data rather than the read model: checkout's fulfilment reads it as a mapping (switch it at merge)
    return _summary(artifact, row, document).model_dump(mode="json")


def _prior_decision(
    session: Session, workspace_id: str, buyer_id: str, policy_id: str, document: Document
) -> tuple[Document, dict[str, Any] | None, list[dict[str, Any]]]:
    """A reviewer who rejected or edited this buyer's earlier deliverable of the same policy has spoken for
    the next one too (a trigger firing again, a new request): it waits for a human, with their edits carried."""
    mine = identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    prior = repository.last_reviewed_for(session, workspace_id, mine, policy_id)
    outcome = review_rules.review_outcome(prior) if prior is not None else None
    if prior is None or outcome not in ("rejected", "edited"):
        return document, None, []
    document, edits, unplaced = review_rules.carry_edits(
        document, prior.provenance.get(review_rules.EDITS, [])
    )
    hold = {"reason": f"an earlier deliverable of this policy for this buyer ({prior.artifact_id} v{prior.version}) "
                      f"was {outcome} by a reviewer",
            "prior_artifact": prior.artifact_id, "prior_version": prior.version, "unplaced_edits": unplaced}  # fmt: skip
    return document, hold, edits


def _quiz(session: Session, workspace_id: str, quiz_id: str | None) -> Quiz | None:
    try:
        return content_service.get_quiz(session=session, workspace_id=workspace_id, quiz_id=quiz_id)
    except OfferloopError:
        if quiz_id is not None:
            raise
        return None


def _compose(
    session: Session,
    workspace_id: str,
    policy: Policy,
    buyer_id: str,
    quiz: Quiz | None,
    ranking: str = "bm25",
) -> Composition:
    index = corpus_index(session=session, workspace_id=workspace_id)
    inputs = buyer_inputs(session=session, workspace_id=workspace_id, buyer_id=buyer_id, quiz=quiz)
    relevance = None
    if ranking == "semantic":
        relevance = semantic_index(session=session, workspace_id=workspace_id).relevance(inputs, quiz)
    return compose(policy, index, inputs, quiz, relevance)


def semantic_index(*, session: Session, workspace_id: str) -> Any:
    """The corpus embedded once per process per corpus version (needs the ``semantic`` extra)."""
    from offerloop.assembly import semantic

    if not semantic.available():
        raise AssemblyError("semantic ranking needs the optional extra: pip install 'offerloop[semantic]'",
                            code="semantic_unavailable")  # fmt: skip
    version, atoms = content_service.corpus(session=session, workspace_id=workspace_id)
    return _semantic.get_or_load(workspace_id, version, lambda: semantic.SemanticIndex(atoms))


def _add_version(
    session: Session, artifact: Artifact, number: int, composition: Composition, *, trigger: str,
    offer_value_minor: int | None, changelog: str, ranking: str = "bm25", document: Document | None = None,
    held: dict[str, Any] | None = None, edits: list[dict[str, Any]] | None = None,
    source_event: dict[str, Any] | None = None,
) -> ArtifactVersion:  # fmt: skip
    theme = theme_for(session=session, workspace_id=artifact.workspace_id)
    document = document or composition.document
    provenance = {
        **composition.to_dict(),
        "atoms": [{"id": a, "version": v} for a, v in composition.atoms()],
        "trigger": trigger,
        "ranking": "semantic (all-MiniLM-L6-v2)" if ranking == "semantic" else "bm25",
        "offer_value_minor": offer_value_minor,
        "theme": theme.name,
        "rewriter": None,
        "guard": [],
        "reviewer": None,
        "render_engine": None,
        **({review_rules.HELD: held} if held else {}),
        **({review_rules.EDITS: edits} if edits else {}),
        **({SOURCE_EVENT: source_event} if source_event else {}),
    }
    row = ArtifactVersion(
        workspace_id=artifact.workspace_id, artifact_id=artifact.id, version=number, status="queued",
        document=document_to_dict(document), provenance=provenance,
        preview_html=render_preview(_preview_document(document), theme), changelog=changelog, created_at=utcnow(),
        review_reason=held["reason"][:200] if held else None,
    )  # fmt: skip
    repository.add(session, row)
    for atom_id, atom_version in dict.fromkeys(composition.atoms()):
        repository.add(session, AtomUse(workspace_id=artifact.workspace_id, artifact_id=artifact.id, version=number,
                                        atom_id=atom_id, atom_version=atom_version))  # fmt: skip
    repository.flush(session)
    enqueue_render(session, row)
    return row


def _summary(artifact: Artifact, row: ArtifactVersion, document: Document | None = None) -> ArtifactSummary:
    document = document or document_from_dict(row.document)
    return ArtifactSummary(
        id=artifact.id, version=row.version, status=row.status, policy=artifact.policy_id,
        buyer_id=artifact.buyer_id, title=document.title, outline=_outline(document),
        preview_html=row.preview_html,
    )  # fmt: skip


SOURCE_EVENT = "source_event"  # provenance key: the logged event that triggered the artifact


class TriggerFailed(RuntimeError):
    """A trigger's composition failed with an unexpected error (a bug, not a refusal): raised for the one
    event, so the consumer runner parks that event and goes on with the others."""

    def __init__(self, seq: int, policy_id: str) -> None:
        super().__init__(f"trigger of policy {policy_id!r} failed on event seq {seq}")
        self.seq = seq
        self.policy_id = policy_id


def _triggers(session: Session, workspace_id: str) -> dict[str, list[str]]:
    """Event name -> the current policies whose trigger names it."""
    triggered: dict[str, list[str]] = {}
    for row in repository.policies(session, workspace_id):
        for t in row.triggers or []:
            triggered.setdefault(t["event"], []).append(row.policy_id)
    return triggered


def on_events(*, session: Session, workspace_id: str, events: Iterable[tuple[str, str | None]]) -> list[str]:
    """Artifacts generated by events: each (buyer id, event name) that a policy's trigger names queues that
    policy's deliverable for the buyer (once per buyer, policy version and event batch)."""
    triggered = _triggers(session, workspace_id)
    if not triggered:
        return []
    made: list[str] = []
    seen: set[tuple[str, str]] = set()
    for buyer_id, name in events:
        for policy_id in triggered.get(name or "", []):
            if (buyer_id, policy_id) in seen:
                continue
            seen.add((buyer_id, policy_id))
            try:
                made.append(request_artifact(session=session, workspace_id=workspace_id, buyer_id=buyer_id,
                                             policy_id=policy_id, trigger=f"event:{name}")["id"])  # fmt: skip
            except OfferloopError:
                continue  # a policy that cannot compose for this buyer must not refuse the event itself
    return made


def on_logged_events(
    *, session: Session, workspace_id: str, events: Iterable[tuple[int, str, str | None, datetime]]
) -> list[str]:
    """Artifacts triggered by logged track events ``(seq, buyer id, name, received_at)``: once per buyer,
    policy and ingested batch (events received together), however often an event is seen again — the
    triggering event is kept in the artifact's provenance and checked first. Each event composes in its
    own savepoint: a refusal (an ``OfferloopError``) skips it; any other error raises ``TriggerFailed``."""
    triggered = _triggers(session, workspace_id)
    wanted = [
        (seq, buyer_id, name, received_at, policy_id)
        for seq, buyer_id, name, received_at in events
        for policy_id in triggered.get(name or "", [])
    ]
    if not wanted:
        return []
    # An event seen again after its buyer merged carries the survivor's id, while the artifact it made is the
    # merged-away buyer's (a merge moves no deliverable): "already fired" is asked of the whole lineage and
    # keyed by the live survivor.
    survivor: dict[str, str] = {}
    for buyer_id in {w[1] for w in wanted}:
        family = identity_service.survivor_lineage(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id
        )
        survivor.update(dict.fromkeys(family, family[0]))
        survivor[buyer_id] = family[0]
    fired: set[tuple[str, str, str]] = set()
    for buyer_id, policy_id, provenance in repository.first_provenances(
        session, workspace_id, set(survivor), {w[4] for w in wanted}
    ):
        source = provenance.get(SOURCE_EVENT)
        if isinstance(source, dict):
            fired.add((survivor.get(buyer_id, buyer_id), policy_id, str(source.get("received_at"))))
    made: list[str] = []
    for seq, buyer_id, name, received_at, policy_id in wanted:
        key = (survivor[buyer_id], policy_id, received_at.isoformat())
        if key in fired:
            continue
        fired.add(key)
        try:
            with session.begin_nested():
                made.append(request_artifact(
                    session=session, workspace_id=workspace_id, buyer_id=buyer_id, policy_id=policy_id,
                    trigger=f"event:{name}", source_event={"seq": seq, "received_at": key[2]},
                )["id"])  # fmt: skip
        except OfferloopError:
            continue  # a policy that cannot compose for this buyer must not refuse the event itself
        except Exception as exc:
            raise TriggerFailed(seq, policy_id) from exc
    return made


# -- reading ----------------------------------------------------------------------------------------


def get_artifact(*, session: Session, workspace_id: str, artifact_id: str) -> ArtifactRead:
    return _artifact_read(session, workspace_id, load_artifact(session, workspace_id, artifact_id))


def buyer_artifacts(
    *, session: Session, workspace_id: str, buyer_id: str, limit: int = 100
) -> list[ArtifactRead]:
    """The deliverables of ``buyer_id`` (as stored: a live id) and of the buyers merged into it (a merge moves
    none), newest first, with their versions."""
    mine = identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    rows = repository.artifacts_of_buyer(session, workspace_id, mine, limit=limit)
    return [_artifact_read(session, workspace_id, a) for a in rows]


def _artifact_read(session: Session, workspace_id: str, artifact: Artifact) -> ArtifactRead:
    versions = repository.versions(session, workspace_id, artifact.id)
    current = next(v for v in versions if v.version == artifact.current_version)
    files = repository.files(session, workspace_id, artifact.id, current.version)
    deliverable = deliverable_version(versions, artifact.current_version)
    return ArtifactRead(
        **dict(_summary(artifact, current)),
        error=current.error,
        review=ArtifactReview(reason=current.review_reason, reasons=review_rules.reasons(current) if current.status == "awaiting_review" else [],
                              reviewer=current.reviewer, note=current.review_note, outcome=review_rules.review_outcome(current),
                              reviewed_at=current.reviewed_at),
        provenance={**current.provenance, "reviewer": current.reviewer},
        files=[ArtifactFileRead(format=f.format, media_type=f.media_type, size=f.size, sha256=f.sha256, pages=f.pages) for f in files],
        downloadable_version=deliverable.version if deliverable is not None else None,
        versions=[ArtifactVersionRead(version=v.version, status=v.status, changelog=v.changelog, reviewer=v.reviewer,
                                      review_outcome=review_rules.review_outcome(v), created_at=v.created_at) for v in versions],
    )  # fmt: skip


# -- versioning ------------------------------------------------------------------------------------


def affected_by(*, session: Session, workspace_id: str, atom_id: str | None = None) -> list[AffectedArtifact]:
    """Artifacts whose current version used an atom version that has since changed."""
    if atom_id is not None:  # an atom of another workspace (or none) is a 404, not an empty list
        content_service.get_atom(session=session, workspace_id=workspace_id, atom_id=atom_id)
    out: dict[str, AffectedArtifact] = {}
    for artifact_id, version, aid, used, current in repository.stale_uses(session, workspace_id, atom_id):
        entry = out.setdefault(
            artifact_id, AffectedArtifact(artifact_id=artifact_id, version=version, atoms=[])
        )
        entry.atoms.append(AtomUseRead(id=aid, used=used, current=current))
    return list(out.values())


def affected_page(
    *, session: Session, workspace_id: str, atom_id: str, limit: int, cursor: str | None = None
) -> AffectedPage:
    """``affected_by`` one atom, by artifact id, a page at a time."""
    after = decode_cursor(cursor, types=(str,))
    rows = sorted(
        (a for a in affected_by(session=session, workspace_id=workspace_id, atom_id=atom_id)
         if after is None or a.artifact_id > after[0]),
        key=lambda a: a.artifact_id,
    )  # fmt: skip
    return AffectedPage(**dict(page_of(rows, limit, key=lambda a: (a.artifact_id,), item=lambda a: a)))


def regenerate(
    *, session: Session, workspace_id: str, artifact_id: str, reason: str | None = None
) -> ArtifactSummary:
    """A new version composed from the current corpus and policy, with a changelog of what changed. When a human
    reviewed an earlier version, the new one is held for review and carries the reviewer's edits (or flags them)."""
    artifact = load_artifact(
        session, workspace_id, artifact_id, lock=True
    )  # one regeneration or review at a time
    versions = repository.versions(session, workspace_id, artifact.id)
    previous = next(v for v in versions if v.version == artifact.current_version)
    policy = get_policy(session=session, workspace_id=workspace_id, policy_id=artifact.policy_id)
    quiz = _quiz(session, workspace_id, previous.provenance.get("quiz_id"))
    ranking = "semantic" if str(previous.provenance.get("ranking", "")).startswith("semantic") else "bm25"
    composition = _compose(session, workspace_id, policy, artifact.buyer_id, quiz, ranking)
    changes = _changelog(previous.provenance, composition)
    number = artifact.current_version + 1
    hold: dict[str, Any] | None = None
    edits: list[dict[str, Any]] = []
    document = composition.document
    reviewed = review_rules.last_reviewed(versions)
    if reviewed is not None:  # a human decision stands: back to review, with their edits carried or flagged
        document, edits, unplaced = review_rules.carry_edits(
            document, previous.provenance.get(review_rules.EDITS, [])
        )
        pending = (
            []
            if previous.reviewed_at is not None
            else (previous.provenance.get(review_rules.HELD) or {}).get("unplaced_edits", [])
        )
        hold = {"reason": f"regenerated after review: v{reviewed.version} was {review_rules.review_outcome(reviewed)}",
                "against_version": reviewed.version, "unplaced_edits": [*pending, *unplaced]}  # fmt: skip
        changes += [f"reviewer edit kept on {e['block']}" for e in edits]
        changes += [
            f"reviewer edit on {e['block']} not carried (block gone): flagged for review" for e in unplaced
        ]
    row = _add_version(session, artifact, number, composition, trigger="regenerate",
                       offer_value_minor=previous.provenance.get("offer_value_minor"), ranking=ranking,
                       changelog="; ".join(([reason] if reason else []) + changes) or "regenerated, no content change",
                       document=document, held=hold, edits=edits)  # fmt: skip
    if previous.status in ("queued", "rendering", "awaiting_review"):  # never rendered or reviewed: replaced
        previous.status = "superseded"
    artifact.current_version, artifact.updated_at = number, utcnow()
    return _summary(artifact, row, document)


def _changelog(before: Mapping[str, Any], after: Composition) -> list[str]:
    old = {a["id"]: a["version"] for a in before.get("atoms", [])}
    new = dict(after.atoms())
    lines = [f"atom {a} {old[a]} -> {new[a]}" for a in sorted(set(old) & set(new)) if old[a] != new[a]]
    lines += [f"added atom {a}" for a in sorted(set(new) - set(old))]
    lines += [f"removed atom {a}" for a in sorted(set(old) - set(new))]
    if before.get("policy_version") != after.policy_version:
        lines.append(f"policy {before.get('policy_version')} -> {after.policy_version}")
    return lines


def regenerate_affected(
    *, session: Session, workspace_id: str, atom_id: str | None = None
) -> list[ArtifactSummary]:
    return [
        regenerate(session=session, workspace_id=workspace_id, artifact_id=a.artifact_id,
                   reason="content changed: " + ", ".join(x.id for x in a.atoms))
        for a in affected_by(session=session, workspace_id=workspace_id, atom_id=atom_id)
    ]  # fmt: skip
