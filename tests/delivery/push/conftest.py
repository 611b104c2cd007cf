from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.delivery.push.pushservice import Running


@pytest.fixture
def push_service() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()
