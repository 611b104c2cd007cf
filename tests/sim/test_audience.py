"""Tests for the seeded synthetic creator audience (offerloop.sim.audience)."""

from __future__ import annotations

import functools
import json
import re
import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from offerloop.sim.audience import CHANNELS, PERSONAS, Audience, SyntheticBuyer

SMALL: dict[str, Any] = {"buyers": 600, "events": 24_000, "seed": 11}
VALID_TYPES = {"identify", "track", "page", "screen", "group", "alias"}
JUNK_IDS = {"undefined", "null", "none", "00000000-0000-0000-0000-000000000000"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MONEY_RE = re.compile(r"^\d+\.\d{2}$")


@functools.cache
def small() -> tuple[Audience, list[dict[str, Any]]]:
    audience = Audience(**SMALL)
    return audience, list(audience.messages())


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def problem(msg: dict[str, Any]) -> str | None:
    """What an ingestion API would refuse the message for (None: acceptable)."""
    kind = msg.get("type")
    if kind is None:
        return "missing type"
    if kind not in VALID_TYPES:
        return "unknown type"
    ids = [msg.get("userId"), msg.get("anonymousId")]
    present = [i for i in ids if isinstance(i, str) and i.strip()]
    if not present:
        return "no ids"
    if all(i.strip().lower() in JUNK_IDS for i in present):
        return "junk id"
    if kind == "track" and not (isinstance(msg.get("event"), str) and msg["event"].strip()):
        return "track without event"
    try:
        parse_ts(msg["timestamp"])
    except (KeyError, TypeError, ValueError):
        return "bad timestamp"
    for key in ("properties", "traits"):
        if key in msg and not isinstance(msg[key], dict):
            return f"{key} not an object"
    if len(json.dumps(msg)) > 32 * 1024:
        return "too large"
    return None


def owners(audience: Audience) -> dict[str, SyntheticBuyer]:
    out: dict[str, SyntheticBuyer] = {}
    for buyer in audience.buyers:
        for anon in buyer.anonymous_ids:
            out[anon] = buyer
        if buyer.user_id is not None:
            out[buyer.user_id] = buyer
    return out


def clean(audience: Audience, msgs: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(position, message) for well-formed first sends only."""
    seen: set[str] = set()
    out = []
    for pos, msg in enumerate(msgs):
        mid = str(msg.get("messageId"))
        if mid in audience.malformed_message_ids or mid in seen:
            continue
        seen.add(mid)
        out.append((pos, msg))
    return out


# ---- counts and determinism -----------------------------------------------------------------------


def test_exact_event_count_and_stats() -> None:
    audience, msgs = small()
    stats = audience.stats()
    assert len(msgs) == SMALL["events"] == stats.events
    assert stats.buyers == len(audience.buyers) == SMALL["buyers"]
    assert sum(stats.by_type.values()) + stats.malformed == stats.events
    assert set(stats.by_type) == VALID_TYPES
    assert sum(stats.by_channel.values()) == stats.buyers
    assert stats.identified == sum(1 for b in audience.buyers if b.user_id is not None)
    batches = list(audience.batches(100))
    assert [len(b) for b in batches[:-1]] == [100] * (len(batches) - 1)
    assert sum(len(b) for b in batches) == SMALL["events"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"buyers": 7, "events": 123},
        {"buyers": 50, "events": 10},
        {"buyers": 3, "events": 1},
        {"buyers": 5, "events": 0},
        {"buyers": 20, "events": 5000, "duplicate_rate": 0.2, "malformed_rate": 0.1, "days": 3},
        {"buyers": 40, "events": 3000, "start": datetime(2025, 12, 1), "days": 30},
    ],
)
def test_exact_count_for_odd_sizes(kwargs: dict[str, Any]) -> None:
    audience = Audience(**kwargs)
    msgs = list(audience.messages())
    assert len(msgs) == kwargs["events"]
    assert len(audience.buyers) == kwargs["buyers"]
    stats = audience.stats()
    assert stats.events == kwargs["events"]
    assert stats.malformed == sum(1 for m in msgs if m.get("messageId") in audience.malformed_message_ids)


def test_same_seed_is_byte_identical_and_different_seed_differs() -> None:
    kwargs: dict[str, Any] = {"buyers": 200, "events": 8000}
    first = Audience(seed=3, **kwargs)
    dump = json.dumps(list(first.messages()))
    assert json.dumps(list(Audience(seed=3, **kwargs).messages())) == dump
    assert json.dumps(list(first.messages())) == dump  # re-iterating the same instance
    assert json.dumps([m for batch in first.batches(77) for m in batch]) == dump
    assert json.dumps(list(Audience(seed=4, **kwargs).messages())) != dump
    assert [b.persona for b in Audience(seed=3, **kwargs).buyers] == [b.persona for b in first.buyers]


def test_default_start_is_fixed_and_start_is_honoured() -> None:
    audience, msgs = small()
    lo, hi = datetime(2026, 7, 31, 17, tzinfo=UTC), datetime(2026, 10, 30, 8, tzinfo=UTC)
    stamps = [parse_ts(m["timestamp"]) for _, m in clean(audience, msgs)]
    assert lo <= min(stamps) and max(stamps) <= hi  # 90 days from 2026-08-01, +- client clock skew
    other = Audience(buyers=30, events=1500, start=datetime(2025, 3, 1, tzinfo=UTC), days=10)
    other_stamps = [parse_ts(m["timestamp"]) for _, m in clean(other, list(other.messages()))]
    assert (
        datetime(2025, 2, 28, tzinfo=UTC)
        <= min(other_stamps)
        <= max(other_stamps)
        < datetime(2025, 3, 12, tzinfo=UTC)
    )


# ---- population ------------------------------------------------------------------------------------


def test_channel_mix_at_default_size() -> None:
    audience = Audience()  # default 5000 buyers; only the plans are built here
    mix = Counter(b.channel for b in audience.buyers)
    target = {"tiktok": 0.35, "instagram": 0.30, "newsletter": 0.15, "site": 0.20}
    assert set(mix) == set(CHANNELS)
    for channel, share in target.items():
        assert abs(mix[channel] / len(audience.buyers) - share) <= 0.03, channel
    assert set(Counter(b.persona for b in audience.buyers)) == set(PERSONAS)
    identified = sum(1 for b in audience.buyers if b.user_id is not None) / len(audience.buyers)
    assert 0.55 <= identified <= 0.65


def test_buyers_ground_truth_shape() -> None:
    audience, _ = small()
    keys = [b.key for b in audience.buyers]
    assert keys[42] == "b00042" and len(set(keys)) == len(keys)
    all_anon = [a for b in audience.buyers for a in b.anonymous_ids]
    assert len(set(all_anon)) == len(all_anon)
    for b in audience.buyers:
        assert 1 <= len(b.anonymous_ids) <= 3
        assert b.persona in PERSONAS and b.channel in CHANNELS
        assert (b.user_id is None) == (b.email is None)
        if b.user_id is not None:
            assert re.fullmatch(r"u_\d{6,}", b.user_id)
            assert b.email is not None and b.email == b.email.strip().lower() and "@" in b.email
        else:
            assert b.tiktok_id is None and b.instagram_id is None
    emails = [b.email for b in audience.buyers if b.email]
    assert len(set(emails)) == len(emails)


# ---- identity ----------------------------------------------------------------------------------------


def test_anonymous_period_precedes_identify() -> None:
    audience, msgs = small()
    owner = owners(audience)
    first_identify: dict[str, int] = {}
    for pos, msg in clean(audience, msgs):
        if msg["type"] == "identify":
            first_identify.setdefault(owner[msg["userId"]].key, pos)
    identified = {b.key for b in audience.buyers if b.user_id is not None}
    assert set(first_identify) == identified
    checked = 0
    for pos, msg in clean(audience, msgs):
        anon = msg.get("anonymousId")
        if anon is None:
            assert msg["userId"] in owner  # server-side events are for identified buyers
            assert pos > first_identify[owner[msg["userId"]].key]
            continue
        buyer = owner[anon]
        if "userId" in msg:
            assert msg["userId"] == buyer.user_id
            assert pos >= first_identify[buyer.key]
        elif buyer.user_id is not None:
            assert pos < first_identify[buyer.key]  # anonymous period, then identify
            checked += 1
    assert checked > 1000


def test_identify_traits_alias_and_group() -> None:
    audience, msgs = small()
    owner = owners(audience)
    identifies = [m for _, m in clean(audience, msgs) if m["type"] == "identify"]
    firsts: dict[str, dict[str, Any]] = {}
    for msg in identifies:
        firsts.setdefault(msg["userId"], msg)
    with_traits = [m for m in firsts.values() if "traits" in m]
    context_only = [m for m in firsts.values() if "traits" in m["context"] and "traits" not in m]
    assert 0.6 < len(with_traits) / len(firsts) < 0.97
    assert 0.01 < len(context_only) / len(firsts) < 0.12
    messy = 0
    for msg in with_traits + context_only:
        traits = msg.get("traits") or msg["context"]["traits"]
        buyer = owner[msg["userId"]]
        assert traits["email"].strip().lower() == buyer.email
        messy += traits["email"] != buyer.email
        assert set(traits) <= {"email", "name", "first_name", "phone", "tiktok_id", "instagram_id", "plan"}
    assert messy > 10
    phones = {t["phone"] for m in with_traits if "phone" in (t := m["traits"])}
    assert any(p.startswith("+") and p[1:].isdigit() for p in phones)
    assert any(not p.startswith("+") for p in phones)
    aliases = [m for _, m in clean(audience, msgs) if m["type"] == "alias"]
    assert aliases
    for msg in aliases:
        assert msg["previousId"] in owner[msg["userId"]].anonymous_ids
    groups = [m for _, m in clean(audience, msgs) if m["type"] == "group"]
    assert 0 < len(groups) < len(firsts)
    assert all(m["groupId"] and m["userId"] for m in groups)


# ---- duplicates and malformed --------------------------------------------------------------------


def test_duplicates_reuse_earlier_message_ids() -> None:
    audience, msgs = small()
    first_pos: dict[str, int] = {}
    gaps = []
    for pos, msg in enumerate(msgs):
        mid = str(msg.get("messageId"))
        if mid in audience.malformed_message_ids:
            continue
        if mid in first_pos:
            earlier = msgs[first_pos[mid]]
            assert json.dumps(msg) == json.dumps(earlier)  # an exact re-send
            assert msg is not earlier
            gaps.append(pos - first_pos[mid])
        else:
            first_pos[mid] = pos
    assert len(gaps) == audience.stats().duplicates == round(SMALL["events"] * 0.01)
    assert sum(1 for g in gaps if g < 30) > len(gaps) * 0.2  # often in the same batch
    assert sum(1 for g in gaps if g > 2000) > len(gaps) * 0.1  # sometimes much later


def test_malformed_messages_are_refusable_and_counted() -> None:
    audience, msgs = small()
    reasons: Counter[str] = Counter()
    for msg in msgs:
        reason = problem(msg)
        if msg.get("messageId") in audience.malformed_message_ids:
            assert reason is not None, msg
            reasons[reason] += 1
        else:
            assert reason is None, (reason, msg)
    assert sum(reasons.values()) == audience.stats().malformed == round(SMALL["events"] * 0.004)
    assert len(audience.malformed_message_ids) == audience.stats().malformed
    expected = {
        "missing type",
        "unknown type",
        "no ids",
        "junk id",
        "track without event",
        "bad timestamp",
        "properties not an object",
        "too large",
    }
    assert set(reasons) == expected
    assert any(m.get("timestamp") == "yesterday" for m in msgs)


# ---- realism -------------------------------------------------------------------------------------------


def test_context_and_campaign_realism() -> None:
    audience, msgs = small()
    sources: dict[str, set[str]] = {"tiktok": set(), "instagram": set(), "email": set()}
    referrers: set[str] = set()
    clids: Counter[str] = Counter()
    zones: set[str] = set()
    for _, msg in clean(audience, msgs):
        assert UUID_RE.match(msg["messageId"])
        assert parse_ts(msg["sentAt"]) >= parse_ts(msg["timestamp"])
        ctx = msg["context"]
        if "anonymousId" in msg:
            assert re.fullmatch(r"(192\.0\.2|198\.51\.100)\.\d{1,3}", ctx["ip"])
            assert ctx["userAgent"] and ctx["locale"]
            zones.add(ctx["timezone"])
        props = msg.get("properties", {})
        for key in ("revenue", "value", "price", "discount"):
            if key in props:
                assert MONEY_RE.match(props[key]), props
        if msg["type"] != "page":
            continue
        page = ctx["page"]
        assert set(page) >= {"url", "path", "referrer", "title"}
        assert page["url"].startswith("https://") and page["path"] in page["url"]
        referrers.add(page["referrer"])
        for clid in ("ttclid", "fbclid", "gclid"):
            clids[clid] += f"{clid}=" in page["url"]
        campaign = ctx.get("campaign")
        if campaign:
            src = campaign["source"]
            if campaign["medium"] == "email":
                sources["email"].add(src)
            elif src.strip().lower() in ("tiktok", "tt"):
                sources["tiktok"].add(src)
            elif src.lower() in ("ig", "instagram"):
                sources["instagram"].add(src)
    assert sources["tiktok"] == {"tiktok", "TikTok ", "tt"}
    assert sources["instagram"] == {"ig", "instagram", "Instagram"}
    assert sources["email"] == {"newsletter", "convertkit"}
    assert {"https://l.instagram.com/", "https://www.tiktok.com/", "https://www.google.com/"} <= referrers
    assert all(clids[c] > 0 for c in ("ttclid", "fbclid", "gclid"))
    for zone in zones:
        ZoneInfo(zone)  # a real IANA name
    assert len(zones) >= 8


def test_server_side_messages_are_in_time_order() -> None:
    audience, msgs = small()
    server = [parse_ts(m["timestamp"]) for _, m in clean(audience, msgs) if "anonymousId" not in m]
    assert len(server) > 100
    assert server == sorted(server)


# ---- persona behaviour ---------------------------------------------------------------------------


def test_personas_behave_distinctly() -> None:
    audience, msgs = small()
    owner = owners(audience)
    by_persona = Counter(b.persona for b in audience.buyers)
    zone_of: dict[str, str] = {}
    rows: list[tuple[SyntheticBuyer, dict[str, Any]]] = []
    for _, msg in clean(audience, msgs):
        buyer = owner[msg.get("userId") or msg["anonymousId"]]
        rows.append((buyer, msg))
        if "timezone" in msg["context"]:
            zone_of[buyer.key] = msg["context"]["timezone"]

    weekend: Counter[str] = Counter()
    total: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    orders_by_buyer: Counter[str] = Counter()
    events: dict[str, Counter[str]] = {p: Counter() for p in PERSONAS}
    drop_delay: dict[str, list[float]] = {p: [] for p in PERSONAS}
    release: dict[str, str] = {}
    for buyer, msg in rows:
        local = parse_ts(msg["timestamp"]).astimezone(ZoneInfo(zone_of[buyer.key]))
        total[buyer.persona] += 1
        weekend[buyer.persona] += local.weekday() >= 5
        event = msg.get("event")
        if event is None:
            continue
        events[buyer.persona][event] += 1
        props = msg["properties"]
        if event == "Drop Viewed":
            release[props["drop_id"]] = props["release_at"]
        if event == "Order Completed":
            orders[buyer.persona] += 1
            orders_by_buyer[buyer.key] += 1
            if buyer.persona == "deal_seeker":
                assert "coupon" in props and float(props["discount"]) > 0
            assert props.get("gift", False) == (buyer.persona == "gifting_guest")
            if props["product_type"] == "drop":
                opened = parse_ts(release[props["drop_id"]])
                drop_delay[buyer.persona].append((parse_ts(msg["timestamp"]) - opened).total_seconds() / 60)

    share = {p: weekend[p] / total[p] for p in PERSONAS}
    assert share["weekend_collector"] > 0.6
    assert all(share[p] < 0.45 for p in PERSONAS if p != "weekend_collector")

    rate = {p: orders[p] / by_persona[p] for p in PERSONAS}
    assert rate["lurker_researcher"] < rate["early_adopter_superfan"] / 10
    assert rate["early_adopter_superfan"] > 2

    # Superfans buy drops right when they open; collectors buy them later, on weekends.
    assert statistics.median(drop_delay["early_adopter_superfan"]) < 60
    assert statistics.median(drop_delay["weekend_collector"]) > 24 * 60

    # Gift buyers buy once; loyalists subscribe and renew; lurkers research and quiz.
    gifting = [b for b in audience.buyers if b.persona == "gifting_guest"]
    assert all(orders_by_buyer[b.key] <= 1 for b in gifting)
    assert sum(orders_by_buyer[b.key] for b in gifting) > 0.8 * len(gifting)
    for event in ("Subscription Started", "Subscription Renewed"):
        assert events["subscription_loyalist"][event] > 0
        assert sum(events[p][event] for p in PERSONAS if p != "subscription_loyalist") == 0
    assert events["subscription_loyalist"]["Module Completed"] > 0
    lurker_quiz = events["lurker_researcher"]["Quiz Completed"] / by_persona["lurker_researcher"]
    assert lurker_quiz > 0.5
    assert events["lurker_researcher"]["Assessment Completed"] > 0
    pages_per_event = {
        p: sum(1 for b, m in rows if b.persona == p and m["type"] == "page") / total[p] for p in PERSONAS
    }
    assert pages_per_event["lurker_researcher"] == max(pages_per_event.values())
    assert events["deal_seeker"]["Coupon Applied"] > 0
    assert events["early_adopter_superfan"]["Community Post Created"] > 0
    for event in (
        "Email Opened",
        "Email Link Clicked",
        "Lesson Started",
        "Lesson Completed",
        "Checkout Started",
    ):
        assert sum(events[p][event] for p in PERSONAS) > 0, event
