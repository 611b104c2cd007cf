"""Buyer lookup: one statement on PostgreSQL (buyer, identifiers, first and last touch), the same record on
both databases; the hot paths resolve a buyer with one indexed statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event
from tests.conftest import msg

from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound, LookupNeedsOneIdentifier

LANDING = "https://creator.example/launch"


@contextmanager
def selects(engine: Engine) -> Iterator[list[str]]:
    """The SELECT statements sent to the database inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def ada(client, write_headers) -> None:
    """A buyer with three identifiers and three page views from three sources."""
    batch = [
        msg(type="identify", userId="ada", messageId="ada-1", traits={"email": "Ada@Example.com"},
            anonymousId="anon-ada", timestamp="2026-11-01T10:00:00Z"),
        msg(type="page", userId="ada", messageId="ada-2", timestamp="2026-11-02T10:00:00Z",
            context={"page": {"url": f"{LANDING}?utm_source=instagram&utm_medium=social"}}),
        msg(type="page", userId="ada", messageId="ada-3", timestamp="2026-11-03T10:00:00Z",
            context={"page": {"url": f"{LANDING}?utm_source=newsletter&utm_medium=email"}}),
        msg(type="page", userId="ada", messageId="ada-4", timestamp="2026-11-02T12:00:00Z",
            context={"page": {"url": f"{LANDING}?utm_source=google&utm_medium=cpc"}}),
    ]  # fmt: skip
    r = client.post("/v1/batch", headers=write_headers, json={"batch": batch})
    assert r.status_code == 200, r.text


def test_lookup_is_one_statement_on_postgresql(db, engine, workspace, ada) -> None:
    with db.read() as session, selects(engine) as seen:
        buyer = identity_service.lookup(session=session, workspace_id=workspace.id, email="ada@example.com")
    # PostgreSQL: one round trip. SQLite (in-process, no round trips) keeps its two indexed statements.
    assert len(seen) == (1 if engine.dialect.name == "postgresql" else 2)
    assert buyer.user_id == "ada" and buyer.deleted is False and buyer.event_count == 4
    assert [(i.kind, i.value) for i in buyer.identities] == [
        ("user_id", "ada"), ("email", "ada@example.com"), ("anonymous_id", "anon-ada"),
    ]  # fmt: skip
    assert buyer.first_touch is not None and buyer.last_touch is not None
    assert (buyer.first_touch.source, buyer.first_touch.medium) == ("instagram", "social")
    assert (buyer.last_touch.source, buyer.last_touch.medium) == ("newsletter", "email")
    assert buyer.last_touch.occurred_at.isoformat() == "2026-11-03T10:00:00+00:00"


def test_lookup_by_id_and_by_identifier_give_the_same_record(db, engine, workspace, ada) -> None:
    with db.read() as session:
        by_identifier = identity_service.lookup(session=session, workspace_id=workspace.id, user_id="ada")
        with selects(engine) as seen:
            by_id = identity_service.get_buyer(
                session=session, workspace_id=workspace.id, buyer_id=by_identifier.id
            )
    assert by_id == by_identifier
    assert len(seen) == (1 if engine.dialect.name == "postgresql" else 2)


def test_a_buyer_without_touches_or_identifiers_reads_back_empty(
    db, workspace, client, write_headers
) -> None:
    r = client.post(
        "/v1/track", headers=write_headers, json=msg(anonymousId="anon-only", event="Ping", messageId="p-1")
    )
    assert r.status_code == 200, r.text
    with db.read() as session:
        buyer = identity_service.lookup(session=session, workspace_id=workspace.id, anonymous_id="anon-only")
    assert buyer.first_touch is None and buyer.last_touch is None
    assert [(i.kind, i.value) for i in buyer.identities] == [("anonymous_id", "anon-only")]


def test_find_buyer_is_one_statement_and_fails_like_lookup(db, engine, workspace, ada) -> None:
    with db.read() as session:
        full = identity_service.lookup(session=session, workspace_id=workspace.id, user_id="ada")
        with selects(engine) as seen:
            found = identity_service.find_buyer(
                session=session, workspace_id=workspace.id, anonymous_id="anon-ada"
            )
        assert found == (full.id, full.consent.personalization)
        assert len(seen) == 1
        with pytest.raises(BuyerNotFound, match="no buyer with user_id 'nobody'"):
            identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id="nobody")
        with pytest.raises(LookupNeedsOneIdentifier):
            identity_service.find_buyer(
                session=session, workspace_id=workspace.id, user_id="ada", anonymous_id="x"
            )


def test_lookup_never_crosses_workspaces(db, workspace, other_workspace, ada) -> None:
    with db.read() as session:
        with pytest.raises(BuyerNotFound):
            identity_service.lookup(session=session, workspace_id=other_workspace.id, user_id="ada")
        with pytest.raises(BuyerNotFound):
            identity_service.find_buyer(session=session, workspace_id=other_workspace.id, user_id="ada")
