"""Property: nothing a client can send to the tracking API produces a 500, and nothing is lost."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from offerloop.models import Event, QuarantinedEvent

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Messages that look like Segment calls, with every field possibly wrong.
segment_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "page", "identify", "alias", "group", "screen", "bogus"])
        | json_scalars,
        "userId": st.sampled_from(["u1", "null", "", "0"]) | json_values,
        "anonymousId": st.sampled_from(["a1", "undefined"]) | json_values,
        "previousId": json_values,
        "groupId": json_values,
        "event": st.text(max_size=10) | json_values,
        "messageId": st.text(max_size=12) | json_values,
        "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", "1e400"]) | json_values,
        "sentAt": json_values,
        "properties": json_values,
        "traits": json_values,
        "context": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(segment_like | json_values, max_size=6))
def test_any_batch_is_answered_without_500_and_every_item_accounted(
    client, write_headers, db, workspace, batch
):
    with db.read() as session:
        before_events = session.scalar(
            select(func.count()).select_from(Event).where(Event.workspace_id == workspace.id)
        )
        before_q = session.scalar(
            select(func.count())
            .select_from(QuarantinedEvent)
            .where(QuarantinedEvent.workspace_id == workspace.id)
        )
    r = client.post("/v1/batch", headers=write_headers, content=orjson.dumps({"batch": batch}))
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        body = r.json()
        assert body["accepted"] + body["duplicates"] + body["quarantined"] == len(batch)
        with db.read() as session:
            events = session.scalar(
                select(func.count()).select_from(Event).where(Event.workspace_id == workspace.id)
            )
            quarantined = session.scalar(
                select(func.count())
                .select_from(QuarantinedEvent)
                .where(QuarantinedEvent.workspace_id == workspace.id)
            )
        assert events - before_events == body["accepted"]
        assert quarantined - before_q == body["quarantined"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=200) | json_values.map(orjson.dumps),
    path=st.sampled_from(["/v1/track", "/v1/identify", "/v1/alias", "/v1/batch"]),
)
def test_any_body_on_any_tracking_endpoint_is_a_clear_answer(client, write_headers, body, path):
    r = client.post(path, headers=write_headers, content=body)
    assert r.status_code < 500, (path, body, r.text)
    payload = r.json()
    assert payload.get("success") is True or payload["error"]["code"]
