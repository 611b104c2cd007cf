"""Fixtures of the portal's HTTP tests: a shop with two buyers (Ada and Bob, each with a workbook and a plan)
and the mail the delivery jobs send, captured in the embedded Maildir."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import Mailer, buyer_buys, fulfil, setup_shop


@pytest.fixture
def mailer(db: Database, settings: Settings, tmp_path: Path) -> Mailer:
    settings.maildir_path = str(tmp_path / "maildir")
    return Mailer(db, settings)


@pytest.fixture
def shop(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers: dict[str, str],
    write_headers: dict[str, str], mailer: Mailer,
) -> dict[str, dict[str, str]]:  # fmt: skip
    """user -> offer -> order id, for Ada and Bob, each with a launch workbook and the monthly plan."""
    setup_shop(client, secret_headers)
    bought = {u: buyer_buys(client, secret_headers, write_headers, u, "launch-workbook", "membership-monthly")
              for u in ("ada", "bob")}  # fmt: skip
    fulfil(db)
    return bought
