"""StripeProvider against a real loopback HTTP server speaking Stripe's API shape, and webhooks verified
by the official SDK: exact form parameters, headers, error mapping, signatures, staleness and the
normalised view of every event kind we act on."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from offerloop.checkout.exceptions import ProviderError, WebhookRefused
from offerloop.checkout.stripe_provider import (
    CheckoutLine,
    PaymentEvent,
    StripeConfig,
    StripeProvider,
    WebhookEvent,
    normalize,
    sign_payload,
)
from offerloop.core.errors import OfferloopError, ValidationFailed

API_KEY = "sk_test_offerloop_4eC39HqLyjWDarjtT1zdp7dc"
SECRET = "whsec_test_offerloop_secret"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


# -- a loopback stand-in for api.stripe.com -------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeStripeState:
    """What the stand-in received, and scripted answers that override the default behaviour."""

    requests: list[Recorded] = field(default_factory=list)
    replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    idempotency: dict[str, tuple[dict[str, str], dict[str, Any]]] = field(default_factory=dict)
    counter: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Refunds: the payments Stripe knows (PaymentIntent or Charge id -> amount charged in Stripe's units, and
    # its lowercase currency),
    # what was refunded of each, the refunds created, the status new refunds get, and a delay before answering.
    payments: dict[str, tuple[int, str]] = field(default_factory=dict)
    refunded: dict[str, int] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    refund_status: str = "succeeded"
    delay_s: float = 0.0
    # Subscriptions (``/v1/subscriptions/{id}``): the ones Stripe holds by id, the products their prices sell,
    # the proration invoices their updates created, scripted answers to their requests (before any other
    # behaviour), and a card Stripe declines when an update must be paid at once.
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    subscription_replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    card_declined: bool = False
    # requests done in "Stripe" whose answer is lost (a 500 instead): an unknown outcome
    lost_answers: int = 0
    # called with (method, path) once a change to a subscription is done in "Stripe", before it is answered
    before_answer: Any = None
    sub_idempotency: dict[str, tuple[tuple[str, str, dict[str, str]], int, dict[str, Any]]] = field(
        default_factory=dict
    )

    def add_subscription(
        self, sub_id: str, lines: list[tuple[str, int]], *, currency: str = "usd", interval: str = "month",
        period: tuple[int, int] = (NOW, NOW + 30 * 86_400), metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """A subscription Stripe holds: one item per (product name, unit amount) line, as a Checkout Session
        with those ``line_items`` creates it."""
        items = []
        for name, amount in lines:
            n = len(self.products) + 1
            self.products[f"prod_test_{n:04d}"] = {
                "id": f"prod_test_{n:04d}",
                "object": "product",
                "name": name,
            }
            items.append({"id": f"si_test_{n:04d}", "object": "subscription_item", "quantity": 1,
                          "price": price_object(f"price_test_{n:04d}", f"prod_test_{n:04d}", amount, currency,
                                                interval)})  # fmt: skip
        sub = {"id": sub_id, "object": "subscription", "status": "active", "currency": currency,
               "cancel_at_period_end": False, "canceled_at": None, "pause_collection": None,
               "current_period_start": period[0], "current_period_end": period[1], "latest_invoice": None,
               "metadata": dict(metadata or {}), "items": {"object": "list", "data": items, "has_more": False,
                                                           "url": f"/v1/subscription_items?subscription={sub_id}"}}  # fmt: skip
        self.subscriptions[sub_id] = sub
        return sub


def stripe_error(err_type: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Stripe's documented error body."""
    return {"error": {"type": err_type, "code": code, "message": message, **extra}}


def session_from_form(form: dict[str, str], n: int) -> dict[str, Any]:
    """A Checkout Session object built the way Stripe would from the decoded request."""
    total, i = 0, 0
    while f"line_items[{i}][quantity]" in form:
        total += int(form[f"line_items[{i}][price_data][unit_amount]"]) * int(
            form[f"line_items[{i}][quantity]"]
        )
        i += 1
    session_id = f"cs_test_a1{n:04d}YufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u"
    metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": form.get("cancel_url"),
        "client_reference_id": form.get("client_reference_id"),
        "created": NOW,
        "currency": form.get("line_items[0][price_data][currency]"),
        "customer": None,
        "customer_email": form.get("customer_email"),
        "expires_at": NOW + 86_400,
        "invoice": None,
        "livemode": False,
        "metadata": metadata,
        "mode": form["mode"],
        "payment_intent": None,
        "payment_status": "unpaid",
        "status": "open",
        "subscription": None,
        "success_url": form.get("success_url"),
        "ui_mode": "hosted",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
    }


def refund_from_form(state: FakeStripeState, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """``POST /v1/refunds`` as Stripe answers it: a Refund of the named PaymentIntent or Charge (all that is
    left when no amount is given), or Stripe's error when the payment is unknown or has too little left."""
    paid_by = form.get("payment_intent") or form.get("charge") or ""
    if paid_by not in state.payments:
        param = "payment_intent" if "payment_intent" in form else "charge"
        return 404, stripe_error("invalid_request_error", "resource_missing", f"No such {param}: '{paid_by}'",
                                 param=param)  # fmt: skip
    charged, currency = state.payments[paid_by]
    left = charged - state.refunded.get(paid_by, 0)
    amount = int(form["amount"]) if "amount" in form else left
    if left <= 0:
        return 400, stripe_error("invalid_request_error", "charge_already_refunded",
                                 f"Charge for {paid_by} has already been refunded.")  # fmt: skip
    if amount > left:
        return 400, stripe_error("invalid_request_error", "amount_too_large",
                                 f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                                 param="amount")  # fmt: skip
    status = state.refund_status
    if status in ("succeeded", "pending"):  # a failed or canceled refund gives nothing back
        state.refunded[paid_by] = state.refunded.get(paid_by, 0) + amount
    refund = {
        "id": f"re_test_{len(state.refunds) + 1:04d}", "object": "refund", "amount": amount,
        "charge": f"ch_{paid_by}", "created": NOW, "currency": currency, "payment_intent": form.get("payment_intent"),
        "metadata": {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")},
        "reason": None, "status": status, "failure_reason": "lost_or_stolen_card" if status == "failed" else None,
    }  # fmt: skip
    state.refunds.append(refund)
    return 200, refund


def price_object(price_id: str, product: str, amount: int, currency: str, interval: str) -> dict[str, Any]:
    return {"id": price_id, "object": "price", "product": product, "unit_amount": amount, "currency": currency,
            "recurring": {"interval": interval, "interval_count": 1}, "type": "recurring"}  # fmt: skip


SUBSCRIPTION_PATH = "/v1/subscriptions/"
_UPDATE_PARAMS = ("cancel_at_period_end", "pause_collection", "proration_behavior", "proration_date",
                  "payment_behavior")  # fmt: skip


def _nested(form: dict[str, str], prefix: str) -> dict[str, str]:
    """``prefix[a][b]=v`` pairs of a form as ``{"[a][b]": v}``."""
    return {k[len(prefix) :]: v for k, v in form.items() if k.startswith(prefix + "[")}


def _bad(message: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    extra = {"param": param} if param else {}
    return 400, stripe_error("invalid_request_error", "parameter_invalid", message, **extra)


def _expand(state: FakeStripeState, sub: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The subscription as answered: ``expand[]`` of its latest invoice and of its items' price products."""
    out = copy.deepcopy(sub)
    asked = set(_nested(form, "expand").values())
    if "latest_invoice" in asked and out["latest_invoice"]:
        out["latest_invoice"] = next(i for i in state.invoices if i["id"] == out["latest_invoice"])
    if "items.data.price.product" in asked:
        for item in out["items"]["data"]:
            item["price"]["product"] = state.products[item["price"]["product"]]
    return out


def update_subscription(
    state: FakeStripeState, sub: dict[str, Any], form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """``POST /v1/subscriptions/{id}`` as Stripe documents it (the parameters offerloop sends), prorating an
    item's new price like Stripe: each item's difference times the share of its period left after
    ``proration_date``, invoiced at once with ``always_invoice`` (402 when the card is declined)."""
    for key in form:
        if key.split("[", 1)[0] not in (*_UPDATE_PARAMS, "items", "metadata", "expand"):
            return _bad(f"Received unknown parameter: {key}", key.split("[", 1)[0])
    if sub["status"] == "canceled":
        return _bad("A canceled subscription can only update its cancellation_details and metadata.")
    new = copy.deepcopy(sub)
    if "cancel_at_period_end" in form:
        if form["cancel_at_period_end"] not in ("true", "false"):
            return _bad("Invalid boolean: " + form["cancel_at_period_end"], "cancel_at_period_end")
        new["cancel_at_period_end"] = form["cancel_at_period_end"] == "true"
    if "pause_collection" in form:
        if form["pause_collection"] != "":
            return _bad("Invalid object", "pause_collection")
        new["pause_collection"] = None
    paused = _nested(form, "pause_collection")
    if paused:
        if set(paused) != {"[behavior]"} or paused["[behavior]"] not in (
            "keep_as_draft",
            "mark_uncollectible",
            "void",
        ):
            return _bad("Invalid pause_collection[behavior]", "pause_collection[behavior]")
        new["pause_collection"] = {"behavior": paused["[behavior]"], "resumes_at": None}
    new["metadata"].update({k[1:-1]: v for k, v in _nested(form, "metadata").items()})
    behavior = form.get("proration_behavior", "create_prorations")
    if behavior not in ("create_prorations", "none", "always_invoice"):
        return _bad(f"Invalid proration_behavior: {behavior}", "proration_behavior")
    at = int(form.get("proration_date", NOW))
    start, end = sub["current_period_start"], sub["current_period_end"]
    prorated, i, lines = 0, 0, []
    while f"items[{i}][id]" in form:
        item = next((it for it in new["items"]["data"] if it["id"] == form[f"items[{i}][id]"]), None)
        if item is None:
            return _bad(f"Invalid subscription item: {form[f'items[{i}][id]']}", f"items[{i}][id]")
        data = _nested(form, f"items[{i}][price_data]")
        if data.get("[product]") not in state.products or "[unit_amount]" not in data:
            return _bad("Missing required param: items[0][price_data][product].", f"items[{i}][price_data]")
        old_amount, amount = item["price"]["unit_amount"], int(data["[unit_amount]"])
        # Stripe prorates each item on its own: the unused time of the old price credited, the new price charged
        share = (end - at) / (end - start)
        unused, remaining = -round(old_amount * share), round(amount * share)
        prorated += unused + remaining
        for part in (unused, remaining):  # "Unused time on …" and "Remaining time on …", each rounded
            details = {"price": item["price"]["id"], "product": data["[product]"]}
            lines.append({"object": "line_item", "amount": part, "currency": sub["currency"], "proration": True,
                          "pricing": {"type": "price_details", "price_details": details}})  # fmt: skip
        item["price"] = price_object(f"price_test_{len(state.products) + 100 + i:04d}", data["[product]"], amount,
                                     data["[currency]"], data.get("[recurring][interval]", "month"))  # fmt: skip
        i += 1
    if behavior == "always_invoice" and i and prorated > 0:
        if state.card_declined:
            return 402, stripe_error("card_error", "card_declined", "Your card was declined.",
                                     decline_code="generic_decline")  # fmt: skip
        number = len(state.invoices) + 1
        state.payments[f"pi_in_test_{number:04d}"] = (
            prorated,
            sub["currency"],
        )  # refundable like any payment
        invoice = {"id": f"in_test_{number:04d}", "object": "invoice", "subscription": sub["id"],
                   "payment_intent": f"pi_in_test_{number:04d}",
                   "billing_reason": "subscription_update", "status": "paid", "amount_due": prorated,
                   "amount_paid": prorated, "currency": sub["currency"],
                   "lines": {"object": "list", "data": lines, "has_more": False}}  # fmt: skip
        state.invoices.append(invoice)
        new["latest_invoice"] = invoice["id"]
    sub.clear()
    sub.update(new)
    return 200, _expand(state, sub, form)


def cancel_subscription(
    state: FakeStripeState, sub: dict[str, Any], form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """``DELETE /v1/subscriptions/{id}``: canceled now (Stripe refuses a second cancel of one)."""
    for key in form:
        if key not in ("prorate", "invoice_now") and not key.startswith("expand["):
            return _bad(f"Received unknown parameter: {key}", key)
    if sub["status"] == "canceled":
        return 404, stripe_error("invalid_request_error", "resource_missing",
                                 f"No such subscription: '{sub['id']}'", param="id")  # fmt: skip
    sub.update(status="canceled", canceled_at=NOW, cancel_at_period_end=False)
    return 200, _expand(state, sub, form)


class FakeStripeHandler(BaseHTTPRequestHandler):
    server: FakeStripeServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._subscription("GET")

    def do_DELETE(self) -> None:
        self._subscription("DELETE")

    def _subscription(self, method: str) -> None:
        """The subscription endpoints: the body (POST) or query string (GET, DELETE) as the form."""
        state = self.server.state
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        raw = body if method == "POST" else url.query
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw))
        form = dict(pairs)
        assert len(form) == len(pairs), "a form key was sent twice"
        headers = {k.lower(): v for k, v in self.headers.items()}
        sub_id = url.path[len(SUBSCRIPTION_PATH) :]
        with state.lock:
            state.requests.append(Recorded(method, url.path, headers, form))
            key = headers.get("idempotency-key")
            sub = state.subscriptions.get(sub_id)
            if not url.path.startswith(SUBSCRIPTION_PATH) or "/" in sub_id:
                status, payload = (
                    404,
                    stripe_error("invalid_request_error", "resource_missing", "Unrecognized request URL"),
                )
            elif state.subscription_replies:
                status, payload = state.subscription_replies.pop(0)
            elif key is not None and key in state.sub_idempotency:
                # Stripe replays the first answer for a repeated key, and refuses the key with other parameters
                first_call, status, payload = state.sub_idempotency[key]
                if first_call != (method, url.path, form):
                    status, payload = 400, stripe_error(
                        "idempotency_error", "idempotency_key_in_use",
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        "used with.",
                    )  # fmt: skip
            else:
                if sub is None:
                    status, payload = 404, stripe_error("invalid_request_error", "resource_missing",
                                                        f"No such subscription: '{sub_id}'", param="id")  # fmt: skip
                elif method == "GET":
                    status, payload = 200, _expand(state, sub, form)
                elif method == "DELETE":
                    status, payload = cancel_subscription(state, sub, form)
                else:
                    status, payload = update_subscription(state, sub, form)
                if key is not None and method != "GET":  # kept for the key, an error as much as a success
                    state.sub_idempotency[key] = ((method, url.path, form), status, payload)
            if state.lost_answers and method != "GET":
                state.lost_answers -= 1
                status, payload = 500, stripe_error("api_error", "", "An unknown error occurred")
        if state.before_answer is not None and method != "GET":
            state.before_answer(method, url.path)
        self._send(status, payload)

    def do_POST(self) -> None:
        if self.path.startswith(SUBSCRIPTION_PATH):
            self._subscription("POST")
            return
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body))
        form = dict(pairs)
        assert len(form) == len(pairs), "a form key was sent twice"
        headers = {k.lower(): v for k, v in self.headers.items()}
        with state.lock:
            state.requests.append(Recorded("POST", self.path, headers, form))
            if self.path not in ("/v1/checkout/sessions", "/v1/refunds"):
                status, payload = (
                    404,
                    stripe_error("invalid_request_error", "resource_missing", "Unrecognized request URL"),
                )
            elif state.replies:
                status, payload = state.replies.pop(0)
            else:
                status, payload = self._create(state, headers.get("idempotency-key"), form, self.path)
        if state.delay_s:
            time.sleep(state.delay_s)  # a slow answer: done in "Stripe", not yet known to the caller
        self._send(status, payload)

    def _create(
        self, state: FakeStripeState, key: str | None, form: dict[str, str], path: str
    ) -> tuple[int, dict[str, Any]]:
        # Stripe replays the first answer for a repeated key, and refuses the key with other parameters.
        if key is not None and key in state.idempotency:
            first_form, first_answer = state.idempotency[key]
            if first_form != form:
                return 400, stripe_error(
                    "idempotency_error",
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                )
            return 200, first_answer
        if path == "/v1/refunds":
            status, answer = refund_from_form(state, form)
        else:
            state.counter += 1
            status, answer = 200, session_from_form(form, state.counter)
        if key is not None:  # Stripe keeps the first answer for the key, an error as much as a success
            state.idempotency[key] = (form, answer)
        return status, answer

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_offerloop_test")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


class FakeStripeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeStripeHandler)
        self.state = FakeStripeState()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def fake_stripe_server() -> Iterator[FakeStripeServer]:
    server = FakeStripeServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripeServer, monkeypatch: pytest.MonkeyPatch) -> FakeStripeServer:
    fake_stripe_server.state = FakeStripeState()
    # requests honours *_PROXY from the environment: loopback must never go through one.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return fake_stripe_server


def make_config(api_base: str = stripe.DEFAULT_API_BASE, **overrides: Any) -> StripeConfig:
    return StripeConfig(
        api_key=API_KEY, webhook_secret=SECRET, api_base=api_base, max_network_retries=0, **overrides
    )


@pytest.fixture
def provider(fake_stripe: FakeStripeServer) -> StripeProvider:
    return StripeProvider(make_config(fake_stripe.base))


WORKBOOK: CheckoutLine = {"name": "Launch workbook", "unit_amount": 4900, "quantity": 1}
COACHING: CheckoutLine = {"name": "Coaching call", "unit_amount": 500, "quantity": 2}
MONTHLY: CheckoutLine = {"name": "Inner circle", "unit_amount": 1900, "quantity": 1, "interval": "month"}
SUCCESS = "https://creator.example/thanks?session={CHECKOUT_SESSION_ID}"
CANCEL = "https://creator.example/offer"


# -- Checkout Session creation --------------------------------------------------------------------


def test_payment_session_sends_stripes_form_and_headers(
    provider: StripeProvider, fake_stripe: FakeStripeServer
) -> None:
    session = provider.create_checkout_session(
        order_id="ord_123",
        workspace_id="ws_1",
        mode="payment",
        currency="EUR",
        lines=[WORKBOOK, COACHING],
        success_url=SUCCESS,
        cancel_url=CANCEL,
        customer_email="buyer@example.com",
        metadata={"campaign": "spring"},
    )

    [request] = fake_stripe.state.requests
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    tags = {"campaign": "spring", "order_id": "ord_123", "workspace_id": "ws_1"}
    assert request.form == {
        "mode": "payment",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "4900",
        "line_items[0][price_data][product_data][name]": "Launch workbook",
        "line_items[0][quantity]": "1",
        "line_items[1][price_data][currency]": "eur",
        "line_items[1][price_data][unit_amount]": "500",
        "line_items[1][price_data][product_data][name]": "Coaching call",
        "line_items[1][quantity]": "2",
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "client_reference_id": "ord_123",
        "customer_email": "buyer@example.com",
        **{f"metadata[{k}]": v for k, v in tags.items()},
        **{f"payment_intent_data[metadata][{k}]": v for k, v in tags.items()},
    }
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["idempotency-key"] == "offerloop-checkout-ord_123"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["stripe-version"]  # the SDK pins its API version on every request

    assert session.id.startswith("cs_test_")
    assert session.url == f"https://checkout.stripe.com/c/pay/{session.id}"
    assert session.payment_status == "unpaid"
    assert session.raw["object"] == "checkout.session"
    assert session.raw["amount_total"] == 5900
    assert session.raw["client_reference_id"] == "ord_123"
    assert session.raw["metadata"] == tags
    assert session.raw["status"] == "open"


def test_subscription_session_sends_recurring_price_trial_and_subscription_metadata(
    provider: StripeProvider, fake_stripe: FakeStripeServer
) -> None:
    session = provider.create_checkout_session(
        order_id="ord_sub_9",
        workspace_id="ws_1",
        mode="subscription",
        currency="usd",
        lines=[MONTHLY],
        success_url=SUCCESS,
        cancel_url=CANCEL,
        trial_days=14,
    )

    [request] = fake_stripe.state.requests
    assert request.form == {
        "mode": "subscription",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "1900",
        "line_items[0][price_data][product_data][name]": "Inner circle",
        "line_items[0][price_data][recurring][interval]": "month",
        "line_items[0][quantity]": "1",
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "client_reference_id": "ord_sub_9",
        "metadata[order_id]": "ord_sub_9",
        "metadata[workspace_id]": "ws_1",
        "subscription_data[metadata][order_id]": "ord_sub_9",
        "subscription_data[metadata][workspace_id]": "ws_1",
        "subscription_data[trial_period_days]": "14",
    }
    assert request.headers["idempotency-key"] == "offerloop-checkout-ord_sub_9"
    assert session.raw["mode"] == "subscription"


def test_retrying_an_order_reuses_its_idempotency_key_and_session(
    provider: StripeProvider, fake_stripe: FakeStripeServer
) -> None:
    kwargs: dict[str, Any] = {
        "order_id": "ord_retry",
        "workspace_id": "ws_1",
        "mode": "payment",
        "currency": "eur",
        "lines": [WORKBOOK],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
    }
    first = provider.create_checkout_session(**kwargs)
    second = provider.create_checkout_session(**kwargs)
    assert first.id == second.id
    keys = {r.headers["idempotency-key"] for r in fake_stripe.state.requests}
    assert keys == {"offerloop-checkout-ord_retry"}

    # The same order with other lines: Stripe refuses the reused key instead of opening a second session.
    with pytest.raises(ProviderError) as caught:
        provider.create_checkout_session(**{**kwargs, "lines": [COACHING]})
    assert caught.value.details["type"] == "idempotency_error"
    assert caught.value.details["code"] == "idempotency_key_in_use"


@pytest.mark.parametrize(
    ("status", "body", "expected_type", "expected_code"),
    [
        (
            400,
            stripe_error(
                "invalid_request_error",
                "url_invalid",
                "Not a valid URL",
                param="success_url",
                doc_url="https://stripe.com/docs/error-codes/url-invalid",
            ),
            "invalid_request_error",
            "url_invalid",
        ),
        (
            402,
            stripe_error(
                "card_error", "card_declined", "Your card was declined.", decline_code="generic_decline"
            ),
            "card_error",
            "card_declined",
        ),
        (
            401,
            {
                "error": {
                    "type": "invalid_request_error",
                    "message": "Invalid API Key provided: sk_test_****7dc",
                }
            },
            "invalid_request_error",
            None,
        ),
    ],
)
def test_stripe_errors_become_provider_errors(
    provider: StripeProvider,
    fake_stripe: FakeStripeServer,
    status: int,
    body: dict[str, Any],
    expected_type: str,
    expected_code: str | None,
) -> None:
    fake_stripe.state.replies.append((status, body))
    with pytest.raises(ProviderError) as caught:
        provider.create_checkout_session(
            order_id="ord_err",
            workspace_id="ws_1",
            mode="payment",
            currency="eur",
            lines=[WORKBOOK],
            success_url=SUCCESS,
            cancel_url=CANCEL,
        )
    error = caught.value
    assert isinstance(error, OfferloopError)
    assert error.status_code == 502
    assert error.code == "payment_provider_error"
    assert error.details["type"] == expected_type
    assert error.details["code"] == expected_code
    assert error.details["message"] == body["error"]["message"]
    assert error.details["http_status"] == status
    assert error.details["request_id"] == "req_offerloop_test"
    assert error.details["param"] == body["error"].get("param")
    assert error.details["decline_code"] == body["error"].get("decline_code")
    assert body["error"]["message"] in error.message
    assert error.to_dict()["error"]["code"] == "payment_provider_error"
    assert len(fake_stripe.state.requests) == 1  # 4xx answers are not retried


def test_unreachable_stripe_is_a_provider_error() -> None:
    with socket.socket() as sock:  # a port that was just free, so nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = StripeProvider(make_config(f"http://127.0.0.1:{port}"))
    with pytest.raises(ProviderError) as caught:
        provider.create_checkout_session(
            order_id="ord_down",
            workspace_id="ws_1",
            mode="payment",
            currency="eur",
            lines=[WORKBOOK],
            success_url=SUCCESS,
            cancel_url=CANCEL,
        )
    assert caught.value.details["type"] == "api_connection_error"
    assert caught.value.status_code == 502


def test_a_session_without_url_is_a_provider_error(
    provider: StripeProvider, fake_stripe: FakeStripeServer
) -> None:
    fake_stripe.state.replies.append(
        (200, {"id": "cs_test_embedded", "object": "checkout.session", "url": None})
    )
    with pytest.raises(ProviderError):
        provider.create_checkout_session(
            order_id="ord_embedded",
            workspace_id="ws_1",
            mode="payment",
            currency="eur",
            lines=[WORKBOOK],
            success_url=SUCCESS,
            cancel_url=CANCEL,
        )


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"mode": "subscription", "lines": [WORKBOOK]}, "needs at least one line with an interval"),
        ({"lines": [MONTHLY]}, "needs mode 'subscription'"),
        ({"trial_days": 7}, "trial_days"),
        ({"lines": []}, "at least one line"),
        ({"lines": [{**WORKBOOK, "unit_amount": 49.0}]}, "unit_amount"),
        ({"lines": [{**WORKBOOK, "quantity": 0}]}, "quantity"),
        ({"currency": "euro"}, "currency"),
        ({"metadata": {"order_id": "other"}}, "reserved"),
        ({"order_id": ""}, "order_id"),
    ],
)
def test_invalid_requests_are_refused_before_calling_stripe(
    provider: StripeProvider, fake_stripe: FakeStripeServer, overrides: dict[str, Any], problem: str
) -> None:
    kwargs: dict[str, Any] = {
        "order_id": "ord_bad",
        "workspace_id": "ws_1",
        "mode": "payment",
        "currency": "eur",
        "lines": [WORKBOOK],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        **overrides,
    }
    with pytest.raises(ValidationFailed, match=problem):
        provider.create_checkout_session(**kwargs)
    assert fake_stripe.state.requests == []


def test_config_refuses_a_zero_tolerance_and_hides_secrets() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        make_config(tolerance_s=0)
    config = make_config()
    assert config.tolerance_s == 300
    assert config.api_base == "https://api.stripe.com"
    assert API_KEY not in repr(config) and SECRET not in repr(config)


# -- webhook signatures ---------------------------------------------------------------------------


def event(
    event_type: str, obj: dict[str, Any], *, event_id: str = "evt_1QxOfferloopTest", **extra: Any
) -> dict[str, Any]:
    """An Event object as Stripe delivers it."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": NOW,
        "data": {"object": obj, **extra},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, indent=2).encode("utf-8")


@pytest.fixture
def webhook_provider() -> StripeProvider:
    return StripeProvider(make_config())  # verification never talks to the API


def test_sign_payload_follows_stripes_scheme_and_the_sdk_accepts_it() -> None:
    body = body_of(event("checkout.session.completed", SESSION_PAID))
    header = sign_payload(body, SECRET, NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert header == stripe.WebhookSignature.generate_signature_header(body.decode("utf-8"), SECRET, NOW)
    assert stripe.WebhookSignature.verify_header(body, header, SECRET, None) is True

    fresh = int(time.time())
    live_header = sign_payload(body, SECRET, fresh)
    constructed = stripe.Webhook.construct_event(body, live_header, SECRET)
    assert constructed.id == "evt_1QxOfferloopTest"


def test_verify_webhook_returns_the_event(webhook_provider: StripeProvider) -> None:
    payload = event("checkout.session.completed", SESSION_PAID)
    body = body_of(payload)
    verified = webhook_provider.verify_webhook(body, sign_payload(body, SECRET, NOW), now=NOW + 10)
    assert verified == WebhookEvent(
        id="evt_1QxOfferloopTest",
        type="checkout.session.completed",
        created=NOW,
        object=SESSION_PAID,
        raw=payload,
    )


def test_verify_webhook_on_the_system_clock(webhook_provider: StripeProvider) -> None:
    body = body_of(event("charge.refunded", CHARGE_REFUNDED))
    verified = webhook_provider.verify_webhook(body, sign_payload(body, SECRET, int(time.time())))
    assert verified.type == "charge.refunded"

    an_hour_ago = int(time.time()) - 3600
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(body, sign_payload(body, SECRET, an_hour_ago))
    assert caught.value.code == "stale_signature"


def test_wrong_secret_is_refused(webhook_provider: StripeProvider) -> None:
    body = body_of(event("invoice.paid", INVOICE_PAID))
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(body, sign_payload(body, "whsec_someone_else", NOW), now=NOW)
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_signature")


def test_modified_body_is_refused(webhook_provider: StripeProvider) -> None:
    body = body_of(event("invoice.paid", INVOICE_PAID))
    header = sign_payload(body, SECRET, NOW)
    tampered = body.replace(b'"amount_paid": 1900', b'"amount_paid": 1')
    assert tampered != body
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(tampered, header, now=NOW)
    assert caught.value.code == "invalid_signature"


def test_reencoded_json_is_refused(webhook_provider: StripeProvider) -> None:
    payload = event("invoice.paid", INVOICE_PAID)
    header = sign_payload(body_of(payload), SECRET, NOW)
    compact = json.dumps(payload, separators=(",", ":")).encode()  # same JSON, other bytes
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(compact, header, now=NOW)
    assert caught.value.code == "invalid_signature"


@pytest.mark.parametrize(
    "header", ["", "garbage", f"t={NOW}", "v1=abc", f"t=now,v1={'0' * 64}", f"t={NOW},v0=abc"]
)
def test_malformed_headers_are_refused(webhook_provider: StripeProvider, header: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(b"{}", header, now=NOW)
    assert caught.value.code == "invalid_signature"


def test_tolerance_boundary(webhook_provider: StripeProvider) -> None:
    body = body_of(event("invoice.paid", INVOICE_PAID))
    signed_at = NOW - 300
    header = sign_payload(body, SECRET, signed_at)
    assert webhook_provider.verify_webhook(body, header, now=NOW).id == "evt_1QxOfferloopTest"
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(body, header, now=NOW + 1)
    assert caught.value.code == "stale_signature"
    assert caught.value.details == {"timestamp": signed_at, "tolerance_s": 300}


def test_tolerance_is_configurable() -> None:
    strict = StripeProvider(make_config(tolerance_s=60))
    body = body_of(event("invoice.paid", INVOICE_PAID))
    with pytest.raises(WebhookRefused) as caught:
        strict.verify_webhook(body, sign_payload(body, SECRET, NOW - 61), now=NOW)
    assert caught.value.code == "stale_signature"


def test_a_stale_forgery_is_an_invalid_signature(webhook_provider: StripeProvider) -> None:
    body = body_of(event("invoice.paid", INVOICE_PAID))
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(body, sign_payload(body, "whsec_forged", NOW - 3600), now=NOW)
    assert caught.value.code == "invalid_signature"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2, 3]",
        b'{"id": "evt_1", "type": "invoice.paid", "created": 1767225600}',
        b'{"id": "evt_1", "type": "invoice.paid", "created": "yesterday", "data": {"object": {}}}',
        b'{"id": "", "type": "invoice.paid", "created": 1767225600, "data": {"object": {}}}',
        b'\xff\xfe{"id": "evt_1"}',
    ],
)
def test_signed_non_events_are_invalid_payloads(webhook_provider: StripeProvider, body: bytes) -> None:
    with pytest.raises(WebhookRefused) as caught:
        webhook_provider.verify_webhook(body, sign_payload(body, SECRET, NOW), now=NOW)
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_payload")


# -- normalisation --------------------------------------------------------------------------------

TAGS = {"order_id": "ord_123", "workspace_id": "ws_1"}
SUB_TAGS = {"order_id": "ord_sub_9", "workspace_id": "ws_1"}

SESSION_PAID: dict[str, Any] = {
    "id": "cs_test_b1GZ0vPvBmE3bNvJXBq1JGnV",
    "object": "checkout.session",
    "amount_subtotal": 5900,
    "amount_total": 5900,
    "cancel_url": CANCEL,
    "client_reference_id": "ord_123",
    "created": NOW - 120,
    "currency": "eur",
    "customer": "cus_RkQ1offerloop",
    "customer_details": {
        "email": "buyer@example.com",
        "name": "Ada Buyer",
        "tax_exempt": "none",
        "tax_ids": [],
    },
    "customer_email": "buyer@example.com",
    "expires_at": NOW + 86_280,
    "invoice": None,
    "livemode": False,
    "metadata": TAGS,
    "mode": "payment",
    "payment_intent": "pi_3QkOfferloop1a2b3c",
    "payment_status": "paid",
    "status": "complete",
    "subscription": None,
    "success_url": SUCCESS,
    "url": None,
}

SESSION_SUBSCRIBED: dict[str, Any] = {
    **SESSION_PAID,
    "id": "cs_test_c2SubOfferloop",
    "amount_subtotal": 1900,
    "amount_total": 0,  # trial: nothing charged today
    "client_reference_id": "ord_sub_9",
    "currency": "usd",
    "invoice": "in_1QkSubFirstInvoice",
    "metadata": SUB_TAGS,
    "mode": "subscription",
    "payment_intent": None,
    "payment_status": "no_payment_required",
    "subscription": "sub_1QkOfferloopMonthly",
}

SESSION_ASYNC_FAILED: dict[str, Any] = {**SESSION_PAID, "payment_status": "unpaid", "status": "complete"}

# API versions since 2025-03-31: subscription under parent.subscription_details, payments as a list.
INVOICE_PAID: dict[str, Any] = {
    "id": "in_1QkRenewalOfferloop",
    "object": "invoice",
    "amount_due": 1900,
    "amount_paid": 1900,
    "amount_remaining": 0,
    "attempt_count": 1,
    "attempted": True,
    "billing_reason": "subscription_cycle",
    "collection_method": "charge_automatically",
    "created": NOW - 3600,
    "currency": "usd",
    "customer": "cus_RkQ1offerloop",
    "customer_email": "buyer@example.com",
    "lines": {
        "object": "list",
        "data": [
            {
                "id": "il_1QkRenewalLine",
                "object": "line_item",
                "amount": 1900,
                "currency": "usd",
                "description": "1 x Inner circle (at $19.00 / month)",
                "metadata": SUB_TAGS,
                "parent": {
                    "type": "subscription_item_details",
                    "subscription_item_details": {
                        "subscription": "sub_1QkOfferloopMonthly",
                        "subscription_item": "si_RkQ1item",
                    },
                },
                "quantity": 1,
            }
        ],
        "has_more": False,
        "url": "/v1/invoices/in_1QkRenewalOfferloop/lines",
    },
    "livemode": False,
    "metadata": {},
    "parent": {
        "type": "subscription_details",
        "quote_details": None,
        "subscription_details": {"metadata": SUB_TAGS, "subscription": "sub_1QkOfferloopMonthly"},
    },
    "payments": {
        "object": "list",
        "data": [
            {
                "id": "inpay_1QkOfferloop",
                "object": "invoice_payment",
                "amount_paid": 1900,
                "amount_requested": 1900,
                "currency": "usd",
                "invoice": "in_1QkRenewalOfferloop",
                "is_default": True,
                "payment": {"type": "payment_intent", "payment_intent": "pi_3QkRenewal"},
                "status": "paid",
            }
        ],
        "has_more": False,
    },
    "status": "paid",
    "subtotal": 1900,
    "total": 1900,
}

# API versions before 2025-03-31: subscription, payment_intent and charge on the invoice itself.
INVOICE_FAILED_LEGACY: dict[str, Any] = {
    "id": "in_1PLegacyFailed",
    "object": "invoice",
    "amount_due": 1900,
    "amount_paid": 0,
    "amount_remaining": 1900,
    "attempt_count": 2,
    "attempted": True,
    "billing_reason": "subscription_cycle",
    "charge": "ch_3PLegacyDeclined",
    "currency": "usd",
    "customer": "cus_RkQ1offerloop",
    "lines": {"object": "list", "data": [], "has_more": False},
    "metadata": {},
    "next_payment_attempt": NOW + 3 * 86_400,
    "payment_intent": "pi_3PLegacyDeclined",
    "status": "open",
    "subscription": "sub_1QkOfferloopMonthly",
    "subscription_details": {"metadata": SUB_TAGS},
}

SUBSCRIPTION: dict[str, Any] = {
    "id": "sub_1QkOfferloopMonthly",
    "object": "subscription",
    "cancel_at": None,
    "cancel_at_period_end": True,
    "canceled_at": None,
    "collection_method": "charge_automatically",
    "created": NOW - 40 * 86_400,
    "currency": "usd",
    "customer": "cus_RkQ1offerloop",
    "ended_at": None,
    "items": {
        "object": "list",
        "data": [
            {
                "id": "si_RkQ1item",
                "object": "subscription_item",
                "price": {
                    "id": "price_1QkInnerCircle",
                    "object": "price",
                    "currency": "usd",
                    "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
                    "type": "recurring",
                    "unit_amount": 1900,
                },
                "quantity": 2,
                "subscription": "sub_1QkOfferloopMonthly",
            }
        ],
        "has_more": False,
    },
    "latest_invoice": "in_1QkRenewalOfferloop",
    "livemode": False,
    "metadata": SUB_TAGS,
    "status": "active",
    "trial_end": None,
}

SUBSCRIPTION_CANCELED: dict[str, Any] = {
    **SUBSCRIPTION,
    "cancel_at_period_end": False,
    "canceled_at": NOW - 60,
    "ended_at": NOW - 60,
    "status": "canceled",
}

CHARGE_REFUNDED: dict[str, Any] = {
    "id": "ch_3QkOfferloop1a2b3c",
    "object": "charge",
    "amount": 5900,
    "amount_captured": 5900,
    "amount_refunded": 2000,
    "balance_transaction": {
        "id": "txn_3QkOfferloop",
        "object": "balance_transaction",
        "amount": 5900,
        "currency": "eur",
        "fee": 201,
        "net": 5699,
        "type": "charge",
    },
    "captured": True,
    "created": NOW - 86_400,
    "currency": "eur",
    "customer": "cus_RkQ1offerloop",
    "livemode": False,
    "metadata": TAGS,  # copied from the PaymentIntent's metadata when it was confirmed
    "paid": True,
    "payment_intent": "pi_3QkOfferloop1a2b3c",
    "refunded": False,
    "status": "succeeded",
}

CHARGE_REFUNDED_FOREIGN: dict[str, Any] = {
    **CHARGE_REFUNDED,
    "id": "ch_3QkForeign",
    "amount_refunded": 5900,
    "balance_transaction": "txn_3QkForeign",
    "metadata": {},
    "refunded": True,
}

OCCURRED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        (
            "checkout.session.completed",
            SESSION_PAID,
            {
                "kind": "checkout_completed",
                "order_id": "ord_123",
                "amount": 5900,
                "currency": "eur",
                "session_id": "cs_test_b1GZ0vPvBmE3bNvJXBq1JGnV",
                "payment_intent_id": "pi_3QkOfferloop1a2b3c",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "paid",
                "metadata": TAGS,
            },
        ),
        (
            "checkout.session.completed",
            SESSION_SUBSCRIBED,
            {
                "kind": "checkout_completed",
                "order_id": "ord_sub_9",
                "amount": 0,
                "currency": "usd",
                "session_id": "cs_test_c2SubOfferloop",
                "subscription_id": "sub_1QkOfferloopMonthly",
                "invoice_id": "in_1QkSubFirstInvoice",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "no_payment_required",
                "metadata": SUB_TAGS,
            },
        ),
        (
            "checkout.session.async_payment_failed",
            SESSION_ASYNC_FAILED,
            {
                "kind": "payment_failed",
                "order_id": "ord_123",
                "amount": 5900,
                "currency": "eur",
                "session_id": "cs_test_b1GZ0vPvBmE3bNvJXBq1JGnV",
                "payment_intent_id": "pi_3QkOfferloop1a2b3c",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "unpaid",
                "metadata": TAGS,
            },
        ),
        (
            "invoice.paid",
            INVOICE_PAID,
            {
                "kind": "payment_succeeded",
                "order_id": "ord_sub_9",
                "amount": 1900,
                "currency": "usd",
                "invoice_id": "in_1QkRenewalOfferloop",
                "subscription_id": "sub_1QkOfferloopMonthly",
                "payment_intent_id": "pi_3QkRenewal",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "paid",
                "metadata": SUB_TAGS,
                "billing_reason": "subscription_cycle",
                "attempt_count": 1,
                "proration": 0,  # it lists its lines, none a proration
            },
        ),
        (
            "invoice.payment_failed",
            INVOICE_FAILED_LEGACY,
            {
                "kind": "payment_failed",
                "order_id": "ord_sub_9",
                "amount": 1900,
                "currency": "usd",
                "invoice_id": "in_1PLegacyFailed",
                "subscription_id": "sub_1QkOfferloopMonthly",
                "payment_intent_id": "pi_3PLegacyDeclined",
                "charge_id": "ch_3PLegacyDeclined",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "open",
                "metadata": SUB_TAGS,
                "billing_reason": "subscription_cycle",
                "attempt_count": 2,
            },
        ),
        (
            "customer.subscription.updated",
            SUBSCRIPTION,
            {
                "kind": "subscription_updated",
                "order_id": "ord_sub_9",
                "amount": 3800,
                "currency": "usd",
                "subscription_id": "sub_1QkOfferloopMonthly",
                "invoice_id": "in_1QkRenewalOfferloop",
                "customer_id": "cus_RkQ1offerloop",
                "subscription_status": "active",
                "metadata": SUB_TAGS,
                "interval": "month",
                "cancel_at_period_end": True,
            },
        ),
        (
            "customer.subscription.deleted",
            SUBSCRIPTION_CANCELED,
            {
                "kind": "subscription_canceled",
                "order_id": "ord_sub_9",
                "amount": 3800,
                "currency": "usd",
                "subscription_id": "sub_1QkOfferloopMonthly",
                "invoice_id": "in_1QkRenewalOfferloop",
                "customer_id": "cus_RkQ1offerloop",
                "subscription_status": "canceled",
                "metadata": SUB_TAGS,
                "interval": "month",
                "cancel_at_period_end": False,
            },
        ),
        (
            "charge.refunded",
            CHARGE_REFUNDED,
            {
                "kind": "refunded",
                "order_id": "ord_123",
                "amount": 5900,
                "amount_refunded": 2000,
                "fee": 201,
                "currency": "eur",
                "charge_id": "ch_3QkOfferloop1a2b3c",
                "payment_intent_id": "pi_3QkOfferloop1a2b3c",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "succeeded",
                "metadata": TAGS,
            },
        ),
        (
            "charge.refunded",
            CHARGE_REFUNDED_FOREIGN,
            {
                "kind": "refunded",
                "order_id": None,
                "workspace_id": None,
                "amount": 5900,
                "amount_refunded": 5900,
                "fee": None,
                "currency": "eur",
                "charge_id": "ch_3QkForeign",
                "payment_intent_id": "pi_3QkOfferloop1a2b3c",
                "customer_id": "cus_RkQ1offerloop",
                "payment_status": "succeeded",
                "metadata": {},
            },
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_normalize_each_kind(
    webhook_provider: StripeProvider, event_type: str, obj: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = body_of(event(event_type, copy.deepcopy(obj), event_id="evt_1QkNormalize"))
    verified = webhook_provider.verify_webhook(body, sign_payload(body, SECRET, NOW), now=NOW)

    normalized = webhook_provider.normalize(verified)

    defaults: dict[str, Any] = {"workspace_id": expected["metadata"].get("workspace_id")}
    assert normalized == PaymentEvent(
        provider="stripe",
        provider_event_id="evt_1QkNormalize",
        occurred_at=OCCURRED,
        **{**defaults, **expected},
    )
    assert normalize(verified) == normalized


def test_expanded_ids_are_read_from_the_object() -> None:
    obj = {**SESSION_PAID, "customer": {"id": "cus_expanded", "object": "customer"}, "payment_intent": None}
    verified = WebhookEvent(id="evt_x", type="checkout.session.completed", created=NOW, object=obj, raw={})
    normalized = normalize(verified)
    assert normalized is not None
    assert normalized.customer_id == "cus_expanded"
    assert normalized.payment_intent_id is None


@pytest.mark.parametrize(
    "event_type", ["customer.created", "payment_intent.succeeded", "invoice.created", "ping"]
)
def test_events_we_do_not_act_on_normalize_to_none(webhook_provider: StripeProvider, event_type: str) -> None:
    body = body_of(event(event_type, {"id": "obj_1", "object": "whatever"}))
    verified = webhook_provider.verify_webhook(body, sign_payload(body, SECRET, NOW), now=NOW)
    assert webhook_provider.normalize(verified) is None


def test_the_provider_module_stays_off_the_database() -> None:
    code = (
        "import sys, offerloop.checkout.stripe_provider\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'"
        " or m.startswith(('offerloop.db', 'offerloop.models'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
