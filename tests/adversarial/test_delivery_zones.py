"""Time-zone names from outside: a buyer's ``timezone`` trait or an event's ``context.timezone`` (anyone with the
public write key sets them), and the creator's ``default_timezone``. A name that passes the zone pattern but is no
zone file — a tzdata folder such as ``America`` (the OS says "is a directory"), or a name longer than a file name
may be — is an unknown zone like any other: the workspace's zone for the buyer, a 422 for the settings; never a
crash of the send (which would fail every other buyer's message gated with it) nor a 500."""

from __future__ import annotations

from typing import Any

import pytest
from tests.delivery.test_journeys import journey, messages, run_jobs  # noqa: F401  (fixture)

from offerloop.core.clock import utcnow


@pytest.mark.parametrize("name", ["America", "Etc", "A" * 300])
def test_delivery_a_folder_or_overlong_zone_name_is_refused_by_the_settings(
    client, secret_headers, name: str
) -> None:
    r = client.put("/v1/delivery/settings", headers=secret_headers, json={"default_timezone": name})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_delivery_settings")


@pytest.mark.parametrize("where", ["trait", "context"])
def test_delivery_a_buyer_with_a_folder_as_time_zone_is_sent_to_in_the_workspaces_zone(
    client,
    db,
    write_headers,
    secret_headers,
    journey: dict[str, Any],  # noqa: F811
    where: str,
) -> None:
    for user, zone in (("odd", "America"), ("plain", "Europe/Paris")):
        body: dict[str, Any] = {
            "userId": user, "traits": {"email": f"{user}@example.com", "first_name": user}, "messageId": f"id-{user}",
            "timestamp": utcnow().isoformat(), "context": {"consent": {"categoryPreferences": {"marketing": True}}},
        }  # fmt: skip
        if where == "trait":
            body["traits"]["timezone"] = zone
        else:
            body["context"]["timezone"] = zone
        assert client.post("/v1/identify", headers=write_headers, json=body).status_code == 200
        r = client.post("/v1/track", headers=write_headers, json={
            "userId": user, "event": "Order Completed", "properties": {"total_minor": 500, "offer": "Kit"},
            "messageId": f"o-{user}", "timestamp": utcnow().isoformat(), "context": body["context"]})  # fmt: skip
        assert r.status_code == 200, r.text
    run_jobs(db, utcnow())
    sent = sorted((m["subject"], m["status"]) for m in messages(client, secret_headers))
    assert sent == [("Welcome odd", "sent"), ("Welcome plain", "sent")]
