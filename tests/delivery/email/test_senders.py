"""Sender verification on a shared server: the operator decides which domains a workspace may send From
(OFFERLOOP_SENDER_DOMAINS for every workspace, `offerloop workspace senders allow WS DOMAIN` for one); any
other From is a 422 at PUT /v1/delivery/settings; e-mail still queued From a domain the operator withdrew
fails permanently with the reason (nothing reaches the SMTP server on loopback); with the embedded Maildir
alone, any From goes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from tests.conftest import bearer
from tests.delivery.email import test_journey_mail as journey_mail
from tests.delivery.email.test_journey_mail import outbox, run, signup
from tests.delivery.email.test_reports_apply import events
from typer.testing import CliRunner

from offerloop.cli import main as cli_main
from offerloop.config import Settings

mail = journey_mail.mail  # SMTP on loopback: sender verification is on


@pytest.fixture
def cli(db, monkeypatch) -> Any:
    @contextmanager
    def same_database(cfg: Any = None) -> Iterator[Any]:
        yield db  # the test's database (one rolled-back transaction)

    monkeypatch.setattr(cli_main, "database", same_database)
    monkeypatch.setenv("OFFERLOOP_SMTP_URL", "smtp://127.0.0.1:2525")  # the CLI's settings: SMTP, verified

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli_main.app, ["workspace", "senders", *args])

    return invoke


def put_sender(client, headers, sender: str | None) -> Any:
    return client.put("/v1/delivery/settings", headers=headers, json={
        "send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None, "sender": sender})  # fmt: skip


def test_a_from_outside_the_allowed_domains_is_refused_at_the_put(
    client, secret_headers, workspace, mail, cli
) -> None:
    r = put_sender(client, secret_headers, "Rowan <hello@rowan.example>")
    assert r.status_code == 422
    assert r.json()["error"] == {
        "code": "sender_not_allowed",
        "message": f"this server does not allow workspace {workspace.id} to send From the domain rowan.example: "
        f"the operator allows it with `offerloop workspace senders allow {workspace.id} rowan.example` or "
        "OFFERLOOP_SENDER_DOMAINS",
        "details": {"sender": "Rowan <hello@rowan.example>"},
    }
    assert client.get("/v1/delivery/settings", headers=secret_headers).json()["sender"] is None

    done = cli("allow", workspace.id, "Rowan.Example.")
    assert done.exit_code == 0, done.output
    assert done.output == f"{workspace.id} may send From rowan.example and its subdomains\n"
    again = cli("allow", workspace.id, "rowan.example")
    assert again.output.endswith("(already allowed)\n"), again.output
    for sender in ("Rowan <hello@rowan.example>", "news@News.Rowan.Example"):
        assert put_sender(client, secret_headers, sender).status_code == 200, sender
    # A look-alike is not a subdomain; the server's own default (no sender) is always fine.
    for sender in ("x@evilrowan.example", "x@rowan.example.evil.test"):
        assert put_sender(client, secret_headers, sender).json()["error"]["code"] == "sender_not_allowed"
    assert put_sender(client, secret_headers, None).status_code == 200
    # Found over HTTP: a display name that reads as another domain's address (mail apps show only the name).
    r = put_sender(client, secret_headers, '"security@bank.example" <hello@rowan.example>')
    assert (r.status_code, r.json()["error"]["code"]) == (422, "sender_not_allowed")
    assert r.json()["error"]["message"] == (
        "the sender's display name 'security@bank.example' looks like an address: give a name without @"
    )
    listed = cli("list", workspace.id)
    assert (listed.exit_code, listed.output) == (0, "rowan.example  (this workspace)\n")


def test_another_workspace_does_not_get_the_domain(
    client, secret_headers, workspace, other_workspace, mail, cli
) -> None:
    assert cli("allow", workspace.id, "rowan.example").exit_code == 0
    other = bearer(other_workspace.secret_key)
    r = put_sender(client, other, "billing@rowan.example")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "sender_not_allowed")
    assert put_sender(client, secret_headers, "billing@rowan.example").status_code == 200


def test_server_wide_domains_and_the_maildir_default(client, secret_headers, settings, mail) -> None:
    settings.sender_domains = "creators.example"
    assert put_sender(client, secret_headers, "a@creators.example").status_code == 200
    assert put_sender(client, secret_headers, "a@shop.creators.example").status_code == 200
    assert put_sender(client, secret_headers, "a@bank.example").status_code == 422
    # The embedded Maildir alone (development, the demo): any From goes.
    settings.smtp_url, settings.sender_domains = None, ""
    assert put_sender(client, secret_headers, "a@bank.example").status_code == 200


def test_queued_mail_from_a_withdrawn_domain_fails_with_the_reason(
    client, db, write_headers, secret_headers, workspace, mail, cli
) -> None:
    assert cli("allow", workspace.id, "rowan.example").exit_code == 0
    assert put_sender(client, secret_headers, "Rowan <hello@rowan.example>").status_code == 200
    signup(client, write_headers, "ann")  # queues the welcome e-mail
    done = cli("deny", workspace.id, "rowan.example")
    assert (done.exit_code, done.output) == (0, f"{workspace.id} may no longer send From rowan.example\n")
    run(db, mail["settings"])
    assert mail["server"].recorder.messages == []
    [row] = outbox(client, secret_headers)
    assert row["status"] == "failed"
    assert row["detail"] == (
        f"sender not allowed: this server does not allow workspace {workspace.id} to send From the domain "
        f"rowan.example: the operator allows it with `offerloop workspace senders allow {workspace.id} "
        "rowan.example` or OFFERLOOP_SENDER_DOMAINS"
    )
    assert events(client, secret_headers, "ann") == ["Message Failed"]
    # Allowed again, the next message goes.
    assert cli("allow", workspace.id, "rowan.example").exit_code == 0
    signup(client, write_headers, "bo")
    run(db, mail["settings"])
    [got] = mail["server"].recorder.messages
    assert got.rcpt_tos == ["bo@example.com"]


def test_the_cli_refuses_bad_input(workspace, cli) -> None:
    bad = cli("allow", workspace.id, "not a domain")
    assert bad.exit_code == 1 and "invalid_sender_domain" in bad.output
    assert "'not a domain' is not a domain name like mail.example.com" in bad.output
    missing = cli("allow", "ws_nope", "rowan.example")
    assert missing.exit_code == 1 and "workspace ws_nope does not exist" in missing.output
    assert (
        cli("deny", workspace.id, "rowan.example").output
        == f"rowan.example was not allowed to {workspace.id}\n"
    )


def test_the_sender_domains_setting_is_validated() -> None:
    assert Settings(sender_domains=" A.example , b.example.,a.example").sender_domain_list == {
        "a.example",
        "b.example",
    }
    with pytest.raises(ValueError, match="'bad_domain' is not a domain name"):
        Settings(sender_domains="bad_domain")
