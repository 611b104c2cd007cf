from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.delivery.webhooks.receiver import Running


@pytest.fixture
def receiver() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()
