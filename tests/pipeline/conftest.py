from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).parent))  # support.py, also imported by the subprocess scripts

import support


@pytest.fixture(scope="session", autouse=True)
def _calls_table(engine: Engine) -> None:
    support.create_calls_table(engine)


@pytest.fixture
def test_consumers() -> Iterator[None]:
    support.CURED.clear()
    support.register(poison=True)
    yield
    support.unregister_all()
