"""Console test helpers: team members, and signing in through the real form (token, cookies and all)."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

from offerloop.console import service as console_service
from offerloop.console.schemas import UserRead
from offerloop.db.uow import Database

PASSWORD = "correct horse battery staple"
_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(db: Database, workspace_id: str, email: str, role: str, password: str = PASSWORD) -> UserRead:
    with db.write() as session:
        return console_service.create_user(
            session=session, workspace_id=workspace_id, email=email, role=role, password=password
        )


def login_token(client: TestClient | httpx.Client) -> str:
    page = client.get("/console/login")
    assert page.status_code == 200
    found = _LOGIN_TOKEN.search(page.text)
    assert found is not None
    return found.group(1)


def sign_in(
    client: TestClient | httpx.Client, email: str, password: str = PASSWORD, next_url: str = "/console"
) -> httpx.Response:
    token = login_token(client)
    return client.post(
        "/console/login",
        data={"email": email, "password": password, "login_token": token, "next": next_url},
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in_as(client: TestClient, db: Database, workspace_id: str, role: str) -> str:
    """Sign ``client`` in as a new team member with ``role``; their CSRF token."""
    email = f"{role}-{workspace_id[-6:]}@example.com"
    add_user(db, workspace_id, email, role)
    assert sign_in(client, email).status_code == 303
    return csrf_of(client.get("/console").text)
