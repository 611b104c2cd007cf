"""The canonical buyer record: resolution, lookup, consent, merges and their undo, GDPR."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.pages import InvalidCursor, decode_cursor, page_by_id, page_of
from offerloop.features import service as features_service
from offerloop.identity import erasure, erasure_repository, identifiers, repository, resolver
from offerloop.identity.exceptions import (
    BuyerErased,
    BuyerNotFound,
    LookupNeedsOneIdentifier,
    MergeNotFound,
    MergeNotUndoable,
)

# Re-exported for the events domain, which reaches identity only through this module.
from offerloop.identity.identifiers import clean_id as clean_id
from offerloop.identity.identifiers import profile_traits as profile_traits
from offerloop.identity.schemas import (
    BuyerErasure,
    BuyerExport,
    BuyerRead,
    BuyerState,
    ConflictPage,
    ConflictRead,
    Consent,
    ConsentUpdate,
    EventPage,
    EventRead,
    IdentityRead,
    MergePage,
    MergeRead,
    TouchpointRead,
)
from offerloop.identity.schemas import (
    IncomingEvent as IncomingEvent,
)
from offerloop.identity.schemas import (
    Resolution as Resolution,
)
from offerloop.models import (
    AuditEntry,
    Buyer,
    Decision,
    LedgerEntry,
    LedgerPosting,
    Merge,
    Order,
    PaymentEvent,
    QuarantinedEvent,
    Subscription,
)
from offerloop.personas import service as persona_service
from offerloop.workspaces import service as workspace_service

PII_KEYS = erasure.PII_KEYS


def resolve(*, session: Session, workspace_id: str, events: list[IncomingEvent]) -> Resolution:
    return resolver.resolve(session, workspace_id, events)


def identify_now(
    *, session: Session, workspace_id: str, message_id: str, user_id: str | None, anonymous_id: str | None,
    traits: dict[str, Any], at: datetime,
) -> str:  # fmt: skip
    """Resolve an identify at once, in the caller's transaction, for a caller that needs the buyer now (an
    order must name its buyer). The same identify appended to the log resolves to the same buyer later."""
    event = IncomingEvent(
        type="identify", message_id=message_id, user_id=user_id, anonymous_id=anonymous_id, previous_id=None,
        traits=profile_traits(traits, None), context=None, timestamp=at,
    )  # fmt: skip
    return resolver.resolve(session, workspace_id, [event]).buyer_ids[0]


def assign_events(*, session: Session, workspace_id: str, assignments: list[tuple[int, str, int]]) -> None:
    """Write each logged event's resolved buyer and partition: ``(seq, buyer_id, partition)``."""
    repository.assign_events(session, workspace_id, assignments)


def add_touchpoints(*, session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Store touchpoints, tuples in ``TOUCHPOINT_COLUMNS`` order."""
    repository.insert_touchpoints(session, rows)


TOUCHPOINT_COLUMNS = repository.TOUCHPOINT_COLUMNS


def _live(session: Session, workspace_id: str, buyer_id: str) -> Buyer:
    buyer = repository.get_buyer(session, workspace_id, buyer_id)
    seen = 0
    while buyer is not None and buyer.merged_into_id and seen < 50:
        buyer = repository.get_buyer(session, workspace_id, buyer.merged_into_id)
        seen += 1
    if buyer is None:
        raise BuyerNotFound(f"buyer {buyer_id} does not exist in this workspace")
    return buyer


def _read(record: repository.FullRecord) -> BuyerRead:
    row, identities, first, last = record
    return BuyerRead(
        id=row["id"],
        user_id=row["user_id"],
        traits=row["traits"] or {},
        trait_updated_at=row["trait_times"] or {},
        consent=Consent(
            marketing=row["consent_marketing"],
            personalization=row["consent_personalization"],
            ai_rewrite=row["consent_ai_rewrite"],
        ),
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        event_count=row["event_count"],
        identities=[IdentityRead(kind=k, value=v) for k, v in identities],
        first_touch=TouchpointRead(**first) if first else None,
        last_touch=TouchpointRead(**last) if last else None,
        deleted=row["deleted_at"] is not None,
    )


def get_buyer(*, session: Session, workspace_id: str, buyer_id: str) -> BuyerRead:
    """The record of ``buyer_id``, or of the buyer it was merged into."""
    for _ in range(50):
        record = repository.full_record(session, workspace_id, buyer_id=buyer_id)
        if record is None:
            break
        if record[0]["merged_into_id"] is None:
            return _read(record)
        buyer_id = record[0]["merged_into_id"]
    raise BuyerNotFound(f"buyer {buyer_id} does not exist in this workspace")


def contact(*, session: Session, workspace_id: str, buyer_id: str) -> BuyerRead:
    """``get_buyer`` without the first and last touch (no touchpoint read): what sending a message needs —
    traits, identifiers, consent — on the path a worker runs for every message."""
    for _ in range(50):
        record = repository.buyer_record(session, workspace_id, buyer_id=buyer_id)
        if record is None:
            break
        if record[0]["merged_into_id"] is None:
            return _read((*record, None, None))
        buyer_id = record[0]["merged_into_id"]
    raise BuyerNotFound(f"buyer {buyer_id} does not exist in this workspace")


def live_buyer(*, session: Session, workspace_id: str, buyer_id: str) -> BuyerRead:
    """``get_buyer`` for making something new for the buyer (access, a deliverable): an erased buyer's
    tombstone is refused with ``BuyerErased``."""
    buyer = get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    if buyer.deleted:
        raise BuyerErased(f"buyer {buyer.id} was erased: nothing new is made for them")
    return buyer


def lineage(*, session: Session, workspace_id: str, buyer_id: str) -> tuple[str, ...]:
    """``buyer_id`` (a live buyer) first, then every buyer merged into it, directly or through a chain, by a
    merge not undone: the ids whose orders, entitlements, subscriptions and deliverables are this buyer's.
    A merge moves no commerce row (an undo must give them back as they were): every read of them asks for the
    buyer's lineage. One indexed probe for a buyer never merged; another workspace's buyers are never in it."""
    return (buyer_id, *repository.merged_losers(session, workspace_id, buyer_id))


def survivor_lineage(*, session: Session, workspace_id: str, buyer_id: str) -> tuple[str, ...]:
    """``lineage`` of the live buyer ``buyer_id`` answers with (itself, or its survivor once merged away): for
    lists filtered by any buyer id. An id the workspace does not know is alone (its filter finds nothing)."""
    live = repository.survivor_id(session, workspace_id, buyer_id)
    if live is None:
        return (buyer_id,)
    return lineage(session=session, workspace_id=workspace_id, buyer_id=live)


def live_buyer_ids(*, session: Session, workspace_id: str, after: str | None, limit: int) -> list[str]:
    """A page of live buyers' ids (id order, after ``after``): for scans of a whole audience."""
    return repository.live_buyer_ids(session, workspace_id, after, limit)


def _one_identifier(
    user_id: str | None, email: str | None, anonymous_id: str | None, phone: str | None, kind: str | None,
    value: str | None,
) -> tuple[str, str]:  # fmt: skip
    given = [
        ("user_id", identifiers.clean_id(user_id) if user_id is not None else None),
        ("email", identifiers.normalize_email(email) if email is not None else None),
        ("anonymous_id", identifiers.clean_id(anonymous_id) if anonymous_id is not None else None),
        ("phone", identifiers.normalize_phone(phone) if phone is not None else None),
        (kind or "", value if kind else None),
    ]
    asked = [(k, v) for k, v in given if v]
    raw_count = sum(x is not None for x in (user_id, email, anonymous_id, phone, value))
    if len(asked) != 1 or raw_count != 1:
        raise LookupNeedsOneIdentifier(
            "give exactly one valid identifier: user_id, email, anonymous_id, phone, or kind+value"
        )
    return asked[0][0], str(asked[0][1])


def lookup(
    *,
    session: Session,
    workspace_id: str,
    user_id: str | None = None,
    email: str | None = None,
    anonymous_id: str | None = None,
    phone: str | None = None,
    kind: str | None = None,
    value: str | None = None,
) -> BuyerRead:
    """The record of the buyer one identifier belongs to (one statement on PostgreSQL)."""
    asked = _one_identifier(user_id, email, anonymous_id, phone, kind, value)
    record = repository.full_record(session, workspace_id, identity=asked)
    if record is None:
        raise BuyerNotFound(f"no buyer with {asked[0]} {asked[1]!r}")
    return _read(record)


def find_buyer(
    *, session: Session, workspace_id: str, user_id: str | None = None, anonymous_id: str | None = None
) -> tuple[str, bool | None]:
    """(id, personalization consent) of the buyer one identifier belongs to: all the hot paths (decide,
    offers, entitlement checks) need, in one indexed statement. Errors as ``lookup``."""
    asked = _one_identifier(user_id, None, anonymous_id, None, None, None)
    found = repository.buyer_brief(session, workspace_id, asked)
    if found is None:
        raise BuyerNotFound(f"no buyer with {asked[0]} {asked[1]!r}")
    return found


def buyer_state(*, session: Session, workspace_id: str, buyer_id: str) -> BuyerState:
    """What a decision sees of this buyer right now: features read at this instant, and the persona."""
    live = get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    return BuyerState(
        buyer_id=live,
        features=features_service.read(session=session, workspace_id=workspace_id, buyer_id=live),
        persona=persona_service.get(session=session, workspace_id=workspace_id, buyer_id=live),
    )


def buyer_events(
    *, session: Session, workspace_id: str, buyer_id: str, limit: int = 100, cursor: str | None = None
) -> EventPage:
    after = decode_cursor(cursor, types=(int,))
    buyer = _live(session, workspace_id, buyer_id)
    rows = repository.events_of(
        session, workspace_id, buyer.id, before=after[0] if after else None, limit=limit + 1
    )
    return EventPage(**dict(page_by_id(rows, limit, EventRead)))


def latest_event(
    *, session: Session, workspace_id: str, buyer_id: str, name: str, where: Mapping[str, Any] | None = None
) -> EventRead | None:
    """The buyer's most recent event named ``name`` whose properties match ``where`` (None if none)."""
    buyer = _live(session, workspace_id, buyer_id)
    for row in repository.latest_named(session, workspace_id, buyer.id, name, limit=50):
        props = row.properties or {}
        if all(props.get(k) == v for k, v in (where or {}).items()):
            return EventRead.model_validate(row, from_attributes=True)
    return None


def set_consent(
    *, session: Session, workspace_id: str, buyer_id: str, consent: ConsentUpdate, actor: str
) -> BuyerRead:
    buyer = _live(session, workspace_id, buyer_id)
    if consent.marketing is not None:
        buyer.consent_marketing = consent.marketing
    if consent.personalization is not None:
        buyer.consent_personalization = consent.personalization
    if consent.ai_rewrite is not None:
        buyer.consent_ai_rewrite = consent.ai_rewrite
    workspace_service.audit(
        session, workspace_id, actor=actor, action="buyer.consent", target_type="buyer",
        target_id=buyer.id, details=consent.model_dump(exclude_none=True),
    )  # fmt: skip
    session.flush()
    return get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer.id)


def _merge_read(m: Merge) -> MergeRead:
    snap = m.snapshot or {}
    return MergeRead(
        id=m.id,
        winner_id=m.winner_id,
        loser_id=m.loser_id,
        reason=m.reason,
        message_id=m.message_id,
        created_at=m.created_at,
        undone_at=m.undone_at,
        undone_by=m.undone_by,
        events_moved=len(snap.get("event_ids", [])) + len(snap.get("message_ids", [])),
        identities_moved=[IdentityRead(kind=k, value=v) for k, v in snap.get("identities", [])],
    )


def _known(session: Session, workspace_id: str, buyer_id: str | None) -> None:
    """A filter naming a buyer of another workspace (or none) is a 404, as a lookup of it would be."""
    if buyer_id is not None and repository.get_buyer(session, workspace_id, buyer_id) is None:
        raise BuyerNotFound(f"buyer {buyer_id} does not exist in this workspace")


def list_merges(
    *, session: Session, workspace_id: str, buyer_id: str | None = None, limit: int = 100
) -> list[MergeRead]:
    _known(session, workspace_id, buyer_id)
    return [_merge_read(m) for m in repository.merges(session, workspace_id, buyer_id=buyer_id, limit=limit)]


def list_conflicts(
    *, session: Session, workspace_id: str, buyer_id: str | None = None, limit: int = 100
) -> list[ConflictRead]:
    _known(session, workspace_id, buyer_id)
    rows = repository.conflicts(session, workspace_id, buyer_id=buyer_id, limit=limit)
    return [ConflictRead.model_validate(r, from_attributes=True) for r in rows]


def merges_page(
    *, session: Session, workspace_id: str, buyer_id: str | None, limit: int, cursor: str | None = None
) -> MergePage:
    after = decode_cursor(cursor, types=(str, str))
    _known(session, workspace_id, buyer_id)
    try:
        at = None if after is None else (datetime.fromisoformat(after[0]), after[1])
    except ValueError:
        raise InvalidCursor(
            "cursor does not belong to this list: pass the next_cursor of its previous page"
        ) from None
    rows = repository.merges(session, workspace_id, buyer_id=buyer_id, limit=limit + 1, after=at)
    page = page_of(
        rows, limit, key=lambda m: (m.created_at.isoformat(timespec="microseconds"), m.id), item=_merge_read
    )
    return MergePage(**dict(page))


def conflicts_page(
    *, session: Session, workspace_id: str, buyer_id: str | None, limit: int, cursor: str | None = None
) -> ConflictPage:
    after = decode_cursor(cursor, types=(int,))
    _known(session, workspace_id, buyer_id)
    rows = repository.conflicts(
        session, workspace_id, buyer_id=buyer_id, limit=limit + 1, before=after[0] if after else None
    )
    return ConflictPage(**dict(page_by_id(rows, limit, ConflictRead)))


def merge_undone_around(*, session: Session, workspace_id: str, buyer_id: str, at: datetime) -> bool:
    """Whether a merge into this buyer, in effect at ``at``, has been undone since: whatever an identifier led
    to this buyer through it then (a portal sign-in link, a session) may belong to the buyer split off again."""
    return repository.merge_undone_around(session, workspace_id, buyer_id, at)


def undo_merge(*, session: Session, workspace_id: str, merge_id: str, actor: str) -> MergeRead:
    """Split a merge: the loser gets back its identifiers, its events and its traits."""
    merge = repository.get_merge(session, workspace_id, merge_id, for_update=True)
    if merge is None:
        raise MergeNotFound(f"merge {merge_id} does not exist in this workspace")
    if merge.undone_at is not None:
        raise MergeNotUndoable("this merge was already undone", details={"undone_at": str(merge.undone_at)})
    winner = repository.get_buyer(session, workspace_id, merge.winner_id)
    loser = repository.get_buyer(session, workspace_id, merge.loser_id)
    if winner is None or loser is None or winner.deleted_at or loser.deleted_at:
        raise MergeNotUndoable("one side of this merge was erased")
    if winner.merged_into_id is not None or loser.merged_into_id != winner.id:
        raise MergeNotUndoable(
            "a later merge involves these buyers: undo that one first",
            details={"winner_merged_into": winner.merged_into_id},
        )
    snap = merge.snapshot
    repository.move_back(
        session,
        workspace_id,
        winner_id=winner.id,
        loser_id=loser.id,
        identities=snap["identities"],
        event_ids=snap["event_ids"],
        message_ids=snap["message_ids"],
    )
    # The winner keeps traits it learned after the merge; everything older returns to its snapshot.
    stamp = merge.created_at.strftime(resolver.TIME_FMT)
    before = snap["winner"]
    traits, times = dict(before["traits"]), dict(before["trait_times"])
    for key, at in (winner.trait_times or {}).items():
        if at > stamp and key in (winner.traits or {}):
            traits[key], times[key] = winner.traits[key], at
    winner.traits, winner.trait_times = traits, times
    winner.user_id = before["user_id"] if before["user_id"] else winner.user_id
    old = snap["loser"]
    loser.traits, loser.trait_times = old["traits"], old["trait_times"]
    loser.user_id = old["user_id"]
    loser.consent_marketing, loser.consent_personalization = (
        old["consent_marketing"],
        old["consent_personalization"],
    )
    winner.consent_marketing = (
        before["consent_marketing"] if before["consent_marketing"] is not None else winner.consent_marketing
    )
    winner.consent_personalization = (
        before["consent_personalization"]
        if before["consent_personalization"] is not None
        else winner.consent_personalization
    )
    loser.consent_ai_rewrite = old.get("consent_ai_rewrite")
    if before.get("consent_ai_rewrite") is not None:
        winner.consent_ai_rewrite = before["consent_ai_rewrite"]
    loser.merged_into_id = None
    session.flush()
    for buyer in (winner, loser):
        count, first, last = repository.event_span(session, workspace_id, buyer.id)
        buyer.event_count = count
        if first is not None and last is not None:
            buyer.first_seen_at, buyer.last_seen_at = first, last
    merge.undone_at = utcnow()
    merge.undone_by = actor
    session.flush()
    features = features_service.rebuild(
        session=session, workspace_id=workspace_id, buyer_ids=[winner.id, loser.id]
    )
    persona_service.refresh(
        session=session, workspace_id=workspace_id, features=features,
        at={winner.id: winner.last_seen_at, loser.id: loser.last_seen_at},
    )  # fmt: skip
    from offerloop.analytics import service as analytics_service  # analytics reads buyers

    # the purchases the merge had folded into the survivor go back to the buyer they came from, now
    analytics_service.refresh(session=session, workspace_id=workspace_id, buyer_ids=[winner.id, loser.id])
    workspace_service.audit(
        session, workspace_id, actor=actor, action="merge.undo", target_type="merge", target_id=merge.id,
        details={"winner_id": winner.id, "loser_id": loser.id},
    )  # fmt: skip
    session.flush()
    return _merge_read(merge)


def export_buyer(*, session: Session, workspace_id: str, buyer_id: str, actor: str) -> BuyerExport:
    """Everything held on one buyer (GDPR access request)."""
    buyer = _live(session, workspace_id, buyer_id)
    merged = repository.merged_losers(session, workspace_id, buyer.id)
    workspace_service.audit(
        session, workspace_id, actor=actor, action="buyer.export", target_type="buyer", target_id=buyer.id
    )
    return BuyerExport(
        exported_at=utcnow(),
        buyer=get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer.id),
        merged_buyer_ids=merged,
        events=[
            EventRead.model_validate(e, from_attributes=True)
            for bid in [buyer.id, *merged]
            for e in repository.iter_events_of(session, workspace_id, bid)
        ],
        touchpoints=[
            TouchpointRead.model_validate(t, from_attributes=True)
            for t in repository.touchpoints_of(session, workspace_id, buyer.id)
        ],
        merges=list_merges(session=session, workspace_id=workspace_id, buyer_id=buyer.id),
        conflicts=list_conflicts(session=session, workspace_id=workspace_id, buyer_id=buyer.id),
    )


def delete_buyer(*, session: Session, workspace_id: str, buyer_id: str, actor: str) -> BuyerErasure:
    """GDPR erasure in every store (see ``identity.erasure`` for what happens to each table): personal
    data and identifiers go, anonymised facts stay for aggregates, ledger amounts are untouched."""
    buyer = _live(session, workspace_id, buyer_id)
    ids = [buyer.id, *repository.merged_losers(session, workspace_id, buyer.id)]
    identifier_needles, needles = _needles(session, workspace_id, ids)
    forms = sorted({f for n in needles for f in erasure.like_forms(n)})
    counts: dict[str, int] = {}

    quarantined = erasure_repository.rows_for_erasure(
        session, QuarantinedEvent, workspace_id, needle_forms=forms,
        text_columns=(QuarantinedEvent.payload, QuarantinedEvent.raw, QuarantinedEvent.message_id,
                      QuarantinedEvent.user_id, QuarantinedEvent.anonymous_id, QuarantinedEvent.details),
    )  # fmt: skip
    # A refused event carrying one of their identifiers is theirs: deleted. One that only mentions a
    # name they share with others may be someone else's: it stays, with the name redacted.
    theirs, mentioning = [], []
    for q in quarantined:
        fields = [q.payload, q.raw, q.message_id, q.user_id, q.anonymous_id, q.details]
        if erasure.carries([q.payload, q.user_id, q.anonymous_id], identifier_needles) or (
            q.payload is None and erasure.mentions(q.raw, identifier_needles)
        ):
            theirs.append(q)
        elif erasure.mentions(fields, needles):
            mentioning.append(q)
    counts["quarantined_matched"] = erasure_repository.delete_rows(session, theirs)
    for q in mentioning:
        q.payload, q.raw, q.details = (erasure.redact(v, needles) for v in (q.payload, q.raw, q.details))
    renamed: dict[str, str] = {}
    seqs: list[int] = []
    for event in erasure_repository.buyer_events_for_erasure(session, workspace_id, ids):
        seqs.append(event.id)
        event.properties = erasure.facts(event.properties, needles)
        if erasure.mentions(event.message_id, needles):
            renamed[event.message_id] = event.message_id = erasure.pseudonym(event.message_id)
    session.flush()
    erasure_repository.rename_dedup(session, workspace_id, renamed)
    for parked in erasure_repository.parked_of(
        session, workspace_id, seqs
    ):  # a consumer's error may quote them
        parked.error = erasure.redact(parked.error, needles)
        parked.message_id = renamed.get(parked.message_id, parked.message_id)
    counts.update(erasure_repository.erase_buyer(session, workspace_id, ids, utcnow()))
    _scrub_marketing_values(session, workspace_id, ids, needles)
    counts.update(erasure_repository.delete_buyer_stores(session, workspace_id, ids))
    counts.update(erasure_repository.erase_delivery(session, workspace_id, ids, sorted(identifier_needles)))
    from offerloop.invoices import service as invoices_service  # invoices read orders, which read buyers

    counts["invoices"] = invoices_service.forget(session=session, workspace_id=workspace_id, buyer_ids=ids)

    order_ids = erasure_repository.order_ids_of(session, workspace_id, ids)
    for d in erasure_repository.rows_for_erasure(
        session, Decision, workspace_id, keyed=Decision.buyer_id.in_(ids)
    ):
        d.context = erasure.decision_context(d.context, needles)
        d.candidates = erasure.redact(d.candidates, needles)
        d.items = erasure.redact(d.items, needles)
        d.excluded = erasure.redact(d.excluded, needles)
    for o in erasure_repository.rows_for_erasure(session, Order, workspace_id, keyed=Order.buyer_id.in_(ids)):
        o.checkout_url = None
        o.lines = erasure.redact(o.lines, needles)
    for sub in erasure_repository.rows_for_erasure(
        session, Subscription, workspace_id, keyed=Subscription.buyer_id.in_(ids),
        text_columns=(Subscription.state,), needle_forms=forms,
    ):  # fmt: skip
        sub.state = erasure.redact(sub.state, needles)
    for pe in erasure_repository.rows_for_erasure(
        session, PaymentEvent, workspace_id, keyed=PaymentEvent.order_id.in_(order_ids),
        text_columns=(PaymentEvent.payload,), needle_forms=forms,
    ):  # fmt: skip
        pe.payload = erasure.redact(pe.payload, needles)
    for entry in erasure_repository.rows_for_erasure(
        session, LedgerEntry, workspace_id, text_columns=(LedgerEntry.tags,), needle_forms=forms
    ):
        entry.tags = erasure.redact(entry.tags, needles)
    for posting in erasure_repository.rows_for_erasure(
        session, LedgerPosting, workspace_id, text_columns=(LedgerPosting.memo,), needle_forms=forms
    ):
        posting.memo = erasure.redact(posting.memo, needles)
    for note in erasure_repository.rows_for_erasure(
        session, AuditEntry, workspace_id, text_columns=(AuditEntry.details, AuditEntry.target_id),
        needle_forms=forms,
    ):  # fmt: skip
        note.details = erasure.redact(note.details, needles)
        note.target_id = erasure.redact(note.target_id, needles)
    features_service.forget(session=session, workspace_id=workspace_id, buyer_ids=ids)
    persona_service.forget(session=session, workspace_id=workspace_id, buyer_ids=ids)
    from offerloop.analytics import service as analytics_service  # analytics reads buyers

    analytics_service.forget(session=session, workspace_id=workspace_id, buyer_ids=ids)
    workspace_service.audit(
        session, workspace_id, actor=actor, action="buyer.delete", target_type="buyer", target_id=buyer.id,
        details=counts,
    )  # fmt: skip
    session.flush()
    return BuyerErasure(id=buyer.id, deleted=True, **counts)


def storable(
    *, session: Session, workspace_id: str, buyer_id: str | None, value: Mapping[str, Any]
) -> dict[str, Any]:
    """``value`` (a provider's payload about this buyer) as a store may keep it: unchanged, or without its
    personal keys once the buyer is erased, so data arriving after an erasure (a late Stripe webhook
    carrying the customer's name, e-mail and address) does not bring them back."""
    buyer = repository.get_buyer(session, workspace_id, buyer_id) if buyer_id else None
    if buyer is None or buyer.deleted_at is None:
        return dict(value)
    return dict(erasure.redact(value, []))


def _scrub_marketing_values(session: Session, workspace_id: str, ids: list[str], needles: list[str]) -> None:
    """UTM values are whatever the link said, and personalised links carry addresses and names
    (``utm_content=jane@example.com``): such a value becomes its pseudonym in the touchpoints and the stored
    attribution credit (distinct values stay distinct, so totals by post stay right); a search term is free
    text and goes."""
    for touch in erasure_repository.touchpoints_of(session, workspace_id, ids):
        touch.term = None
        for column in ("source", "medium", "campaign", "content"):
            value = getattr(touch, column)
            if value is not None and erasure.personal(value, needles):
                setattr(touch, column, erasure.pseudonym(value))
    for credit in erasure_repository.credits_of(session, workspace_id, ids):
        for column in ("source", "campaign", "content"):
            value = getattr(credit, column)
            if erasure.personal(value, needles):
                setattr(credit, column, erasure.pseudonym(value))
    session.flush()


def _needles(session: Session, workspace_id: str, ids: list[str]) -> tuple[list[str], list[str]]:
    """What identifies the buyer in free-form data: (their identifiers alone, identifiers and personal
    trait values), gathered from everything they ever had (current traits, traits sent with their
    events, and those kept in merge snapshots)."""
    identifiers = [
        v
        for kind_values in repository.identities_by_buyer(session, workspace_id, ids).values()
        for _, v in kind_values
    ]
    traits: list[dict[str, Any]] = []
    for bid in ids:
        b = repository.get_buyer(session, workspace_id, bid)
        if b is not None:
            identifiers.append(b.user_id or "")
            traits.append(b.traits or {})
    for event in erasure_repository.buyer_events_for_erasure(session, workspace_id, ids):
        identifiers += [event.user_id or "", event.anonymous_id or "", event.previous_id or ""]
        traits.append(event.traits or {})
        traits.append(event.properties or {})
    # A live merge folded one of these buyers into another: both sides are this person. An undone
    # merge's other side is someone else, and their identifiers are not needles.
    for bid in ids:
        for m in repository.merges(session, workspace_id, buyer_id=bid, limit=100_000):
            if m.undone_at is None:
                snap = m.snapshot or {}
                identifiers += [v for _, v in snap.get("identities", [])]
                for side in ("winner", "loser"):
                    state = snap.get(side) or {}
                    identifiers.append(state.get("user_id") or "")
                    traits.append(state.get("traits") or {})
    return erasure.needles_of(identifiers, []), erasure.needles_of(identifiers, traits)


def buyers_at_least(*, session: Session, workspace_id: str, n: int) -> bool:
    return repository.buyers_at_least(session, workspace_id, n)


def counts(*, session: Session, workspace_id: str) -> dict[str, int]:
    return repository.count_buyers(session, workspace_id)


def iter_buyer_records(*, session: Session, workspace_id: str) -> Iterator[dict[str, Any]]:
    """Every buyer (including merged and erased tombstones) for a whole-workspace export."""
    batch: list[Buyer] = []
    for buyer in repository.iter_buyers(session, workspace_id):
        batch.append(buyer)
        if len(batch) == 1000:
            yield from _export_rows(session, workspace_id, batch)
            batch = []
    yield from _export_rows(session, workspace_id, batch)


def _export_rows(session: Session, workspace_id: str, buyers: list[Buyer]) -> Iterator[dict[str, Any]]:
    idents = repository.identities_by_buyer(session, workspace_id, [b.id for b in buyers])
    for b in buyers:
        yield {
            "id": b.id,
            "user_id": b.user_id,
            "traits": b.traits,
            "trait_updated_at": b.trait_times,
            "consent": {
                "marketing": b.consent_marketing,
                "personalization": b.consent_personalization,
                "ai_rewrite": b.consent_ai_rewrite,
            },
            "first_seen_at": _iso(b.first_seen_at),
            "last_seen_at": _iso(b.last_seen_at),
            "event_count": b.event_count,
            "identities": idents[b.id],
            "merged_into": b.merged_into_id,
            "deleted_at": _iso(b.deleted_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def new_buyers_since(*, session: Session, workspace_id: str, since: datetime) -> int:
    """Buyers first recorded since ``since`` — the console's "new buyers today"."""
    return repository.new_buyers_since(session, workspace_id, since)
