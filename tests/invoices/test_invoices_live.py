"""Black-box, against `offerloop serve` on loopback with its own worker threads: orders paid over HTTP (each
payment sent twice at once, as a double click or a retried request would), one refunded, and the invoices,
the credit note, their events on the buyer's record and the buyer's signed PDF link appear by themselves."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
from tests.conftest import LiveServer, basic, bearer, msg
from tests.invoices.helpers import CATALOG
from tests.worker.test_jobs_live import serving, wait_for

__all__ = ["serving"]  # the fixture: a server with two worker threads polling every 0.2 s


def test_documents_appear_by_themselves_once_each(serving: LiveServer) -> None:
    ws = json.loads(serving.cli("workspace", "create", "Live invoices", "--json").stdout)
    other = json.loads(serving.cli("workspace", "create", "Someone else", "--json").stdout)
    with httpx.Client(base_url=serving.url, headers=bearer(ws["secret_key"]), timeout=60) as http:
        assert http.put("/v1/offers/catalog", json={"text": CATALOG}).status_code == 200
        ident = msg(userId="ana", messageId="ana-id", traits={"email": "ana@example.com", "name": "Ana Lima"})
        assert (
            httpx.post(serving.url + "/v1/identify", headers=basic(ws["write_key"]), json=ident).status_code
            == 200
        )
        orders = []
        for offer in ("pricing-playbook", "launch-workbook"):
            r = http.post("/v1/checkout", json={"user_id": "ana", "offer": offer})
            assert r.status_code == 201, r.text
            orders.append(r.json()["id"])

        def pay(order_id: str, start: threading.Barrier, out: list[int]) -> None:
            start.wait(timeout=30)
            with httpx.Client(base_url=serving.url, headers=bearer(ws["secret_key"]), timeout=60) as c:
                out.append(c.post(f"/v1/orders/{order_id}/paid", json={"reference": "bank"}).status_code)

        statuses: list[int] = []
        start = threading.Barrier(4)
        threads = [threading.Thread(target=pay, args=(o, start, statuses)) for o in orders for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200, 200, 200, 200]
        r = http.post(f"/v1/orders/{orders[0]}/refund", json={"amount": 700})
        assert r.status_code == 200, r.text
        buyer_id = r.json()["buyer_id"]

        def all_announced() -> list[dict[str, Any]] | None:
            events = http.get(f"/v1/buyers/{buyer_id}/events", params={"limit": 200}).json()["items"]
            issued = [e for e in events if e["name"] in ("Invoice Issued", "Credit Note Issued")]
            return issued if len(issued) == 3 else None

        issued = sorted(wait_for(all_announced, "two invoices and a credit note announced"),
                        key=lambda e: e["properties"]["number"])  # fmt: skip
        docs = http.get("/v1/invoices").json()["items"]
        # the two payments raced: which order got INV-000001 is whichever was paid first, but each got one
        invoices = {d["order_id"]: (d["number"], d["total"]) for d in docs if d["kind"] == "invoice"}
        assert sorted(invoices.values()) == sorted(
            [(invoices[orders[0]][0], 2700), (invoices[orders[1]][0], 1900)]
        )
        assert sorted(n for n, _ in invoices.values()) == ["INV-000001", "INV-000002"] and len(docs) == 3
        [note] = [d for d in docs if d["kind"] == "credit_note"]
        assert (note["number"], note["order_id"], note["total"], note["refers_to"]) == (
            "CN-000001", orders[0], 700, invoices[orders[0]][0])  # fmt: skip
        assert [e["properties"]["number"] for e in issued] == ["CN-000001", "INV-000001", "INV-000002"]
        assert issued[0]["properties"]["refers_to"] == invoices[orders[0]][0]

        link = httpx.URL(issued[1]["properties"]["url"])
        pdf = httpx.get(serving.url + link.raw_path.decode())  # no key: the buyer's own link
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.content == http.get("/v1/invoices/INV-000001/pdf").content

        theirs = bearer(other["secret_key"])
        assert httpx.get(serving.url + "/v1/invoices/INV-000001", headers=theirs).status_code == 404
        assert httpx.get(serving.url + "/v1/invoices", headers=theirs).json()["items"] == []
        r = httpx.get(serving.url + "/v1/invoices/%00%ff", headers=bearer(ws["secret_key"]))
        assert r.status_code == 422, r.text
