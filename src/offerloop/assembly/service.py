"""The assembly domain: composition policies, per-buyer artifacts, rendering, voice, review, provenance.

An artifact request composes at once (selection is milliseconds) and stores a *queued* version with its
preview, and enqueues its render job (kind ``assembly.render``, one per version) in the same transaction.
The job (``render_queued``) rewrites allowed atoms through the optional voice rewriter, renders
PDF/HTML/email/Markdown, and leaves the version *ready* or *awaiting_review*. Jobs are rows claimed with a
lease by any server thread or ``offerloop worker`` process, so nothing queued is lost when a process dies:
a version left *rendering* by a killed worker is rendered again when its job's lease runs out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import io
import re
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from html import escape as html_escape
from typing import Any
from xml.etree import ElementTree

import pypdf
from sqlalchemy.orm import Session

from offerloop.assembly import repository
from offerloop.assembly import review as review_rules
from offerloop.assembly.composer import Composition, compose
from offerloop.assembly.document import (
    Document,
    Section,
    Theme,
    document_from_dict,
    document_to_dict,
)
from offerloop.assembly.exceptions import (
    ArtifactNotFound,
    AssemblyError,
    BadLink,
    InvalidReview,
    NotDeliverable,
    PolicyNotFound,
)
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.lint import Finding, lint_policy
from offerloop.assembly.policy import Policy, parse_policy
from offerloop.assembly.render import RENDER_ENGINE, render, render_preview
from offerloop.assembly.render.audit import audit_view, with_audit
from offerloop.assembly.render.fonts import SUPPORTED_FONTS, canonical_font
from offerloop.assembly.render.html import FULL_VERSION_LINK
from offerloop.assembly.render.markup import css_color
from offerloop.assembly.rewriter import rewrite_all
from offerloop.assembly.schemas import (
    AffectedArtifact,
    AffectedPage,
    ArtifactFileRead,
    ArtifactRead,
    ArtifactReview,
    ArtifactSummary,
    ArtifactVersionRead,
    AtomUseRead,
    DownloadLink,
    LintFinding,
    OutlineSection,
    PolicyPage,
    PolicyRead,
    PolicyRef,
    PolicyStored,
    ReviewBuyer,
    ReviewDetail,
    Reviewed,
    ReviewItem,
    ReviewPage,
    ReviewVersion,
    ThemeRead,
)
from offerloop.assembly.selector import CorpusIndex
from offerloop.assembly.voice import RewriterConfig, prompt_hash
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
from offerloop.jobs import queue, runner
from offerloop.models import Artifact, ArtifactFile, ArtifactVersion, AtomUse, CompositionPolicy
from offerloop.personas import service as persona_service
from offerloop.workspaces import service as workspace_service

FULL_VERSION_TTL_S = 30 * 24 * 3600  # how long an e-mail summary's link to the full version works
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "email": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
}
# Per workspace (and policy) its current version: one bounded cache each (offerloop.core.cache).
_indexes: VersionedCache[CorpusIndex] = VersionedCache(max_size=256)
_policies: VersionedCache[Policy] = VersionedCache(max_size=4096)
_semantic: VersionedCache[Any] = VersionedCache(max_size=64)  # embeddings: the largest entries


# -- policies --------------------------------------------------------------------------------------


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


# -- theme -----------------------------------------------------------------------------------------


def set_theme(
    *, session: Session, workspace_id: str, theme: Mapping[str, Any], actor: str = "api"
) -> ThemeRead:
    allowed = {f.name for f in dataclasses.fields(Theme)}
    unknown = sorted(set(theme) - allowed)
    if unknown:
        raise AssemblyError(f"unknown theme field(s): {', '.join(unknown)}", code="invalid_theme",
                            details={"allowed": sorted(allowed)})  # fmt: skip
    bad = [k for k, v in theme.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise AssemblyError(f"theme fields must be strings: {', '.join(sorted(bad))}", code="invalid_theme")
    _check_theme(theme)
    theme = {**theme, **_theme_fonts(theme)}
    version = workspace_service.set_config(
        session=session, workspace_id=workspace_id, field="theme", value=dict(theme)
    )
    workspace_service.audit(session, workspace_id, actor=actor, action="theme.update", target_type="workspace",
                            target_id=workspace_id, details={"version": version})  # fmt: skip
    return ThemeRead(
        version=version, **dataclasses.asdict(theme_for(session=session, workspace_id=workspace_id))
    )


LOGO_MAX_BYTES = 200_000
# Elements that run code, load or restyle things, or rewrite attributes (an <animate> of href) have no place in
# a logo; raster images inside it may only be inline PNG/JPEG/GIF/WebP (an inline SVG could hide a script).
_LOGO_REFUSED = frozenset(("script", "foreignObject", "iframe", "object", "embed", "style", "animate", "set",
                           "animateTransform", "animateMotion", "handler", "listener"))  # fmt: skip
_RASTER_URI = re.compile(r"data:image/(?:png|jpeg|gif|webp);", re.I)


def _check_theme(theme: Mapping[str, Any]) -> None:
    """Colours are hex colours and the logo is a self-contained SVG: refused with the field, never ignored."""
    for key in ("primary", "accent", "text"):
        value = theme.get(key)
        if value is not None and css_color(value, "") != value:
            raise AssemblyError(f"{key}: {str(value)[:40]!r} is not a hex colour such as #1f3a5f", code="invalid_theme",
                                details={"field": key})  # fmt: skip
    logo = theme.get("logo_svg")
    if logo is not None:
        problem = _logo_problem(logo)
        if problem:
            raise AssemblyError(f"logo_svg: {problem}", code="invalid_theme", details={"field": "logo_svg"})


def _logo_problem(svg: str) -> str | None:
    if len(svg.encode("utf-8")) > LOGO_MAX_BYTES:
        return f"larger than {LOGO_MAX_BYTES:,} bytes"
    if "<!" in svg:  # no DOCTYPE, ENTITY or CDATA: nothing to expand, nothing hidden
        return "declarations (<!DOCTYPE, <!ENTITY, <![CDATA[) are not accepted"
    if re.search(r"<\?(?!xml[\s?])", svg, re.I):  # only the XML declaration; no xml-stylesheet
        return "processing instructions are not accepted"
    try:
        root = ElementTree.fromstring(svg)
    except ElementTree.ParseError as exc:
        return f"not well-formed XML ({exc})"
    if root.tag.rsplit("}", 1)[-1] != "svg":
        return "the root element must be <svg>"
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag in _LOGO_REFUSED:
            return f"<{tag}> is not accepted in a logo"
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1]
            if local.lower().startswith("on"):
                return f"event attribute {local!r} is not accepted"
            if local == "href" and not (value.startswith("#") or _RASTER_URI.match(value)):
                return "links are not accepted (only #fragment or a data: PNG, JPEG, GIF or WebP image)"
            if re.search(r"url\(\s*['\"]?(?!#)", value, re.I) or "@import" in value.lower():
                return f"attribute {local!r} refers to an outside resource"
    return None


def _theme_fonts(theme: Mapping[str, Any]) -> dict[str, str]:
    """The theme's font fields as supported family names; an unknown family is a 422 listing them."""
    fonts: dict[str, str] = {}
    for key in ("body_font", "heading_font", "mono_font"):
        if theme.get(key) is None:
            continue
        name = canonical_font(theme[key])
        if name is None:
            given = str(theme[key])[:100]  # a huge value is not echoed back whole
            raise AssemblyError(
                f"{key}: font {given!r} is not shipped with offerloop; use one of: {', '.join(SUPPORTED_FONTS)}",
                code="unsupported_font", details={"field": key, "font": given, "supported": list(SUPPORTED_FONTS)},
            )  # fmt: skip
        fonts[key] = name
    return fonts


def theme_for(*, session: Session, workspace_id: str) -> Theme:
    ws = workspace_service.get_workspace(session=session, workspace_id=workspace_id)
    values = {k: v for k, v in (ws.theme or {}).items() if v is not None}  # None: the default
    values.setdefault("creator_name", ws.name)
    return Theme(**values)


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
    prior = repository.last_reviewed_for(session, workspace_id, buyer_id, policy_id)
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
    _enqueue_render(session, row)
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
    fired: set[tuple[str, str, str]] = set()
    for buyer_id, policy_id, provenance in repository.first_provenances(
        session, workspace_id, {w[1] for w in wanted}, {w[4] for w in wanted}
    ):
        source = provenance.get(SOURCE_EVENT)
        if isinstance(source, dict):
            fired.add((buyer_id, policy_id, str(source.get("received_at"))))
    made: list[str] = []
    for seq, buyer_id, name, received_at, policy_id in wanted:
        key = (buyer_id, policy_id, received_at.isoformat())
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


# -- rendering (the job) ---------------------------------------------------------------------------


RENDER_KIND = "assembly.render"


def _enqueue_render(session: Session, row: ArtifactVersion) -> None:
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


# -- reading, review, delivery -------------------------------------------------------------------------


def _artifact(session: Session, workspace_id: str, artifact_id: str, *, lock: bool = False) -> Artifact:
    artifact = repository.artifact(session, workspace_id, artifact_id, lock=lock)
    if artifact is None:
        raise ArtifactNotFound(f"artifact {artifact_id} does not exist")
    return artifact


def get_artifact(*, session: Session, workspace_id: str, artifact_id: str) -> ArtifactRead:
    artifact = _artifact(session, workspace_id, artifact_id)
    versions = repository.versions(session, workspace_id, artifact.id)
    current = next(v for v in versions if v.version == artifact.current_version)
    files = repository.files(session, workspace_id, artifact.id, current.version)
    deliverable = _deliverable_version(versions, artifact.current_version)
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


def _deliverable_version(versions: list[ArtifactVersion], current: int) -> ArtifactVersion | None:
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


def _buyer_view(session: Session, workspace_id: str, buyer_id: str) -> ReviewBuyer:
    try:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    except OfferloopError:
        return ReviewBuyer(id=buyer_id, user_id=None, identifiers=[], name=None, erased=True)
    return ReviewBuyer(id=buyer.id, user_id=buyer.user_id, identifiers=[{"kind": i.kind, "value": i.value} for i in buyer.identities],
                       name=buyer.traits.get("name") or buyer.traits.get("first_name"), erased=buyer.deleted)  # fmt: skip


def _queue_row(
    session: Session, artifact: Artifact, row: ArtifactVersion, versions: list[ArtifactVersion]
) -> ReviewItem:
    against = review_rules.last_reviewed(versions, below=row.version)
    held = row.provenance.get(review_rules.HELD) or {}
    return ReviewItem(
        artifact_id=row.artifact_id, version=row.version, status=row.status, reason=row.review_reason,
        reasons=review_rules.reasons(row), buyer=_buyer_view(session, row.workspace_id, artifact.buyer_id),
        policy=PolicyRef(id=artifact.policy_id, version=row.provenance.get("policy_version")),
        changelog=row.changelog, regenerated_after_review=held.get("against_version"),
        diff=review_rules.diff(against, row) if against is not None and held else None,
        edits=review_rules.edits_view(row), created_at=row.created_at,
    )  # fmt: skip


def _queued(session: Session, workspace_id: str, row: ArtifactVersion) -> ReviewItem:
    artifact = _artifact(session, workspace_id, row.artifact_id)
    return _queue_row(session, artifact, row, repository.versions(session, workspace_id, artifact.id))


def review_queue(*, session: Session, workspace_id: str) -> list[ReviewItem]:
    """Versions waiting for a human, each with its buyer, policy, the reasons and (when regenerated) the diff."""
    return [_queued(session, workspace_id, row) for row in repository.awaiting_review(session, workspace_id)]


def review_page(*, session: Session, workspace_id: str, limit: int, cursor: str | None = None) -> ReviewPage:
    """The review queue a page at a time, oldest first."""
    after = decode_cursor(cursor, types=(int,))
    rows = repository.awaiting_review(
        session, workspace_id, after=after[0] if after else None, limit=limit + 1
    )
    page = page_of(rows, limit, key=lambda r: (r.id,), item=lambda r: _queued(session, workspace_id, r))
    return ReviewPage(**dict(page))


def review_detail(
    *, session: Session, workspace_id: str, artifact_id: str, secret: str, version: int | None = None,
    ttl_s: int = 900, now: float | None = None, public_url: str = "",
) -> ReviewDetail:  # fmt: skip
    """Everything a reviewer decides on: each block's text and provenance, the rendered HTML, a reviewer-only
    preview link, the reasons and, for a regenerated version, the diff against the last reviewed one."""
    artifact = _artifact(session, workspace_id, artifact_id)
    versions = repository.versions(session, workspace_id, artifact.id)
    row = next((v for v in versions if v.version == (version or artifact.current_version)), None)
    if row is None:
        raise ArtifactNotFound(f"artifact {artifact_id} v{version} does not exist")
    guard = {g.get("atom_id"): g for g in row.provenance.get("guard") or []}
    document = {**row.document, "sections": [
        {**s, "blocks": [{**b, "block": review_rules.block_key(s["key"], i), "guard": guard.get(b.get("atom_id")) if b.get("atom_id") else None}
                         for i, b in enumerate(s["blocks"])]} for s in row.document["sections"]
    ]}  # fmt: skip
    html = repository.file(session, workspace_id, artifact.id, row.version, "html")
    expires = int((now if now is not None else time.time()) + ttl_s)
    key = workspace_service.signing_secret(session=session, configured=secret)
    sig = review_rules.preview_signature(key, artifact.id, row.version, "html", expires)
    return ReviewDetail(
        **dict(_queue_row(session, artifact, row, versions)), document=document,
        html=html.content.decode("utf-8") if html is not None else None,
        preview_url=f"{public_url.rstrip('/')}/v1/reviews/{artifact.id}/{row.version}/html?expires={expires}&sig={sig}" if html is not None else None,
        provenance={**row.provenance, "reviewer": row.reviewer},
        versions=[ReviewVersion(version=v.version, status=v.status, review_outcome=review_rules.review_outcome(v),
                                reviewer=v.reviewer, note=v.review_note, changelog=v.changelog) for v in versions],
    )  # fmt: skip


def open_preview(
    *, session: Session, artifact_id: str, version: int, fmt: str, expires: int, sig: str, secret: str,
    now: float | None = None,
) -> tuple[bytes, str]:  # fmt: skip
    """The file behind a reviewer preview link, whatever the version's status (buyer links stay refused)."""
    key = workspace_service.signing_secret(session=session, configured=secret)
    if fmt not in MEDIA_TYPES or not hmac.compare_digest(
        review_rules.preview_signature(key, artifact_id, version, fmt, expires).encode(),
        sig.encode("utf-8", "replace"),
    ):
        raise BadLink("this link is not valid")
    if (now if now is not None else time.time()) > expires:
        raise BadLink("this link has expired", code="link_expired")
    artifact = repository.artifact_for_signed_link(session, artifact_id)
    f = (
        repository.file(session, artifact.workspace_id, artifact_id, version, fmt)
        if artifact is not None
        else None
    )
    if f is None:
        raise ArtifactNotFound("this file is not available")
    return f.content, f.media_type


def review(
    *, session: Session, workspace_id: str, artifact_id: str, action: str, reviewer: str, note: str | None = None,
    edits: Mapping[str, str] | None = None, version: int | None = None,
) -> Reviewed:  # fmt: skip
    """approve → ready; reject → rejected; edit → the edited blocks replace the text and the version is
    rendered again, then ready (the reviewer approved it). Edits are keyed "<section key>/<block index>".
    ``version``, when given, must be the version waiting (a reviewer never approves what they did not see)."""
    if action not in review_rules.ACTIONS:
        raise InvalidReview(
            f"unknown review action {action!r}: approve, edit or reject", code="invalid_review_action"
        )
    if edits and action != "edit":
        raise InvalidReview("edits are only taken with action edit", code="invalid_edits")
    artifact = _artifact(session, workspace_id, artifact_id, lock=True)  # two reviewers at once: one wins
    row = repository.version(session, workspace_id, artifact.id, artifact.current_version, lock=True)
    assert row is not None
    if version is not None and version != row.version:
        raise InvalidReview(f"artifact {artifact_id} v{version} is not the current version (v{row.version})",
                            code="stale_version", details={"current_version": row.version})  # fmt: skip
    if row.status != "awaiting_review":
        raise InvalidReview(f"artifact {artifact_id} v{row.version} is {row.status}, not awaiting review")
    provenance = {**row.provenance, "reviewer": reviewer, "review_action": review_rules.ACTIONS[action]}
    if action == "edit":
        document = document_from_dict(row.document)
        edited = _apply_edits(document, edits or {})
        records = review_rules.edit_records(document, edits or {}, reviewer=reviewer, version=row.version)
        provenance[review_rules.EDITS] = review_rules.merge_edits(
            provenance.get(review_rules.EDITS, []), records
        )
        row.document = document_to_dict(edited)
    row.status = {"approve": "ready", "reject": "rejected", "edit": "queued"}[action]
    row.reviewer, row.review_note, row.reviewed_at, row.provenance = reviewer, note, utcnow(), provenance
    if row.status == "queued":
        _enqueue_render(session, row)
    workspace_service.audit(session, workspace_id, actor=reviewer, action=f"artifact.review.{action}",
                            target_type="artifact", target_id=artifact_id,
                            details={"version": row.version, "note": note, "blocks": sorted(edits or {})})  # fmt: skip
    repository.flush(session)
    return Reviewed(id=artifact.id, version=row.version, status=row.status)


def _apply_edits(document: Document, edits: Mapping[str, str]) -> Document:
    positions = {
        f"{s.key}/{i}": (si, i) for si, s in enumerate(document.sections) for i in range(len(s.blocks))
    }
    unknown = sorted(set(edits) - set(positions))
    if unknown or not edits:
        raise InvalidReview("edits must name blocks as '<section key>/<block index>'"
                            + (f"; unknown: {', '.join(unknown)}" if unknown else ""), code="invalid_edits",
                            details={"blocks": sorted(positions)})  # fmt: skip
    sections = [list(s.blocks) for s in document.sections]
    for key, markdown in edits.items():
        si, bi = positions[key]
        sections[si][bi] = dataclasses.replace(sections[si][bi], markdown=markdown, ai_assisted=False)
    return dataclasses.replace(document, sections=tuple(
        Section(key=s.key, title=s.title, intro=s.intro, blocks=tuple(blocks)) for s, blocks in zip(document.sections, sections, strict=True)
    ))  # fmt: skip


def _sign(secret: str, artifact_id: str, version: int, fmt: str, expires: int) -> str:
    message = f"{artifact_id}:{version}:{fmt}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def download_link(
    *,
    session: Session,
    workspace_id: str,
    artifact_id: str,
    fmt: str,
    secret: str,
    ttl_s: int = 900,
    now: float | None = None,
) -> DownloadLink:
    """A signed, expiring link to the current version's file; refused until the version is deliverable."""
    if fmt not in MEDIA_TYPES:
        raise NotDeliverable(f"unknown format {fmt!r}: {', '.join(MEDIA_TYPES)}", code="invalid_format")
    artifact = _artifact(session, workspace_id, artifact_id)
    versions = repository.versions(session, workspace_id, artifact.id)
    current = next(v for v in versions if v.version == artifact.current_version)
    row = _deliverable_version(versions, artifact.current_version)
    if row is None:
        status = (
            "awaiting_review" if current.status == "ready" else current.status
        )  # a held version not yet reviewed
        raise NotDeliverable(f"artifact {artifact_id} v{current.version} is {status}; delivery waits until it is ready",
                             details={"status": status})  # fmt: skip
    expires = int((now if now is not None else time.time()) + ttl_s)
    secret = workspace_service.signing_secret(session=session, configured=secret)
    sig = _sign(secret, artifact.id, row.version, fmt, expires)
    return DownloadLink(url=f"/v1/files/{artifact.id}/{row.version}/{fmt}?expires={expires}&sig={sig}", expires=expires,
                        version=row.version, format=fmt)  # fmt: skip


def open_link(
    *,
    session: Session,
    artifact_id: str,
    version: int,
    fmt: str,
    expires: int,
    sig: str,
    secret: str,
    now: float | None = None,
    public_url: str = "",
) -> tuple[bytes, str, str]:
    """The file behind a signed link: (content, media type, file name). An e-mail summary's link to the
    full version becomes a link to this version's web page, signed for ``FULL_VERSION_TTL_S``."""
    secret = workspace_service.signing_secret(session=session, configured=secret)
    expected = _sign(secret, artifact_id, version, fmt, expires)
    if not hmac.compare_digest(
        expected.encode(), sig.encode("utf-8", "replace")
    ):  # bytes: any text a client sends
        raise BadLink("this link is not valid")
    if (now if now is not None else time.time()) > expires:
        raise BadLink("this link has expired", code="link_expired")
    artifact = repository.artifact_for_signed_link(session, artifact_id)
    if artifact is None:
        raise ArtifactNotFound("this file is not available")
    row = repository.version(session, artifact.workspace_id, artifact_id, version)
    f = repository.file(session, artifact.workspace_id, artifact_id, version, fmt)
    if (
        row is None or f is None or not review_rules.deliverable(row)
    ):  # never a rejected or unapproved version
        raise ArtifactNotFound("this file is not available")
    ext = {"pdf": "pdf", "html": "html", "email": "email.html", "markdown": "md"}[fmt]
    content = f.content
    marker = f'href="{FULL_VERSION_LINK}"'.encode()  # the summary's button only, never text in the e-mail
    if fmt == "email" and marker in content:
        expires_full = int((now if now is not None else time.time()) + FULL_VERSION_TTL_S)
        full = (
            f"{public_url.rstrip('/')}/v1/files/{artifact_id}/{version}/html?expires={expires_full}&sig="
            + _sign(secret, artifact_id, version, "html", expires_full)
        )
        content = content.replace(marker, f'href="{html_escape(full)}"'.encode())
    return content, f.media_type, f"{artifact_id}-v{version}.{ext}"


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
    artifact = _artifact(
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
