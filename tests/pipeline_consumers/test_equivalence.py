"""The consumers run by hand over the whole log (unpartitioned, cut in other batches) leave exactly the
state that the real runner left, applying each batch right after it was acknowledged (partitioned by
buyer): buyers, event owners, touchpoints, features, personas and their history, merges, rewards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.pipeline_consumers import harness

from offerloop.core.ids import new_id
from offerloop.db.uow import Database
from offerloop.events import service as events_service
from offerloop.features import service as features_service
from offerloop.models import (
    Buyer,
    BuyerFeatures,
    BuyerPersona,
    Decision,
    Event,
    Identity,
    IdentityConflict,
    Merge,
    PersonaChange,
    Touchpoint,
)
from offerloop.personas import service as persona_service
from offerloop.sim.audience import Audience

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
START = datetime(2026, 6, 1, tzinfo=UTC)
OUTCOMES = ("Order Completed", "Lesson Completed", "Product Viewed")


def configure(session: Session, workspace_id: str) -> None:
    persona_service.set_templates(
        session=session, workspace_id=workspace_id, source=(DEMO / "personas.yaml").read_text(), actor="t"
    )
    events_service.set_signal_config(
        session=session, workspace_id=workspace_id, source=(DEMO / "signals.yaml").read_text(), actor="t"
    )
    features_service.set_spec(
        session=session, workspace_id=workspace_id, source=(DEMO / "features.yaml").read_text(), actor="t"
    )


def ingest_inline(session: Session, workspace_id: str, messages: list[dict[str, Any]], at: datetime) -> None:
    """Ingest; the test database drains the real runner right after the commit (``pipeline.log.set_inline``)."""
    batch = events_service.prepare_batch(messages, received_at=at, max_event_bytes=32 * 1024)
    events_service.ingest(session=session, workspace_id=workspace_id, batch=batch)


def buyer_keys(session: Session, workspace_id: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Buyer id -> its identifiers: the same person in two workspaces has different ids, the same keys."""
    keys: dict[str, set[tuple[str, str]]] = {}
    for buyer_id, kind, value in session.execute(
        select(Identity.buyer_id, Identity.kind, Identity.value).where(Identity.workspace_id == workspace_id)
    ):
        keys.setdefault(buyer_id, set()).add((kind, value))
    return {b: tuple(sorted(k)) for b, k in keys.items()}  # sortable, unlike a frozenset


def snapshot(session: Session, workspace_id: str) -> dict[str, Any]:
    """Everything the inline path wrote, keyed by the buyer's identifiers instead of its id."""
    key = buyer_keys(session, workspace_id)
    ws = workspace_id
    buyers = {
        key[b.id]: (
            b.user_id,
            b.traits,
            b.trait_times,
            b.first_seen_at,
            b.last_seen_at,
            b.event_count,
            b.consent_marketing,
            b.consent_personalization,
        )
        for b in session.scalars(
            select(Buyer).where(Buyer.workspace_id == ws, Buyer.merged_into_id.is_(None))
        )
    }
    owners = {
        m: key[b] for m, b in session.execute(select(Event.message_id, Event.buyer_id).where(Event.workspace_id == ws))
    }  # fmt: skip
    touch = sorted(
        (key[t.buyer_id], m, t.occurred_at, t.channel, t.source, t.medium, t.campaign, t.referrer_host, tuple(t.flags))
        for t, m in session.execute(
            select(Touchpoint, Event.message_id).join(Event, Event.id == Touchpoint.event_id).where(Touchpoint.workspace_id == ws)
        )
    )  # fmt: skip
    features = {
        key[f.buyer_id]: (f.state, f.spec_version)
        for f in session.scalars(select(BuyerFeatures).where(BuyerFeatures.workspace_id == ws))
    }
    personas = {
        key[p.buyer_id]: (p.persona, p.confidence, p.posterior, p.reasons, p.templates_version)
        for p in session.scalars(select(BuyerPersona).where(BuyerPersona.workspace_id == ws))
    }
    history = sorted(
        (key[h.buyer_id], h.at, h.from_persona or "", h.to_persona, h.confidence)
        for h in session.scalars(select(PersonaChange).where(PersonaChange.workspace_id == ws))
        if h.buyer_id in key
    )
    rewards = sorted(
        (key.get(d.buyer_id, ()), d.placement, d.reward, d.reward_at, d.reward_source)
        for d in session.scalars(select(Decision).where(Decision.workspace_id == ws))
        if d.buyer_id is not None
    )
    merges = sorted((key[m.winner_id], m.reason, m.message_id) for m in session.scalars(select(Merge).where(Merge.workspace_id == ws)))  # fmt: skip
    conflicts = len(
        session.scalars(select(IdentityConflict).where(IdentityConflict.workspace_id == ws)).all()
    )
    return {
        "buyers": buyers, "owners": owners, "touchpoints": touch, "features": features, "personas": personas,
        "history": history, "rewards": rewards, "merges": merges, "conflicts": conflicts,
    }  # fmt: skip


def open_decisions(session: Session, workspace_id: str) -> None:
    """The same open decisions in both workspaces, one per buyer and outcome event."""
    live = session.scalars(
        select(Buyer.id).where(Buyer.workspace_id == workspace_id, Buyer.merged_into_id.is_(None)).order_by(Buyer.user_id, Buyer.first_seen_at)
    ).all()  # fmt: skip
    key = buyer_keys(session, workspace_id)
    for buyer_id in sorted(live, key=lambda b: key[b]):
        for i, outcome in enumerate(OUTCOMES):
            session.add(
                Decision(
                    id=new_id("dec"), workspace_id=workspace_id, buyer_id=buyer_id, placement=f"p{i}",
                    created_at=START - timedelta(days=400), policy="model", holdout=False, model_version=0,
                    context={"_outcome": {"value": 1.0}}, candidates=[], items=[], excluded=[],
                    outcome_event=outcome, window_ends_at=START + timedelta(days=900),
                )
            )  # fmt: skip
    session.flush()


def test_the_consumers_leave_the_state_the_inline_path_left(db: Database, workspace, other_workspace):
    inline, logged = workspace.id, other_workspace.id
    with db.write() as session:
        configure(session, inline)
        configure(session, logged)
    batches = list(Audience(buyers=40, events=3_000, seed=5, start=START - timedelta(days=365)).batches(100))
    half = len(batches) // 2
    last = 0
    for i, messages in enumerate(batches):
        if i == half:
            with db.write() as session:
                open_decisions(session, inline)
                open_decisions(session, logged)
        at = START + timedelta(minutes=i)
        with db.write() as session:
            ingest_inline(session, inline, messages, at)
        with db.write() as session:
            harness.append(session, logged, messages, at)
            last = harness.process(session, logged, after=last)
    with db.read() as session:
        before, after = snapshot(session, inline), snapshot(session, logged)
    assert len(before["features"]) > 30 and before["merges"] and before["touchpoints"] and before["history"]
    assert sum(r[2] is not None for r in before["rewards"]) > 20
    for part in before:
        assert after[part] == before[part], part
