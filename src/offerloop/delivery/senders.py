"""Sender verification: the domains a workspace may send e-mail From, on a server shared by workspaces.

The operator decides: ``OFFERLOOP_SENDER_DOMAINS`` lists domains every workspace may use, and
``offerloop workspace senders allow WS DOMAIN`` allows one more to one workspace. A domain allows its
subdomains (``example.com`` allows ``news.example.com``: one owner, and DMARC's relaxed alignment agrees).
Verification is on when the server sends through SMTP (``OFFERLOOP_SMTP_URL``) or lists domains; with the
embedded Maildir alone (development, the demo) any From goes. A workspace without a sender of its own sends
From ``OFFERLOOP_MAIL_FROM``, the operator's address, which is never checked.

Checked twice: ``PUT /v1/delivery/settings`` refuses a sender outside the allowed domains (422
``sender_not_allowed``), and each e-mail is checked when it is gated, so a message whose workspace's From is
no longer allowed (the operator withdrew the domain) fails permanently with the reason instead of going.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from offerloop.config import DOMAIN_NAME, Settings
from offerloop.delivery import repository
from offerloop.delivery.email.compose import mailbox_domain, mailbox_name
from offerloop.delivery.email.exceptions import InvalidEmail
from offerloop.delivery.exceptions import InvalidSenderDomain, SenderNotAllowed


@dataclass(frozen=True)
class SenderPolicy:
    """What the server's settings say: whether From domains are checked, and the ones every workspace has."""

    verified: bool
    server_domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: Settings) -> SenderPolicy:
        return cls(verified=settings.senders_verified, server_domains=settings.sender_domain_list)


OPEN: Final = SenderPolicy(verified=False)


def domain_name(text: str) -> str:
    """``text`` as a domain name (lower case, IDNA); InvalidSenderDomain when it is none."""
    raw = text.strip().rstrip(".")
    try:
        domain = raw.encode("idna").decode("ascii").lower() if raw else ""
    except UnicodeError:
        domain = ""
    if not DOMAIN_NAME.fullmatch(domain):
        raise InvalidSenderDomain(
            f"{text[:300]!r} is not a domain name like mail.example.com", details={"domain": text[:300]}
        )
    return domain


def _covered(domain: str, allowed: frozenset[str] | list[str]) -> bool:
    return any(domain == a or domain.endswith("." + a) for a in allowed)


def problem(session: Session, workspace_id: str, sender: str | None, policy: SenderPolicy) -> str | None:
    """Why the workspace may not send From ``sender`` (None: it may)."""
    if sender is None or not policy.verified:
        return None
    try:
        domain, name = mailbox_domain(sender), mailbox_name(sender)
    except InvalidEmail as exc:
        return f"the sender {sender!r} is not one address: {exc.message}"
    if "@" in name:  # '"security@bank.example" <a@allowed.example>': most mail apps show only the name
        return f"the sender's display name {name!r} looks like an address: give a name without @"
    if _covered(domain, policy.server_domains) or _covered(
        domain, repository.sender_domains(session, workspace_id)
    ):
        return None
    return (
        f"this server does not allow workspace {workspace_id} to send From the domain {domain}: the operator "
        f"allows it with `offerloop workspace senders allow {workspace_id} {domain}` or OFFERLOOP_SENDER_DOMAINS"
    )


def check(session: Session, workspace_id: str, sender: str | None, policy: SenderPolicy) -> None:
    """SenderNotAllowed (422) when the workspace may not send From ``sender``."""
    found = problem(session, workspace_id, sender, policy)
    if found is not None:
        raise SenderNotAllowed(found, details={"sender": sender})


def allow(session: Session, workspace_id: str, domain: str, now: datetime) -> tuple[str, bool]:
    """Allow ``domain`` (and its subdomains) to the workspace; (the domain, whether it is new)."""
    name = domain_name(domain)
    return name, repository.add_sender_domain(session, workspace_id, name, now)


def deny(session: Session, workspace_id: str, domain: str) -> tuple[str, bool]:
    """Withdraw a domain; queued e-mail From it then fails with the reason. (the domain, whether it was allowed)"""
    name = domain_name(domain)
    return name, repository.remove_sender_domain(session, workspace_id, name)


def allowed(session: Session, workspace_id: str) -> list[str]:
    return repository.sender_domains(session, workspace_id)
