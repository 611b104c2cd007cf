"""Identity resolution for one batch of accepted events, inside the caller's transaction.

Rules: the strongest identifier decides the buyer (userId > email > phone > platform ids >
anonymousId). A new userId adopts an unidentified buyer already holding one of the event's
identifiers. Any other identifier held by another buyer merges that buyer in, unless both are
identified by different userIds: then the merge is refused and recorded as a conflict, and the
event still lands on the buyer of its userId.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.identity import identifiers, repository
from offerloop.identity.schemas import IncomingEvent, Resolution
from offerloop.models import IdentityConflict, Merge

# dict first: events' JSON objects are dicts, and a check against the Mapping ABC alone costs ~5x.
_MAPPINGS = (dict, Mapping)

log = logging.getLogger(__name__)
TIME_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so ISO strings compare in time order
_TRUE = {"true", "yes", "y", "1", "granted", "opt-in", "opt_in", "on"}
_FALSE = {"false", "no", "n", "0", "denied", "opt-out", "opt_out", "off"}


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def consent_from(traits: Mapping[str, Any], context: Mapping[str, Any] | None) -> dict[str, bool]:
    """Consent stated by an event: traits consent_* or Segment's context.consent.categoryPreferences."""
    found: dict[str, bool] = {}
    prefs = context.get("consent") if isinstance(context, _MAPPINGS) else None
    prefs = prefs.get("categoryPreferences") if isinstance(prefs, _MAPPINGS) else None
    if isinstance(prefs, _MAPPINGS):
        for key, value in prefs.items():
            name = str(key).strip().lower().replace("personalisation", "personalization")
            flag = _as_bool(value)
            if name in ("marketing", "personalization") and flag is not None:
                found[name] = flag
    for name in ("marketing", "personalization"):
        flag = _as_bool(traits.get(f"consent_{name}"))
        if flag is not None:
            found[name] = flag
    return found


AI_REWRITE_CHOICES = ("allowed", "originals_only", "reviewed_only")


def ai_rewrite_from(traits: Mapping[str, Any]) -> str | None:
    """The trait ``consent_ai_rewrite``: allowed | originals_only | reviewed_only ("originals-only" too),
    or a yes/no: a negative (false, "no", "off", "0", "none", …) is ``originals_only``, a positive (true,
    "yes", …) ``allowed``. Any other value is no consent statement; it is logged, never read as allowed."""
    if "consent_ai_rewrite" not in traits:
        return None
    value = traits["consent_ai_rewrite"]
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "_").replace(" ", "_")
        if text in AI_REWRITE_CHOICES:
            return text
        if text in ("none", "never", "disallowed", "forbidden"):
            value = False
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        value = bool(value)
    flag = _as_bool(value)
    if flag is not None:
        return "allowed" if flag else "originals_only"
    log.warning(
        "ignored consent_ai_rewrite value %r: not one of %s or a yes/no", value, ", ".join(AI_REWRITE_CHOICES)
    )
    return None


BUYER_COLUMNS = (
    "id", "user_id", "created_at", "first_seen_at", "last_seen_at", "traits", "trait_times",
    "consent_marketing", "consent_personalization", "consent_ai_rewrite", "event_count", "merged_into_id",
)  # fmt: skip


class BuyerState:
    """A buyer row as the resolver works on it: plain attributes, written back in one executemany."""

    __slots__ = (*BUYER_COLUMNS, "stored", "dirty")

    def __init__(self, row: Mapping[str, Any], *, stored: bool) -> None:
        for name in BUYER_COLUMNS:
            setattr(self, name, row.get(name))
        self.traits = self.traits or {}
        self.trait_times = self.trait_times or {}
        self.stored = stored  # False until inserted
        self.dirty = False

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in BUYER_COLUMNS}

    id: str
    user_id: str | None
    created_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    traits: dict[str, Any]
    trait_times: dict[str, str]
    consent_marketing: bool | None
    consent_personalization: bool | None
    consent_ai_rewrite: str | None
    event_count: int
    merged_into_id: str | None


def buyer_state(buyer: Any) -> dict[str, Any]:
    return {
        "user_id": buyer.user_id,
        "traits": dict(buyer.traits or {}),
        "trait_times": dict(buyer.trait_times or {}),
        "first_seen_at": buyer.first_seen_at.strftime(TIME_FMT),
        "last_seen_at": buyer.last_seen_at.strftime(TIME_FMT),
        "event_count": buyer.event_count,
        "consent_marketing": buyer.consent_marketing,
        "consent_personalization": buyer.consent_personalization,
        "consent_ai_rewrite": buyer.consent_ai_rewrite,
    }


def apply_traits(buyer: Any, traits: Mapping[str, Any], at: datetime) -> None:
    """Latest wins per trait, by the time of the event that carried it (not arrival order)."""
    if not traits:
        return
    stamp = at.strftime(TIME_FMT)
    times = buyer.trait_times or {}
    current = buyer.traits or {}
    changed = False
    for key, value in traits.items():
        if times.get(key, "") <= stamp and (current.get(key) != value or times.get(key) != stamp):
            if not changed:
                current, times, changed = dict(current), dict(times), True
            current[key] = value
            times[key] = stamp
    if changed:
        buyer.traits, buyer.trait_times = current, times


class Resolver:
    def __init__(self, session: Session, workspace_id: str) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.now = utcnow()
        self.owners: dict[tuple[str, str], str] = {}
        self.buyers: dict[str, BuyerState] = {}
        self.redirect: dict[str, str] = {}
        self.pending_buyers: list[BuyerState] = []
        self.pending_identities: list[dict[str, Any]] = []
        self.batch_messages: dict[str, list[str]] = defaultdict(list)
        self.result = Resolution(buyer_ids=[], new_buyer=[])

    # -- lookups -------------------------------------------------------------------------
    def final(self, buyer_id: str) -> str:
        while buyer_id in self.redirect:
            buyer_id = self.redirect[buyer_id]
        return buyer_id

    def owner(self, pair: tuple[str, str]) -> str | None:
        found = self.owners.get(pair)
        return self.final(found) if found else None

    def prefetch(self, events: list[tuple[IncomingEvent, list[tuple[str, str]]]]) -> None:
        pairs: set[tuple[str, str]] = set()
        for event, ids in events:
            pairs.update(ids)
            if event.previous_id:
                pairs.add(("user_id", event.previous_id))
                pairs.add(("anonymous_id", event.previous_id))
        self.owners = repository.find_owners(self.session, self.workspace_id, pairs)
        rows = repository.buyer_rows(
            self.session, self.workspace_id, set(self.owners.values()), BUYER_COLUMNS
        )
        self.buyers = {row["id"]: BuyerState(row, stored=True) for row in rows}

    # -- writes --------------------------------------------------------------------------
    def new_buyer(self, event: IncomingEvent) -> str:
        buyer = BuyerState(
            {
                "id": new_id("byr"),
                "created_at": self.now,
                "first_seen_at": event.timestamp,
                "last_seen_at": event.timestamp,
                "event_count": 0,
            },
            stored=False,
        )
        self.buyers[buyer.id] = buyer
        self.pending_buyers.append(buyer)
        return buyer.id

    def attach(self, pair: tuple[str, str], buyer_id: str) -> None:
        self.owners[pair] = buyer_id
        self.pending_identities.append(
            {
                "workspace_id": self.workspace_id,
                "buyer_id": buyer_id,
                "kind": pair[0],
                "value": pair[1],
                "created_at": self.now,
            }
        )

    def flush_pending(self) -> None:
        if self.pending_buyers:
            repository.insert_buyers(
                self.session, self.workspace_id, [b.as_row() for b in self.pending_buyers]
            )
            for b in self.pending_buyers:
                b.stored, b.dirty = True, False
            self.pending_buyers = []
        if self.pending_identities:
            for row in self.pending_identities:
                row["buyer_id"] = self.final(row["buyer_id"])
            repository.insert_identities(self.session, self.pending_identities)
            self.pending_identities = []

    def link(self, primary: str, other: str, pair: tuple[str, str], event: IncomingEvent) -> str:
        """``other`` also holds ``pair``: merge the two buyers, or record why not. Returns the primary."""
        p, o = self.buyers[primary], self.buyers[other]
        if p.user_id and o.user_id and p.user_id != o.user_id:
            self.session.add(
                IdentityConflict(
                    workspace_id=self.workspace_id,
                    buyer_id=primary,
                    other_buyer_id=other,
                    kind=pair[0],
                    value=pair[1],
                    message_id=event.message_id,
                    created_at=self.now,
                )
            )
            self.result.conflicts += 1
            return primary
        winner, loser = (other, primary) if (o.user_id and not p.user_id) else (primary, other)
        self.merge(winner, loser, reason=f"{event.type} linked {pair[0]}", message_id=event.message_id)
        return winner

    def merge(self, winner_id: str, loser_id: str, *, reason: str, message_id: str | None) -> None:
        self.flush_pending()
        winner, loser = self.buyers[winner_id], self.buyers[loser_id]
        snapshot: dict[str, Any] = {
            "winner": buyer_state(winner),
            "loser": buyer_state(loser),
            "identities": repository.identities_of(self.session, self.workspace_id, loser_id),
            "message_ids": list(self.batch_messages.pop(loser_id, [])),
        }
        snapshot["event_ids"] = repository.move_buyer_rows(
            self.session, self.workspace_id, loser_id, winner_id
        )
        for key, stamp in (loser.trait_times or {}).items():
            if (winner.trait_times or {}).get(key, "") < stamp:
                apply_traits(winner, {key: loser.traits[key]}, datetime.strptime(stamp, TIME_FMT))
        winner.first_seen_at = min(winner.first_seen_at, loser.first_seen_at)
        winner.last_seen_at = max(winner.last_seen_at, loser.last_seen_at)
        winner.event_count += loser.event_count
        winner.user_id = winner.user_id or loser.user_id
        if winner.consent_marketing is None:
            winner.consent_marketing = loser.consent_marketing
        if winner.consent_personalization is None:
            winner.consent_personalization = loser.consent_personalization
        if winner.consent_ai_rewrite is None:
            winner.consent_ai_rewrite = loser.consent_ai_rewrite
        loser.merged_into_id = winner_id
        loser.event_count = 0
        winner.dirty = loser.dirty = True
        self.redirect[loser_id] = winner_id
        self.batch_messages[winner_id].extend(snapshot["message_ids"])
        merge = Merge(
            id=new_id("mrg"),
            workspace_id=self.workspace_id,
            winner_id=winner_id,
            loser_id=loser_id,
            reason=reason,
            message_id=message_id,
            created_at=self.now,
            snapshot=snapshot,
        )
        self.session.add(merge)
        self.result.merges += 1
        self.result.merged_pairs.append((winner_id, loser_id))

    # -- one event -----------------------------------------------------------------------
    def resolve_one(self, event: IncomingEvent, ids: list[tuple[str, str]]) -> str:
        prev_owner: str | None = None
        if event.previous_id:
            prev_owner = self.owner(("user_id", event.previous_id)) or self.owner(
                ("anonymous_id", event.previous_id)
            )
            if prev_owner is None:
                ids = [*ids, ("anonymous_id", event.previous_id)]
        created = False
        primary: str | None = None
        if event.user_id:
            primary = self.owner(("user_id", event.user_id))
            if primary is None:
                # An alias may give an earlier (even identified) buyer a new userId; otherwise only
                # an unidentified buyer holding one of the event's identifiers can adopt it.
                candidates = [prev_owner] if prev_owner else []
                candidates += [o for o in (self.owner(pair) for pair in ids) if o]
                for candidate in candidates:
                    if candidate == prev_owner or self.buyers[candidate].user_id is None:
                        primary = candidate
                        break
                if primary is None:
                    primary, created = self.new_buyer(event), True
                if self.buyers[primary].user_id is None:
                    self.buyers[primary].user_id = event.user_id
        else:
            primary = next((o for o in (self.owner(pair) for pair in ids) if o), None) or prev_owner
            if primary is None:
                primary, created = self.new_buyer(event), True
        for pair in ids:
            owner = self.owner(pair)
            if owner is None:
                self.attach(pair, primary)
            elif owner != primary:
                primary = self.link(primary, owner, pair, event)
        if prev_owner is not None:
            prev_owner = self.final(prev_owner)
            if prev_owner != primary:
                primary = self.link(primary, prev_owner, ("alias", event.previous_id or ""), event)

        buyer = self.buyers[primary]
        buyer.dirty = True
        buyer.event_count += 1
        if event.timestamp < buyer.first_seen_at:
            buyer.first_seen_at = event.timestamp
        if event.timestamp > buyer.last_seen_at:
            buyer.last_seen_at = event.timestamp
        apply_traits(buyer, event.traits, event.timestamp)
        consent = consent_from(event.traits, event.context)
        if "marketing" in consent:
            buyer.consent_marketing = consent["marketing"]
        if "personalization" in consent:
            buyer.consent_personalization = consent["personalization"]
        ai_rewrite = ai_rewrite_from(event.traits)
        if ai_rewrite is not None:
            buyer.consent_ai_rewrite = ai_rewrite
        self.batch_messages[primary].append(event.message_id)
        self.result.new_buyer.append(created)
        return primary


def resolve(session: Session, workspace_id: str, events: list[IncomingEvent]) -> Resolution:
    resolver = Resolver(session, workspace_id)
    with_ids = [
        (
            ev,
            identifiers.extract(
                user_id=ev.user_id, anonymous_id=ev.anonymous_id, traits=ev.traits, context=ev.context
            ),
        )
        for ev in events
    ]
    resolver.prefetch(with_ids)
    provisional = [resolver.resolve_one(ev, ids) for ev, ids in with_ids]
    resolver.flush_pending()
    repository.update_buyers(
        session, workspace_id, [b.as_row() for b in resolver.buyers.values() if b.stored and b.dirty]
    )
    resolver.result.buyer_ids = [resolver.final(b) for b in provisional]
    return resolver.result
