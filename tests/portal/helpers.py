"""Portal test helpers: a shop whose buyer bought a personalised workbook and a plan (through the real API and
the real fulfilment and render jobs), the mail the delivery jobs send (captured in the embedded Maildir), and
signing in through the real forms."""

from __future__ import annotations

import email
import mailbox
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from tests.assembly.test_artifacts_api import ATOMS, POLICY, QUIZ
from tests.checkout.test_checkout_flow import CATALOG
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.delivery import tasks
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner

# The demo catalog, its launch workbook built by the test policy (review: never, so it is ready once rendered).
SHOP_CATALOG = CATALOG.replace("{component: deliverable, ref: launch-workbook}",
                               "{component: deliverable, ref: starter-workbook}")  # fmt: skip
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"(https?://\S+/p/\S+/auth\?token=[A-Za-z0-9_-]+)")


def setup_shop(api: TestClient | httpx.Client, secret: dict[str, str]) -> None:
    """Content, quiz, the workbook policy and the catalog of a workspace."""
    atoms = [{"text": t, "path": f"{k}.md"} for k, t in ATOMS.items()]
    assert api.post("/v1/content/sync", headers=secret, json={"atoms": atoms}).status_code == 200
    assert api.put("/v1/quizzes", headers=secret, json={"text": QUIZ}).status_code == 200
    policy_text = POLICY.replace("{REVIEW}", "never")
    assert api.put("/v1/policies", headers=secret, json={"text": policy_text}).status_code == 200
    assert api.put("/v1/offers/catalog", headers=secret, json={"text": SHOP_CATALOG}).status_code == 200


def buyer_buys(
    api: TestClient | httpx.Client, secret: dict[str, str], write: dict[str, str], user: str, *offers: str
) -> dict[str, str]:
    """``user`` (e-mail <user>@example.com) identified, and their paid orders of ``offers``: offer -> order id."""
    ident = msg(
        userId=user,
        messageId=f"{user}-id",
        traits={"email": f"{user}@example.com", "first_name": user.title()},
    )
    assert api.post("/v1/identify", headers=write, json=ident).status_code == 200
    orders = {}
    for offer in offers:
        made = api.post("/v1/checkout", headers=secret, json={"user_id": user, "offer": offer})
        assert made.status_code == 201, made.text
        paid = api.post(
            f"/v1/orders/{made.json()['id']}/paid", headers=secret, json={"reference": f"INV-{user}"}
        )
        assert paid.status_code == 200, paid.text
        orders[offer] = made.json()["id"]
    return orders


def fulfil(db: Database) -> None:
    checkout_service.run_fulfilment(db=db)
    assembly_service.run_pending(db=db)


def send_mail(db: Database, settings: Settings) -> None:
    """Run the delivery send jobs due now, pass after pass (a batch sends one message per buyer, as the
    server's worker threads would), until none is left."""
    for _ in range(20):
        if not runner.run_due(db, owner="t", only=(engine.SEND,), limit=50, deps={"settings": settings}):
            break
    tasks.close_mailers()


def captured(settings: Settings) -> list[EmailMessage]:
    box = mailbox.Maildir(Path(str(settings.maildir_path)), create=True)  # nothing sent yet: an empty box
    found = [email.message_from_bytes(bytes(m), policy=policy.default) for m in box]
    return [m for m in found if isinstance(m, EmailMessage)]


def link_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found is not None, "no sign-in link in the e-mail"
    return found.group(1)


def form_token(html: str) -> str:
    found = FORM_TOKEN.search(html)
    assert found is not None, "no form token on the page"
    return found.group(1)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def ask_for_link(client: TestClient, workspace_id: str, address: str) -> httpx.Response:
    page = client.get(f"/p/{workspace_id}/login")
    assert page.status_code == 200
    return client.post(
        f"/p/{workspace_id}/login", data={"email": address, "form_token": form_token(page.text)}
    )


def use_link(client: TestClient, link: str) -> httpx.Response:
    path = httpx.URL(link)
    page = client.get(f"{path.path}?{path.query.decode()}")
    assert page.status_code == 200, page.text
    token = path.params["token"]
    return client.post(
        path.path, data={"token": token, "form_token": form_token(page.text)}, follow_redirects=False
    )


def post_token(client: TestClient, workspace_id: str, token: str) -> httpx.Response:
    """POST ``token`` to the sign-in endpoint as a client that skipped the confirm page would (its form token
    from the sign-in page): the endpoint itself must refuse what the confirm page refuses."""
    page = client.get(f"/p/{workspace_id}/login")
    return client.post(f"/p/{workspace_id}/auth", data={"token": token, "form_token": form_token(page.text)},
                       follow_redirects=False)  # fmt: skip


@dataclass
class Mailer:
    db: Database
    settings: Settings

    def links(self, address: str) -> set[str]:
        """Send what is queued; the sign-in links mailed to ``address`` so far."""
        send_mail(self.db, self.settings)
        return {link_in(m) for m in captured(self.settings) if m["To"] == address}

    def new_link(self, address: str, seen: set[str]) -> str:
        """The one link mailed to ``address`` that is not in ``seen``."""
        (fresh,) = self.links(address) - seen
        return fresh


def sign_in(client: TestClient, workspace_id: str, mailer: Mailer, address: str) -> httpx.Response:
    """Ask for a link through the form, and use the one mailed."""
    seen = mailer.links(address)
    assert ask_for_link(client, workspace_id, address).status_code == 200
    return use_link(client, mailer.new_link(address, seen))
