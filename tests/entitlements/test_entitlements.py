"""Entitlements: grants, revocation, overrides, access end, quotas (also under concurrency), the check API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from tests.conftest import bearer

from offerloop.core.ids import new_id
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.entitlements import service
from offerloop.entitlements.exceptions import (
    EntitlementNotFound,
    InvalidComponent,
    InvalidEntitlement,
    NotEntitled,
    QuotaExhausted,
    ReservedSource,
)
from offerloop.entitlements.schemas import CheckResult
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.models import AuditEntry, Buyer, Entitlement, Identity, Workspace
from offerloop.workspaces import service as workspace_service

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ACTOR = "key_test"


def add_buyer(db: Database, workspace_id: str, user_id: str, anonymous_id: str | None = None) -> str:
    """A buyer with its identifiers, written directly (identity resolution is tested elsewhere)."""
    buyer_id = new_id("byr")
    with db.write() as session:
        session.add(
            Buyer(id=buyer_id, workspace_id=workspace_id, user_id=user_id, created_at=T0, first_seen_at=T0,
                  last_seen_at=T0, traits={}, trait_times={}, event_count=0)
        )  # fmt: skip
        session.flush()
        ids = [("user_id", user_id)] + ([("anonymous_id", anonymous_id)] if anonymous_id else [])
        for kind, value in ids:
            session.add(
                Identity(workspace_id=workspace_id, buyer_id=buyer_id, kind=kind, value=value, created_at=T0)
            )
    return buyer_id


@pytest.fixture
def ws(workspace):
    return workspace.id


@pytest.fixture
def buyer(db, ws) -> str:
    return add_buyer(db, ws, "u1", "anon-1")


def grant(db, ws, buyer_id, component="module", ref="m1", source="ord_1", **kw):
    with db.write() as session:
        return service.grant(
            session=session, workspace_id=ws, buyer_id=buyer_id, component=component, ref=ref, source=source,
            actor=ACTOR, **kw,
        )  # fmt: skip


def check(db, ws, buyer_id, component="module", ref="m1", now=None) -> CheckResult:
    with db.read() as session:
        return service.check(
            session=session, workspace_id=ws, buyer_id=buyer_id, component=component, ref=ref, now=now
        )


def override(db, ws, buyer_id, mode, component="module", ref="m1"):
    with db.write() as session:
        return service.override(
            session=session, workspace_id=ws, buyer_id=buyer_id, component=component, ref=ref, mode=mode,
            reason="support ticket 7", actor=ACTOR,
        )  # fmt: skip


def use(db, ws, buyer_id, ref="calls", n=1):
    with db.write() as session:
        return service.use_quota(
            session=session, workspace_id=ws, buyer_id=buyer_id, component="coaching_quota", ref=ref, n=n,
            actor=ACTOR,
        )  # fmt: skip


def audit_actions(db, ws) -> list[str]:
    with db.read() as session:
        stmt = select(AuditEntry.action).where(AuditEntry.workspace_id == ws).order_by(AuditEntry.id)
        return list(session.scalars(stmt))


# -- grants, revocation, expiry --------------------------------------------------------------------------


def test_grant_then_check(db, ws, buyer):
    e = grant(db, ws, buyer)
    assert (e.buyer_id, e.component, e.ref, e.source, e.status) == (buyer, "module", "m1", "ord_1", "active")
    assert (e.override, e.quantity, e.access_ends_at, e.revoked_at, e.reason) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert check(db, ws, buyer) == CheckResult(allowed=True, reason="granted", entitlement_id=e.id)
    assert check(db, ws, buyer, ref=None) == CheckResult(allowed=True, reason="granted", entitlement_id=e.id)
    assert check(db, ws, buyer, ref="m2") == CheckResult(allowed=False, reason="not_granted")
    assert check(db, ws, buyer, component="download", ref=None) == CheckResult(
        allowed=False, reason="not_granted"
    )
    assert audit_actions(db, ws) == ["entitlement.grant"]


def test_grant_is_idempotent_per_buyer_component_ref_source(db, ws, buyer):
    first = grant(db, ws, buyer)
    ends = T0 + timedelta(days=30)
    again = grant(db, ws, buyer, access_ends_at=ends, quantity=3)
    assert again.id == first.id
    assert (again.access_ends_at, again.quantity, again.granted_at) == (ends, 3, first.granted_at)
    with db.write() as session:
        service.revoke(
            session=session, workspace_id=ws, entitlement_id=first.id, reason="refund", actor=ACTOR
        )
    reactivated = grant(db, ws, buyer)
    assert reactivated.id == first.id
    assert (reactivated.status, reactivated.revoked_at, reactivated.reason) == ("active", None, None)
    assert (reactivated.access_ends_at, reactivated.quantity) == (None, None)
    other_source = grant(db, ws, buyer, source="sub_1")
    assert other_source.id != first.id
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Entitlement)
                              .where(Entitlement.workspace_id == ws)) == 2  # fmt: skip


def test_revoke_and_revoking_twice(db, ws, buyer):
    e = grant(db, ws, buyer)
    with db.write() as session:
        r = service.revoke(
            session=session, workspace_id=ws, entitlement_id=e.id, reason="refund", actor=ACTOR
        )
    assert (r.status, r.reason) == ("revoked", "refund") and r.revoked_at is not None
    with db.write() as session:
        again = service.revoke(session=session, workspace_id=ws, entitlement_id=e.id, reason="x", actor=ACTOR)
    assert (again.reason, again.revoked_at) == ("refund", r.revoked_at)
    assert check(db, ws, buyer) == CheckResult(allowed=False, reason="revoked", entitlement_id=e.id)
    assert audit_actions(db, ws) == ["entitlement.grant", "entitlement.revoke"]
    with pytest.raises(EntitlementNotFound), db.write() as session:
        service.revoke(session=session, workspace_id=ws, entitlement_id="ent_nope", reason="x", actor=ACTOR)


def test_expiry_is_exact_at_the_access_end(db, ws, buyer):
    ends = T0 + timedelta(days=7)
    e = grant(db, ws, buyer, access_ends_at=ends)
    assert check(db, ws, buyer, now=ends - timedelta(microseconds=1)) == CheckResult(
        allowed=True, reason="granted", entitlement_id=e.id, access_ends_at=ends
    )
    for now in (ends, ends + timedelta(days=1)):
        assert check(db, ws, buyer, now=now) == CheckResult(
            allowed=False, reason="expired", entitlement_id=e.id, access_ends_at=ends
        )


def test_the_longest_lasting_grant_answers(db, ws, buyer):
    short = grant(db, ws, buyer, source="ord_1", access_ends_at=T0 + timedelta(days=1))
    forever = grant(db, ws, buyer, source="ord_2")
    assert check(db, ws, buyer, now=T0) == CheckResult(
        allowed=True, reason="granted", entitlement_id=forever.id
    )
    with db.write() as session:
        service.revoke(session=session, workspace_id=ws, entitlement_id=forever.id, reason="r", actor=ACTOR)
    assert check(db, ws, buyer, now=T0).entitlement_id == short.id
    # expired beats revoked as the explanation: it says more about what the buyer had
    assert check(db, ws, buyer, now=T0 + timedelta(days=2)) == CheckResult(
        allowed=False, reason="expired", entitlement_id=short.id, access_ends_at=T0 + timedelta(days=1)
    )


def test_revoke_source_revokes_every_grant_of_an_order(db, ws, buyer):
    other = add_buyer(db, ws, "u2")
    a = grant(db, ws, buyer, component="module", ref="m1", source="ord_1")
    b = grant(db, ws, buyer, component="download", ref="workbook.pdf", source="ord_1")
    kept = grant(db, ws, buyer, component="module", ref="m1", source="sub_1")
    elsewhere = grant(db, ws, other, component="module", ref="m1", source="ord_9")
    with db.write() as session:
        n = service.revoke_source(
            session=session, workspace_id=ws, source="ord_1", reason="refund", actor=ACTOR
        )
    assert n == 2
    with db.write() as session:
        assert (
            service.revoke_source(session=session, workspace_id=ws, source="ord_1", reason="r", actor=ACTOR)
            == 0
        )
    with db.read() as session:
        status = dict(session.execute(select(Entitlement.id, Entitlement.status)
                                      .where(Entitlement.workspace_id == ws)).all())  # fmt: skip
    assert status == {a.id: "revoked", b.id: "revoked", kept.id: "active", elsewhere.id: "active"}
    assert check(db, ws, buyer) == CheckResult(allowed=True, reason="granted", entitlement_id=kept.id)
    assert check(db, ws, buyer, component="download", ref="workbook.pdf") == CheckResult(
        allowed=False, reason="revoked", entitlement_id=b.id
    )
    assert audit_actions(db, ws).count("entitlement.revoke") == 2
    with pytest.raises(ReservedSource), db.write() as session:
        service.revoke_source(session=session, workspace_id=ws, source="admin", reason="r", actor=ACTOR)


def test_access_end_is_separate_from_billing(db, ws, buyer):
    # A canceled subscription stops billing now but keeps access until the end of the paid period.
    grant(db, ws, buyer, component="community_space", ref="inner-circle", source="sub_1")
    e = grant(db, ws, buyer, component="module", ref="m1", source="sub_1")
    period_end = T0 + timedelta(days=12)
    with db.write() as session:
        n = service.set_access_end(
            session=session, workspace_id=ws, source="sub_1", access_ends_at=period_end
        )
    assert n == 2
    assert check(db, ws, buyer, now=T0) == CheckResult(
        allowed=True, reason="granted", entitlement_id=e.id, access_ends_at=period_end
    )
    assert check(db, ws, buyer, now=period_end).reason == "expired"
    assert (
        check(db, ws, buyer, component="community_space", ref="inner-circle", now=period_end).reason
        == "expired"
    )
    # resubscribing grants again: access no longer ends
    grant(db, ws, buyer, component="module", ref="m1", source="sub_1")
    assert check(db, ws, buyer, now=period_end) == CheckResult(
        allowed=True, reason="granted", entitlement_id=e.id
    )
    assert audit_actions(db, ws).count("entitlement.access_end") == 2


# -- overrides -----------------------------------------------------------------------------------------


def test_override_deny_beats_grants_allow_needs_none_and_none_clears(db, ws, buyer):
    e = grant(db, ws, buyer)
    deny = override(db, ws, buyer, "deny")
    assert (deny.source, deny.override, deny.status, deny.reason) == (
        "admin",
        "deny",
        "active",
        "support ticket 7",
    )
    assert check(db, ws, buyer) == CheckResult(allowed=False, reason="override_deny", entitlement_id=deny.id)
    allow = override(db, ws, buyer, "allow")
    assert allow.id == deny.id  # one admin row per (buyer, component, ref)
    assert check(db, ws, buyer) == CheckResult(allowed=True, reason="override_allow", entitlement_id=allow.id)
    cleared = override(db, ws, buyer, None)
    assert (cleared.override, cleared.status) == (None, "revoked")
    assert check(db, ws, buyer) == CheckResult(allowed=True, reason="granted", entitlement_id=e.id)
    # allow without any grant; clearing what never existed is a no-op
    gift = override(db, ws, buyer, "allow", component="certification", ref="cert-1")
    assert check(db, ws, buyer, component="certification", ref="cert-1") == CheckResult(
        allowed=True, reason="override_allow", entitlement_id=gift.id
    )
    assert override(db, ws, buyer, None, component="assessment", ref="a1") is None
    assert audit_actions(db, ws) == ["entitlement.grant"] + ["entitlement.override"] * 4


def test_any_ref_is_allowed_when_one_ref_is(db, ws, buyer):
    grant(db, ws, buyer, ref="m1")
    m2 = grant(db, ws, buyer, ref="m2")
    deny = override(db, ws, buyer, "deny", ref="m1")
    assert check(db, ws, buyer, ref=None) == CheckResult(allowed=True, reason="granted", entitlement_id=m2.id)
    override(db, ws, buyer, "deny", ref="m2")
    assert check(db, ws, buyer, ref=None) == CheckResult(
        allowed=False, reason="override_deny", entitlement_id=deny.id
    )


def test_revoking_an_admin_row_clears_its_override(db, ws, buyer):
    deny = override(db, ws, buyer, "deny")
    with db.write() as session:
        r = service.revoke(
            session=session, workspace_id=ws, entitlement_id=deny.id, reason="done", actor=ACTOR
        )
    assert (r.status, r.override) == ("revoked", None)
    assert check(db, ws, buyer) == CheckResult(allowed=False, reason="not_granted")


def test_active_keys(db, ws, buyer):
    grant(db, ws, buyer, component="module", ref="m1")
    grant(db, ws, buyer, component="module", ref="m2", access_ends_at=T0 + timedelta(days=1))
    grant(db, ws, buyer, component="download", ref="d1")
    grant(db, ws, buyer, component="coaching_quota", ref="calls", quantity=0)
    override(db, ws, buyer, "deny", component="download", ref="d1")
    override(db, ws, buyer, "allow", component="assessment", ref="quiz-2")
    with db.read() as session:
        keys = service.active_keys(session=session, workspace_id=ws, buyer_id=buyer, now=T0)
        later = service.active_keys(
            session=session, workspace_id=ws, buyer_id=buyer, now=T0 + timedelta(days=2)
        )
    assert keys == frozenset({"module:m1", "module:m2", "assessment:quiz-2"})
    assert later == frozenset({"module:m1", "assessment:quiz-2"})


# -- quotas --------------------------------------------------------------------------------------------


def test_quota_counts_down_and_refuses_when_exhausted(db, ws, buyer):
    e = grant(db, ws, buyer, component="coaching_quota", ref="calls", quantity=2)
    assert check(db, ws, buyer, "coaching_quota", "calls") == CheckResult(
        allowed=True, reason="granted", entitlement_id=e.id, quantity=2
    )
    assert [use(db, ws, buyer), use(db, ws, buyer)] == [1, 0]
    with pytest.raises(QuotaExhausted) as exc:
        use(db, ws, buyer)
    assert (exc.value.status_code, exc.value.code) == (409, "quota_exhausted")
    assert check(db, ws, buyer, "coaching_quota", "calls") == CheckResult(
        allowed=False, reason="quota_exhausted", entitlement_id=e.id, quantity=0
    )
    # a renewal sets the quota again
    assert grant(db, ws, buyer, component="coaching_quota", ref="calls", quantity=2).quantity == 2
    with pytest.raises(QuotaExhausted):
        use(db, ws, buyer, n=3)
    assert use(db, ws, buyer, n=2) == 0
    assert audit_actions(db, ws).count("entitlement.use") == 3


def test_quota_draws_from_the_grant_ending_first(db, ws, buyer):
    soon = grant(db, ws, buyer, component="coaching_quota", ref="calls", quantity=1, source="sub_1",
                 access_ends_at=datetime.now(UTC) + timedelta(days=3))  # fmt: skip
    later = grant(db, ws, buyer, component="coaching_quota", ref="calls", quantity=3, source="ord_1")
    assert check(db, ws, buyer, "coaching_quota", "calls").quantity == 4
    assert use(db, ws, buyer) == 3
    assert use(db, ws, buyer, n=2) == 1
    with db.read() as session:
        left = dict(session.execute(select(Entitlement.id, Entitlement.quantity)
                                    .where(Entitlement.workspace_id == ws)).all())  # fmt: skip
    assert left == {soon.id: 0, later.id: 1}


def test_quota_refusals_and_unlimited_use(db, ws, buyer):
    with pytest.raises(NotEntitled) as exc:
        use(db, ws, buyer)
    assert exc.value.details == {"reason": "not_granted"}
    e = grant(db, ws, buyer, component="coaching_quota", ref="calls", quantity=5)
    override(db, ws, buyer, "deny", component="coaching_quota", ref="calls")
    with pytest.raises(NotEntitled) as exc:
        use(db, ws, buyer)
    assert exc.value.details == {"reason": "override_deny"}
    override(db, ws, buyer, "allow", component="coaching_quota", ref="calls")
    assert use(db, ws, buyer) is None  # an allow override is unlimited and draws nothing
    override(db, ws, buyer, None, component="coaching_quota", ref="calls")
    assert use(db, ws, buyer) == 4
    with db.write() as session:
        service.revoke(session=session, workspace_id=ws, entitlement_id=e.id, reason="refund", actor=ACTOR)
    with pytest.raises(NotEntitled) as exc:
        use(db, ws, buyer)
    assert exc.value.details == {"reason": "revoked"}


def test_invalid_requests(db, ws, buyer):
    with pytest.raises(InvalidComponent) as exc:
        grant(db, ws, buyer, component="video")
    assert exc.value.status_code == 422
    with pytest.raises(InvalidComponent):
        check(db, ws, buyer, component="video")
    with pytest.raises(ReservedSource):
        grant(db, ws, buyer, source="admin")
    with pytest.raises(InvalidEntitlement):
        grant(db, ws, buyer, component="coaching_quota", ref="calls")  # a quota needs its quantity
    with pytest.raises(InvalidEntitlement):
        grant(db, ws, buyer, access_ends_at=datetime(2027, 1, 1))  # naive
    with pytest.raises(InvalidEntitlement):
        grant(db, ws, buyer, ref="x" * 201)
    with pytest.raises(BuyerNotFound):
        grant(db, ws, "byr_nope")
    assert audit_actions(db, ws) == []


# -- HTTP ----------------------------------------------------------------------------------------------


def test_http_grant_check_revoke_override_use_and_list(client, db, ws, secret_headers):
    buyer_id = add_buyer(db, ws, "u1", "anon-1")
    h = secret_headers
    r = client.post("/v1/entitlements", headers=h, json={"buyer_id": buyer_id, "component": "module",
                                                          "ref": "m1", "source": "ord_1"})  # fmt: skip
    assert r.status_code == 200, r.text
    eid = r.json()["id"]
    expected = {
        "allowed": True,
        "reason": "granted",
        "entitlement_id": eid,
        "access_ends_at": None,
        "quantity": None,
    }
    for who in ("user_id=u1", "anonymous_id=anon-1", f"buyer_id={buyer_id}"):
        r = client.get(f"/v1/entitlements/check?{who}&component=module&ref=m1", headers=h)
        assert (r.status_code, r.json()) == (200, expected)
    r = client.get("/v1/entitlements/check?user_id=u1&component=module&ref=m2", headers=h)
    assert r.json() == {"allowed": False, "reason": "not_granted", "entitlement_id": None, "access_ends_at": None,
                        "quantity": None}  # fmt: skip

    r = client.put("/v1/entitlements/override", headers=h, json={"buyer_id": buyer_id, "component": "module",
                                                                  "ref": "m1", "mode": "deny", "reason": "abuse"})  # fmt: skip
    got = r.json()
    assert (r.status_code, got["mode"], got["entitlement"]["override"], got["entitlement"]["source"]) == (
        200, "deny", "deny", "admin"
    )  # fmt: skip
    assert (
        client.get("/v1/entitlements/check?user_id=u1&component=module", headers=h).json()["reason"]
        == "override_deny"
    )
    r = client.put("/v1/entitlements/override", headers=h, json={"buyer_id": buyer_id, "component": "module",
                                                                  "ref": "m1", "mode": None, "reason": "ok"})  # fmt: skip
    got = r.json()
    assert (r.status_code, got["mode"], got["entitlement"]["override"], got["entitlement"]["status"]) == (
        200, None, None, "revoked"
    )  # fmt: skip

    r = client.post(f"/v1/entitlements/{eid}/revoke", headers=h, json={"reason": "refund"})
    assert (r.status_code, r.json()["status"], r.json()["reason"]) == (200, "revoked", "refund")
    assert (
        client.get("/v1/entitlements/check?user_id=u1&component=module&ref=m1", headers=h).json()["reason"]
        == "revoked"
    )

    ends = "2099-01-01T00:00:00Z"
    r = client.post("/v1/entitlements", headers=h, json={"buyer_id": buyer_id, "component": "coaching_quota",
                                                          "ref": "calls", "source": "sub_1", "quantity": 1,
                                                          "access_ends_at": ends})  # fmt: skip
    assert r.status_code == 200, r.text
    quota_id = r.json()["id"]
    r = client.get("/v1/entitlements/check?user_id=u1&component=coaching_quota&ref=calls", headers=h)
    assert r.json() == {"allowed": True, "reason": "granted", "entitlement_id": quota_id,
                        "access_ends_at": "2099-01-01T00:00:00Z", "quantity": 1}  # fmt: skip
    body = {"buyer_id": buyer_id, "ref": "calls"}
    r = client.post("/v1/entitlements/use", headers=h, json=body)
    assert (r.status_code, r.json()) == (200, {"remaining": 0})
    r = client.post("/v1/entitlements/use", headers=h, json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "quota_exhausted")

    r = client.get(f"/v1/buyers/{buyer_id}/entitlements", headers=h)
    assert r.status_code == 200
    assert r.json()["next_cursor"] is None
    assert sorted((e["component"], e["ref"], e["source"], e["status"]) for e in r.json()["items"]) == [
        ("coaching_quota", "calls", "sub_1", "active"),
        ("module", "m1", "admin", "revoked"),
        ("module", "m1", "ord_1", "revoked"),
    ]
    assert audit_actions(db, ws) == ["entitlement.grant", "entitlement.override", "entitlement.override",
                                     "entitlement.revoke", "entitlement.grant", "entitlement.use"]  # fmt: skip


def test_http_errors(client, db, ws, secret_headers, write_headers, other_workspace):
    buyer_id = add_buyer(db, ws, "u1")
    h = secret_headers

    def code(r):
        return r.status_code, r.json()["error"]["code"]

    assert code(client.get("/v1/entitlements/check?user_id=nobody&component=module", headers=h)) == (
        404, "buyer_not_found"
    )  # fmt: skip
    assert code(client.get("/v1/entitlements/check?buyer_id=byr_nope&component=module", headers=h)) == (
        404, "buyer_not_found"
    )  # fmt: skip
    assert code(client.get("/v1/entitlements/check?user_id=u1&component=video", headers=h)) == (
        422,
        "validation_failed",
    )
    assert code(client.get("/v1/entitlements/check?user_id=u1", headers=h)) == (422, "validation_failed")
    assert code(client.get("/v1/entitlements/check?component=module", headers=h)) == (
        422,
        "buyer_identifier_required",
    )
    assert code(client.get(f"/v1/entitlements/check?user_id=u1&buyer_id={buyer_id}&component=module", headers=h)) == (
        422, "buyer_identifier_required"
    )  # fmt: skip
    assert (
        client.get("/v1/entitlements/check?user_id=u1&component=module", headers=write_headers).status_code
        == 403
    )
    assert client.get("/v1/entitlements/check?user_id=u1&component=module").status_code == 401
    grant_body = {"buyer_id": buyer_id, "component": "module", "ref": "m1", "source": "ord_1"}
    assert code(client.post("/v1/entitlements", headers=h, json={**grant_body, "component": "video"})) == (
        422, "validation_failed"
    )  # fmt: skip
    assert code(client.post("/v1/entitlements", headers=h, json={**grant_body, "source": "admin"})) == (
        422, "reserved_source"
    )  # fmt: skip
    assert code(client.post("/v1/entitlements", headers=h, json={**grant_body, "access_ends_at": "2027-01-01T00:00:00"})) == (
        422, "validation_failed"
    )  # fmt: skip
    assert code(client.post("/v1/entitlements", headers=h, json={**grant_body, "buyer_id": "byr_nope"})) == (
        404, "buyer_not_found"
    )  # fmt: skip
    assert code(client.post("/v1/entitlements/ent_nope/revoke", headers=h, json={"reason": "x"})) == (
        404, "entitlement_not_found"
    )  # fmt: skip
    assert code(client.post("/v1/entitlements/use", headers=h, json={"buyer_id": buyer_id, "ref": "calls"})) == (
        409, "not_entitled"
    )  # fmt: skip
    # another workspace's key sees neither the buyer nor its entitlements
    eid = client.post("/v1/entitlements", headers=h, json=grant_body).json()["id"]
    other = bearer(other_workspace.secret_key)
    assert code(client.get("/v1/entitlements/check?user_id=u1&component=module", headers=other)) == (
        404,
        "buyer_not_found",
    )
    assert code(client.post(f"/v1/entitlements/{eid}/revoke", headers=other, json={"reason": "x"})) == (
        404, "entitlement_not_found"
    )  # fmt: skip
    assert code(client.get(f"/v1/buyers/{buyer_id}/entitlements", headers=other)) == (404, "buyer_not_found")


# -- concurrency ---------------------------------------------------------------------------------------


@pytest.fixture
def race(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[tuple[Database, str]]:
    """A Database whose units of work really commit (a fresh SQLite file, or the test PostgreSQL), and a
    workspace in it that is deleted afterwards."""
    own = make_engine(
        database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'q.db'}"
    )
    migrate.upgrade(own)
    db = Database(own)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="Quota race").id
    yield db, ws
    with db.write() as session:
        session.execute(delete(Workspace).where(Workspace.id == ws))
    own.dispose()


def test_concurrent_quota_uses_never_overdraw(race):
    db, ws = race
    buyer_id = add_buyer(db, ws, "racer")
    e = grant(db, ws, buyer_id, component="coaching_quota", ref="calls", quantity=5)
    start = threading.Barrier(8, timeout=60)

    def one_use(_: int) -> int | str | None:
        start.wait()  # all eight start together
        try:
            return use(db, ws, buyer_id)
        except QuotaExhausted:
            return "exhausted"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one_use, range(8)))
    assert sorted(r for r in results if isinstance(r, int)) == [0, 1, 2, 3, 4]
    assert results.count("exhausted") == 3
    with db.read() as session:
        assert session.get(Entitlement, e.id).quantity == 0
        uses = select(func.count()).where(
            AuditEntry.workspace_id == ws, AuditEntry.action == "entitlement.use"
        )
        assert session.scalar(uses) == 5
