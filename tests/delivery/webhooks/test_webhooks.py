"""Outgoing webhooks against a real receiver on loopback: signatures checked by the receiver's own code, the
exact retry schedule on the jobs runner's explicit clock, 410, replay, idempotency, tenancy, bad input, SSRF."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import basic, bearer
from tests.delivery.webhooks.receiver import Running

from offerloop.db.uow import Database
from offerloop.delivery.webhooks import service, targets
from offerloop.delivery.webhooks.exceptions import InvalidTargetUrl
from offerloop.delivery.webhooks.schemas import DeliveryRead
from offerloop.delivery.webhooks.sender import WebhookConfig
from offerloop.jobs import runner
from offerloop.models.jobs import Job
from offerloop.workspaces.schemas import WorkspaceCreated

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KINDS = (service.SEND, service.REPLAY)
LOOPBACK = WebhookConfig(allow_private=True, timeout_s=2.0)


def run(db: Database, now: datetime, config: WebhookConfig = LOOPBACK) -> list[runner.Ran]:
    return runner.run_due(db, owner="test", now=now, only=KINDS, limit=20, deps={"webhooks": config})


def add_endpoint(client: TestClient, headers: dict[str, str], url: str, **fields: Any) -> dict[str, Any]:
    r = client.post("/v1/webhooks/endpoints", json={"url": url, **fields}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def deliver(
    db: Database, ws: str, key: str, event_type: str = "order.paid", **data: Any
) -> list[DeliveryRead]:
    with db.write() as session:
        return service.deliver(session, workspace_id=ws, event_type=event_type, payload=data or {"order": key},
                               idempotency_key=key, now=T0)  # fmt: skip


def delivery(db: Database, ws: str, delivery_id: str) -> DeliveryRead:
    with db.read() as session:
        return service.get_delivery(session=session, workspace_id=ws, delivery_id=delivery_id)


def job_run_at(db: Database, delivery_id: str) -> tuple[str, datetime]:
    with db.read() as session:
        job = session.scalars(select(Job).where(Job.kind == service.SEND, Job.key == delivery_id)).one()
        return job.state, job.run_at


def test_a_delivery_is_signed_and_the_receiver_verifies_it(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url, description="Zapier")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    shown = client.get(f"/v1/webhooks/endpoints/{created['id']}", headers=secret_headers).json()
    assert "secret" not in shown and shown["url"] == receiver.url and shown["enabled"] is True
    receiver.receiver.secret, receiver.receiver.clock = created["secret"], T0

    [d] = deliver(db, workspace.id, "ord_1", amount=4900, currency="EUR")
    assert (d.status, d.attempts, d.endpoint_id) == ("pending", 0, created["id"])
    assert [(r.kind, r.status) for r in run(db, T0)] == [(service.SEND, "done")]

    [got] = receiver.receiver.received
    assert got.event == {"id": d.event_id, "type": "order.paid", "created": int(T0.timestamp()),
                         "data": {"amount": 4900, "currency": "EUR"}}  # fmt: skip
    assert got.headers["offerloop-event-id"] == d.event_id
    assert got.headers["content-type"] == "application/json"
    assert got.timestamp == int(T0.timestamp()) and len(got.signatures) == 1
    after = delivery(db, workspace.id, d.id)
    assert (after.status, after.attempts, after.delivered_at, after.next_attempt_at) == (
        "delivered",
        1,
        T0,
        None,
    )
    [attempt] = after.log
    assert (attempt.number, attempt.trigger, attempt.status_code, attempt.succeeded, attempt.response_excerpt) == (
        1, "schedule", 200, True, '{"ok":true}',
    )  # fmt: skip
    assert run(db, T0 + timedelta(days=1)) == []  # nothing more to do


def test_deliver_is_idempotent_and_follows_each_endpoints_filter(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    orders = add_endpoint(client, secret_headers, receiver.url + "/orders", event_types=["order.*"])
    everything = add_endpoint(client, secret_headers, receiver.url + "/all")
    add_endpoint(client, secret_headers, receiver.url + "/off", enabled=False)
    exact = add_endpoint(client, secret_headers, receiver.url + "/exact", event_types=["buyer.created"])
    ws = workspace.id

    first = deliver(db, ws, "k-1")
    again = deliver(db, ws, "k-1")
    assert sorted(d.endpoint_id for d in first) == sorted([orders["id"], everything["id"]])
    assert [d.id for d in again] == [d.id for d in first]
    assert len({d.event_id for d in first}) == 1  # one event, the same id at every endpoint
    with db.read() as session:
        jobs = session.scalars(select(Job).where(Job.kind == service.SEND)).all()
        assert sorted(j.key for j in jobs) == sorted(d.id for d in first)

    buyer = deliver(db, ws, "k-2", event_type="buyer.created")
    assert sorted(d.endpoint_id for d in buyer) == sorted([everything["id"], exact["id"]])

    # An endpoint added later gets the event on the next call with the key, under the same event id.
    late = add_endpoint(client, secret_headers, receiver.url + "/late")
    third = deliver(db, ws, "k-1")
    assert sorted(d.endpoint_id for d in third) == sorted([orders["id"], everything["id"], late["id"]])
    assert {d.event_id for d in third} == {first[0].event_id}
    receiver.receiver.clock = T0
    receiver.receiver.secret = "not-the-secret"
    assert len(run(db, T0)) == 5
    assert receiver.receiver.requests == 5 and len(receiver.receiver.refused) == 5  # each sent once


def test_retries_follow_the_exact_backoff_schedule_then_deliver(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    r = receiver.receiver
    r.secret, r.fail = created["secret"], 3
    [d] = deliver(db, workspace.id, "ord_retry")

    now, times = T0, []
    for n in range(1, 4):
        r.clock = now
        assert [x.status for x in run(db, now)] == ["again"]
        after = delivery(db, workspace.id, d.id)
        nominal = 30.0 * 2 ** (n - 1)
        gap = (after.next_attempt_at - now).total_seconds() if after.next_attempt_at else -1
        assert nominal <= gap <= nominal * 1.25, (n, gap)
        assert gap == pytest.approx(service.retry_delay_s(n, delivery_id=d.id), abs=1e-3)
        assert job_run_at(db, d.id) == ("queued", after.next_attempt_at)
        assert (after.status, after.attempts, after.last_status_code) == ("pending", n, 500)
        assert after.log[0].response_excerpt == "x" * 500  # bounded, though the receiver sent 5000
        times.append(now)
        assert after.next_attempt_at is not None
        assert run(db, after.next_attempt_at - timedelta(seconds=1)) == []  # not due a second early
        now = after.next_attempt_at
    r.clock = now
    assert [x.status for x in run(db, now)] == ["done"]
    final = delivery(db, workspace.id, d.id)
    assert (final.status, final.attempts, final.delivered_at) == ("delivered", 4, now)
    assert [a.at for a in reversed(final.log)] == [*times, now]
    assert [a.status_code for a in reversed(final.log)] == [500, 500, 500, 200]
    assert len(r.received) == 1 and r.received[0].event["id"] == d.event_id


def test_retries_stop_three_days_after_the_first_attempt(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    r = receiver.receiver
    r.secret, r.status = created["secret"], 503
    [d] = deliver(db, workspace.id, "ord_never")
    # The schedule, computed here from the rule: doubling from 30 s, capped at 6 h, stretched <= 25 %.
    expected, at, n = [T0], T0, 1
    while True:
        nxt = at + timedelta(seconds=service.retry_delay_s(n, delivery_id=d.id))
        if nxt > T0 + timedelta(days=3):
            break
        expected.append(nxt)
        at, n = nxt, n + 1
    now = T0
    for _ in range(200):
        r.clock = now
        run(db, now)
        after = delivery(db, workspace.id, d.id)
        if after.next_attempt_at is None:
            break
        now = after.next_attempt_at
    assert after.status == "failed" and after.attempts == len(expected) == r.requests
    assert after.last_error == "HTTP 503 (gave up after 3 days)"
    with db.read() as session:
        attempts = service.get_delivery(session=session, workspace_id=workspace.id, delivery_id=d.id).log
    assert [a.at for a in reversed(attempts)] == expected[-50:]
    assert 15 <= len(expected) <= 30 and expected[-1] <= T0 + timedelta(days=3)
    assert job_run_at(db, d.id)[0] == "done"


def test_410_gone_disables_the_endpoint(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    r = receiver.receiver
    r.secret, r.clock, r.status = created["secret"], T0, 410
    [first] = deliver(db, workspace.id, "a")
    [second] = deliver(db, workspace.id, "b")
    run(db, T0)
    assert r.requests == 1  # the second delivery found the endpoint disabled and sent nothing
    endpoint = client.get(f"/v1/webhooks/endpoints/{created['id']}", headers=secret_headers).json()
    assert endpoint["enabled"] is False and endpoint["disabled_reason"].startswith(
        "the receiver answered 410 Gone"
    )
    gone = delivery(db, workspace.id, first.id)
    assert (gone.status, gone.last_status_code, gone.next_attempt_at) == ("failed", 410, None)
    skipped = delivery(db, workspace.id, second.id)
    assert (skipped.status, skipped.attempts) == ("failed", 0)
    assert skipped.last_error is not None and skipped.last_error.startswith(
        "endpoint disabled: the receiver answered 410"
    )
    assert deliver(db, workspace.id, "c") == []  # a disabled endpoint gets nothing new

    refused = client.post(f"/v1/webhooks/deliveries/{first.id}/replay", headers=secret_headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "webhook_endpoint_disabled")
    enabled = client.patch(
        f"/v1/webhooks/endpoints/{created['id']}", json={"enabled": True}, headers=secret_headers
    )
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)


def test_replay_sends_the_same_event_again_with_a_fresh_signature(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    r = receiver.receiver
    r.secret, r.clock = created["secret"], T0
    [d] = deliver(db, workspace.id, "ord_replay")
    run(db, T0)
    later = T0 + timedelta(days=5)
    queued = client.post(f"/v1/webhooks/deliveries/{d.id}/replay", headers=secret_headers)
    assert queued.status_code == 202 and queued.json() == {
        "delivery_id": d.id,
        "event_id": d.event_id,
        "queued": True,
    }
    r.clock = later
    assert [(x.kind, x.status) for x in run(db, later)] == [(service.REPLAY, "done")]
    assert [g.event["id"] for g in r.received] == [d.event_id, d.event_id]
    assert [g.timestamp for g in r.received] == [int(T0.timestamp()), int(later.timestamp())]
    assert r.received[0].event == r.received[1].event
    log = client.get(f"/v1/webhooks/endpoints/{created['id']}/deliveries", headers=secret_headers).json()
    [item] = log["items"]
    assert [(a["number"], a["trigger"], a["status_code"]) for a in item["log"]] == [
        (2, "replay", 200),
        (1, "schedule", 200),
    ]
    assert (item["status"], item["attempts"]) == ("delivered", 2)


def test_secret_rotation_signs_with_both_secrets_for_a_day(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    rotated = client.post(
        f"/v1/webhooks/endpoints/{created['id']}/rotate-secret", headers=secret_headers
    ).json()
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    r = receiver.receiver
    r.secret, r.clock = created["secret"], T0  # a receiver not yet switched still verifies
    deliver(db, workspace.id, "one")
    run(db, T0)
    assert len(r.received) == 1 and len(r.received[0].signatures) == 2
    later = T0 + timedelta(days=2)  # past the grace period: only the new secret signs
    r.secret, r.clock = rotated["secret"], later
    deliver(db, workspace.id, "two")
    with db.write() as session:  # the rotation happened "now" (wall clock): move the grace window to T0
        from offerloop.models.delivery_channels import WebhookEndpoint

        row = session.get(WebhookEndpoint, created["id"])
        assert row is not None
        row.previous_secret_until = T0 + timedelta(hours=24)
    run(db, later)
    assert len(r.received) == 2 and len(r.received[1].signatures) == 1


def test_a_timeout_and_a_redirect_are_failed_attempts(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    r = receiver.receiver
    r.secret, r.clock, r.hang = created["secret"], T0, threading.Event()
    [slow] = deliver(db, workspace.id, "slow")
    run(db, T0, WebhookConfig(allow_private=True, timeout_s=0.3))
    after = delivery(db, workspace.id, slow.id)
    assert (after.status, after.last_error, after.log[0].status_code) == (
        "pending",
        "timed out after 0.3s",
        None,
    )
    r.hang.set()
    r.hang, r.status = None, 302
    [moved] = deliver(db, workspace.id, "moved")
    before = r.requests
    run(db, T0)
    assert r.requests == before + 1  # the Location was not followed
    assert delivery(db, workspace.id, moved.id).log[0].status_code == 302


def test_delivery_log_pages_and_filters(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    created = add_endpoint(client, secret_headers, receiver.url)
    made = [deliver(db, workspace.id, f"k{i}")[0] for i in range(3)]
    url = f"/v1/webhooks/endpoints/{created['id']}/deliveries"
    first = client.get(url, params={"limit": 2}, headers=secret_headers).json()
    assert [i["id"] for i in first["items"]] == [made[2].id, made[1].id]
    second = client.get(
        url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=secret_headers
    ).json()
    assert ([i["id"] for i in second["items"]], second["next_cursor"]) == ([made[0].id], None)
    assert client.get(url, params={"status": "delivered"}, headers=secret_headers).json()["items"] == []
    bad = client.get(url, params={"cursor": "garbage!"}, headers=secret_headers)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")

    gone = client.delete(f"/v1/webhooks/endpoints/{created['id']}", headers=secret_headers)
    assert gone.status_code == 200 and gone.json()["id"] == created["id"]
    assert client.get(url, headers=secret_headers).status_code == 404
    assert [x.status for x in run(db, T0)] == ["done", "done", "done"] and receiver.receiver.requests == 0


def test_another_workspace_cannot_see_or_touch_endpoints_or_deliveries(
    db: Database, client: TestClient, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated,
    secret_headers: dict[str, str], receiver: Running,
) -> None:  # fmt: skip
    created = add_endpoint(client, secret_headers, receiver.url)
    [d] = deliver(db, workspace.id, "mine")
    other = bearer(other_workspace.secret_key)
    assert client.get("/v1/webhooks/endpoints", headers=other).json() == {"items": [], "next_cursor": None}
    eid = created["id"]
    for method, path, body in [
        ("GET", f"/v1/webhooks/endpoints/{eid}", None),
        ("PATCH", f"/v1/webhooks/endpoints/{eid}", {"enabled": False}),
        ("POST", f"/v1/webhooks/endpoints/{eid}/rotate-secret", None),
        ("GET", f"/v1/webhooks/endpoints/{eid}/deliveries", None),
        ("DELETE", f"/v1/webhooks/endpoints/{eid}", None),
        ("GET", f"/v1/webhooks/deliveries/{d.id}", None),
        ("POST", f"/v1/webhooks/deliveries/{d.id}/replay", None),
    ]:
        r = client.request(method, path, json=body, headers=other)
        assert r.status_code == 404, (method, path, r.text)
    with db.read() as session:
        assert service.get_endpoint(session=session, workspace_id=workspace.id, endpoint_id=eid).enabled
    assert deliver(db, other_workspace.id, "mine") == []  # its events never reach my endpoints
    write_key = client.get("/v1/webhooks/endpoints", headers=basic(workspace.write_key))
    assert (write_key.status_code, write_key.json()["error"]["code"]) == (403, "secret_key_required")
    assert client.get("/v1/webhooks/endpoints").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"{not json", b"[]", b'"x"', b"null",
        b'{"url": 42}', b'{"url": "https://ok.example/h", "enabled": "maybe"}',
        b'{"url": "https://ok.example/h", "unknown": 1}', b'{"url": "https://ok.example/h", "event_types": ["bad type!"]}',
        b'{"url": "https://ok.example/h", "event_types": "order.paid"}', b'{"description": "no url"}',
        b'{"url": "ftp://ok.example/h"}', b'{"url": "https://user:pw@ok.example/h"}', b'{"url": "https:///nohost"}',
        b'{"url": "https://ok.example:99999/h"}', b'{"url": "https://ok.example/h#frag"}',
        b'{"url": "https://ok.example/\\u0000"}', b'{"url": "https://ok.example/' + b"a" * 3000 + b'"}',
        b'{"url": "https://ok.example/h", "description": "' + b"d" * 501 + b'"}',
    ],
)  # fmt: skip
def test_garbage_endpoint_bodies_are_422(
    client: TestClient, secret_headers: dict[str, str], body: bytes
) -> None:
    r = client.post(
        "/v1/webhooks/endpoints", content=body, headers={**secret_headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in {"validation_failed", "invalid_target_url", "invalid_input"}


def test_garbage_updates_and_ids_are_4xx(
    client: TestClient, secret_headers: dict[str, str], receiver: Running
) -> None:
    eid = add_endpoint(client, secret_headers, receiver.url)["id"]
    for body in (b"{", b'{"url": "gopher://x"}', b'{"enabled": []}', b'{"secret": "whsec_mine"}'):
        r = client.patch(
            f"/v1/webhooks/endpoints/{eid}",
            content=body,
            headers={**secret_headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, body
    assert client.get("/v1/webhooks/endpoints/" + "x" * 41, headers=secret_headers).status_code == 422
    assert client.post("/v1/webhooks/deliveries/whd_nope/replay", headers=secret_headers).status_code == 404
    assert (
        client.get("/v1/webhooks/endpoints", params={"limit": 0}, headers=secret_headers).status_code == 422
    )


def test_ssrf_guard_refuses_private_targets(
    db: Database, database_url: str, workspace: WorkspaceCreated
) -> None:
    from offerloop.api import create_app
    from offerloop.config import Settings

    strict = Settings(environment="test", database_url=database_url, log_level="WARNING")
    assert strict.webhook_allow_private is False
    headers = bearer(workspace.secret_key)
    with TestClient(create_app(strict, db=db), raise_server_exceptions=False) as c:
        for url in ["http://127.0.0.1:8080/h", "http://10.1.2.3/h", "http://192.168.0.1/h", "http://[::1]/h",
                    "http://localhost/h", "http://api.localhost/h", "http://169.254.169.254/latest/meta-data",
                    "http://[::ffff:127.0.0.1]/h", "http://0.0.0.0/h", "http://100.64.0.1/h",
                    # IPv6 forms that carry a private IPv4 address to a translator or tunnel: compatible, NAT64
                    # (well-known and local-use prefixes), 6to4, Teredo
                    "http://[::7f00:1]/h", "http://[64:ff9b::a9fe:a9fe]/h", "http://[64:ff9b:1::a00:1]/h",
                    "http://[2002:7f00:1::]/h", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h",
                    # other spellings of 127.0.0.1 and 0.0.0.0 every resolver accepts (found over HTTP: they
                    # were stored as names and only refused at send time)
                    "http://0x7f000001/h", "http://2130706433/h", "http://0177.0.0.1/h", "http://127.1/h",
                    "http://0/h", "http://0xa9.0xfe.0xa9.0xfe/h"]:  # fmt: skip
            r = c.post("/v1/webhooks/endpoints", json={"url": url}, headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_target_url"), url
        for url in ["http://[64:ff9b::808:808]/h", "http://[2002:808:808::1]/h",  # public IPv4 inside: fine
                    "http://134744072/h", "http://1e100.example/h", "http://0x.example/h"]:  # fmt: skip
            assert c.post("/v1/webhooks/endpoints", json={"url": url}, headers=headers).status_code == 201, (
                url
            )
        ok = c.post("/v1/webhooks/endpoints", json={"url": "https://hooks.example.com/in"}, headers=headers)
        assert ok.status_code == 201
        moved = c.patch(
            f"/v1/webhooks/endpoints/{ok.json()['id']}", json={"url": "http://127.0.0.1/"}, headers=headers
        )
        assert (moved.status_code, moved.json()["error"]["code"]) == (422, "invalid_target_url")
    # At send time the resolved address is checked: this machine's own name resolves to a non-public address.
    with pytest.raises(InvalidTargetUrl, match="resolves to a non-public address"):
        targets.resolve(f"http://{socket.gethostname()}:9/h", allow_private=False)


def test_ssrf_guard_at_send_time(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    receiver: Running,
) -> None:
    add_endpoint(client, secret_headers, receiver.url)  # stored while private targets were allowed
    [d] = deliver(db, workspace.id, "ssrf")
    run(db, T0, WebhookConfig(allow_private=False, timeout_s=1.0))
    after = delivery(db, workspace.id, d.id)
    assert receiver.receiver.requests == 0
    # A refusal is final: no three days of retries that can only be refused again.
    assert (after.status, after.next_attempt_at, after.attempts) == ("failed", None, 1)
    assert after.last_error == "refused: the URL points at a private, loopback or reserved address"
