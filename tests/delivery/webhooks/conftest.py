from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.delivery.webhooks.receiver import Running

from offerloop.config import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Loopback receivers: the SSRF guard is lifted here, as in local development (tests of the guard set it).
    return Settings(
        environment="test", database_url=database_url, log_json=True, log_level="WARNING",
        webhook_allow_private=True, webhook_timeout_s=2.0,
    )  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()
