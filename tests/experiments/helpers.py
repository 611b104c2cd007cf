"""Seeded buyers sent through the tracking API, and experiments made through the experiments API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from fastapi.testclient import TestClient


def send(client: TestClient, headers: dict[str, str], messages: Iterable[dict[str, Any]]) -> None:
    """Segment messages through /v1/batch, 500 at a time."""
    batch: list[dict[str, Any]] = []
    for message in messages:
        batch.append(message)
        if len(batch) == 500:
            _post(client, headers, batch)
            batch = []
    if batch:
        _post(client, headers, batch)


def _post(client: TestClient, headers: dict[str, str], batch: list[dict[str, Any]]) -> None:
    r = client.post("/v1/batch", headers=headers, content=orjson.dumps({"batch": batch}))
    assert r.status_code == 200, r.text


def track(user: str, event: str, at: datetime, n: int, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "messageId": f"{user}-{event}-{n}",
            "timestamp": at.isoformat(), "properties": properties}  # fmt: skip


def order(user: str, at: datetime, n: int, total_minor: int) -> dict[str, Any]:
    return track(user, "Order Completed", at, n, total_minor=total_minor, currency="USD", offer_key="course")


def experiment(key: str, weights: tuple[float, ...] = (1, 1), **extra: Any) -> dict[str, Any]:
    names = ["control", "treatment", *(f"v{i}" for i in range(2, len(weights)))]
    return {"key": key, "subject": "offer", "subject_id": "course",
            "arms": [{"key": k, "weight": w, "value": f"{k}-page"} for k, w in zip(names, weights, strict=False)],
            **extra}  # fmt: skip
