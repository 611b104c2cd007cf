from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select
from tests.conftest import msg

from offerloop.models import AuditEntry, Event, Identity


@pytest.fixture
def send(client, write_headers):
    def _send(*messages):
        r = client.post("/v1/batch", headers=write_headers, content=orjson.dumps({"batch": list(messages)}))
        assert r.status_code == 200, r.text
        return r.json()

    return _send


@pytest.fixture
def get(client, secret_headers):
    def _get(path, **params):
        return client.get(path, params=params, headers=secret_headers)

    return _get


def _lookup(get, **by):
    r = get("/v1/buyers/lookup", **by)
    assert r.status_code == 200, r.text
    return r.json()


def _message_ids(get, buyer_id):
    return sorted(e["message_id"] for e in get(f"/v1/buyers/{buyer_id}/events").json()["items"])


def test_anonymous_history_joins_the_buyer_on_identify(send, get):
    send(
        msg(type="page", anonymousId="anon-1", messageId="p1", timestamp="2026-11-01T09:00:00Z"),
        msg(
            type="track",
            anonymousId="anon-1",
            event="Lesson Started",
            messageId="t1",
            timestamp="2026-11-01T09:01:00Z",
        ),
    )
    anon = _lookup(get, anonymous_id="anon-1")
    assert anon["user_id"] is None and anon["event_count"] == 2
    send(msg(type="identify", anonymousId="anon-1", userId="u-1", traits={"email": "Jo@Example.com"}, messageId="i1",
             timestamp="2026-11-01T09:05:00Z"))  # fmt: skip
    known = _lookup(get, user_id="u-1")
    assert known["id"] == anon["id"]
    assert _message_ids(get, known["id"]) == ["i1", "p1", "t1"]
    assert _lookup(get, email="  jo@example.COM ")["id"] == known["id"]
    assert sorted((i["kind"], i["value"]) for i in known["identities"]) == [
        ("anonymous_id", "anon-1"), ("email", "jo@example.com"), ("user_id", "u-1"),
    ]  # fmt: skip


def test_second_device_is_merged_into_the_known_buyer(send, get):
    send(msg(type="identify", userId="u-2", anonymousId="laptop", messageId="i1"))
    send(
        msg(type="page", anonymousId="phone", messageId="p1"),
        msg(type="track", anonymousId="phone", event="Drop Viewed", messageId="t1"),
    )
    phone = _lookup(get, anonymous_id="phone")
    known = _lookup(get, user_id="u-2")
    assert phone["id"] != known["id"]
    send(msg(type="identify", userId="u-2", anonymousId="phone", messageId="i2"))
    merged = _lookup(get, anonymous_id="phone")
    assert merged["id"] == known["id"]
    assert _message_ids(get, known["id"]) == ["i1", "i2", "p1", "t1"]
    assert merged["event_count"] == 4
    # The old id answers with the survivor.
    assert get(f"/v1/buyers/{phone['id']}").json()["id"] == known["id"]
    merges = get("/v1/merges").json()["items"]
    assert [(m["winner_id"], m["loser_id"], m["events_moved"]) for m in merges] == [
        (known["id"], phone["id"], 2)
    ]


def test_events_arriving_before_the_identify_in_the_same_batch(send, get):
    send(
        msg(type="track", anonymousId="d1", event="A", messageId="a"),
        msg(type="identify", anonymousId="d1", userId="u-3", messageId="b"),
        msg(type="track", anonymousId="d1", event="C", messageId="c"),
    )
    buyer = _lookup(get, user_id="u-3")
    assert _message_ids(get, buyer["id"]) == ["a", "b", "c"]


def test_two_identified_buyers_are_never_merged(send, get, client, secret_headers):
    send(msg(type="identify", userId="alice", anonymousId="shared-tablet", messageId="i1"))
    send(msg(type="identify", userId="bob", messageId="i2"))
    send(msg(type="identify", userId="bob", anonymousId="shared-tablet", messageId="i3"))
    alice, bob = _lookup(get, user_id="alice"), _lookup(get, user_id="bob")
    assert alice["id"] != bob["id"]
    assert _lookup(get, anonymous_id="shared-tablet")["id"] == alice["id"]
    assert _message_ids(get, bob["id"]) == ["i2", "i3"]  # the event is still stored, on bob
    conflicts = get("/v1/identity-conflicts").json()["items"]
    assert [
        (c["buyer_id"], c["other_buyer_id"], c["kind"], c["value"], c["message_id"]) for c in conflicts
    ] == [(bob["id"], alice["id"], "anonymous_id", "shared-tablet", "i3")]
    assert get("/v1/merges").json()["items"] == []


def test_email_collision_between_identified_buyers_is_a_conflict(send, get):
    send(msg(type="identify", userId="u-a", traits={"email": "same@example.com"}, messageId="i1"))
    send(msg(type="identify", userId="u-b", traits={"email": "same@example.com"}, messageId="i2"))
    assert _lookup(get, email="same@example.com")["user_id"] == "u-a"
    assert _lookup(get, user_id="u-b")["id"] != _lookup(get, user_id="u-a")["id"]
    assert len(get("/v1/identity-conflicts").json()["items"]) == 1


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "null",
        "NULL",
        "undefined",
        "anonymous",
        "0",
        "-1",
        "00000000-0000-0000-0000-000000000000",
        "  none ",
    ],
)
def test_junk_user_ids_are_ignored(send, get, db, workspace, junk):
    send(
        msg(type="identify", userId=junk, anonymousId="real-device", traits={"plan": "free"}, messageId="j1")
    )
    buyer = _lookup(get, anonymous_id="real-device")
    assert buyer["user_id"] is None
    assert [(i["kind"], i["value"]) for i in buyer["identities"]] == [("anonymous_id", "real-device")]
    with db.read() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Identity)
                .where(Identity.kind == "user_id", Identity.workspace_id == workspace.id)
            )
            == 0
        )


def test_junk_anonymous_ids_do_not_glue_strangers_together(send, get):
    send(
        msg(type="track", userId="u-x", anonymousId="undefined", event="e", messageId="x1"),
        msg(type="track", userId="u-y", anonymousId="undefined", event="e", messageId="y1"),
    )
    assert _lookup(get, user_id="u-x")["id"] != _lookup(get, user_id="u-y")["id"]
    assert get("/v1/identity-conflicts").json()["items"] == []


def test_junk_emails_and_phones_are_not_identifiers(send, get):
    send(msg(type="identify", userId="u-j", traits={"email": "not-an-email", "phone": "000"}, messageId="e1"))
    buyer = _lookup(get, user_id="u-j")
    assert [(i["kind"]) for i in buyer["identities"]] == ["user_id"]
    assert buyer["traits"] == {"email": "not-an-email", "phone": "000"}


def test_platform_ids_and_external_ids(send, get):
    send(msg(type="identify", anonymousId="ig-visitor",
             traits={"instagram_id": "ig_777", "phone": "+1 (415) 555-0100"},
             context={"externalIds": [{"id": "cus_123", "type": "stripe_customer_id", "collection": "users"}]},
             messageId="pl1"))  # fmt: skip
    by_ig = _lookup(get, kind="instagram", value="ig_777")
    assert _lookup(get, kind="stripe_customer", value="cus_123")["id"] == by_ig["id"]
    assert _lookup(get, phone="+14155550100")["id"] == by_ig["id"]


def test_alias_links_previous_id(send, get):
    send(msg(type="page", anonymousId="old-anon", messageId="p1"))
    send(msg(type="alias", previousId="old-anon", userId="u-al", messageId="al1"))
    buyer = _lookup(get, user_id="u-al")
    assert _lookup(get, anonymous_id="old-anon")["id"] == buyer["id"]
    assert _message_ids(get, buyer["id"]) == ["al1", "p1"]


def test_identify_by_email_merges_two_anonymous_devices(send, get):
    send(msg(type="identify", anonymousId="dev-1", traits={"email": "kim@example.com"}, messageId="a"))
    send(msg(type="identify", anonymousId="dev-2", traits={"email": "KIM@example.com"}, messageId="b"))
    assert _lookup(get, anonymous_id="dev-1")["id"] == _lookup(get, anonymous_id="dev-2")["id"]


def test_traits_latest_event_time_wins_not_arrival_order(send, get):
    send(
        msg(
            type="identify",
            userId="u-t",
            traits={"plan": "pro", "city": "Oslo"},
            timestamp="2026-11-05T00:00:00Z",
            messageId="n",
        )
    )
    send(
        msg(
            type="identify",
            userId="u-t",
            traits={"plan": "free"},
            timestamp="2026-11-01T00:00:00Z",
            messageId="o",
        )
    )
    buyer = _lookup(get, user_id="u-t")
    assert buyer["traits"] == {"plan": "pro", "city": "Oslo"}
    assert buyer["trait_updated_at"]["plan"] == "2026-11-05T00:00:00.000000Z"
    assert buyer["first_seen_at"].startswith("2026-11-01T00:00:00")
    assert buyer["last_seen_at"].startswith("2026-11-05T00:00:00")


def test_consent_from_traits_context_and_api(send, get, client, secret_headers):
    send(msg(type="identify", userId="u-c", traits={"consent_marketing": "yes"}, messageId="c1"))
    assert _lookup(get, user_id="u-c")["consent"] == {
        "marketing": True,
        "personalization": None,
        "ai_rewrite": None,
    }
    send(msg(type="track", userId="u-c", event="e", messageId="c2",
             context={"consent": {"categoryPreferences": {"Personalization": False}}}))  # fmt: skip
    buyer = _lookup(get, user_id="u-c")
    assert buyer["consent"] == {"marketing": True, "personalization": False, "ai_rewrite": None}
    r = client.put(f"/v1/buyers/{buyer['id']}/consent", headers=secret_headers, json={"marketing": False})
    assert r.json()["consent"] == {"marketing": False, "personalization": False, "ai_rewrite": None}


def test_undo_merge_restores_both_buyers(send, get, client, secret_headers, db, workspace):
    send(msg(type="identify", userId="u-u", anonymousId="lap", traits={"name": "Uma"}, messageId="i1"))
    send(msg(type="identify", anonymousId="tab", traits={"colour": "red"}, messageId="t1"),
         msg(type="track", anonymousId="tab", event="Drop Viewed", messageId="t2"))  # fmt: skip
    tab = _lookup(get, anonymous_id="tab")
    send(msg(type="track", userId="u-u", anonymousId="tab", event="Login", messageId="l1"))
    known = _lookup(get, user_id="u-u")
    assert known["traits"] == {"name": "Uma", "colour": "red"}
    merge = get("/v1/merges").json()["items"][0]
    r = client.post(f"/v1/merges/{merge['id']}/undo", headers=secret_headers)
    assert r.status_code == 200 and r.json()["undone_at"] is not None
    assert _lookup(get, anonymous_id="tab")["id"] == tab["id"]
    assert _message_ids(get, tab["id"]) == ["t1", "t2"]
    assert _message_ids(get, known["id"]) == ["i1", "l1"]
    restored = get(f"/v1/buyers/{known['id']}").json()
    assert restored["traits"] == {"name": "Uma"} and restored["event_count"] == 2
    assert get(f"/v1/buyers/{tab['id']}").json()["traits"] == {"colour": "red"}
    again = client.post(f"/v1/merges/{merge['id']}/undo", headers=secret_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "merge_not_undoable"
    with db.read() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.workspace_id == workspace.id).order_by(AuditEntry.id)
        ).all()
    assert "merge.undo" in actions


def test_lookup_needs_exactly_one_identifier(get):
    assert get("/v1/buyers/lookup").status_code == 422
    assert (
        get("/v1/buyers/lookup", user_id="a", email="b@c.de").json()["error"]["code"]
        == "lookup_needs_one_identifier"
    )
    assert get("/v1/buyers/lookup", user_id="nobody").status_code == 404


def test_gdpr_export_and_delete(send, get, client, secret_headers, db):
    send(msg(type="page", anonymousId="g-anon", messageId="g0",
             context={"page": {"url": "https://c.example/?utm_source=ig&utm_medium=social&fbclid=abc"}}))  # fmt: skip
    send(msg(type="identify", anonymousId="g-anon", userId="u-g", traits={"email": "g@example.com", "name": "Gus"}, messageId="g1"),
         msg(type="track", userId="u-g", event="Order Completed", properties={"email": "g@example.com", "total": 4900}, messageId="g2"))  # fmt: skip
    buyer = _lookup(get, user_id="u-g")
    export = get(f"/v1/buyers/{buyer['id']}/export").json()
    assert export["buyer"]["traits"] == {"email": "g@example.com", "name": "Gus"}
    assert sorted(e["message_id"] for e in export["events"]) == ["g0", "g1", "g2"]
    assert [t["source"] for t in export["touchpoints"]] == ["instagram"]

    r = client.delete(f"/v1/buyers/{buyer['id']}", headers=secret_headers)
    assert r.status_code == 200
    assert r.json()["deleted"] is True and r.json()["identities"] == 3
    assert get("/v1/buyers/lookup", user_id="u-g").status_code == 404
    assert get("/v1/buyers/lookup", email="g@example.com").status_code == 404
    erased = get(f"/v1/buyers/{buyer['id']}").json()
    assert erased["deleted"] is True and erased["traits"] == {} and erased["identities"] == []
    assert erased["event_count"] == 3  # aggregates survive
    with db.read() as session:
        rows = session.execute(select(Event.name, Event.user_id, Event.anonymous_id, Event.properties, Event.context)
                               .where(Event.buyer_id == buyer["id"]).order_by(Event.message_id)).all()  # fmt: skip
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == buyer["id"])).all()
    assert rows == [
        (None, None, None, None, None),
        (None, None, None, None, None),
        ("Order Completed", None, None, {"total": 4900}, None),
    ]
    assert sorted(actions) == ["buyer.delete", "buyer.export"]
    # A new event with the same ids starts a new, unrelated buyer.
    send(msg(type="identify", userId="u-g", messageId="g3"))
    assert _lookup(get, user_id="u-g")["id"] != buyer["id"]
