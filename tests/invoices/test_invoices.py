"""Invoices and credit notes on the real database, through the event pipeline and the HTTP API: one invoice
per paid order however often its events are seen, credit notes that add up to what was refunded, the PDF,
the signed buyer link, and what a careless or hostile client gets."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pypdf
import pytest
from tests.conftest import bearer, msg
from tests.invoices.helpers import announce_all, documents, load_catalog, paid_order

from offerloop.checkout import service as checkout_service
from offerloop.identity import service as identity_service
from offerloop.invoices import service as invoices_service
from offerloop.invoices.consumers import issue_documents
from offerloop.invoices.render import render_pdf, typst_source
from offerloop.pipeline import log as pipeline_log
from offerloop.subscriptions import service as subscriptions_service


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def events_named(db, workspace_id: str, buyer_id: str, name: str) -> list:
    with db.read() as session:
        found = identity_service.buyer_events(session=session, workspace_id=workspace_id, buyer_id=buyer_id,
                                              limit=100)  # fmt: skip
    return [e for e in found.items if e.name == name]


def test_a_paid_order_of_several_lines_gets_one_invoice_with_its_totals(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    order_id = paid_order(
        db, ws, "ada", bumps=("sales-page-teardown",), tax_percent="20", email="ada@example.com"
    )
    with db.read() as session:
        order = checkout_service.read_order(session=session, workspace_id=ws, order_id=order_id)
    assert len(order.lines) == 2  # two "Order Completed" events, one per line

    [invoice] = documents(db, ws)
    assert (invoice.kind, invoice.number, invoice.seq, invoice.order_id) == (
        "invoice",
        "INV-000001",
        1,
        order_id,
    )
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total) == (
        order.subtotal, order.discount, order.tax, order.total)  # fmt: skip
    assert (order.subtotal, order.tax, order.total) == (2700 + 9900, 2520, 15120)
    assert sum(line["total"] for line in invoice.lines) + invoice.tax == invoice.total
    assert [line["offer_key"] for line in invoice.lines] == ["pricing-playbook", "sales-page-teardown"]
    assert (invoice.tax_percent, invoice.buyer_email, invoice.seller_name) == (
        "20",
        "ada@example.com",
        "Test Creator",
    )


def test_events_seen_again_issue_nothing_new(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    first = paid_order(db, ws, "ada", bumps=("sales-page-teardown",))
    second = paid_order(db, ws, "bob")
    again = [
        invoices_service.Trigger(
            "Order Completed", f"{first}-pricing-playbook-completed", {"order_id": first}
        ),
        invoices_service.Trigger(
            "Order Completed", f"{first}-sales-page-teardown-completed", {"order_id": first}
        ),
        invoices_service.Trigger("Order Completed", f"{second}-x", {"order_id": second}),
    ]
    for _ in range(3):
        with db.write() as session:
            invoices_service.on_logged_events(session=session, workspace_id=ws, events=again)
    assert [(d.number, d.order_id) for d in documents(db, ws)] == [
        ("INV-000001", first),
        ("INV-000002", second),
    ]


def test_the_consumer_run_again_over_the_whole_log_issues_nothing_new(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    order_id = paid_order(db, ws, "ada", bumps=("sales-page-teardown",))
    with db.write() as session:
        checkout_service.refund(session=session, workspace_id=ws, order_id=order_id, amount=300, actor="t")
    before = [(d.number, d.source_key, d.total) for d in documents(db, ws)]
    assert [(n, t) for n, _, t in before] == [("CN-000001", 300), ("INV-000001", 2700 + 9900)]
    for _ in range(2):  # a replay, as after a crash between applying a batch and moving the checkpoint
        with db.write() as session:
            events = pipeline_log.read(session, ws, after=0, up_to=None, part=None, limit=1000)
            assert sum(e.name == "Order Completed" for e in events) == 2
            issue_documents(session, ws, events)
    assert [(d.number, d.source_key, d.total) for d in documents(db, ws)] == before


def test_a_credit_note_per_refund_refers_to_the_invoice_and_they_add_up(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    order_id = paid_order(db, ws, "ada", tax_percent="20")  # 2700 + 540 tax
    for amount in (1000, None):  # a partial refund, then the rest
        with db.write() as session:
            checkout_service.refund(
                session=session, workspace_id=ws, order_id=order_id, amount=amount, actor="t"
            )
    [invoice] = documents(db, ws, "invoice")
    notes = documents(db, ws, "credit_note")
    assert [(n.number, n.refers_to, n.order_id, n.total) for n in notes] == [
        ("CN-000001", "INV-000001", order_id, 1000), ("CN-000002", "INV-000001", order_id, 3240 - 1000)]  # fmt: skip
    assert sum(n.total for n in notes) == invoice.total == 3240
    assert sum(n.tax for n in notes) == invoice.tax == 540  # the tax credited adds up to the tax invoiced
    for n in notes:
        assert n.subtotal + n.tax == n.total and sum(line["total"] for line in n.lines) == n.subtotal

    # the refund events seen again (and a forged one claiming more) credit nothing more
    with db.write() as session:
        invoices_service.on_logged_events(session=session, workspace_id=ws, events=[
            invoices_service.Trigger("Order Refunded", f"{order_id}-refund-1000", {"order_id": order_id, "amount_minor": 1000}),
            invoices_service.Trigger("Order Refunded", "forged", {"order_id": order_id, "amount_minor": 99999}),
        ])  # fmt: skip
    assert len(documents(db, ws, "credit_note")) == 2


def test_numbers_are_per_workspace_and_kind(db, workspace, other_workspace):
    ws, other = workspace.id, other_workspace.id
    for w in (ws, other):
        load_catalog(db, w)
    a = paid_order(db, ws, "ada")
    b = paid_order(db, other, "ada")
    c = paid_order(db, ws, "bob")
    with db.write() as session:
        checkout_service.refund(session=session, workspace_id=ws, order_id=c, amount=None, actor="t")
    assert [(d.number, d.order_id) for d in documents(db, ws)] == [
        ("CN-000001", c), ("INV-000001", a), ("INV-000002", c)]  # fmt: skip
    assert [(d.number, d.order_id) for d in documents(db, other)] == [("INV-000001", b)]


def test_a_rolled_back_issue_gives_its_number_back(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    first = paid_order(db, ws, "ada")
    with db.write() as session:  # a second order paid, but its transaction fails after the invoice
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="bob")
        order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="pricing-playbook",
                                       currency="USD")  # fmt: skip
    with pytest.raises(RuntimeError), db.write() as session:
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order.id, actor="t")
        row = invoices_service.issue_invoice(session=session, workspace_id=ws, order_id=order.id)
        assert row is not None and row.number == "INV-000002"
        raise RuntimeError("crash after the number was taken")
    third = paid_order(db, ws, "cy")
    assert [(d.number, d.order_id) for d in documents(db, ws)] == [
        ("INV-000001", first),
        ("INV-000002", third),
    ]


def test_what_a_client_sends_invoices_nothing(client, db, workspace, write_headers, secret_headers):
    ws = workspace.id
    load_catalog(db, ws)
    with db.write() as session:  # an order that exists but was never paid
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="ada")
        pending = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="pricing-playbook",
                                         currency="USD")  # fmt: skip
    forged = [
        ("Order Completed", {"order_id": pending.id, "total_minor": 1}),
        ("Order Completed", {"order_id": "ord_doesnotexist"}),
        ("Order Completed", {"order_id": ["not", "a", "string"]}),
        ("Order Refunded", {"order_id": pending.id, "amount_minor": 500}),
        ("Subscription Renewed", {"subscription_id": "sub_nope"}),
        ("Subscription Renewed", {"subscription_id": 12}),
    ]
    for i, (name, props) in enumerate(forged):
        r = client.post("/v1/track", headers=write_headers,
                        json=msg(userId="ada", event=name, properties=props, messageId=f"forged-{i}"))  # fmt: skip
        assert r.status_code == 200, r.text
    assert documents(db, ws) == []
    r = client.get("/v1/pipeline", headers=secret_headers)
    assert r.status_code == 200, r.text
    assert next(c for c in r.json()["consumers"] if c["name"] == "invoices")["parked"] == 0


def test_a_paid_renewal_gets_its_invoice(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    first = paid_order(db, ws, "ada", offer="membership-annual")
    with db.read() as session:
        buyer_id = checkout_service.read_order(session=session, workspace_id=ws, order_id=first).buyer_id
        [sub_id] = [
            s.id for s in subscriptions_service.of_buyer(session=session, workspace_id=ws, buyer_id=buyer_id)
        ]
    with db.write() as session:
        subscriptions_service.act(
            session=session,
            workspace_id=ws,
            subscription_id=sub_id,
            action="renew",
            at=datetime.now(UTC) + timedelta(days=366),
        )
    with db.read() as session:
        orders = checkout_service.subscription_orders(
            session=session, workspace_id=ws, subscription_id=sub_id
        )
    renewal = next(o for o in orders if o.id != first)
    assert [(d.number, d.order_id, d.total) for d in documents(db, ws)] == [
        ("INV-000001", first, 39000), ("INV-000002", renewal.id, renewal.total)]  # fmt: skip


def test_the_pdf_the_event_and_the_signed_link(client, db, workspace, secret_headers, settings):
    ws = workspace.id
    load_catalog(db, ws)
    order_id = paid_order(db, ws, "ada", email="ada@example.com", tax_percent="20")
    with db.write() as session:
        checkout_service.refund(session=session, workspace_id=ws, order_id=order_id, amount=500, actor="t")
    ran = announce_all(db, settings, ws)
    assert sorted(r.status for r in ran) == ["done", "done"]
    assert announce_all(db, settings, ws) == []  # nothing left queued

    [invoice] = documents(db, ws, "invoice")
    issued = events_named(db, ws, invoice.buyer_id, "Invoice Issued")
    assert len(issued) == 1
    props = issued[0].properties
    assert {k: props[k] for k in ("number", "order_id", "total_minor", "currency")} == {
        "number": "INV-000001", "order_id": order_id, "total_minor": 3240, "currency": "USD"}  # fmt: skip
    url = urlsplit(props["url"])
    assert f"{url.scheme}://{url.netloc}" == settings.public_url.rstrip("/")
    [note] = events_named(db, ws, invoice.buyer_id, "Credit Note Issued")
    assert (note.properties["number"], note.properties["refers_to"], note.properties["total_minor"]) == (
        "CN-000001", "INV-000001", 500)  # fmt: skip

    r = client.get(url.path)  # the buyer's link: no key
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    text = pdf_text(r.content)
    for expected in ("Invoice", "INV-000001", "Test Creator", "ada@example.com", "USD 32.40", "USD 5.40",
                     "The pricing playbook 1 USD 27.00 USD 27.00"):  # fmt: skip
        assert expected in text, (expected, text)
    keyed = client.get("/v1/invoices/INV-000001/pdf", headers=secret_headers)
    assert keyed.status_code == 200 and keyed.content == r.content  # the stored bytes, either way

    r = client.get("/v1/invoices/CN-000001/pdf", headers=secret_headers)
    assert r.status_code == 200
    text = pdf_text(r.content)
    assert "Credit note" in text and "CN-000001" in text and "INV-000001" in text and "USD 5.00" in text

    r = client.get("/v1/invoices/INV-000001", headers=secret_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["number"], body["total"], body["formatted_total"], body["download_url"]) == (
        "INV-000001", 3240, "USD 32.40", props["url"])  # fmt: skip


def test_the_pdf_is_deterministic_and_its_text_cannot_be_markup(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    paid_order(db, ws, "ada")
    [row] = documents(db, ws)
    doc = invoices_service.printable(row)
    assert render_pdf(doc) == render_pdf(doc)
    hostile = doc.__class__(**{**{f: getattr(doc, f) for f in doc.__slots__},
                               "seller_name": '#panic("x") ] ) " \\ $x$ */ // <a> @ref',
                               "buyer_name": "= Heading\n- list \\"})  # fmt: skip
    source = typst_source(hostile)
    assert "INV-000001" in source
    text = pdf_text(render_pdf(hostile))
    assert '#panic("x")' in text and "= Heading" in text


def test_lists_filters_and_paging(client, db, workspace, secret_headers):
    ws = workspace.id
    load_catalog(db, ws)
    a = paid_order(db, ws, "ada")
    b = paid_order(db, ws, "bob")
    with db.write() as session:
        checkout_service.refund(session=session, workspace_id=ws, order_id=a, amount=100, actor="t")
    r = client.get("/v1/invoices", headers=secret_headers, params={"limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["number"] for i in page["items"]] == ["CN-000001", "INV-000002"]
    r = client.get("/v1/invoices", headers=secret_headers, params={"limit": 2, "cursor": page["next_cursor"]})
    assert [i["number"] for i in r.json()["items"]] == ["INV-000001"] and r.json()["next_cursor"] is None
    r = client.get("/v1/invoices", headers=secret_headers, params={"order_id": a})
    assert [i["number"] for i in r.json()["items"]] == ["CN-000001", "INV-000001"]
    r = client.get("/v1/invoices", headers=secret_headers, params={"kind": "invoice"})
    assert [i["number"] for i in r.json()["items"]] == ["INV-000002", "INV-000001"]
    buyer_b = next(d.buyer_id for d in documents(db, ws) if d.order_id == b)
    r = client.get("/v1/invoices", headers=secret_headers, params={"buyer_id": buyer_b})
    assert [i["number"] for i in r.json()["items"]] == ["INV-000002"]


def test_another_workspace_sees_nothing(client, db, workspace, other_workspace, secret_headers):
    ws = workspace.id
    load_catalog(db, ws)
    paid_order(db, ws, "ada")
    theirs = bearer(other_workspace.secret_key)
    for path in ("/v1/invoices/INV-000001", "/v1/invoices/INV-000001/pdf"):
        r = client.get(path, headers=theirs)
        assert r.status_code == 404 and r.json()["error"]["code"] == "invoice_not_found", r.text
        assert client.get(path, headers=secret_headers).status_code == 200
        assert client.get(path).status_code == 401
    r = client.get("/v1/invoices", headers=theirs)
    assert r.status_code == 200 and r.json()["items"] == []


def test_forged_and_garbage_links_and_input(client, db, workspace, other_workspace, secret_headers, settings):
    ws = workspace.id
    load_catalog(db, ws)
    paid_order(db, ws, "ada")
    [row] = documents(db, ws)
    with db.read() as session:
        good = invoices_service.download_path(session=session, secret=settings.secret, row=row)
    assert client.get(good).status_code == 200
    token = good.rsplit("/", 1)[1]
    ws_part, inv_part, sig = token.split(".")
    other_ws = other_workspace.id
    forged = [
        f"{ws_part}.{inv_part}.{sig[:-1]}{'0' if sig[-1] != '0' else '1'}",  # one hex digit changed
        f"{other_ws}.{inv_part}.{sig}",  # the signature of another workspace's claim
        f"{ws_part}.inv_nothere.{sig}",
        f"{ws_part}.{inv_part}",
        f"{ws_part}.{inv_part}.{sig}.extra",
        "a..b",
        "%C3%A9t%C3%A9.x.y",
        f"{ws_part}.{inv_part}.{'é' * 64}",
    ]
    for bad in forged:
        r = client.get(f"/v1/invoices/download/{bad}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "invoice_link_invalid", (bad, r.text)
    assert client.get("/v1/invoices/download/" + "a" * 400).status_code == 422
    for path, params in [
        ("/v1/invoices/not-a-number", {}),
        ("/v1/invoices/INV-1'; DROP TABLE invoices;--", {}),
        ("/v1/invoices/" + "A" * 50 + "-1", {}),
        ("/v1/invoices", {"kind": "receipt"}),
        ("/v1/invoices", {"limit": 0}),
        ("/v1/invoices", {"limit": "lots"}),
        ("/v1/invoices", {"cursor": "!!!"}),
        ("/v1/invoices", {"cursor": "WyJvcmRfMSJd"}),  # a cursor of the orders list
        ("/v1/invoices", {"buyer_id": "b" * 41}),
    ]:
        r = client.get(path, headers=secret_headers, params=params)
        assert r.status_code == 422, (path, params, r.status_code, r.text)
    r = client.get("/v1/invoices/INV-999999", headers=secret_headers)
    assert r.status_code == 404


def test_erasure_keeps_the_numbers_and_amounts_but_not_the_person(db, workspace, settings):
    ws = workspace.id
    load_catalog(db, ws)
    order_id = paid_order(db, ws, "ada", email="ada@example.com")
    announce_all(db, settings, ws)
    [row] = documents(db, ws)
    with db.write() as session:
        assert invoices_service.forget(session=session, workspace_id=ws, buyer_ids=[row.buyer_id]) == 1
    [after] = documents(db, ws)
    assert (after.number, after.order_id, after.total, after.buyer_name, after.buyer_email) == (
        "INV-000001", order_id, 2700, None, None)  # fmt: skip
    with db.read() as session:
        content, name = invoices_service.pdf_by_number(session=session, workspace_id=ws, number="INV-000001")
    assert (
        name == "INV-000001.pdf"
        and "ada@example.com" not in pdf_text(content)
        and "INV-000001" in pdf_text(content)
    )


def test_the_tax_rate_printed_is_the_one_charged(db, workspace):
    ws = workspace.id
    load_catalog(db, ws)
    paid_order(db, ws, "ada", tax_percent="7.125")  # 2700 * 7.125% = 192.375 -> 192 (half even)
    [row] = documents(db, ws)
    assert (row.tax, row.tax_percent) == (192, "7.125")  # not 7.11%, which gives 192 too
    assert "Tax (7.125%) USD 1.92" in pdf_text(render_pdf(invoices_service.printable(row)))
