"""What a buyer paid for follows them through identity merges: a guest who bought at checkout and later signs
in to their account has, as the account, the guest's entitlements, orders, subscription and deliverable —
over the API and in the portal — and gets none of them once the merge is undone. A merge moves no commerce
row (an undo must give them back as they were): reads go through the buyer's lineage, never another buyer's.

The guest checks out with an e-mail and the device's anonymous id, or with the e-mail alone: checkout records
it as the guest's e-mail identifier (never as a userId), so the account identifying with it is the same buyer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import basic, bearer, msg

from offerloop.db.uow import Database
from offerloop.identity import service as identity_service
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import Mailer, csrf_of, fulfil, setup_shop, sign_in

OFFERS = ("launch-workbook", "membership-monthly")


def _guest_buys(client: TestClient, secret: dict[str, str], email: str, device: str) -> dict[str, str]:
    """A guest's paid orders of OFFERS: offer -> order id."""
    orders = {}
    for offer in OFFERS:
        made = client.post("/v1/checkout", headers=secret,
                           json={"email": email, "anonymous_id": device, "offer": offer})  # fmt: skip
        assert made.status_code == 201, made.text
        paid = client.post(f"/v1/orders/{made.json()['id']}/paid", headers=secret, json={"reference": "x"})
        assert paid.status_code == 200, paid.text
        orders[offer] = made.json()["id"]
    return orders


def _identify(client: TestClient, write: dict[str, str], **fields: Any) -> None:
    r = client.post("/v1/identify", headers=write, json=msg(**fields))
    assert r.status_code == 200, r.text


def _get(client: TestClient, secret: dict[str, str], path: str, **params: str) -> Any:
    r = client.get(path, headers=secret, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _grants(
    client: TestClient, secret: dict[str, str], buyer_id: str
) -> list[tuple[str, str, str, str, str]]:
    items = _get(client, secret, f"/v1/buyers/{buyer_id}/entitlements")["items"]
    return [(e["id"], e["buyer_id"], e["component"], e["ref"], e["status"]) for e in items]


def _orders(client: TestClient, secret: dict[str, str], buyer_id: str) -> list[str]:
    return [o["id"] for o in _get(client, secret, "/v1/orders", buyer_id=buyer_id)["items"]]


def _subscriptions(client: TestClient, secret: dict[str, str], buyer_id: str) -> list[str]:
    return [s["id"] for s in _get(client, secret, "/v1/subscriptions", buyer_id=buyer_id)["items"]]


def _check(
    client: TestClient, secret: dict[str, str], component: str, ref: str, **who: str
) -> tuple[bool, str]:
    found = _get(client, secret, "/v1/entitlements/check", component=component, ref=ref, **who)
    return found["allowed"], found["reason"]


def _offered(client: TestClient, secret: dict[str, str], user_id: str) -> set[str]:
    """The keys of the offers ``user_id`` may buy (one-time products and plans they own are not offered)."""
    found = _get(client, secret, "/v1/offers", user_id=user_id, k="50")["offers"]
    return {o["key"] for o in found}


def _artifact_of(client: TestClient, secret: dict[str, str], order_id: str) -> str:
    tasks = _get(client, secret, f"/v1/orders/{order_id}")["fulfilment"]
    return str(next(t for t in tasks if t["component"] == "deliverable")["result"]["artifact_id"])


@pytest.fixture
def gus(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers, write_headers, mailer: Mailer
) -> dict[str, Any]:  # fmt: skip
    """Gus bought the workbook and the monthly plan as a guest, then identified as "gus-account" and, later,
    gave the same e-mail: the guest merged into the account."""
    setup_shop(client, secret_headers)
    orders = _guest_buys(client, secret_headers, "gus@example.com", "gus-phone")
    fulfil(db)
    guest = _get(client, secret_headers, f"/v1/orders/{orders['launch-workbook']}")["buyer_id"]
    grants = _grants(client, secret_headers, guest)
    (sub,) = _subscriptions(client, secret_headers, guest)
    _identify(client, write_headers, type="identify", userId="gus-account", messageId="gus-1")
    account = _get(client, secret_headers, "/v1/buyers/lookup", user_id="gus-account")["id"]
    assert account != guest and _grants(client, secret_headers, account) == []
    _identify(client, write_headers, type="identify", userId="gus-account", traits={"email": "gus@example.com"},
              messageId="gus-2")  # fmt: skip
    (merge,) = _get(client, secret_headers, "/v1/merges")["items"]
    assert (merge["winner_id"], merge["loser_id"]) == (account, guest)
    return {
        "guest": guest, "account": account, "orders": orders, "grants": grants, "subscription": sub,
        "merge": merge["id"], "artifact": _artifact_of(client, secret_headers, orders["launch-workbook"]),
    }  # fmt: skip


def test_the_account_has_what_the_guest_paid_for(client: TestClient, secret_headers, gus) -> None:
    account, guest = gus["account"], gus["guest"]
    # the rows stay the guest's (an undo gives them back); the account reads them as its own
    assert [g[1] for g in gus["grants"]] == [guest] * 3
    assert sorted((c, r) for _, _, c, r, _ in gus["grants"]) == [
        ("community_space", "creator-circle"), ("module", "module-audience-101"), ("module", "module-launch-201"),
    ]  # fmt: skip
    assert _grants(client, secret_headers, account) == gus["grants"]
    assert _grants(client, secret_headers, guest) == gus["grants"]  # the merged id answers with its survivor
    for _, _, component, ref, _ in gus["grants"]:
        for who in ({"user_id": "gus-account"}, {"buyer_id": account}, {"buyer_id": guest}):
            assert _check(client, secret_headers, component, ref, **who) == (True, "granted")
    newest_first = [gus["orders"]["membership-monthly"], gus["orders"]["launch-workbook"]]
    assert _orders(client, secret_headers, account) == newest_first
    assert _orders(client, secret_headers, guest) == newest_first
    assert _subscriptions(client, secret_headers, account) == [gus["subscription"]]
    assert _offered(client, secret_headers, "gus-account").isdisjoint(OFFERS)  # owned: not offered again


def test_the_account_sees_and_uses_the_guests_purchases_in_the_portal(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, gus, mailer: Mailer
) -> None:
    assert sign_in(client, workspace.id, mailer, "gus@example.com").status_code == 303
    home = client.get(f"/p/{workspace.id}")
    assert home.status_code == 200 and f'data-artifact="{gus["artifact"]}"' in home.text
    assert sorted(o for o in gus["orders"].values() if f'data-order="{o}"' in home.text) == sorted(
        gus["orders"].values()
    )
    assert home.text.count("data-order=") == 2
    pdf = client.get(f"/p/{workspace.id}/downloads/{gus['artifact']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    access = client.get(f"/p/{workspace.id}/access").text
    assert sorted(
        f"{c}:{r}" for _, _, c, r, _ in gus["grants"] if f'data-grant="{c}:{r}"' in access
    ) == sorted(f"{c}:{r}" for _, _, c, r, _ in gus["grants"])
    page = client.get(f"/p/{workspace.id}/subscription")
    assert (
        page.text.count("data-subscription=") == 1
        and f'data-subscription="{gus["subscription"]}"' in page.text
    )
    done = client.post(f"/p/{workspace.id}/subscription/{gus['subscription']}",
                       data={"csrf_token": csrf_of(page.text), "action": "cancel"})  # fmt: skip
    assert done.status_code == 200 and "ends at the end of the current period" in done.text
    sub = _get(client, secret_headers, f"/v1/subscriptions/{gus['subscription']}")
    assert (sub["buyer_id"], sub["status"], sub["state"]["cancel_at_period_end"]) == (
        gus["guest"],
        "trialing",
        True,
    )


def test_undoing_the_merge_gives_the_purchases_back_to_the_guest(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, gus, mailer: Mailer
) -> None:
    account, guest = gus["account"], gus["guest"]
    assert (
        sign_in(client, workspace.id, mailer, "gus@example.com").status_code == 303
    )  # the account's session
    assert f'data-artifact="{gus["artifact"]}"' in client.get(f"/p/{workspace.id}").text
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    undone = client.post(f"/v1/merges/{gus['merge']}/undo", headers=secret_headers)
    assert undone.status_code == 200, undone.text
    assert _grants(client, secret_headers, account) == []
    assert _grants(client, secret_headers, guest) == gus["grants"]
    for _, _, component, ref, _ in gus["grants"]:
        assert _check(client, secret_headers, component, ref, user_id="gus-account") == (False, "not_granted")
        assert _check(client, secret_headers, component, ref, buyer_id=account) == (False, "not_granted")
        assert _check(client, secret_headers, component, ref, buyer_id=guest) == (True, "granted")
        assert _check(client, secret_headers, component, ref, anonymous_id="gus-phone") == (True, "granted")
    assert _orders(client, secret_headers, account) == []
    assert sorted(_orders(client, secret_headers, guest)) == sorted(gus["orders"].values())
    assert _subscriptions(client, secret_headers, account) == []
    assert _subscriptions(client, secret_headers, guest) == [gus["subscription"]]
    assert set(OFFERS) <= _offered(client, secret_headers, "gus-account")  # the account owns nothing now
    # The session opened while the merge stood is ended: it was opened with gus@example.com, which was the
    # guest's address and is the guest's again, so it no longer opens the account. It cannot act either.
    assert client.get(f"/p/{workspace.id}", follow_redirects=False).status_code == 303
    assert (
        client.get(f"/p/{workspace.id}/downloads/{gus['artifact']}/pdf", follow_redirects=False).status_code
        == 303
    )
    refused = client.post(f"/p/{workspace.id}/subscription/{gus['subscription']}",
                          data={"csrf_token": csrf, "action": "cancel"}, follow_redirects=False)  # fmt: skip
    assert refused.status_code == 303  # to the sign-in page
    # Signed in again with that address, the buyer reached is the guest, with the guest's purchases.
    assert sign_in(client, workspace.id, mailer, "gus@example.com").status_code == 303
    assert f'data-artifact="{gus["artifact"]}"' in client.get(f"/p/{workspace.id}").text
    assert f'data-subscription="{gus["subscription"]}"' in client.get(f"/p/{workspace.id}/subscription").text
    sub = _get(client, secret_headers, f"/v1/subscriptions/{gus['subscription']}")
    assert sub["state"]["cancel_at_period_end"] is False


def test_a_chain_of_merges_reaches_the_first_buyers_purchases_and_nobody_else(
    client: TestClient, db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated,
    secret_headers, write_headers, shop, mailer: Mailer,
) -> None:  # fmt: skip
    """A (a guest who bought) merges into B (another device giving A's e-mail), B into C (an account signing
    in on B's device). Ada and Bob (the shop's buyers, each with their own purchases) and another workspace's
    buyer with C's identifiers see none of A's."""
    orders = _guest_buys(client, secret_headers, "cleo@example.com", "cleo-phone")
    fulfil(db)
    a = _get(client, secret_headers, f"/v1/orders/{orders['launch-workbook']}")["buyer_id"]
    grants = _grants(client, secret_headers, a)
    (sub,) = _subscriptions(client, secret_headers, a)
    artifact = _artifact_of(client, secret_headers, orders["launch-workbook"])
    _identify(client, write_headers, type="identify", anonymousId="cleo-laptop", messageId="b1")
    _identify(client, write_headers, type="identify", anonymousId="cleo-laptop",
              traits={"email": "cleo@example.com"}, messageId="b2")  # fmt: skip
    _identify(client, write_headers, type="identify", userId="cleo", messageId="c1")
    c = _get(client, secret_headers, "/v1/buyers/lookup", user_id="cleo")["id"]
    _identify(
        client, write_headers, type="identify", userId="cleo", anonymousId="cleo-laptop", messageId="c2"
    )
    merges = [(m["winner_id"], m["loser_id"]) for m in _get(client, secret_headers, "/v1/merges")["items"]]
    (b,) = {m[1] for m in merges} - {a}
    assert merges == [(c, b), (b, a)] or merges == [(c, a), (a, b)]
    with db.read() as session:
        mine = identity_service.lineage(session=session, workspace_id=workspace.id, buyer_id=c)
    assert mine[0] == c and sorted(mine) == sorted((a, b, c))
    assert _grants(client, secret_headers, c) == grants
    for _, _, component, ref, _ in grants:
        assert _check(client, secret_headers, component, ref, user_id="cleo") == (True, "granted")
    assert sorted(_orders(client, secret_headers, c)) == sorted(orders.values())
    assert _subscriptions(client, secret_headers, c) == [sub]

    # another buyer of the workspace: their own purchases only
    theirs = {g[0] for u in ("ada", "bob")
              for g in _grants(client, secret_headers, _get(client, secret_headers, "/v1/buyers/lookup", user_id=u)["id"])}  # fmt: skip
    assert len(theirs) == 6 and theirs.isdisjoint(g[0] for g in grants)
    for user in ("ada", "bob"):
        buyer = _get(client, secret_headers, "/v1/buyers/lookup", user_id=user)["id"]
        assert sorted(_orders(client, secret_headers, buyer)) == sorted(shop[user].values())
        assert sub not in _subscriptions(client, secret_headers, buyer)

    # another workspace: none of these ids, and its own buyer with the same identifiers has nothing
    other_secret, other_write = bearer(other_workspace.secret_key), basic(other_workspace.write_key)
    _identify(client, other_write, type="identify", userId="cleo", anonymousId="cleo-laptop",
              traits={"email": "cleo@example.com"}, messageId="o1")  # fmt: skip
    assert client.get(f"/v1/buyers/{c}/entitlements", headers=other_secret).status_code == 404
    for buyer in (a, b, c):
        assert (
            _orders(client, other_secret, buyer) == [] and _subscriptions(client, other_secret, buyer) == []
        )
    for _, _, component, ref, _ in grants:
        assert _check(client, other_secret, component, ref, user_id="cleo") == (False, "not_granted")

    # the survivor's portal has A's workbook; another buyer's portal session cannot reach it or act on A's plan
    assert sign_in(client, workspace.id, mailer, "cleo@example.com").status_code == 303
    assert client.get(f"/p/{workspace.id}/downloads/{artifact}/pdf").status_code == 200
    ada = TestClient(client.app)
    assert sign_in(ada, workspace.id, mailer, "ada@example.com").status_code == 303
    home = ada.get(f"/p/{workspace.id}").text
    assert artifact not in home and all(o not in home for o in orders.values())
    for fmt in ("pdf", "html", "markdown"):
        assert ada.get(f"/p/{workspace.id}/downloads/{artifact}/{fmt}").status_code == 404
    csrf = csrf_of(ada.get(f"/p/{workspace.id}/subscription").text)
    for action in ("cancel", "pause", "change_plan"):
        hit = ada.post(f"/p/{workspace.id}/subscription/{sub}",
                       data={"csrf_token": csrf, "action": action, "plan": "membership-annual"})  # fmt: skip
        assert hit.status_code == 404 and "There is no such subscription." in hit.text
    after = _get(client, secret_headers, f"/v1/subscriptions/{sub}")
    assert (after["offer_key"], after["state"]["cancel_at_period_end"]) == ("membership-monthly", False)


def test_a_guest_who_gave_only_an_email_becomes_the_account_that_identifies_with_it(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers, write_headers, mailer: Mailer
) -> None:  # fmt: skip
    """E-mail only at checkout, then the account identifies with its userId and that e-mail, over the API:
    one buyer, no conflict, and the portal shows the account what the guest paid for."""
    setup_shop(client, secret_headers)
    orders = {}
    for offer in OFFERS:
        made = client.post(
            "/v1/checkout", headers=secret_headers, json={"email": "Ivy@Example.com", "offer": offer}
        )
        assert made.status_code == 201, made.text
        paid = client.post(
            f"/v1/orders/{made.json()['id']}/paid", headers=secret_headers, json={"reference": "x"}
        )
        assert paid.status_code == 200, paid.text
        orders[offer] = made.json()["id"]
    fulfil(db)
    guest = _get(client, secret_headers, f"/v1/orders/{orders['launch-workbook']}")["buyer_id"]
    record = _get(client, secret_headers, f"/v1/buyers/{guest}")
    assert record["user_id"] is None
    assert [i["value"] for i in record["identities"] if i["kind"] == "email"] == ["ivy@example.com"]
    assert "ivy@example.com" not in [i["value"] for i in record["identities"] if i["kind"] == "user_id"]
    grants = _grants(client, secret_headers, guest)
    assert len(grants) == 3

    _identify(client, write_headers, type="identify", userId="ivy-account", traits={"email": "ivy@example.com"},
              messageId="ivy-1")  # fmt: skip
    assert _get(client, secret_headers, "/v1/buyers/lookup", user_id="ivy-account")["id"] == guest
    assert _get(client, secret_headers, "/v1/buyers/lookup", email="ivy@example.com")["id"] == guest
    assert _get(client, secret_headers, "/v1/identity-conflicts")["items"] == []
    assert _get(client, secret_headers, f"/v1/buyers/{guest}")["user_id"] == "ivy-account"
    assert _grants(client, secret_headers, guest) == grants
    for _, _, component, ref, _ in grants:
        assert _check(client, secret_headers, component, ref, user_id="ivy-account") == (True, "granted")
    assert sorted(_orders(client, secret_headers, guest)) == sorted(orders.values())

    assert sign_in(client, workspace.id, mailer, "ivy@example.com").status_code == 303
    home = client.get(f"/p/{workspace.id}")
    assert home.status_code == 200
    assert sorted(o for o in orders.values() if f'data-order="{o}"' in home.text) == sorted(orders.values())
    access = client.get(f"/p/{workspace.id}/access").text
    assert sorted(f"{c}:{r}" for _, _, c, r, _ in grants if f'data-grant="{c}:{r}"' in access) == sorted(
        f"{c}:{r}" for _, _, c, r, _ in grants
    )


def test_an_account_known_before_the_email_only_checkout_merges_the_guest_in(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers, write_headers
) -> None:  # fmt: skip
    """The account was identified (without an e-mail) before the guest checkout by e-mail alone: when it gives
    the e-mail, the guest merges into it (the e-mail links them) rather than being recorded as a conflict."""
    setup_shop(client, secret_headers)
    _identify(client, write_headers, type="identify", userId="jo-account", messageId="jo-1")
    account = _get(client, secret_headers, "/v1/buyers/lookup", user_id="jo-account")["id"]
    made = client.post(
        "/v1/checkout", headers=secret_headers, json={"email": "jo@example.com", "offer": "launch-workbook"}
    )
    assert made.status_code == 201, made.text
    guest = made.json()["buyer_id"]
    assert guest != account
    assert client.post(f"/v1/orders/{made.json()['id']}/paid", headers=secret_headers,
                       json={"reference": "x"}).status_code == 200  # fmt: skip
    fulfil(db)
    _identify(client, write_headers, type="identify", userId="jo-account", traits={"email": "jo@example.com"},
              messageId="jo-2")  # fmt: skip
    (merge,) = _get(client, secret_headers, "/v1/merges")["items"]
    assert (merge["winner_id"], merge["loser_id"]) == (account, guest)
    assert _get(client, secret_headers, "/v1/identity-conflicts")["items"] == []
    assert _orders(client, secret_headers, account) == [made.json()["id"]]
    assert [(g[1], g[2], g[3]) for g in _grants(client, secret_headers, account)] == [
        (guest, "module", "module-launch-201")
    ]
