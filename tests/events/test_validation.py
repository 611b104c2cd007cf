"""Validation's fast paths give exactly what the general paths give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offerloop.core.clock import parse_timestamp, utcnow
from offerloop.events.touchpoints import extract_touchpoint
from offerloop.events.validation import _UNSET, Accepted, _Refuse, _time_field, prepare_batch
from offerloop.sim.audience import Audience


def _general(value: object) -> tuple[str, object]:
    try:
        return "ok", parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        return "refused", None


def _fast(value: object) -> tuple[str, object]:
    try:
        return "ok", _time_field({"t": value}, "t")
    except _Refuse as refusal:
        assert refusal.code == "invalid_timestamp"
        return "refused", None


EDGES = [
    "2026-11-20T09:30:00Z", "2026-11-20T09:30:00z", "2026-11-20T09:30:00.123456789Z", "2026-11-20",
    "2026-11-20Z", " 2026-11-20T09:30:00Z ", "2026-11-20T09:30:00+00:00Z", "2026-11-20T09:30:00+0530",
    "2026-11-20 09:30", "20261120T093000Z", "2026-W47-5", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "2026-11-20T25:00:00Z", "Z", "", "not a time", 1763631000, 1763631000123,
    1.5, True, None, [], {},
]  # fmt: skip


@pytest.mark.parametrize("value", EDGES, ids=repr)
def test_timestamp_fast_path_matches_parse_timestamp_on_edges(value: object) -> None:
    assert _fast(value) == _general(value)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
    st.sampled_from(["T", " "]),
    st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
    st.sampled_from(["", "Z", "z"]),
)
def test_timestamp_fast_path_matches_parse_timestamp(
    moment: datetime, zone: timezone | None, sep: str, spec: str, suffix: str
) -> None:
    text = moment.replace(tzinfo=zone).isoformat(sep=sep, timespec=spec)
    if zone is None:
        text += suffix
    assert _fast(text) == _general(text)


@given(st.text(max_size=40))
def test_timestamp_fast_path_matches_parse_timestamp_on_any_text(text: str) -> None:
    assert _fast(text) == _general(text)


def test_touchpoint_is_extracted_on_first_use_exactly_as_before() -> None:
    messages = list(Audience(buyers=200, events=4000, seed=3).messages())
    batch = prepare_batch(messages, received_at=utcnow(), max_event_bytes=32 * 1024)
    assert len(batch.accepted) > 3900
    assert all(a._touchpoint is _UNSET for a in batch.accepted)  # nothing extracted while validating
    for a in batch.accepted:
        assert a.touchpoint == extract_touchpoint(a.type, a.properties, a.context)
        assert a.touchpoint is a.touchpoint  # extracted once
    assert sum(a.touchpoint is not None for a in batch.accepted) > 1000


def test_a_given_touchpoint_is_kept() -> None:
    event = Accepted(
        index=0, message_id="m", type="track", name="x", user_id="u", anonymous_id=None, group_id=None,
        previous_id=None, timestamp=utcnow(), original_timestamp=None, sent_at=None,
        properties={"url": "https://x.example/?utm_source=ig"}, traits=None, context=None, touchpoint=None,
    )  # fmt: skip
    assert event.touchpoint is None
    assert orjson.dumps(repr(event))
