"""Tenant isolation over HTTP: every route that takes an id, called with another workspace's key.

Workspace A owns one of everything (buyer, merge, conflict, quarantined event, key, decision, atom, quiz,
policy, artifact, offer, order, subscription, fulfilment task, entitlement). Each route that takes an id is
called with workspace B's key and A's id: the answer is 404 (never 200, never 500, never A's data; the one
exception is /v1/decide, where a user_id is the caller's own identifier and an unknown one a new visitor).
The same call with A's key then succeeds, so the 404 is the workspace boundary and not a bad request.

The set of routes is read from the app: a new route with a path parameter, or a query or body field naming
an id, fails ``test_every_id_taking_route_has_a_case`` until a case is added here.
"""

from __future__ import annotations

import re
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import event, text
from tests.assembly.test_artifacts_api import buyer as quiz_buyer
from tests.assembly.test_artifacts_api import setup_workspace as assembly_setup
from tests.checkout.test_checkout_flow import CATALOG as OFFERS
from tests.checkout.test_checkout_flow import deliver
from tests.checkout.test_stripe_provider import API_KEY, SECRET, fake_stripe, fake_stripe_server
from tests.checkout.test_stripe_provider import event as stripe_event
from tests.conftest import basic, bearer, msg
from tests.decisions.test_decide import CATALOG as ACTIONS

from offerloop.api import create_app
from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.core.clock import utcnow
from offerloop.db.base import Base
from offerloop.db.uow import Database
from offerloop.delivery.webhooks import service as webhook_service
from offerloop.events.repository import EVENT_COLUMNS
from offerloop.jobs import runner
from offerloop.models import ParkedEvent
from offerloop.worker import registry

__all__ = ["fake_stripe", "fake_stripe_server"]  # the loopback Stripe stand-in's fixtures

# A's personal data and free text: never in any of B's answers
NAME, EMAIL, GOAL = "Ada Tenant", "ada-tenant@example.com", "private goal of ada"
# Query or body fields that name a stored object of the workspace (user_id/anonymous_id are the caller's
# own identifiers, resolved in its workspace: also covered, as they reach A's buyer in A).
ID_FIELDS = {"buyer_id", "decision_id", "atom_id", "user_id", "anonymous_id"}


def _routes(app: Any) -> list[tuple[str, APIRoute]]:
    out: list[tuple[str, APIRoute]] = []

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                out.append((prefix + r.path, r))
            elif hasattr(r, "original_router"):  # FastAPI's included router
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif hasattr(r, "routes"):
                walk(r.routes, prefix + getattr(r, "path", ""))

    walk(app.router.routes, "")
    return out


def _body_fields(route: APIRoute) -> set[str]:
    names: set[str] = set()
    for param in route.dependant.body_params:
        ann = param.field_info.annotation
        for arg in typing.get_args(ann) or (ann,):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                names.update(arg.model_fields)
    return names


def id_taking_routes(app: Any) -> set[str]:
    """'METHOD /path' of every API route with a path parameter or an id in its query or body. The console's
    pages are signed in by a team member's session, not a key: tests/console checks them against another
    workspace's ids (404); so are the buyer portal's (a buyer's session: tests/portal/test_pages.py) and the
    hosted offer pages (public pages and unguessable tokens: tests/storefront/test_pages.py)."""
    found = set()
    for path, route in _routes(app):
        if path.startswith(("/console", "/p/", "/o/")):
            continue
        query = {p.name for p in route.dependant.query_params}
        if route.dependant.path_params or (query | _body_fields(route)) & ID_FIELDS:
            for method in route.methods:
                found.add(f"{method} {path}")
    return found


@dataclass
class World:
    a: Any
    b: Any
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    route: str  # "METHOD /template"
    path: Callable[[World], str]
    params: Callable[[World], dict[str, Any]] | None = None
    body: Callable[[World], Any] | None = None
    a_status: int = 200  # what A's own key gets for the same request
    b_status: int = 404
    # when B's answer is not a 404 (its own identifier namespace): what it must be instead
    b_body: Callable[[Any], bool] | None = None
    auth: str = "secret"  # "secret" | "write_query" (the hosted quiz page takes a write key in the URL)


def _build(client: Any, db: Database, a: Any, b: Any) -> World:
    w = World(a=a, b=b)
    sh, wh = bearer(a.secret_key), basic(a.write_key)

    def ok(r: Any, status: int = 200) -> Any:
        assert r.status_code == status, r.text
        return r.json()

    assembly_setup(client, sh)
    quiz_buyer(client, wh, "ada", NAME, "idea", 1, GOAL)
    ok(
        client.post(
            "/v1/identify", headers=wh, json=msg(userId="ada", messageId="ada-email", traits={"email": EMAIL})
        )
    )
    buyer = ok(client.get("/v1/buyers/lookup", headers=sh, params={"user_id": "ada"}))
    w.ids["buyer"] = buyer["id"]
    # a second device, merged into ada
    ok(
        client.post(
            "/v1/track", headers=wh, json=msg(anonymousId="ada-phone", event="Viewed", messageId="p1")
        )
    )
    ok(
        client.post(
            "/v1/identify", headers=wh, json=msg(userId="ada", anonymousId="ada-phone", messageId="p2")
        )
    )
    merges = ok(client.get("/v1/merges", headers=sh))["items"]
    w.ids["merge"] = merges[0]["id"]
    # a conflict: a second identified buyer claims ada's device
    ok(client.post("/v1/identify", headers=wh, json=msg(userId="bob", messageId="b1")))
    ok(
        client.post(
            "/v1/identify", headers=wh, json=msg(userId="bob", anonymousId="ada-phone", messageId="b2")
        )
    )
    assert len(ok(client.get("/v1/identity-conflicts", headers=sh))["items"]) == 1
    # a quarantined event
    refused = client.post("/v1/track", headers=wh, json=msg(userId="guest", event="Bad", messageId="q1"))
    w.ids["quarantine"] = refused.json()["error"]["details"]["quarantine_id"]
    w.ids["key"] = ok(client.post("/v1/keys", headers=sh, json={"kind": "write", "name": "spare"}), 201)["id"]
    ok(client.put("/v1/actions", headers=sh, json=ACTIONS))
    decided = ok(client.post("/v1/decide", headers=sh, json={"user_id": "ada", "placement": "home", "k": 3}))
    w.ids["decision"] = decided["decision_id"]
    art = ok(
        client.post("/v1/artifacts", headers=sh, json={"user_id": "ada", "policy": "starter-workbook"}), 202
    )
    w.ids["artifact"] = art["id"]
    assert [s for _, _, s in assembly_service.run_pending(db=db)] == ["ready"]
    # commerce: the demo catalog, a paid order with its fulfilment, a pending order, a subscription
    ok(client.put("/v1/offers/catalog", headers=sh, json={"text": OFFERS}))
    paid = ok(
        client.post("/v1/checkout", headers=sh, json={"user_id": "ada", "offer": "pricing-playbook"}), 201
    )
    ok(client.post(f"/v1/orders/{paid['id']}/paid", headers=sh, json={"reference": "INV-1"}))
    checkout_service.run_fulfilment(db=db)
    w.ids["order"] = paid["id"]
    pending = ok(
        client.post("/v1/checkout", headers=sh, json={"user_id": "ada", "offer": "sales-page-teardown"}), 201
    )
    w.ids["pending_order"] = pending["id"]
    member = ok(
        client.post("/v1/checkout", headers=sh, json={"user_id": "ada", "offer": "membership-monthly"}), 201
    )
    ok(client.post(f"/v1/orders/{member['id']}/paid", headers=sh, json={"reference": "INV-2"}))
    checkout_service.run_fulfilment(db=db)
    with db.read() as session:
        w.ids["subscription"] = session.execute(
            text("SELECT id FROM subscriptions WHERE workspace_id = :w"), {"w": a.id}
        ).scalar_one()
    grant = {
        "buyer_id": buyer["id"],
        "component": "coaching_quota",
        "ref": "calls",
        "source": "manual",
        "quantity": 3,
    }
    w.ids["entitlement"] = ok(client.post("/v1/entitlements", headers=sh, json=grant))["id"]
    with db.write() as session:  # a parked event of A's (its consumer is not registered: replay answers 422)
        parked = ParkedEvent(
            consumer="tenancy_probe", workspace_id=a.id, seq=1, message_id="p1", error="probe", attempts=5,
            parked_at=utcnow(), status="parked",
        )  # fmt: skip
        session.add(parked)
        session.flush()
        w.ids["parked"] = parked.id
    # an outgoing webhook endpoint of A's, with one delivery (never sent here: no job runs)
    hook = ok(
        client.post("/v1/webhooks/endpoints", headers=sh, json={"url": "https://hooks.example.com/a"}), 201
    )
    w.ids["webhook_endpoint"] = hook["id"]
    with db.write() as session:
        [made] = webhook_service.deliver(session, workspace_id=a.id, event_type="order.paid",
                                         payload={"name": NAME}, idempotency_key="tenancy-1")  # fmt: skip
        w.ids["webhook_delivery"] = made.id
    # a journey of A's that sent ada an in-app message, and a suppression
    journey = ("name: hello\ncategory: transactional\ntrigger: {event: Hello}\n"
               "steps:\n  - send: {channel: inapp, subject: hi, text: 'for {{ buyer.traits.email }}'}\n")  # fmt: skip
    ok(client.put("/v1/journeys/hello", headers=sh, json={"yaml": journey}))
    ok(client.post("/v1/track", headers=sh, json=msg(userId="ada", event="Hello", messageId="hello-1")))
    runner.run_due(db, owner="tenancy", only=("delivery.run", "delivery.send"), limit=10)
    runner.run_due(db, owner="tenancy", only=("delivery.send",), limit=10)
    [message] = ok(client.get("/v1/messages", headers=sh))["items"]
    w.ids["message"] = message["id"]
    suppressed = ok(client.post("/v1/delivery/suppressions", headers=sh, json={"address": EMAIL}), 201)
    w.ids["suppression"] = suppressed["id"]
    # an experiment of A's that ada is exposed to
    arms = [{"key": "control", "weight": 1}, {"key": "treatment", "weight": 1}]
    ok(client.post("/v1/experiments", headers=sh, json={"key": "exp", "subject": "offer",
                                                       "subject_id": "pricing-playbook", "arms": arms}), 201)  # fmt: skip
    ok(client.post("/v1/experiments/exp/assign", headers=sh, json={"user_id": "ada"}))
    return w


registry.load()

SIGNED_DELIVERY = (
    "GET /v1/m/click/{token}", "GET /v1/m/open/{token}", "GET /v1/m/unsubscribe/{token}", "GET /v1/m/view/{token}",
    "POST /v1/m/unsubscribe/{token}", "POST /v1/inbox/{message_id}/read", "GET /v1/invoices/download/{token}",
)  # fmt: skip


def _cases() -> list[Case]:
    def buyer_path(suffix: str = "") -> Callable[[World], str]:
        return lambda w: f"/v1/buyers/{w.ids['buyer']}{suffix}"

    def order_path(suffix: str = "", key: str = "order") -> Callable[[World], str]:
        return lambda w: f"/v1/orders/{w.ids[key]}{suffix}"

    def art_path(suffix: str = "") -> Callable[[World], str]:
        return lambda w: f"/v1/artifacts/{w.ids['artifact']}{suffix}"

    ada = {"user_id": "ada"}
    return [
        Case("GET /v1/buyers/lookup", lambda w: "/v1/buyers/lookup", lambda w: ada),
        Case("GET /v1/buyers/{buyer_id}", buyer_path()),
        Case("GET /v1/buyers/{buyer_id}/state", buyer_path("/state")),
        Case("GET /v1/buyers/{buyer_id}/events", buyer_path("/events")),
        Case("GET /v1/buyers/{buyer_id}/export", buyer_path("/export")),
        Case("PUT /v1/buyers/{buyer_id}/consent", buyer_path("/consent"), body=lambda w: {"marketing": True}),
        Case("GET /v1/merges", lambda w: "/v1/merges", lambda w: {"buyer_id": w.ids["buyer"]}),
        Case(
            "GET /v1/identity-conflicts",
            lambda w: "/v1/identity-conflicts",
            lambda w: {"buyer_id": w.ids["buyer"]},
        ),
        Case("GET /v1/quarantine/{quarantine_id}", lambda w: f"/v1/quarantine/{w.ids['quarantine']}"),
        # user_id is the caller's own identifier: in B "ada" is a new visitor, decided on B's empty catalog
        Case(
            "POST /v1/decide",
            lambda w: "/v1/decide",
            body=lambda w: {**ada, "placement": "home", "k": 3},
            b_status=200,
            b_body=lambda r: r.json()["items"] == [] and r.json()["persona"] is None,
        ),
        Case("GET /v1/decisions/{decision_id}", lambda w: f"/v1/decisions/{w.ids['decision']}"),
        Case("GET /v1/content/atoms/{atom_id}", lambda w: "/v1/content/atoms/welcome"),
        Case("GET /v1/content/atoms/{atom_id}/affected", lambda w: "/v1/content/atoms/welcome/affected"),
        Case(
            "POST /v1/artifacts/regenerate",
            lambda w: "/v1/artifacts/regenerate",
            lambda w: {"atom_id": "welcome"},
            a_status=202,
        ),
        Case("GET /v1/quizzes/{quiz_id}", lambda w: "/v1/quizzes/intake"),
        Case(
            "GET /v1/quizzes/{quiz_id}/page",
            lambda w: "/v1/quizzes/intake/page",
            lambda w: {"anonymous_id": "visitor"},
            auth="write_query",
        ),
        Case(
            "POST /v1/quizzes/{quiz_id}/answers",
            lambda w: "/v1/quizzes/intake/answers",
            body=lambda w: {**ada, "answers": {"stage": "idea", "confidence": 2}},
        ),
        Case(
            "POST /v1/artifacts",
            lambda w: "/v1/artifacts",
            body=lambda w: {"buyer_id": w.ids["buyer"], "policy": "starter-workbook"},
            a_status=202,
        ),
        Case("GET /v1/artifacts/{artifact_id}", art_path()),
        Case("GET /v1/artifacts/{artifact_id}/download", art_path("/download")),
        Case(
            "POST /v1/artifacts/{artifact_id}/review",
            art_path("/review"),
            body=lambda w: {"action": "approve", "reviewer": "b"},
            a_status=409,
        ),
        Case("GET /v1/files/{artifact_id}/{version}/{fmt}", lambda w: "", b_status=403),  # built in the test
        Case("HEAD /v1/files/{artifact_id}/{version}/{fmt}", lambda w: "", b_status=403),  # signed, no key
        Case("GET /v1/reviews/{artifact_id}", lambda w: f"/v1/reviews/{w.ids['artifact']}"),
        Case("GET /v1/reviews/{artifact_id}/{version}/{fmt}", lambda w: "", b_status=403),  # signed, no key
        Case("POST /v1/offers/{key}/signoff", lambda w: "/v1/offers/pricing-playbook/signoff"),
        # live drops: the creator's routes answer only A's key; the public ones name A's workspace in the path
        Case("GET /v1/drops/{key}", lambda w: "/v1/drops/drop-limited-print"),
        Case("POST /v1/drops/{key}/close", lambda w: "/v1/drops/drop-limited-print/close"),
        Case(
            "POST /v1/drops/{key}/open", lambda w: "/v1/drops/drop-limited-print/open", a_status=409
        ),  # unsigned
        Case("GET /live/_assets/{name}", lambda w: "/live/_assets/overlay.js", b_status=200),
        Case("GET /live/{workspace_id}/{key}", lambda w: f"/live/{w.a.id}/drop-limited-print", b_status=200),
        Case(
            "GET /live/{workspace_id}/{key}/orders/{order_id}",  # an order of another offer: no page
            lambda w: f"/live/{w.a.id}/drop-limited-print/orders/{w.ids['pending_order']}",
            a_status=404,
        ),
        Case(
            "GET /v1/live/{workspace_id}/{key}/stream",
            lambda w: f"/v1/live/{w.a.id}/drop-limited-print/stream",
            lambda w: {"viewer": "not an id"},
            a_status=422,
            b_status=422,
        ),  # a valid one streams forever
        Case(
            "GET /v1/live/{workspace_id}/{key}/go",
            lambda w: f"/v1/live/{w.a.id}/drop-limited-print/go",
            lambda w: {"viewer": "ada-phone"},
            a_status=409,
            b_status=409,
        ),  # closed: nobody checks out
        Case("GET /v1/offers", lambda w: "/v1/offers", lambda w: {**ada, "placement": "home"}),
        Case(
            "POST /v1/checkout",
            lambda w: "/v1/checkout",
            body=lambda w: {**ada, "offer": "pricing-playbook"},
            a_status=201,
        ),
        Case("GET /v1/orders/{order_id}", order_path()),
        Case("GET /v1/orders/{order_id}/payments", order_path("/payments")),
        # a list filtered by another workspace's buyer id is an empty page, not a 404 (nothing to find)
        Case(
            "GET /v1/orders",
            lambda w: "/v1/orders",
            lambda w: {"buyer_id": w.ids["buyer"]},
            b_status=200,
            b_body=lambda r: r.json() == {"items": [], "next_cursor": None},
        ),
        Case(
            "GET /v1/subscriptions",
            lambda w: "/v1/subscriptions",
            lambda w: {"buyer_id": w.ids["buyer"]},
            b_status=200,
            b_body=lambda r: r.json() == {"items": [], "next_cursor": None},
        ),
        Case("GET /v1/ledger/orders/{order_id}", lambda w: f"/v1/ledger/orders/{w.ids['order']}"),
        Case(
            "POST /v1/orders/{order_id}/fulfilment/{component}/{ref}/retry",
            order_path("/fulfilment/download/pricing-playbook-pdf/retry"),
        ),
        Case(
            "GET /v1/subscriptions/{subscription_id}", lambda w: f"/v1/subscriptions/{w.ids['subscription']}"
        ),
        Case(
            "POST /v1/subscriptions/{subscription_id}/actions",
            lambda w: f"/v1/subscriptions/{w.ids['subscription']}/actions",
            body=lambda w: {"action": "cancel"},
        ),
        Case(
            "GET /v1/entitlements/check",
            lambda w: "/v1/entitlements/check",
            lambda w: {"buyer_id": w.ids["buyer"], "component": "coaching_quota", "ref": "calls"},
        ),
        Case("GET /v1/buyers/{buyer_id}/entitlements", buyer_path("/entitlements")),
        Case(
            "POST /v1/entitlements",
            lambda w: "/v1/entitlements",
            body=lambda w: {
                "buyer_id": w.ids["buyer"],
                "component": "module",
                "ref": "m-1",
                "source": "manual",
            },
        ),
        Case(
            "PUT /v1/entitlements/override",
            lambda w: "/v1/entitlements/override",
            body=lambda w: {
                "buyer_id": w.ids["buyer"],
                "component": "module",
                "ref": "m-2",
                "mode": "allow",
                "reason": "gift",
            },
        ),
        Case(
            "POST /v1/entitlements/use",
            lambda w: "/v1/entitlements/use",
            body=lambda w: {"buyer_id": w.ids["buyer"], "ref": "calls"},
        ),
        Case(
            "GET /v1/webhooks/endpoints/{endpoint_id}",
            lambda w: f"/v1/webhooks/endpoints/{w.ids['webhook_endpoint']}",
        ),
        Case(
            "GET /v1/webhooks/endpoints/{endpoint_id}/deliveries",
            lambda w: f"/v1/webhooks/endpoints/{w.ids['webhook_endpoint']}/deliveries",
        ),
        Case(
            "GET /v1/webhooks/deliveries/{delivery_id}",
            lambda w: f"/v1/webhooks/deliveries/{w.ids['webhook_delivery']}",
        ),
        # buyer-side push: B's key names its own (unknown) "ada", so B's subscription is unresolved
        Case(
            "POST /v1/push/send",
            lambda w: "/v1/push/send",
            body=lambda w: {"buyer_id": w.ids["buyer"], "payload": {}},
        ),
        Case(
            "POST /v1/push/subscriptions",
            lambda w: "/v1/push/subscriptions",
            a_status=201,
            b_status=201,
            b_body=lambda r: r.json()["resolved"] is False,
            body=lambda w: {
                "userId": "ada",
                "subscription": {
                    "endpoint": "https://push.example.com/ada",
                    "keys": {
                        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                        "auth": "tBHItJI5svbpez7KI4CCXg",
                    },
                },
            },
        ),
        # changes last: each of these alters or removes A's object
        Case(
            "PATCH /v1/webhooks/endpoints/{endpoint_id}",
            lambda w: f"/v1/webhooks/endpoints/{w.ids['webhook_endpoint']}",
            body=lambda w: {"description": "x"},
        ),
        Case(
            "POST /v1/webhooks/endpoints/{endpoint_id}/rotate-secret",
            lambda w: f"/v1/webhooks/endpoints/{w.ids['webhook_endpoint']}/rotate-secret",
        ),
        Case(
            "POST /v1/webhooks/deliveries/{delivery_id}/replay",
            lambda w: f"/v1/webhooks/deliveries/{w.ids['webhook_delivery']}/replay",
            a_status=202,
        ),
        Case(
            "DELETE /v1/webhooks/endpoints/{endpoint_id}",
            lambda w: f"/v1/webhooks/endpoints/{w.ids['webhook_endpoint']}",
        ),
        Case(
            "POST /v1/entitlements/{entitlement_id}/revoke",
            lambda w: f"/v1/entitlements/{w.ids['entitlement']}/revoke",
            body=lambda w: {"reason": "x"},
        ),
        Case("POST /v1/orders/{order_id}/paid", order_path("/paid", "pending_order"), body=lambda w: {}),
        Case("POST /v1/orders/{order_id}/refund", order_path("/refund"), body=lambda w: {}),
        # the order was refunded just above: A's key reaches it and is told it cannot be canceled
        Case("POST /v1/orders/{order_id}/cancel", order_path("/cancel"), a_status=409),
        Case(
            "POST /v1/quarantine/{quarantine_id}/replay",
            lambda w: f"/v1/quarantine/{w.ids['quarantine']}/replay",
            body=lambda w: {"payload": msg(type="track", userId="ada", event="Fixed", messageId="q1")},
        ),
        Case(
            "POST /v1/quarantine/{quarantine_id}/discard",
            lambda w: f"/v1/quarantine/{w.ids['quarantine']}/discard",
            a_status=409,
        ),
        Case("POST /v1/merges/{merge_id}/undo", lambda w: f"/v1/merges/{w.ids['merge']}/undo"),
        Case(
            "POST /v1/pipeline/parked/{parked_id}/replay",
            lambda w: f"/v1/pipeline/parked/{w.ids['parked']}/replay",
            a_status=422,
        ),
        Case("GET /v1/journeys/{name}", lambda w: "/v1/journeys/hello"),
        Case("POST /v1/journeys/{name}/pause", lambda w: "/v1/journeys/hello/pause"),
        Case("POST /v1/journeys/{name}/resume", lambda w: "/v1/journeys/hello/resume"),
        # B storing a journey of the same name stores its own (version 1), never a version of A's
        Case(
            "PUT /v1/journeys/{name}",
            lambda w: "/v1/journeys/hello",
            body=lambda w: {
                "yaml": (
                    "name: hello\ntrigger: {event: Other}\nsteps:\n  - send: {channel: inapp, text: x}\n"
                )
            },
            b_status=200,
            b_body=lambda r: r.json()["version"] == 1 and r.json()["trigger"] == "Other",
        ),
        Case(
            "GET /v1/journey-runs",
            lambda w: "/v1/journey-runs",
            params=lambda w: {"buyer_id": w.ids["buyer"]},
            b_status=200,
            b_body=lambda r: r.json()["items"] == [],
        ),
        Case(
            "GET /v1/messages",
            lambda w: "/v1/messages",
            params=lambda w: {"buyer_id": w.ids["buyer"]},
            b_status=200,
            b_body=lambda r: r.json()["items"] == [],
        ),
        Case(
            "GET /v1/promises",
            lambda w: "/v1/promises",
            params=lambda w: {"buyer_id": w.ids["buyer"]},
            b_status=200,
            b_body=lambda r: r.json() == {"items": [], "next_cursor": None},
        ),
        Case("GET /v1/messages/{message_id}", lambda w: f"/v1/messages/{w.ids['message']}"),
        # A's message is in-app, so A is told it is no e-mail (404) just as B is told it does not exist
        Case(
            "GET /v1/messages/{message_id}/email",
            lambda w: f"/v1/messages/{w.ids['message']}/email",
            a_status=404,
        ),
        Case(
            "GET /v1/invoices",
            lambda w: "/v1/invoices",
            params=lambda w: {"buyer_id": w.ids["buyer"]},
            b_status=200,
            b_body=lambda r: r.json()["items"] == [],
        ),
        Case("GET /v1/invoices/{number}", lambda w: "/v1/invoices/INV-000001"),
        Case("GET /v1/invoices/{number}/pdf", lambda w: "/v1/invoices/INV-000001/pdf"),
        Case(
            "POST /v1/inbox/tokens",
            lambda w: "/v1/inbox/tokens",
            body=lambda w: {"user_id": "ada"},
            a_status=201,
        ),
        Case(
            "DELETE /v1/delivery/suppressions/{suppression_id}",
            lambda w: f"/v1/delivery/suppressions/{w.ids['suppression']}",
        ),
        # signed or token routes take no key: tests/delivery/test_links.py
        *(Case(route, lambda w: "") for route in SIGNED_DELIVERY),
        Case("GET /v1/experiments/{key}", lambda w: "/v1/experiments/exp"),
        Case("GET /v1/experiments/{key}/results", lambda w: "/v1/experiments/exp/results"),
        Case(
            "POST /v1/experiments/{key}/assign",
            lambda w: "/v1/experiments/exp/assign",
            body=lambda w: {"user_id": "ada"},
        ),
        Case(
            "POST /v1/experiments/{key}/status",
            lambda w: "/v1/experiments/exp/status",
            body=lambda w: {"status": "paused"},
        ),
        Case(
            "POST /v1/experiments/{key}/weights",
            lambda w: "/v1/experiments/exp/weights",
            body=lambda w: {"weights": {"control": 1}},
        ),
        Case("DELETE /v1/keys/{key_id}", lambda w: f"/v1/keys/{w.ids['key']}"),
        Case("DELETE /v1/buyers/{buyer_id}", buyer_path()),
    ]


CASES = _cases()


def test_every_id_taking_route_has_a_case(settings):
    app = create_app(settings)
    assert {c.route for c in CASES} == id_taking_routes(app)


class _Thing(pydantic.BaseModel):
    buyer_id: str


def _read_thing(thing_id: str) -> dict[str, str]:
    return {}


def _list_things(decision_id: str | None = None) -> list[str]:
    return []


def _put_thing(thing: _Thing) -> dict[str, str]:
    return {}


def _put_plain(text: str) -> dict[str, str]:
    return {}


def test_a_new_id_taking_route_is_noticed(settings):
    """The detector behind the test above sees path parameters, id query parameters and id body fields."""
    app = create_app(settings)
    before = id_taking_routes(app)
    app.get("/v1/things/{thing_id}")(_read_thing)
    app.get("/v1/things")(_list_things)
    app.put("/v1/things")(_put_thing)
    app.post("/v1/things")(_put_plain)  # no id anywhere: not an id-taking route
    assert id_taking_routes(app) - before == {"GET /v1/things/{thing_id}", "GET /v1/things", "PUT /v1/things"}


def _call(client: Any, case: Case, w: World, key: Any) -> Any:
    method, _ = case.route.split(" ", 1)
    params = dict(case.params(w)) if case.params else {}
    if case.auth == "write_query":
        params["key"] = key.write_key
        headers = {}
    else:
        headers = bearer(key.secret_key)
    body = case.body(w) if case.body else None
    return client.request(method, case.path(w), params=params, json=body, headers=headers)


def test_another_workspace_key_gets_404_on_every_id(client, db, workspace, other_workspace):
    w = _build(client, db, workspace, other_workspace)
    failures = []
    for case in CASES:
        if case.route.split(" ", 1)[1].startswith(("/v1/files/", "/v1/reviews/{artifact_id}/{version}/")):
            continue  # signed routes take no key: test_a_signed_link_opens_only_its_own_file
        if case.route in SIGNED_DELIVERY:
            continue  # signed links and inbox tokens: tests/delivery/test_links.py
        theirs = _call(client, case, w, other_workspace)
        leaked = [m for m in (NAME, EMAIL, GOAL) if m in theirs.text]
        wrong = theirs.status_code != case.b_status or (case.b_body is not None and not case.b_body(theirs))
        if wrong or leaked:
            failures.append(
                f"{case.route} with B's key: {theirs.status_code} {theirs.text[:200]} leaked={leaked}"
            )
        mine = _call(client, case, w, workspace)
        if mine.status_code != case.a_status:
            failures.append(f"{case.route} with A's key: {mine.status_code} {mine.text[:200]}")
    assert not failures, "\n".join(failures)


def test_a_signed_link_opens_only_its_own_file(client, db, workspace, other_workspace):
    """The file route takes no key: the link's signature is the authority, for that artifact only."""
    w = _build(client, db, workspace, other_workspace)
    link = client.get(f"/v1/artifacts/{w.ids['artifact']}/download", headers=bearer(workspace.secret_key))
    url = link.json()["url"]
    assert client.get(url).status_code == 200
    forged = url.replace(w.ids["artifact"], "art_" + "0" * 26)
    refused = client.get(forged)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "invalid_link")
    # a reviewer's preview link is signed the same way, for its own artifact and version only
    preview = client.get(f"/v1/reviews/{w.ids['artifact']}", headers=bearer(workspace.secret_key)).json()[
        "preview_url"
    ]
    assert client.get(preview).status_code == 200
    for forged in (
        preview.replace(w.ids["artifact"], "art_" + "0" * 26),
        preview.replace("/1/html", "/2/html"),
    ):
        assert client.get(forged).status_code == 403


@pytest.fixture
def stripe_settings(client, fake_stripe):
    s = client.app.state.settings
    s.stripe_api_key, s.stripe_webhook_secret, s.stripe_api_base = API_KEY, SECRET, fake_stripe.base
    return client


def test_a_webhook_naming_another_workspace_never_touches_this_one(
    stripe_settings, db, workspace, other_workspace
):
    """A provider event is applied in the workspace its metadata names: one of B's events carrying A's order
    id (a copied id, a misrouted session) matches nothing, and A's order stays as it was."""
    client, sh = stripe_settings, bearer(workspace.secret_key)
    assert client.put("/v1/offers/catalog", headers=sh, json={"text": OFFERS}).status_code == 200
    order = client.post(
        "/v1/checkout", headers=sh, json={"user_id": "ada", "offer": "pricing-playbook"}
    ).json()
    obj = {"id": "cs_test_tenancy", "object": "checkout.session", "client_reference_id": order["id"],
           "metadata": {"order_id": order["id"], "workspace_id": other_workspace.id}, "payment_status": "paid",
           "status": "complete", "amount_total": order["total"], "currency": order["currency"].lower(),
           "payment_intent": "pi_tenancy", "mode": "payment"}  # fmt: skip
    payload = stripe_event("checkout.session.completed", obj, event_id="evt_tenancy_1")
    payload["created"] = int(time.time())
    r = deliver(client, payload)
    assert (r.status_code, r.json()["outcome"]) == (200, "ignored_no_order")
    got = client.get(f"/v1/orders/{order['id']}", headers=sh).json()
    assert (got["status"], got["paid_at"]) == ("pending", None)
    # the same event naming A's own workspace pays it
    obj["metadata"]["workspace_id"] = workspace.id
    payload = stripe_event("checkout.session.completed", obj, event_id="evt_tenancy_2")
    payload["created"] = int(time.time())
    assert deliver(client, payload).json()["outcome"] == "paid"


def test_rows_of_another_workspace_never_answer_for_an_id(client, db, workspace, other_workspace):
    """Ids are not trusted to be unique across workspaces: rows of B that carry A's buyer id (a restored
    backup, an import with copied ids) never show up in A's reads, and B's erasure never touches A."""
    w = _build(client, db, workspace, other_workspace)
    buyer_id, sh = w.ids["buyer"], bearer(workspace.secret_key)
    before_events = client.get(f"/v1/buyers/{buyer_id}/events", headers=sh).json()["items"]
    before_export = client.get(f"/v1/buyers/{buyer_id}/export", headers=sh).json()
    with db.write() as session:
        cols = ", ".join(c for c in EVENT_COLUMNS if c not in ("workspace_id", "message_id"))
        session.execute(
            text(f"INSERT INTO events (workspace_id, message_id, {cols}) "
                 f"SELECT :b, 'b-' || message_id, {cols} FROM events WHERE workspace_id = :a AND buyer_id = :buyer"),
            {"a": workspace.id, "b": other_workspace.id, "buyer": buyer_id},
        )  # fmt: skip
        copied = session.execute(
            text("SELECT count(*) FROM events WHERE workspace_id = :b AND buyer_id = :buyer"),
            {"b": other_workspace.id, "buyer": buyer_id},
        ).scalar_one()
    assert copied == len(before_events) > 0
    after_events = client.get(f"/v1/buyers/{buyer_id}/events", headers=sh).json()["items"]
    assert [e["message_id"] for e in after_events] == [e["message_id"] for e in before_events]
    after_export = client.get(f"/v1/buyers/{buyer_id}/export", headers=sh).json()
    assert len(after_export["events"]) == len(before_export["events"])
    state = client.get(f"/v1/buyers/{buyer_id}/state", headers=sh)
    assert state.status_code == 200
    # A erases its buyer: B's rows are B's and stay exactly as they were
    with db.read() as session:
        b_rows_before = session.execute(
            text("SELECT message_id, user_id, anonymous_id FROM events WHERE workspace_id = :b ORDER BY id"),
            {"b": other_workspace.id},
        ).all()
    assert client.delete(f"/v1/buyers/{buyer_id}", headers=sh).status_code == 200
    with db.read() as session:
        b_rows_after = session.execute(
            text("SELECT message_id, user_id, anonymous_id FROM events WHERE workspace_id = :b ORDER BY id"),
            {"b": other_workspace.id},
        ).all()
    assert b_rows_after == b_rows_before


# Statements that are cross-workspace by design (tests/db/test_scoping.py ALLOWED says why), by what they read.
CROSS_WORKSPACE = {
    "api_keys": re.compile(r"FROM api_keys WHERE api_keys\.key_hash = \S+$"),  # workspaces.key_by_hash
    # The one queue of background work: a job is named by (kind, key) or its id, the key built by the service
    # from ids it already found in the caller's workspace; workers claim due jobs of every workspace.
    "jobs": re.compile(
        r"FROM jobs WHERE jobs\.(?:id|state) = |FROM jobs WHERE jobs\.kind = \S+ AND jobs\.\"?key\"? = \S+$"
        r"|FROM jobs WHERE jobs\.id IN \("  # a batch of claimed jobs, by their ids (runner, lease.hold_many)
        r"|^UPDATE jobs SET .* WHERE jobs\.kind = \S+ AND jobs\.\"?key\"? = \S+$"
    ),
}
SQL_TABLES = re.compile(r"\b(?:FROM|JOIN|UPDATE)\s+(\w+)", re.IGNORECASE)
# The unit of work writing back (or deleting) an object it loaded (through a scoped query) by its primary key.
FLUSH_BY_PK = re.compile(r"^(?:UPDATE (\w+) SET .*|DELETE FROM (\w+)) WHERE (?:\1|\2)\.id = \S+$")


def test_every_statement_run_for_these_requests_filters_on_the_workspace(
    client, db, engine, workspace, other_workspace
):
    """The dynamic side of tests/db/test_scoping.py: every SELECT, UPDATE and DELETE the app ran while serving
    all the requests above names workspace_id once per workspace-owned table, after its select list."""
    owned = {t.name for t in Base.metadata.tables.values() if "workspace_id" in t.c}
    unscoped: set[str] = set()

    def check(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sql = " ".join(statement.split())
        head = sql.split(" ", 1)[0].upper()
        if head not in ("SELECT", "UPDATE", "DELETE", "WITH") or FLUSH_BY_PK.match(sql):
            return
        tables = [t for t in SQL_TABLES.findall(sql) if t in owned]
        start = sql.upper().find(" FROM ") if head in ("SELECT", "WITH") else 0
        allowed = any(t in CROSS_WORKSPACE and CROSS_WORKSPACE[t].search(sql) for t in tables)
        if tables and sql[start:].count("workspace_id") < len(tables) and not allowed:
            unscoped.add(sql[:400])

    event.listen(engine, "before_cursor_execute", check)
    try:
        w = _build(client, db, workspace, other_workspace)
        for case in CASES:
            if not case.route.startswith("GET /v1/files/"):
                _call(client, case, w, other_workspace)
                _call(client, case, w, workspace)
    finally:
        event.remove(engine, "before_cursor_execute", check)
    assert sorted(unscoped) == []
