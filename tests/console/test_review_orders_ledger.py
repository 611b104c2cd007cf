"""The console's review queue, orders, subscriptions and ledger pages over HTTP (TestClient, real database):
the document and its PDF through the session, decisions that stand, refunds the ledger shows, roles, CSRF,
another workspace's ids (404) and bad input (4xx, never 500)."""

from __future__ import annotations

import io
import re

import pypdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.assembly.test_artifacts_api import buyer, setup_workspace
from tests.checkout.test_checkout_flow import buy, pay, setup
from tests.console.helpers import sign_in_as

from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.core.clock import utcnow
from offerloop.core.pages import InvalidCursor
from offerloop.db.uow import Database
from offerloop.ledger import service as ledger_service
from offerloop.models import AuditEntry
from offerloop.workspaces.schemas import WorkspaceCreated


@pytest.fixture
def owner(client: TestClient, db: Database, workspace: WorkspaceCreated) -> str:
    return sign_in_as(client, db, workspace.id, "owner")


@pytest.fixture
def held(client, db, write_headers, secret_headers) -> str:
    """An artifact of Ana's whose v1 waits for review, rendered (HTML, PDF, Markdown)."""
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    art = r.json()["id"]
    assert assembly_service.run_pending(db=db) == [(art, 1, "awaiting_review")]
    return art


def _blocks(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="block:([^"]+)"[^>]*>([^<]*)</textarea>', html))


def test_the_queue_shows_the_held_version_its_document_inline_and_its_pdf(client, held, owner) -> None:
    queue = client.get("/console/assembly")
    assert queue.status_code == 200
    assert re.findall(r'data-artifact="([^"]+)"', queue.text) == [held]
    assert f'href="/console/assembly/reviews/{held}?version=1"' in queue.text and "Ana Lima" in queue.text
    page = client.get(f"/console/assembly/reviews/{held}", params={"version": 1})
    assert page.status_code == 200
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    frame = re.search(r'<iframe id="document"[^>]*src="([^"]+)"[^>]*sandbox=""', page.text)
    assert frame is not None and frame.group(1) == f"/console/assembly/reviews/{held}/1/html"
    assert 'data-status="awaiting_review"' in page.text and "policy requires review" in page.text
    assert sorted(_blocks(page.text)) == ["path/0", "pricing/0", "start/0"]
    html = client.get(frame.group(1))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'self'" in html.headers["content-security-policy"]
    assert "sandbox" in html.headers["content-security-policy"]
    assert html.headers["x-frame-options"] == "SAMEORIGIN" and html.headers["cache-control"] == "no-store"
    assert "Ana" in html.text
    pdf = client.get(f"/console/assembly/reviews/{held}/1/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'inline; filename="{held}-v1.pdf"'
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Ana" in text and "Anchor your price" in text


def test_approve_stands_and_a_second_decision_is_refused(
    client, db, workspace, held, owner, secret_headers
) -> None:
    r = client.post(f"/console/assembly/reviews/{held}",
                    data={"csrf_token": owner, "action": "approve", "version": "1", "note": "looks right"},
                    follow_redirects=False)  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/console/assembly/reviews/{held}?version=1&done=ready",
    )
    done = client.get(r.headers["location"])
    assert 'id="done"' in done.text and 'data-status="ready"' in done.text and 'id="decide"' not in done.text
    got = client.get(f"/v1/artifacts/{held}", headers=secret_headers).json()
    assert (got["status"], got["downloadable_version"]) == ("ready", 1)
    again = client.post(
        f"/console/assembly/reviews/{held}", data={"csrf_token": owner, "action": "reject", "version": "1"}
    )
    assert again.status_code == 409 and 'data-code="invalid_review"' in again.text
    assert client.get("/console/assembly").text.count("data-artifact=") == 0
    with db.read() as session:
        actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.workspace_id == workspace.id,
                                                                AuditEntry.action == "artifact.review.approve")).all()  # fmt: skip
    assert actors == ["console:owner-" + workspace.id[-6:] + "@example.com"]


def test_an_edit_sends_only_the_changed_block_and_a_stale_version_is_refused(client, db, held, owner) -> None:
    page = client.get(f"/console/assembly/reviews/{held}")
    blocks = {f"block:{k}": v for k, v in _blocks(page.text).items()}
    base = {"csrf_token": owner, "action": "edit", "version": "1"}
    unchanged = client.post(f"/console/assembly/reviews/{held}", data={**base, **blocks})
    assert unchanged.status_code == 422 and "at least one block" in unchanged.text
    unknown = client.post(f"/console/assembly/reviews/{held}", data={**base, "block:nope/9": "x"})
    assert unknown.status_code == 422
    stale = client.post(
        f"/console/assembly/reviews/{held}", data={**base, "action": "approve", "version": "2"}
    )
    assert stale.status_code == 409 and 'data-code="stale_version"' in stale.text
    edited = "Show the value first, then the price."
    r = client.post(f"/console/assembly/reviews/{held}", data={**base, **blocks, "block:pricing/0": edited},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("done=queued")
    assert assembly_service.run_pending(db=db) == [(held, 1, "ready")]
    after = client.get(f"/console/assembly/reviews/{held}")
    assert edited in after.text and "edited by console:owner-" in after.text
    with db.read() as session:
        detail = assembly_service.review_detail(session=session, workspace_id=_workspace_of(db, held), artifact_id=held,
                                                secret="x")  # fmt: skip
    assert [e["block"] for e in detail.edits["in_effect"]] == ["pricing/0"]


def _workspace_of(db: Database, artifact_id: str) -> str:
    from offerloop.models import Artifact

    with db.read() as session:
        return session.scalars(select(Artifact.workspace_id).where(Artifact.id == artifact_id)).one()


def test_review_input_is_checked_and_never_a_500(client, held, owner) -> None:
    url = f"/console/assembly/reviews/{held}"
    for bad, status in (
        ({"action": "publish", "version": "1"}, 422), ({"action": "approve"}, 422),
        ({"action": "approve", "version": "0"}, 422), ({"action": "approve", "version": "1e3"}, 422),
        ({"action": "approve", "version": "1", "note": "n" * 10_001}, 422),
    ):  # fmt: skip
        r = client.post(url, data={"csrf_token": owner, **bad})
        assert r.status_code == status, (bad, r.status_code)
    assert client.post(url, data={"action": "approve", "version": "1"}).status_code == 403  # no CSRF token
    assert client.get(f"{url}?version=0").status_code == 422
    assert client.get(f"{url}?version=7").status_code == 404
    assert client.get(f"{url}/1/exe").status_code == 422
    assert client.get(f"{url}/1/email").status_code == 422
    assert client.get(f"{url}/2/pdf").status_code == 404
    assert client.get("/console/assembly/reviews/art%2F..%2Fetc/1/pdf").status_code in (404, 422)
    assert client.get("/console/assembly/reviews/art_nope").status_code == 404
    assert client.get("/console/assembly", params={"cursor": "garbage!"}).status_code == 422


def test_another_workspaces_artifact_is_not_found(client, db, held, other_workspace) -> None:
    token = sign_in_as(client, db, other_workspace.id, "owner")
    assert client.get("/console/assembly").text.count("data-artifact=") == 0
    for path in (f"/console/assembly/reviews/{held}", f"/console/assembly/reviews/{held}/1/pdf",
                 f"/console/assembly/reviews/{held}/1/html"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 404 and 'data-code="artifact_not_found"' in r.text, path
    r = client.post(
        f"/console/assembly/reviews/{held}", data={"csrf_token": token, "action": "approve", "version": "1"}
    )
    assert r.status_code == 404


def test_an_analyst_cannot_see_or_decide_reviews_and_a_reviewer_can(client, db, workspace, held) -> None:
    token = sign_in_as(client, db, workspace.id, "analyst")
    assert client.get("/console/assembly").status_code == 403
    assert client.get(f"/console/assembly/reviews/{held}/1/pdf").status_code == 403
    r = client.post(
        f"/console/assembly/reviews/{held}", data={"csrf_token": token, "action": "approve", "version": "1"}
    )
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    token = sign_in_as(client, db, workspace.id, "reviewer")
    r = client.post(f"/console/assembly/reviews/{held}", data={"csrf_token": token, "action": "reject", "version": "1"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("done=rejected")


# -- orders, refunds, ledger -------------------------------------------------------------------------


@pytest.fixture
def paid(client, secret_headers, write_headers) -> dict:
    """Ada's paid order of the pricing playbook (USD 27.00), its components granted."""
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "pricing-playbook")
    assert pay(client, secret_headers, order["id"])["status"] == "paid"
    return order


def _balance(html: str, account: str, currency: str = "USD") -> int:
    found = re.search(rf'data-account="{account}" data-currency="{currency}">.*?data-amount="(-?\d+)"', html)
    assert found is not None, account
    return int(found.group(1))


def test_orders_list_and_an_orders_page(client, db, paid, owner) -> None:
    checkout_service.run_fulfilment(db=db)
    listed = client.get("/console/orders")
    assert listed.status_code == 200 and re.findall(r'data-order="([^"]+)"', listed.text) == [paid["id"]]
    assert "USD 27.00" in listed.text
    assert client.get("/console/orders", params={"status": "refunded"}).text.count("data-order=") == 0
    page = client.get(f"/console/orders/{paid['id']}")
    assert page.status_code == 200
    assert re.search(r'data-figure="refundable">([^<]+)<', page.text).group(1) == "USD 27.00"
    assert len(re.findall(r'<tr data-status="active">', page.text)) == 3  # the three components granted
    assert 'id="refund"' in page.text and "No provider events" in page.text


def test_refund_part_then_the_rest_and_the_ledger_shows_it(client, db, paid, owner) -> None:
    checkout_service.run_fulfilment(db=db)
    before = client.get("/console/ledger").text
    assert 'data-account="refunds"' not in before
    url = f"/console/orders/{paid['id']}/refund"
    r = client.post(url, data={"csrf_token": owner, "mode": "partial", "amount": "5.50", "confirm": "yes"},
                    follow_redirects=False)  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (303, f"/console/orders/{paid['id']}?done=refunded")
    page = client.get(r.headers["location"])
    assert 'data-status="partially_refunded"' in page.text
    assert re.search(r'data-figure="refunded">([^<]+)<', page.text).group(1) == "USD 5.50"
    assert re.search(r'data-figure="refundable">([^<]+)<', page.text).group(1) == "USD 21.50"
    ledger = client.get("/console/ledger")
    assert _balance(ledger.text, "refunds") == 550
    assert re.findall(r'data-entry="\d+" data-kind="(\w+)"', ledger.text) == [
        "refund",
        "sale",
    ]  # newest first
    assert 'id="totals"' not in ledger.text  # the period report only when asked
    totals = client.get("/console/ledger", params={"start": utcnow().date().replace(day=1).isoformat()})
    assert re.search(r'data-figure="refunds">([^<]+)<', totals.text).group(1) == "USD 5.50"
    r = client.post(url, data={"csrf_token": owner, "mode": "full", "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert 'data-status="refunded"' in page.text and 'id="refund"' not in page.text
    assert len(re.findall(r'<tr data-status="revoked">', page.text)) == 3  # a full refund ends the access
    assert _balance(client.get("/console/ledger").text, "refunds") == 2700
    again = client.post(url, data={"csrf_token": owner, "mode": "full", "confirm": "yes"})
    assert again.status_code == 409 and 'data-code="not_refundable"' in again.text
    with db.read() as session:
        assert ledger_service.check(session=session, workspace_id=_order_workspace(db, paid["id"])).balanced


def _order_workspace(db: Database, order_id: str) -> str:
    from offerloop.models import Order

    with db.read() as session:
        return session.scalars(select(Order.workspace_id).where(Order.id == order_id)).one()


def test_refund_input_is_checked(client, paid, owner) -> None:
    url = f"/console/orders/{paid['id']}/refund"
    for bad, status, code in (
        ({"mode": "partial", "amount": "abc", "confirm": "yes"}, 422, "invalid_user"),
        ({"mode": "partial", "amount": "5.001", "confirm": "yes"}, 422, "invalid_user"),
        ({"mode": "partial", "amount": "-5", "confirm": "yes"}, 422, "invalid_user"),
        ({"mode": "partial", "amount": "", "confirm": "yes"}, 422, "invalid_user"),
        ({"mode": "partial", "amount": "1e3", "confirm": "yes"}, 422, "invalid_user"),
        ({"mode": "partial", "amount": "9" * 40, "confirm": "yes"}, 422, "invalid_user"),
        ({"mode": "partial", "amount": "0", "confirm": "yes"}, 409, "invalid_refund_amount"),
        ({"mode": "partial", "amount": "27.01", "confirm": "yes"}, 409, "invalid_refund_amount"),
        ({"mode": "full"}, 422, "invalid_user"),
        ({"mode": "everything", "confirm": "yes"}, 422, "invalid_user"),
    ):
        r = client.post(url, data={"csrf_token": owner, **bad})
        assert r.status_code == status and f'data-code="{code}"' in r.text, (bad, r.status_code)
    assert client.post(url, data={"mode": "full", "confirm": "yes"}).status_code == 403
    assert client.post(url, data={"csrf_token": owner, "mode": "full", "confirm": "yes"},
                       headers={"Origin": "https://evil.example"}).status_code == 403  # fmt: skip
    assert client.get(f"/console/orders/{paid['id']}").text.count('data-status="paid"') == 1
    assert client.get("/console/orders/ord_nope").status_code == 404
    assert client.get("/console/orders/ord%20x").status_code == 422
    assert client.get("/console/orders", params={"status": "lost"}).status_code == 422
    assert client.get("/console/orders", params={"cursor": "sub"}).status_code == 422


def test_another_workspaces_order_is_not_found_and_not_refunded(client, db, paid, other_workspace) -> None:
    token = sign_in_as(client, db, other_workspace.id, "owner")
    assert client.get("/console/orders").text.count("data-order=") == 0
    assert client.get(f"/console/orders/{paid['id']}").status_code == 404
    r = client.post(
        f"/console/orders/{paid['id']}/refund", data={"csrf_token": token, "mode": "full", "confirm": "yes"}
    )
    assert r.status_code == 404 and 'data-code="order_not_found"' in r.text
    assert client.get("/console/ledger").text.count("data-entry=") == 0


@pytest.mark.parametrize("role", ["reviewer", "analyst"])
def test_only_an_owner_refunds(client, db, workspace, paid, role) -> None:
    token = sign_in_as(client, db, workspace.id, role)
    page = client.get(f"/console/orders/{paid['id']}")
    assert page.status_code == 200 and 'id="refund"' not in page.text
    r = client.post(
        f"/console/orders/{paid['id']}/refund", data={"csrf_token": token, "mode": "full", "confirm": "yes"}
    )
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    assert client.get("/console/ledger").status_code == 200  # every role reads the books


def test_subscription_cancel_at_period_end_and_resume(
    client, db, workspace, secret_headers, write_headers, owner
) -> None:
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-annual")  # no trial: active at once
    pay(client, secret_headers, order["id"])
    listed = client.get("/console/subscriptions")
    [sub] = re.findall(r'data-subscription="([^"]+)"', listed.text)
    url = f"/console/subscriptions/{sub}/actions"
    assert f'href="/console/subscriptions/{sub}"' in client.get(f"/console/orders/{order['id']}").text
    r = client.post(url, data={"csrf_token": owner, "action": "cancel_at_period_end"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "(cancels at period end)" in page.text and 'value="resume"' in page.text
    r = client.post(url, data={"csrf_token": owner, "action": "resume"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "cancels at period end" not in page.text and 'data-status="active"' in page.text
    for bad, status in (({"action": "renew"}, 422), ({"action": "change_plan"}, 422),
                        ({"action": "change_plan", "plan": "pricing-playbook"}, 409)):  # fmt: skip
        assert client.post(url, data={"csrf_token": owner, **bad}).status_code == status, bad
    assert client.get("/console/subscriptions/sub_nope").status_code == 404
    assert client.get("/console/subscriptions", params={"status": "lost"}).status_code == 422
    token = sign_in_as(client, db, workspace.id, "analyst")
    assert client.post(url, data={"csrf_token": token, "action": "cancel_now"}).status_code == 403


def test_ledger_filters_paging_and_bad_input(client, db, workspace, paid, owner) -> None:
    r = client.get("/console/ledger", params={"kind": "sale"})
    assert r.status_code == 200 and re.findall(r'data-kind="(\w+)"', r.text) == ["sale"]
    assert client.get("/console/ledger", params={"kind": "refund"}).text.count("data-entry=") == 0
    assert client.get("/console/ledger", params={"order": paid["id"]}).text.count("data-entry=") == 1
    for bad in ({"kind": "theft"}, {"cursor": "!!"}, {"start": "2026-02-30"}, {"start": "2026-03-01", "end": "2026-02-01"},
                {"currency": "ZZZ"}, {"currency": "US"}, {"start": "2000-01-01", "end": "2030-01-01"}):  # fmt: skip
        assert client.get("/console/ledger", params=bad).status_code in (409, 422), bad
    with db.read() as session:
        first = ledger_service.list_entries(session=session, workspace_id=workspace.id, limit=1)
        newest = ledger_service.list_entries(
            session=session, workspace_id=workspace.id, limit=1, newest_first=True
        )
        assert [e.kind for e in newest.items] == ["sale"] and newest.next_cursor is None
        with pytest.raises(InvalidCursor):
            ledger_service.list_entries(session=session, workspace_id=workspace.id, limit=1, newest_first=True,
                                        cursor=first.next_cursor or "WzFd")  # fmt: skip
