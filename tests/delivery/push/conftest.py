from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.delivery.push.pushservice import Running

from offerloop.config import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A push service on loopback over http: allowed here, as in local development (a test checks the guard).
    return Settings(
        environment="test", database_url=database_url, log_json=True, log_level="WARNING",
        webhook_allow_private=True, webhook_timeout_s=5.0,
    )  # fmt: skip


@pytest.fixture
def push_service() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()
