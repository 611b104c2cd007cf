from __future__ import annotations

import pytest

from offerloop.config import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Webhook receivers and push services on loopback over http: the SSRF guard is lifted here, as in local
    # development (the tests of the guard set it themselves).
    return Settings(
        environment="test", database_url=database_url, log_json=True, log_level="WARNING",
        webhook_allow_private=True, webhook_timeout_s=5.0,
    )  # fmt: skip
