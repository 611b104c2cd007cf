"""A buyer's lineage: itself and every buyer merged into it (directly or through a chain) by a merge not
undone. Merges move no commerce row, so every read of a buyer's orders, entitlements, subscriptions and
deliverables goes through it; these tests build merges through the real resolver (identify over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from tests.conftest import basic, msg

from offerloop.db.uow import Database
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.models import Entitlement
from offerloop.workspaces.schemas import WorkspaceCreated

INDEX = "ix_buyers_workspace_id_merged_into_id"


def _identify(client: TestClient, write: dict[str, str], **fields: Any) -> None:
    r = client.post("/v1/identify", headers=write, json=msg(type="identify", **fields))
    assert r.status_code == 200, r.text


def _buyer(client: TestClient, secret: dict[str, str], **by: str) -> str:
    r = client.get("/v1/buyers/lookup", headers=secret, params=by)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _lineage(db: Database, workspace_id: str, buyer_id: str) -> tuple[str, ...]:
    with db.read() as session:
        return identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)


@pytest.fixture
def chain(client: TestClient, workspace: WorkspaceCreated, secret_headers, write_headers) -> dict[str, str]:
    """A (a device with an e-mail) merged into B (another device that gave the same e-mail), B merged into C
    (an account that signed in on B's device): name -> buyer id, and the two merges' ids."""
    _identify(client, write_headers, anonymousId="dev-a", traits={"email": "ann@example.com"}, messageId="a1")
    first = _buyer(client, secret_headers, anonymous_id="dev-a")
    _identify(client, write_headers, anonymousId="dev-b", messageId="b1")
    second = _buyer(client, secret_headers, anonymous_id="dev-b")
    _identify(client, write_headers, anonymousId="dev-b", traits={"email": "ann@example.com"}, messageId="b2")
    (merge,) = client.get("/v1/merges", headers=secret_headers).json()["items"]
    b, a = merge["winner_id"], merge["loser_id"]  # which device survives is the resolver's call
    assert {a, b} == {first, second}
    _identify(client, write_headers, userId="ann-account", messageId="c1")  # the account, on its own first
    c = _buyer(client, secret_headers, user_id="ann-account")
    _identify(client, write_headers, userId="ann-account", anonymousId="dev-b", messageId="c2")
    merges = client.get("/v1/merges", headers=secret_headers).json()["items"]
    assert [(m["winner_id"], m["loser_id"]) for m in merges] == [(c, b), (b, a)]
    return {"a": a, "b": b, "c": c, "b_into_c": merges[0]["id"], "a_into_b": merges[1]["id"]}


def test_a_buyer_never_merged_is_its_own_lineage(client, db, workspace, secret_headers, write_headers):
    _identify(client, write_headers, userId="solo", messageId="s1")
    solo = _buyer(client, secret_headers, user_id="solo")
    assert _lineage(db, workspace.id, solo) == (solo,)
    with db.read() as session:
        assert identity_service.survivor_lineage(
            session=session, workspace_id=workspace.id, buyer_id=solo
        ) == (solo,)
        # an id the workspace does not know stands alone: a list filtered by it finds nothing
        assert identity_service.survivor_lineage(
            session=session, workspace_id=workspace.id, buyer_id="byr_nope"
        ) == ("byr_nope",)


def test_the_lineage_follows_a_chain_of_merges_nearest_first(db, workspace, chain):
    a, b, c = chain["a"], chain["b"], chain["c"]
    assert _lineage(db, workspace.id, c) == (c, b, a)
    assert _lineage(db, workspace.id, b) == (b, a)  # a merged-away id's lineage starts from it
    assert _lineage(db, workspace.id, a) == (a,)
    with db.read() as session:
        for merged_away in (a, b, c):
            assert identity_service.survivor_lineage(
                session=session, workspace_id=workspace.id, buyer_id=merged_away
            ) == (c, b, a)


def test_an_undone_merge_leaves_the_lineage(client, db, workspace, secret_headers, chain):
    a, b, c = chain["a"], chain["b"], chain["c"]
    # the older merge cannot be undone first: B is merged away
    refused = client.post(f"/v1/merges/{chain['a_into_b']}/undo", headers=secret_headers)
    assert refused.status_code == 409, refused.text
    assert _lineage(db, workspace.id, c) == (c, b, a)
    undone = client.post(f"/v1/merges/{chain['b_into_c']}/undo", headers=secret_headers)
    assert undone.status_code == 200, undone.text
    assert _lineage(db, workspace.id, c) == (c,)
    assert _lineage(db, workspace.id, b) == (b, a)
    undone = client.post(f"/v1/merges/{chain['a_into_b']}/undo", headers=secret_headers)
    assert undone.status_code == 200, undone.text
    assert (_lineage(db, workspace.id, b), _lineage(db, workspace.id, a)) == ((b,), (a,))


def test_another_workspace_never_reaches_the_lineage(client, db, workspace, other_workspace, chain):
    other_write = basic(other_workspace.write_key)
    _identify(client, other_write, userId="ann-account", anonymousId="dev-b", messageId="c2")
    with db.read() as session:
        theirs = identity_service.find_buyer(
            session=session, workspace_id=other_workspace.id, user_id="ann-account"
        )[0]
        # the same identifiers there are another buyer, alone in its lineage
        assert identity_service.lineage(
            session=session, workspace_id=other_workspace.id, buyer_id=theirs
        ) == (theirs,)
        # this workspace's survivor, asked for in the other workspace, brings none of its merged buyers
        assert identity_service.lineage(
            session=session, workspace_id=other_workspace.id, buyer_id=chain["c"]
        ) == (chain["c"],)
        assert identity_service.survivor_lineage(
            session=session, workspace_id=other_workspace.id, buyer_id=chain["a"]
        ) == (chain["a"],)


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_buyer_never_merged_costs_one_indexed_probe(
    client, db, engine, workspace, secret_headers, write_headers, statements
):
    _identify(client, write_headers, userId="solo", messageId="s1")
    solo = _buyer(client, secret_headers, user_id="solo")
    with db.read() as session:
        session.connection()  # the unit of work's own statements (a SAVEPOINT) are not the probe's
        statements.clear()
        assert identity_service.lineage(session=session, workspace_id=workspace.id, buyer_id=solo) == (solo,)
        assert len(statements) == 1 and "merged_into_id IN" in statements[0]
        if engine.dialect.name == "sqlite":
            plan = session.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM buyers WHERE workspace_id = :w AND merged_into_id IN (:b)"
                ),
                {"w": workspace.id, "b": solo},
            ).all()
            assert INDEX in " ".join(str(row[-1]) for row in plan)
        else:  # a tiny table is scanned by choice: the index must be what the planner takes when it matters
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = session.execute(
                text("EXPLAIN SELECT id FROM buyers WHERE workspace_id = :w AND merged_into_id IN (:b)"),
                {"w": workspace.id, "b": solo},
            ).all()
            assert INDEX in " ".join(str(row[0]) for row in plan)


def _account_merges(client: TestClient, write: dict[str, str], secret: dict[str, str]) -> str:
    """The account (identified on its own first) gives the e-mail of an anonymous buyer: that one merges in."""
    _identify(client, write, userId="ann-account", messageId="c1")
    c = _buyer(client, secret, user_id="ann-account")
    _identify(client, write, userId="ann-account", traits={"email": "ann@example.com"}, messageId="c2")
    return c


def _grant(db: Database, workspace_id: str, buyer_id: str, source: str, **extra: Any) -> str:
    with db.write() as session:
        row = entitlements_service.grant(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id, component="module", ref="m-1",
            source=source, actor="t", **extra,
        )  # fmt: skip
        return row.id


def _rows(db: Database, workspace_id: str) -> list[tuple[str, str, str, str]]:
    with db.read() as session:
        found = session.query(Entitlement).filter(Entitlement.workspace_id == workspace_id)
        return sorted((e.buyer_id, e.source, e.status, e.override or "") for e in found)


def test_a_grant_again_after_a_merge_is_the_same_row(client, db, workspace, secret_headers, write_headers):
    _identify(client, write_headers, anonymousId="dev-a", traits={"email": "ann@example.com"}, messageId="a1")
    a = _buyer(client, secret_headers, anonymous_id="dev-a")
    first = _grant(db, workspace.id, a, "ord_1", quantity=3)
    c = _account_merges(client, write_headers, secret_headers)
    assert c != a and _lineage(db, workspace.id, c) == (c, a)
    # a renewal of the same source grants the survivor: the merged buyer's row is reset, no second row
    assert _grant(db, workspace.id, c, "ord_1", quantity=5) == first
    assert _rows(db, workspace.id) == [(a, "ord_1", "active", "")]
    with db.write() as session:
        check = entitlements_service.check(session=session, workspace_id=workspace.id, buyer_id=c,
                                           component="module", ref="m-1")  # fmt: skip
        assert (check.allowed, check.entitlement_id, check.quantity) == (True, first, 5)
        assert entitlements_service.use_quota(session=session, workspace_id=workspace.id, buyer_id=c,
                                              component="module", ref="m-1", n=2, actor="t") == 3  # fmt: skip
        assert entitlements_service.revoke_grant(session=session, workspace_id=workspace.id, buyer_id=c,
                                                 component="module", ref="m-1", source="ord_1", reason="plan",
                                                 actor="t")  # fmt: skip
    assert _rows(db, workspace.id) == [(a, "ord_1", "revoked", "")]
    assert _grant(db, workspace.id, c, "ord_1") == first  # given back: the same row again
    # a new source is the survivor's own row
    second = _grant(db, workspace.id, c, "ord_2")
    assert second != first and _rows(db, workspace.id) == [
        (a, "ord_1", "active", ""),
        (c, "ord_2", "active", ""),
    ]


def test_an_override_on_the_survivor_decides_over_a_merged_buyers(
    client, db, workspace, secret_headers, write_headers
):
    _identify(client, write_headers, anonymousId="dev-a", traits={"email": "ann@example.com"}, messageId="a1")
    a = _buyer(client, secret_headers, anonymous_id="dev-a")
    _grant(db, workspace.id, a, "ord_1")

    def override(buyer_id: str, mode: str | None) -> None:
        with db.write() as session:
            entitlements_service.override(session=session, workspace_id=workspace.id, buyer_id=buyer_id,
                                          component="module", ref="m-1", mode=mode, reason="r", actor="t")  # fmt: skip

    def reason(buyer_id: str) -> str:
        with db.read() as session:
            return entitlements_service.check(session=session, workspace_id=workspace.id, buyer_id=buyer_id,
                                              component="module", ref="m-1").reason  # fmt: skip

    override(a, "deny")
    c = _account_merges(client, write_headers, secret_headers)
    assert reason(c) == "override_deny"  # the merged buyer's deny holds for the survivor
    override(c, "allow")
    assert reason(c) == "override_allow"
    assert _rows(db, workspace.id) == sorted(
        [(a, "admin", "revoked", ""), (a, "ord_1", "active", ""), (c, "admin", "active", "allow")]
    )
    override(c, None)
    assert reason(c) == "granted"
