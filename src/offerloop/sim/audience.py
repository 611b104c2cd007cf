"""Deterministic synthetic creator audience emitting Segment-spec messages for ``/v1/batch``.

Every synthetic buyer carries a hidden ground-truth persona (``SyntheticBuyer.persona``) that drives
its behaviour; nothing in the emitted messages names the persona. The output depends only on the
constructor arguments: the same arguments give a byte-identical message stream on any machine
(timezone rules are built in, so the host's tz database is not consulted; messageIds are derived from
the seed, never from ``uuid4()``; the default start is a fixed date, never "now").

Order: ``messages()`` is ordered by true event time. A device with a skewed clock shifts both
``timestamp`` and ``sentAt`` by the same amount, so its timestamps look out of order; server-side
messages (renewals, email events: ``userId`` only, no ``anonymousId``) are never skewed. Events fall
in ``[start, start + days)``, except that a session begun just before the end may run on for up to
about an hour.

``sentAt`` and replays: an ingestion API corrects each event's time for the client's clock as Segment
does, ``timestamp = receivedAt - (sentAt - originalTimestamp)``. By default ``sentAt`` is the
*simulated* send time (the event time plus a send delay, on the device's clock), the stream a device
would have sent live at the simulated dates. Replaying that history now through a live API would be
dishonest: every event would be corrected onto the day it arrives. So a replay passes
``sent_at=<clock>`` to ``messages()`` / ``batches()``: each message's ``sentAt`` is then the REAL
send time read from that clock (once per batch, when the batch is complete, as Segment's SDKs stamp
it) plus the device's clock skew, exactly what an SDK sending the stored history now would write. The
correction then puts every event back at its simulated time (plus the network latency) while still
removing each device's skew. (Segment's other way to import history, a server-side backfill that sends
``timestamp`` without ``sentAt``, would leave the devices' skew in the stored times.) Inject a fixed or
stepping clock where the output must be byte-identical.

Memory: construction builds one small plan per buyer. ``messages()`` runs one lazy generator per
buyer, merges them by time with ``heapq.merge`` and renders each message dict only when it is
yielded. Besides the per-buyer state (about 10 KB a buyer, independent of ``events``) it keeps only a
bounded window of light records for duplicate re-sends, never the stream.

Ground truth kept outside the messages:

* ``Audience.buyers`` -- the buyers, with persona, acquisition channel and identities. ``email`` is
  the canonical (lower-case, stripped) address; messages may carry messy variants of it.
* ``Audience.malformed_message_ids`` -- messageIds of the messages an ingestion API must refuse.
* ``Audience.stats()`` -- counts, including duplicates (exact re-sends of earlier messages).

Every yielded message is a fresh dict; a duplicate is the earlier message rendered again from the
same record, so mutating yielded messages never changes later duplicates.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any, Final, NamedTuple
from urllib.parse import urlencode

__all__ = ["CHANNELS", "PERSONAS", "Audience", "AudienceStats", "SyntheticBuyer", "stamp_sent"]

PERSONAS: tuple[str, ...] = (
    "early_adopter_superfan",
    "weekend_collector",
    "subscription_loyalist",
    "gifting_guest",
    "lurker_researcher",
    "deal_seeker",
)
CHANNELS: tuple[str, ...] = ("tiktok", "instagram", "newsletter", "site")

_SUPERFAN, _WEEKEND, _LOYALIST, _GIFTING, _LURKER, _DEAL = PERSONAS

_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000
_MIN_MS: Final = 60_000
_DEFAULT_START: Final = datetime(2026, 8, 1, tzinfo=UTC)

# --------------------------------------------------------------------------------------------------
# Population parameters
# --------------------------------------------------------------------------------------------------

_CHANNEL_WEIGHTS: Final = (0.35, 0.30, 0.15, 0.20)

# P(persona | acquisition channel), columns in PERSONAS order.
_PERSONA_GIVEN_CHANNEL: Final[dict[str, tuple[float, ...]]] = {
    "tiktok": (0.12, 0.14, 0.08, 0.12, 0.28, 0.26),
    "instagram": (0.10, 0.18, 0.10, 0.16, 0.24, 0.22),
    "newsletter": (0.08, 0.08, 0.30, 0.06, 0.30, 0.18),
    "site": (0.04, 0.12, 0.14, 0.14, 0.36, 0.20),
}
_IDENTIFY_P: Final = {
    _SUPERFAN: 0.95,
    _WEEKEND: 0.66,
    _LOYALIST: 0.97,
    _GIFTING: 0.62,
    _LURKER: 0.24,
    _DEAL: 0.56,
}
_EXISTING_P: Final = {_SUPERFAN: 0.6, _LOYALIST: 0.4}  # customers from before the window: identify at once
_ACTIVITY: Final = {_SUPERFAN: 3.0, _WEEKEND: 1.0, _LOYALIST: 1.6, _GIFTING: 0.28, _LURKER: 1.1, _DEAL: 0.8}
_ACTIVITY_SIGMA: Final = {
    _SUPERFAN: 0.6,
    _WEEKEND: 0.8,
    _LOYALIST: 0.6,
    _GIFTING: 0.35,
    _LURKER: 0.9,
    _DEAL: 0.8,
}
_MIN_BUDGET: Final = {_SUPERFAN: 12, _WEEKEND: 3, _LOYALIST: 8, _GIFTING: 6, _LURKER: 2, _DEAL: 3}
_SESSION_EVENTS: Final = {
    _SUPERFAN: 6.0,
    _WEEKEND: 5.0,
    _LOYALIST: 6.0,
    _GIFTING: 5.0,
    _LURKER: 8.0,
    _DEAL: 5.0,
}
_SUBSCRIBER_P: Final = {
    _SUPERFAN: 0.6,
    _WEEKEND: 0.25,
    _LOYALIST: 0.5,
    _GIFTING: 0.1,
    _LURKER: 0.35,
    _DEAL: 0.4,
}
_EMAIL_OPEN_P: Final = {
    _SUPERFAN: 0.7,
    _WEEKEND: 0.3,
    _LOYALIST: 0.55,
    _GIFTING: 0.15,
    _LURKER: 0.5,
    _DEAL: 0.35,
}

# Local hour-of-day weights (0..23).
_EVENING: Final = (2, 1, 1, 0.5, 0.5, 0.5, 1, 3, 4, 4, 4, 4, 5, 5, 4, 4, 4, 5, 6, 7, 8, 8, 6, 4)
_NIGHT_OWL: Final = (6, 5, 4, 2, 1, 0.5, 0.5, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 8, 8, 8)
_BREAKS: Final = (1, 0.5, 0.5, 0.3, 0.3, 0.5, 2, 5, 5, 3, 3, 4, 7, 7, 3, 3, 3, 4, 6, 7, 7, 6, 4, 2)
_MORNING_EVENING: Final = (1, 0.5, 0.3, 0.3, 0.5, 2, 5, 7, 6, 4, 3, 3, 4, 3, 3, 3, 3, 4, 5, 6, 7, 6, 4, 2)
_HOURS: Final = {
    _SUPERFAN: _EVENING,
    _WEEKEND: _EVENING,
    _LOYALIST: _MORNING_EVENING,
    _GIFTING: _EVENING,
    _LURKER: _NIGHT_OWL,
    _DEAL: _BREAKS,
}

# (IANA zone, standard UTC offset in minutes, DST rule, locales, currency, weight)
_ZONES: Final[tuple[tuple[str, int, str, tuple[str, ...], str, float], ...]] = (
    ("America/New_York", -300, "us", ("en-US",), "USD", 0.21),
    ("America/Chicago", -360, "us", ("en-US", "en-US", "es-US"), "USD", 0.12),
    ("America/Denver", -420, "us", ("en-US",), "USD", 0.04),
    ("America/Los_Angeles", -480, "us", ("en-US", "en-US", "es-US"), "USD", 0.15),
    ("America/Toronto", -300, "us", ("en-CA", "en-CA", "fr-CA"), "CAD", 0.05),
    ("America/Mexico_City", -360, "", ("es-MX",), "MXN", 0.03),
    ("America/Sao_Paulo", -180, "", ("pt-BR",), "BRL", 0.04),
    ("Europe/London", 0, "eu", ("en-GB",), "GBP", 0.10),
    ("Europe/Berlin", 60, "eu", ("de-DE", "de-DE", "en-DE"), "EUR", 0.05),
    ("Europe/Paris", 60, "eu", ("fr-FR",), "EUR", 0.03),
    ("Europe/Madrid", 60, "eu", ("es-ES",), "EUR", 0.02),
    ("Australia/Sydney", 600, "au", ("en-AU",), "AUD", 0.05),
    ("Asia/Kolkata", 330, "", ("en-IN", "hi-IN"), "INR", 0.04),
    ("Asia/Manila", 480, "", ("en-PH", "fil-PH"), "PHP", 0.04),
    ("Asia/Singapore", 480, "", ("en-SG",), "SGD", 0.03),
)

_FIRST_NAMES: Final = (
    "Jane", "Maya", "Liam", "Noah", "Ava", "Sofia", "Mateo", "Aisha", "Priya", "Kenji", "Chloe", "Zoe",
    "Diego", "Fatima", "Elena", "Omar", "Grace", "Leo", "Hana", "Ivy", "Jonah", "Kai", "Lucia", "Nia",
    "Owen", "Ruby", "Sam", "Tariq", "Uma", "Wren", "Yusuf", "Ella", "Marcus", "Riya", "Felix", "Ines",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Doe", "Nguyen", "Garcia", "Smith", "Okafor", "Patel", "Kim", "Silva", "Müller", "Rossi", "Cohen",
    "Tanaka", "Haddad", "Johnson", "Lopez", "Brown", "Novak", "Dubois", "Khan", "Ivanova", "Mensah",
    "O'Brien", "Larsen", "Santos", "Chen", "Reyes", "Walker", "Moreau", "Ahmed", "Fischer",
)  # fmt: skip
_EMAIL_DOMAINS: Final = (
    "gmail.example", "gmail.example", "gmail.example", "icloud.example", "outlook.example",
    "yahoo.example", "proton.example", "example.com", "example.net", "example.org",
)  # fmt: skip
_AREA_CODES: Final = ("212", "415", "312", "737", "206", "646", "303", "617", "213", "404")

_UA_IOS_SAFARI: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
_UA_ANDROID: Final = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.122 Mobile Safari/537.36"
)
_UA_SAMSUNG: Final = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
_UA_MAC_CHROME: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
_UA_MAC_SAFARI: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
_UA_WIN_EDGE: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
_UA_WIN_FIREFOX: Final = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
_UA_TIKTOK_IOS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US "
    "WKWebView/1 BytedanceWebview/d8a21c6"
)
_UA_TIKTOK_ANDROID: Final = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 trill_350103 JsSdk/1.0 "
    "NetType/MOBILE Channel/googleplay AppName/trill app_version/35.1.3 ByteLocale/en"
)
_UA_INSTAGRAM_IOS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Instagram 339.0.3.12.91 "
    "(iPhone15,2; iOS 17_5; en_US; en; scale=3.00; 1179x2556; 617384013)"
)
_UA_INSTAGRAM_ANDROID: Final = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240705.005; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 Instagram 339.0.0.36.112 "
    "Android (34/14; 420dpi; 1080x2400; Google/google; Pixel 7; panther; panther; en_US; 617385510)"
)
_UA_APP: Final = "RowanValeCommunity/2.3.1 (iPhone; iOS 17.5.1; Scale/3.00)"
_BROWSER_UAS: Final = (
    (_UA_IOS_SAFARI, 0.30),
    (_UA_ANDROID, 0.14),
    (_UA_SAMSUNG, 0.06),
    (_UA_MAC_CHROME, 0.18),
    (_UA_MAC_SAFARI, 0.10),
    (_UA_WIN_EDGE, 0.12),
    (_UA_WIN_FIREFOX, 0.10),
)

_LIB_JS: Final = {"name": "analytics.js", "version": "npm:next-1.72.0"}
_LIB_IOS: Final = {"name": "analytics-ios", "version": "4.1.8"}
_LIB_SERVER: Final = {"name": "analytics-python", "version": "2.3.3"}

_BASE_URL: Final = "https://rowanvale.example"
_SITE: Final = "Rowan Vale"

# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Product:
    product_id: str
    name: str
    product_type: str
    price_cents: int
    path: str


_COURSES: Final = (
    _Product("course_launch_lab", "Launch Lab", "course", 29700, "/courses/launch-lab"),
    _Product("course_content_engine", "Content Engine", "course", 19700, "/courses/content-engine"),
    _Product("course_pricing", "Pricing Masterclass", "course", 14900, "/courses/pricing-masterclass"),
)
_PLAYBOOKS: Final = (
    _Product("pb_viral_hooks", "Viral Hooks Playbook", "playbook", 2900, "/playbooks/viral-hooks"),
    _Product("pb_brand_deals", "Brand Deal Playbook", "playbook", 4900, "/playbooks/brand-deals"),
    _Product("pb_newsletter", "Newsletter Growth Playbook", "playbook", 3900, "/playbooks/newsletter-growth"),
)
_COACHING: Final = (
    _Product("coach_strategy_call", "1:1 Strategy Call", "coaching", 25000, "/coaching/strategy-call"),
    _Product("coach_group_6wk", "Group Coaching (6 weeks)", "coaching", 45000, "/coaching/group"),
)
_MEMBERSHIP: Final = _Product(
    "sub_inner_circle_monthly", "Inner Circle Membership", "subscription", 2900, "/membership"
)
_SHOP_PRODUCTS: Final = _COURSES + _PLAYBOOKS + _COACHING
_GIFTABLE: Final = _PLAYBOOKS + _COURSES + _COACHING[:1]
_MODULES: Final = 6
_LESSONS_PER_MODULE: Final = 4

_BLOG: Final = (
    "how-i-got-my-first-1000-subscribers", "pricing-your-first-digital-product", "hooks-that-stop-the-scroll",
    "brand-deal-rate-card", "newsletter-vs-community", "my-content-system", "launch-week-retrospective",
    "creator-burnout-is-a-pricing-problem", "tiktok-to-email-funnel", "what-i-earned-last-quarter",
)  # fmt: skip
_STATIC_TITLES: Final = {
    "/": f"{_SITE} — Courses, Playbooks & Drops",
    "/shop": f"Shop | {_SITE}",
    "/drops": f"Drops | {_SITE}",
    "/gifts": f"Gift Guide | {_SITE}",
    "/membership": f"Inner Circle Membership | {_SITE}",
    "/members": f"Your Library | {_SITE}",
    "/community": f"Community | {_SITE}",
    "/community/new": f"New Post | {_SITE}",
    "/quiz/creator-type": f"What Kind of Creator Are You? | {_SITE}",
    "/quiz/creator-type/results": f"Your Creator Type | {_SITE}",
    "/assessment/launch-readiness": f"Launch Readiness Assessment | {_SITE}",
    "/about": f"About | {_SITE}",
    "/faq": f"FAQ | {_SITE}",
    "/testimonials": f"Wall of Love | {_SITE}",
    "/pricing": f"Pricing | {_SITE}",
    "/links": f"Links | {_SITE}",
    "/checkout": f"Checkout | {_SITE}",
    "/checkout/thank-you": f"Thank You! | {_SITE}",
    "/account/orders": f"Your Orders | {_SITE}",
    "/blog": f"Blog | {_SITE}",
}
_RESEARCH_PATHS: Final = (
    "/about", "/faq", "/testimonials", "/pricing", "/blog", "/community", "/shop",
    *(p.path for p in _SHOP_PRODUCTS),
)  # fmt: skip
_LURKER_PATHS: Final = _RESEARCH_PATHS + tuple(f"/blog/{b}" for b in _BLOG)
_RETURN_PATHS: Final = (*_RESEARCH_PATHS, "/gifts")
_SOCIAL_CAMPAIGNS: Final = ("creator_tips", "bio_link", "launch_lab_fall", "hooks_series", "drop_teaser")

_QUIZ_QUESTIONS: Final = (
    ("platform", ("tiktok", "instagram", "youtube", "newsletter", "podcast")),
    ("audience_size", ("<1k", "1k-10k", "10k-100k", "100k+")),
    ("goal", ("launch_course", "grow_newsletter", "land_brand_deals", "build_community", "sell_merch")),
    ("hours_per_week", ("<5", "5-10", "10-20", "20+")),
    ("budget", ("$0", "<$100", "$100-500", "$500+")),
)
_QUIZ_RESULTS: Final = ("the_educator", "the_entertainer", "the_curator", "the_community_builder")
_COMMUNITY_SPACES: Final = ("wins", "questions", "drops", "feedback", "introductions")
_GIFT_NOTES: Final = ("Happy birthday!", "You've got this :)", "For your launch", "Enjoy!", "", "Love you")
_SUBJECTS: Final = (
    "The hook formula I use every week", "I priced my course wrong (twice)", "New drop this Thursday",
    "3 creators who doubled their list", "What I'd do with 1,000 followers", "Behind the scenes: launch week",
)  # fmt: skip
_PROMO_NAMES: Final = (
    ("flash_sale", "FLASH"), ("summer_send_off", "SUMMER"), ("back_to_school", "BTS"),
    ("labor_day_sale", "LABOR"), ("fall_bundle", "FALL"), ("creator_week", "CREATOR"),
    ("anniversary_sale", "BDAY"), ("early_bird", "EARLY"), ("black_friday", "BF"), ("cyber_monday", "CYBER"),
)  # fmt: skip
_DROP_NAMES: Final = (
    "Studio Hoodie — Batch {n}", "Creator Kit Vol. {n}", "Signed Zine #{n}", "Preset Pack {n}",
    "Enamel Pin Set {n}", "Notion Creator OS v{n}", "Sticker Sheet {n}", "Limited Print No. {n}",
)  # fmt: skip
_DROP_PRICES: Final = (3500, 4900, 4900, 7900, 12000, 2500)

_MALFORMED_KINDS: Final = (
    "missing_type",
    "unknown_type",
    "track_without_event",
    "no_ids",
    "bad_timestamp",
    "properties_list",
    "oversized_properties",
    "junk_id",
)
_JUNK_IDS: Final = ("undefined", "null", "00000000-0000-0000-0000-000000000000", "None", "")


# --------------------------------------------------------------------------------------------------
# Public dataclasses
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyntheticBuyer:
    """A synthetic person: hidden persona plus the identities it uses (ground truth)."""

    key: str  # stable internal key, e.g. "b00042"
    persona: str
    user_id: str | None  # None for visitors who never identify
    email: str | None  # canonical (lower-case, stripped); messages may carry messy variants
    anonymous_ids: tuple[str, ...]  # 1-3 devices
    channel: str  # acquisition channel
    tiktok_id: str | None
    instagram_id: str | None


@dataclass(frozen=True, slots=True)
class AudienceStats:
    """Counts for one full pass over ``Audience.messages()``.

    ``events`` counts every message (duplicates and malformed included). ``by_type`` counts the ``type``
    of every well-formed message (duplicates included), so ``sum(by_type.values()) + malformed == events``.
    ``by_channel`` counts buyers by acquisition channel.
    """

    buyers: int
    identified: int
    events: int
    duplicates: int
    malformed: int
    by_channel: dict[str, int]
    by_type: dict[str, int]


# --------------------------------------------------------------------------------------------------
# Time helpers (built-in DST rules: output must not depend on the host's tz database)
# --------------------------------------------------------------------------------------------------

_ZONE_INFO: Final = {z[0]: (z[1], z[2]) for z in _ZONES}
_DST_CACHE: dict[tuple[str, int], tuple[int, int]] = {}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """n-th (1-based; -1 = last) ``weekday`` (Mon=0) of the month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _day_ms(d: date) -> int:
    return (d - date(1970, 1, 1)).days * _DAY_MS


def _dst_window(rule: str, std_min: int, year: int) -> tuple[int, int]:
    """UTC ms [start, end) of daylight time in ``year`` (for "au": end is in ``year``, start later)."""
    cached = _DST_CACHE.get((rule, year * 10_000 + std_min))
    if cached is not None:
        return cached
    if rule == "us":
        start = _day_ms(_nth_weekday(year, 3, 6, 2)) + 2 * _HOUR_MS - std_min * _MIN_MS
        end = _day_ms(_nth_weekday(year, 11, 6, 1)) + 2 * _HOUR_MS - (std_min + 60) * _MIN_MS
    elif rule == "eu":
        start = _day_ms(_nth_weekday(year, 3, 6, -1)) + _HOUR_MS
        end = _day_ms(_nth_weekday(year, 10, 6, -1)) + _HOUR_MS
    else:  # "au": daylight time from first Sunday of October until first Sunday of April
        end = _day_ms(_nth_weekday(year, 4, 6, 1)) + 2 * _HOUR_MS - std_min * _MIN_MS
        start = _day_ms(_nth_weekday(year, 10, 6, 1)) + 2 * _HOUR_MS - std_min * _MIN_MS
    _DST_CACHE[(rule, year * 10_000 + std_min)] = (start, end)
    return start, end


def _offset_ms(zone: str, utc_ms: int) -> int:
    std_min, rule = _ZONE_INFO[zone]
    offset = std_min * _MIN_MS
    if not rule:
        return offset
    year = time.gmtime(utc_ms // 1000).tm_year
    start, end = _dst_window(rule, std_min, year)
    if rule == "au":
        dst = utc_ms >= start or utc_ms < end
    else:
        dst = start <= utc_ms < end
    return offset + _HOUR_MS if dst else offset


def _local_ms(zone: str, utc_ms: int) -> int:
    return utc_ms + _offset_ms(zone, utc_ms)


def _utc_from_local(zone: str, local_ms: int) -> int:
    guess = local_ms - _ZONE_INFO[zone][0] * _MIN_MS
    return local_ms - _offset_ms(zone, guess)


def _weekend_time(rng: random.Random, zone: str, at: int, end_ms: int) -> int:
    """``at`` moved to the next Saturday or Sunday (local), daytime, if that is before ``end_ms``."""
    local = _local_ms(zone, at)
    day = local - local % _DAY_MS
    weekday = (day // _DAY_MS + 3) % 7
    if weekday < 5:
        day += (5 - weekday + rng.randint(0, 1)) * _DAY_MS
    moved = _utc_from_local(zone, day + rng.randint(9, 21) * _HOUR_MS + rng.randint(0, 3599) * 1000)
    return moved if at <= moved < end_ms - _DAY_MS else at


def _clone(value: Any) -> Any:
    """Copy of a JSON-like value (dicts and lists copied, scalars shared)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


_UUID_MASK: Final = (1 << 128) - 1
_UUID_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def _rng_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (same text as ``str(uuid.UUID(int=..., version=4))``)."""
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --------------------------------------------------------------------------------------------------
# World: calendars shared by all buyers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Drop:
    drop_id: str
    slug: str
    product: _Product
    opens_ms: int
    closes_ms: int
    inventory: int


@dataclass(frozen=True, slots=True)
class _Promo:
    name: str
    code: str
    pct: int
    starts_ms: int
    ends_ms: int


@dataclass(frozen=True, slots=True)
class _Send:
    email_id: str
    name: str
    subject: str
    sent_ms: int


@dataclass(frozen=True, slots=True)
class _World:
    seed_key: str
    start_ms: int
    end_ms: int
    drops: tuple[_Drop, ...]
    promos: tuple[_Promo, ...]
    sends: tuple[_Send, ...]


def _build_world(seed_key: str, start_ms: int, end_ms: int) -> _World:
    rng = random.Random(f"{seed_key}:world")
    drops: list[_Drop] = []
    cursor = start_ms + rng.randint(1, 4) * _DAY_MS
    n = 1
    while cursor < end_ms - _DAY_MS:
        day = cursor - cursor % _DAY_MS
        opens = day + rng.choice((16, 17, 17, 18, 19, 23)) * _HOUR_MS
        name = rng.choice(_DROP_NAMES).format(n=n)
        slug = f"drop-{n:03d}"
        product = _Product(f"drop_{n:03d}", name, "drop", rng.choice(_DROP_PRICES), f"/drops/{slug}")
        closes = opens + rng.randint(3, 8) * _DAY_MS
        drops.append(_Drop(f"drop_{n:03d}", slug, product, opens, closes, rng.choice((100, 150, 250, 500))))
        cursor = opens + rng.randint(6, 11) * _DAY_MS
        n += 1
    promos: list[_Promo] = []
    cursor = start_ms + rng.randint(3, 8) * _DAY_MS
    names = list(_PROMO_NAMES)
    rng.shuffle(names)
    i = 0
    while cursor < end_ms - _DAY_MS:
        name, prefix = names[i % len(names)]
        pct = rng.choice((15, 20, 20, 25, 30, 40))
        starts = cursor - cursor % _HOUR_MS
        ends = starts + rng.randint(48, 96) * _HOUR_MS
        promos.append(_Promo(name, f"{prefix}{pct}", pct, starts, ends))
        cursor = ends + rng.randint(8, 15) * _DAY_MS
        i += 1
    sends: list[_Send] = []
    day = start_ms - start_ms % _DAY_MS
    # Weekly newsletter every Tuesday 13:00 UTC (1970-01-01 was a Thursday).
    day += ((1 - (day // _DAY_MS + 3) % 7) % 7) * _DAY_MS
    while day + 13 * _HOUR_MS < end_ms:
        sent = day + 13 * _HOUR_MS
        label = time.strftime("%Y_%m_%d", time.gmtime(sent // 1000))
        sends.append(_Send(f"em_{label}", f"weekly_{label}", rng.choice(_SUBJECTS), sent))
        day += 7 * _DAY_MS
    return _World(seed_key, start_ms, end_ms, tuple(drops), tuple(promos), tuple(sends))


def _gift_occasions(start_ms: int, end_ms: int) -> list[tuple[str, int, float]]:
    """(occasion, holiday ms, weight) for holidays whose two-week shopping window overlaps the range."""
    out: list[tuple[str, int, float]] = []
    first = time.gmtime(start_ms // 1000).tm_year
    last = time.gmtime(end_ms // 1000).tm_year + 1
    for year in range(first, last + 1):
        labor_day = _nth_weekday(year, 9, 0, 1)
        thanksgiving = _nth_weekday(year, 11, 3, 4)
        holidays = (
            ("valentines_day", date(year, 2, 14), 2.0),
            ("mothers_day", _nth_weekday(year, 5, 6, 2), 3.0),
            ("graduation", date(year, 6, 1), 1.0),
            ("fathers_day", _nth_weekday(year, 6, 6, 3), 2.0),
            ("back_to_school", date(year, 8, 25), 1.0),
            ("grandparents_day", labor_day + timedelta(days=6), 1.0),
            ("halloween", date(year, 10, 31), 1.0),
            ("black_friday", thanksgiving + timedelta(days=1), 3.0),
            ("christmas", date(year, 12, 25), 5.0),
        )
        for name, day, weight in holidays:
            h = _day_ms(day)
            if h - 14 * _DAY_MS < end_ms - _DAY_MS and h > start_ms + _DAY_MS:
                out.append((name, h, weight))
    return out


# --------------------------------------------------------------------------------------------------
# Per-buyer plan
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Device:
    anonymous_id: str
    user_agent: str
    ip: str
    app: bool
    skew_ms: int  # client clock error: timestamp and sentAt are both off by this much


@dataclass(slots=True)
class _Plan:
    index: int
    persona: str
    channel: str
    zone: str
    locale: str
    currency: str
    devices: tuple[_Device, ...]
    first_seen_ms: int
    weight: float
    will_identify: bool
    existing: bool
    subscriber: bool
    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    tiktok_id: str | None
    instagram_id: str | None
    gift_occasion: str
    gift_ms: int
    renew_ms: int
    budget: int = 0
    identify_at: int = -1  # event index by which identify must have happened; -1: never identifies
    buyer: SyntheticBuyer | None = None


def _make_devices(rng: random.Random, persona: str, channel: str) -> tuple[_Device, ...]:
    n = rng.choices((1, 2, 3), (0.55, 0.33, 0.12))[0]
    devices: list[_Device] = []
    for i in range(n):
        app = False
        if i == 0 and channel == "tiktok" and rng.random() < 0.55:
            ua = rng.choice((_UA_TIKTOK_IOS, _UA_TIKTOK_IOS, _UA_TIKTOK_ANDROID))
        elif i == 0 and channel == "instagram" and rng.random() < 0.55:
            ua = rng.choice((_UA_INSTAGRAM_IOS, _UA_INSTAGRAM_IOS, _UA_INSTAGRAM_ANDROID))
        elif i > 0 and persona in (_SUPERFAN, _LOYALIST) and rng.random() < 0.35:
            ua, app = _UA_APP, True
        else:
            ua = rng.choices([u for u, _ in _BROWSER_UAS], [w for _, w in _BROWSER_UAS])[0]
        net = "192.0.2" if rng.random() < 0.5 else "198.51.100"
        ip = f"{net}.{rng.randint(1, 254)}"
        skew = 0
        if rng.random() < 0.08:
            skew = rng.choice((-1, 1)) * rng.choice(
                (rng.randint(2, 59) * _MIN_MS, rng.randint(1, 6) * _HOUR_MS + rng.randint(0, 59) * _MIN_MS)
            )
        devices.append(_Device(_rng_uuid(rng), ua, ip, app, skew))
    return tuple(devices)


def _make_email(rng: random.Random, first: str, last: str) -> str:
    f = first.lower()
    ln = "".join(ch for ch in last.lower() if ch.isalpha()).replace("ü", "u")
    local = rng.choice(
        (
            f"{f}.{ln}",
            f"{f}{ln}",
            f"{f[0]}{ln}",
            f"{f}.{ln}{rng.randint(1, 99)}",
            f"{f}_{rng.randint(80, 2009)}",
        )
    )
    return f"{local}@{rng.choice(_EMAIL_DOMAINS)}"


def _allocate(total: int, plans: Sequence[_Plan]) -> list[int]:
    """Split ``total`` events over buyers: per-persona minimum first, the rest in proportion to weight."""
    n = len(plans)
    if n == 0:
        return []
    mins = [_MIN_BUDGET[p.persona] for p in plans]
    need = sum(mins)
    if need > total:  # tiny stream: scale the minimums down (some buyers may get no events)
        mins = [m * total // need for m in mins]
        short = total - sum(mins)
        for i in range(short):
            mins[i % n] += 1
        return mins
    rest = total - need
    weight_sum = sum(p.weight for p in plans)
    shares = [rest * p.weight / weight_sum for p in plans]
    budgets = [m + int(s) for m, s in zip(mins, shares, strict=True)]
    leftover = total - sum(budgets)
    order = sorted(range(n), key=lambda i: (-(shares[i] - int(shares[i])), i))
    for i in order[:leftover]:
        budgets[i] += 1
    return budgets


# --------------------------------------------------------------------------------------------------
# Per-buyer event generation
# --------------------------------------------------------------------------------------------------


class _Rec(NamedTuple):
    """One message before it is rendered: everything ``Audience._message`` needs, nothing more.

    ``page``/``campaign``/``fields`` are never mutated after the record is made, so records can be
    rendered again, identically, for duplicate re-sends.
    """

    t: int  # true event time (UTC ms); the stream is ordered by it
    buyer: int
    seq: int  # per-buyer message number: with the seed it determines messageId and send delay
    kind: str
    fields: dict[str, Any]
    device: int  # index into the plan's devices; -1 = server-side (no anonymousId, no device context)
    identified: bool
    page: dict[str, str] | None
    campaign: dict[str, str] | None
    context_traits: dict[str, Any] | None


class _Exhausted(Exception):
    """The buyer's event budget is used up."""


class _BuyerRun:
    """Generates one buyer's messages in time order, exactly ``plan.budget`` of them."""

    __slots__ = (
        "assessed",
        "bought_drops",
        "campaign",
        "count",
        "dev_idx",
        "device",
        "drop_cursor",
        "grouped",
        "identified",
        "logged_in",
        "out",
        "owned",
        "page",
        "pending",
        "pending_seq",
        "plan",
        "pre_gift_sessions",
        "profile_update_due",
        "progress",
        "purchased",
        "quizzed",
        "renewals",
        "rng",
        "sessions",
        "subscribed",
        "subscription_id",
        "t",
        "used_promos",
        "welcome_used",
        "world",
    )

    def __init__(self, world: _World, plan: _Plan) -> None:
        self.world = world
        self.plan = plan
        self.rng = random.Random(f"{world.seed_key}:buyer:{plan.index}")
        self.t = plan.first_seen_ms
        self.count = 0
        self.out: list[_Rec] = []
        self.identified = False
        self.logged_in: set[int] = set()
        self.dev_idx = 0
        self.device = plan.devices[0]
        self.page: dict[str, str] | None = None
        self.campaign: dict[str, str] | None = None
        self.pending: list[tuple[int, int, str, int]] = []
        self.pending_seq = 0
        self.sessions = 0
        self.owned: list[_Product] = []
        self.progress: dict[str, int] = {}
        self.bought_drops: set[str] = set()
        self.used_promos: set[str] = set()
        self.subscribed = False
        self.subscription_id = ""
        self.renewals = 0
        self.purchased = False
        self.pre_gift_sessions = 0
        self.quizzed = False
        self.assessed = False
        self.welcome_used = False
        self.profile_update_due = False
        self.grouped = False
        self.drop_cursor = 0

    # ---- plumbing -------------------------------------------------------------------------------

    def run(self) -> Iterator[_Rec]:
        plan = self.plan
        if plan.budget <= 0:
            return
        rng = self.rng
        if plan.persona == _SUPERFAN and plan.existing:
            self.owned = rng.sample(_COURSES, rng.randint(1, 2))
            for c in self.owned:
                self.progress[c.product_id] = rng.randint(0, 12)
        if plan.persona == _LOYALIST and plan.existing:
            self.subscribed = True
            self.subscription_id = f"sub_{rng.getrandbits(48):012x}"
            self.owned = list(_COURSES)
            for c in self.owned:
                self.progress[c.product_id] = rng.randint(0, 16)
        nxt = (plan.first_seen_ms, "first")
        if plan.persona == _GIFTING and (plan.first_seen_ms >= plan.gift_ms or plan.budget < 12):
            nxt = (max(plan.first_seen_ms, plan.gift_ms), "gift")  # no time to browse first: buy at once
        while self.count < plan.budget:
            try:
                if self.pending and self.pending[0][0] <= nxt[0]:
                    at, _, kind, arg = heapq.heappop(self.pending)
                    self._pending_event(at, kind, arg)
                else:
                    self._session(nxt[0], nxt[1])
                    nxt = self._next_session()
                if nxt[0] <= self.t:
                    nxt = (self.t + rng.randint(5, 90) * _MIN_MS, nxt[1])
            except _Exhausted:
                pass
            if self.out:
                yield from self.out
                self.out.clear()

    def _push(self, at: int, kind: str, arg: int = 0) -> None:
        if at < self.world.end_ms:
            self.pending_seq += 1
            heapq.heappush(self.pending, (at, self.pending_seq, kind, arg))

    def _tick(self, lo_s: float, hi_s: float) -> None:
        self.t += int((lo_s + (hi_s - lo_s) * self.rng.random()) * 1000)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(48):012x}"

    def _emit(
        self,
        kind: str,
        fields: dict[str, Any],
        *,
        server: bool = False,
        context_traits: dict[str, Any] | None = None,
    ) -> None:
        """Record one message (as a light ``_Rec``; ``Audience._message`` builds the dict)."""
        plan = self.plan
        if self.count >= plan.budget:
            raise _Exhausted
        if kind != "identify" and not self.identified and self.count == plan.identify_at:
            self._identify()
            if self.count >= plan.budget:
                raise _Exhausted
        self.out.append(
            _Rec(
                self.t,
                plan.index,
                self.count,
                kind,
                fields,
                -1 if server else self.dev_idx,
                self.identified,
                self.page,
                self.campaign,
                context_traits,
            )
        )
        self.count += 1
        self.t += 200 + int(self.rng.random() * 2300)

    def _track(self, event: str, props: dict[str, Any], *, server: bool = False) -> None:
        self._emit("track", {"event": event, "properties": props}, server=server)

    def _room(self, reserve: int) -> bool:
        return self.count + reserve < self.plan.budget

    # ---- identity -------------------------------------------------------------------------------

    def _messy_email(self) -> str:
        email = self.plan.email
        r = self.rng.random()
        if r < 0.72:
            return email
        local, _, domain = email.partition("@")
        pretty = (
            ".".join(part[:1].upper() + part[1:] for part in local.split(".")) + "@" + domain.capitalize()
        )
        if r < 0.86:
            return pretty
        return self.rng.choice(("  ", " ", "\t")) + pretty + self.rng.choice((" ", "  ", "\n"))

    def _messy_phone(self) -> str:
        phone = self.plan.phone or ""
        if phone.startswith("+44"):
            return self.rng.choice((phone, "07700 " + phone[-6:], "+44 7700 " + phone[-6:]))
        area, line = phone[2:5], phone[5:]
        head, tail = line[:3], line[3:]
        return self.rng.choice(
            (phone, phone, f"({area}) {head}-{tail}", f"{area}-{head}-{tail}", f"{area}.{head}.{tail} ",
             f"+1 {area} {head} {tail}", f"1-{area}-{head}-{tail}")
        )  # fmt: skip

    def _traits(self) -> dict[str, Any]:
        plan, rng = self.plan, self.rng
        traits: dict[str, Any] = {"email": self._messy_email()}
        if rng.random() < 0.8:
            traits["name"] = f"{plan.first_name} {plan.last_name}"
        if rng.random() < 0.6:
            traits["first_name"] = plan.first_name
        if plan.phone is not None and rng.random() < 0.8:
            traits["phone"] = self._messy_phone()
        if plan.tiktok_id is not None:
            traits["tiktok_id"] = plan.tiktok_id
        if plan.instagram_id is not None:
            traits["instagram_id"] = plan.instagram_id
        if self.subscribed or plan.persona == _LOYALIST:
            traits["plan"] = "inner_circle"
        elif rng.random() < 0.5:
            traits["plan"] = "free"
        return traits

    def _identify(self) -> None:
        plan, rng = self.plan, self.rng
        self.identified = True
        self.logged_in.add(self.dev_idx)
        r = rng.random()
        traits = self._traits()
        if r < 0.05:
            self._emit("identify", {}, context_traits=traits)
        elif r < 0.9:
            self._emit("identify", {"traits": traits})
        else:
            self._emit("identify", {})
            self.profile_update_due = True
        if plan.subscriber and self.world.sends:
            self._schedule_send(self.t)
        if self.subscribed and plan.existing and plan.persona == _LOYALIST:
            self._push(max(plan.renew_ms, self.t + _HOUR_MS), "renew")
        self._tick(1, 15)
        if not self.device.app and rng.random() < 0.12:
            self._emit("alias", {"previousId": self.device.anonymous_id})
        if plan.persona in (_SUPERFAN, _LOYALIST) and rng.random() < 0.3:
            self._group()

    def _group(self) -> None:
        if self.grouped:
            return
        self.grouped = True
        rng = self.rng
        if rng.random() < 0.5:
            month = time.strftime("%Y_%m", time.gmtime(self.t // 1000))
            gid, traits = f"cohort_{month}", {"name": f"Launch Lab cohort {month}", "type": "cohort"}
        else:
            gid, traits = "community_inner_circle", {"name": "Inner Circle", "type": "community"}
        self._emit("group", {"groupId": gid, "traits": traits})

    def _login(self) -> None:
        """First use of another device after identifying: the buyer logs in there."""
        self.logged_in.add(self.dev_idx)
        if self.profile_update_due:
            self.profile_update_due = False
            self._emit("identify", {"traits": self._traits()})
        else:
            self._emit("identify", {})

    def _maybe_identify(self) -> None:
        if self.plan.will_identify and not self.identified:
            self._identify()

    # ---- scheduling -----------------------------------------------------------------------------

    def _schedule_send(self, after_ms: int) -> None:
        for i, send in enumerate(self.world.sends):
            if send.sent_ms > after_ms:
                self._push(send.sent_ms, "send", i)
                return

    def _pending_event(self, at: int, kind: str, arg: int) -> None:
        plan, rng = self.plan, self.rng
        if kind == "send":
            send = self.world.sends[arg]
            if rng.random() < _EMAIL_OPEN_P[plan.persona]:
                self._push(at + int(rng.expovariate(1 / (5 * _HOUR_MS))) + 30_000, "open", arg)
            self._schedule_send(send.sent_ms)
            return
        self.t = max(at, self.t + 1000)
        props: dict[str, Any]
        if kind == "open":
            send = self.world.sends[arg]
            props = {"email_id": send.email_id, "campaign_name": send.name, "subject": send.subject}
            self._track("Email Opened", props, server=True)
            if rng.random() < 0.35:
                self._push(self.t + rng.randint(5, 240) * 1000, "click", arg)
        elif kind == "click":
            send = self.world.sends[arg]
            path = rng.choice(("/", "/drops", f"/blog/{rng.choice(_BLOG)}", rng.choice(_SHOP_PRODUCTS).path))
            props = {
                "email_id": send.email_id,
                "campaign_name": send.name,
                "link_url": f"{_BASE_URL}{path}",
            }
            self._track("Email Link Clicked", props, server=True)
            self._session(self.t + rng.randint(2, 20) * 1000, f"email:{arg}:{path}")
        elif kind == "renew":
            self.renewals += 1
            props = {
                "subscription_id": self.subscription_id,
                "plan_id": _MEMBERSHIP.product_id,
                "revenue": _money(_MEMBERSHIP.price_cents),
                "currency": plan.currency if plan.currency in ("USD", "EUR", "GBP", "CAD") else "USD",
                "billing_interval": "month",
                "renewal_number": self.renewals,
            }
            self._track("Subscription Renewed", props, server=True)
            self._push(at + 30 * _DAY_MS, "renew")

    def _next_session(self) -> tuple[int, str]:
        plan, rng, world = self.plan, self.rng, self.world
        persona = plan.persona
        if persona == _GIFTING and not self.purchased:
            if self.pre_gift_sessions < 2 and self._room(10) and self.t < plan.gift_ms - 2 * _HOUR_MS:
                self.pre_gift_sessions += 1
                return self.t + int(rng.uniform(0.2, 0.7) * (plan.gift_ms - self.t)), "normal"
            return max(plan.gift_ms, self.t + 10 * _MIN_MS), "gift"
        remaining = plan.budget - self.count
        left = world.end_ms - self.t
        if left <= 3 * _HOUR_MS:
            return self.t + rng.randint(2, 15) * _MIN_MS, "normal"
        per_session = _SESSION_EVENTS[persona]
        if self.sessions >= 3:  # pace by what this buyer's sessions actually produce
            per_session = max(1.0, self.count / self.sessions)
        expected_sessions = max(1.0, remaining / per_session)
        mean_gap = left / (expected_sessions + 0.5)
        if persona == _GIFTING:
            mean_gap = max(mean_gap, left / 2)  # gift buyers rarely come back
        cand = self.t + max(20 * _MIN_MS, int(rng.expovariate(1 / mean_gap)))
        if persona == _SUPERFAN:
            drops = world.drops
            while self.drop_cursor < len(drops) and drops[self.drop_cursor].opens_ms <= self.t:
                self.drop_cursor += 1
            if self.drop_cursor < len(drops):
                drop = drops[self.drop_cursor]
                if drop.opens_ms <= cand + 2 * _DAY_MS and rng.random() < 0.92:
                    self.drop_cursor += 1
                    return drop.opens_ms + int(rng.expovariate(1 / (4 * _MIN_MS))), "drop"
        if persona == _DEAL:
            promo = self._promo_at(cand)
            if promo is None and rng.random() < 0.8:
                for p in world.promos:
                    if p.ends_ms > self.t + _HOUR_MS and p.starts_ms < self.t + 3 * mean_gap:
                        lo = max(p.starts_ms, self.t + 20 * _MIN_MS)
                        at = lo + int(rng.random() * (p.ends_ms - lo))
                        if at < world.end_ms:
                            return at, "promo"
                        break
        if persona == _WEEKEND:
            weekend = self._weekend_next(cand, expected_sessions)
            if weekend is not None:
                return weekend, "normal"
        if cand >= world.end_ms - _HOUR_MS:
            return self.t + int(rng.uniform(0.05, 0.5) * left), "normal"
        return self._diurnal(cand), "normal"

    def _diurnal(self, cand: int) -> int:
        zone = self.plan.zone
        local = _local_ms(zone, cand)
        day = local - local % _DAY_MS
        hour = self.rng.choices(range(24), _HOURS[self.plan.persona])[0]
        at = _utc_from_local(zone, day + hour * _HOUR_MS + self.rng.randint(0, 3599) * 1000)
        if at <= self.t + 15 * _MIN_MS:
            at += _DAY_MS
        return at if at < self.world.end_ms - _HOUR_MS else cand

    def _weekend_next(self, cand: int, expected_sessions: float) -> int | None:
        """Next session on a Saturday/Sunday (buyer's local time), pacing the remaining sessions."""
        rng, zone = self.rng, self.plan.zone
        if rng.random() < 0.08:
            return None  # the occasional weekday visit
        local_now = _local_ms(zone, self.t)
        today = local_now - local_now % _DAY_MS
        last_day = _local_ms(zone, self.world.end_ms - 2 * _HOUR_MS)
        days: list[int] = []
        d = today + _DAY_MS
        while d <= last_day:
            if (d // _DAY_MS + 3) % 7 >= 5:  # 1970-01-01 was a Thursday; Monday = 0
                days.append(d)
            d += _DAY_MS
        today_open = (today // _DAY_MS + 3) % 7 >= 5 and local_now - today < 21 * _HOUR_MS
        rate = expected_sessions / max(1, len(days) + today_open)  # sessions still needed per weekend day
        if today_open and (not days or rng.random() < 1 - 1 / max(rate, 1.0)):
            return self.t + rng.randint(20, 150) * _MIN_MS
        if not days:
            return None
        skip = 0 if rate >= 1 else int(0.8 * rng.expovariate(rate))
        day = days[min(skip, len(days) - 1)]
        return _utc_from_local(zone, day + rng.randint(9, 21) * _HOUR_MS + rng.randint(0, 3599) * 1000)

    def _promo_at(self, at: int) -> _Promo | None:
        for p in self.world.promos:
            if p.starts_ms <= at < p.ends_ms:
                return p
        return None

    def _open_drops(self) -> list[_Drop]:
        return [d for d in self.world.drops if d.opens_ms <= self.t < d.closes_ms]

    # ---- pages and traffic ----------------------------------------------------------------------

    def _title(self, path: str) -> str:
        title = _STATIC_TITLES.get(path)
        if title is not None:
            return title
        for p in _SHOP_PRODUCTS:
            if p.path == path:
                return f"{p.name} | {_SITE}"
        if path.startswith("/blog/"):
            return path[6:].replace("-", " ").capitalize() + f" | {_SITE}"
        if path.startswith("/drops/"):
            for d in self.world.drops:
                if d.slug == path[7:]:
                    return f"{d.product.name} | {_SITE}"
        if path.startswith("/members/"):
            return f"Lesson | {_SITE}"
        if path.startswith("/community/"):
            return f"Thread | Community | {_SITE}"
        return _SITE

    def _view(
        self,
        path: str,
        *,
        search: str = "",
        referrer: str | None = None,
        campaign: dict[str, str] | None = None,
    ) -> None:
        title = self._title(path)
        if self.device.app:
            self.page, self.campaign = None, None
            self._emit("screen", {"name": title.split(" | ")[0], "properties": {"path": path}})
        else:
            url = _BASE_URL + path + search
            if referrer is None:
                referrer = self.page["url"] if self.page is not None else ""
            self.page = {"path": path, "referrer": referrer, "search": search, "title": title, "url": url}
            self.campaign = campaign
            self._emit("page", {"name": title.split(" | ")[0], "properties": self.page})
        self._tick(5, 90)

    def _traffic(
        self, source: str, campaign_name: str
    ) -> tuple[list[tuple[str, str]], str, dict[str, str] | None]:
        rng = self.rng
        params: list[tuple[str, str]] = []
        if source == "tiktok":
            src = rng.choice(("tiktok", "tiktok", "TikTok ", "tt"))
            med = rng.choice(("social", "bio_link", "paid_social", "Social"))
            params = [("utm_source", src), ("utm_medium", med), ("utm_campaign", campaign_name)]
            if rng.random() < 0.3:
                params.append(("utm_content", f"v{rng.randint(10**17, 10**18 - 1)}"))
            if med == "paid_social" or rng.random() < 0.15:
                params.append(("ttclid", f"E.C.P.{rng.getrandbits(160):040x}"))
            referrer = "https://www.tiktok.com/" if rng.random() < 0.5 else ""
        elif source == "instagram":
            src = rng.choice(("ig", "instagram", "Instagram"))
            med = rng.choice(("social", "story", "reel", "paid_social", "bio_link"))
            params = [("utm_source", src), ("utm_medium", med), ("utm_campaign", campaign_name)]
            if med == "paid_social" or rng.random() < 0.3:
                params.append(("fbclid", f"PAZXh0bgNhZW0CMTEAAa{rng.getrandbits(192):048x}"))
            referrer = rng.choices(("https://l.instagram.com/", "https://www.instagram.com/", ""), (6, 2, 2))[
                0
            ]
        elif source == "newsletter":
            src = rng.choice(("newsletter", "convertkit"))
            params = [("utm_source", src), ("utm_medium", "email"), ("utm_campaign", campaign_name)]
            referrer = rng.choice(("", "", "https://mail.google.com/"))
        elif source == "google_ads":
            params = [("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", campaign_name)]
            params.append(("gclid", f"Cj0KCQjw{rng.getrandbits(180):045x}"))
            referrer = "https://www.google.com/"
        elif source == "organic":
            referrer = rng.choices(
                ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"), (8, 1, 1)
            )[0]
        else:  # direct
            referrer = ""
        campaign: dict[str, str] | None = None
        if params:
            keys = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name"}
            keys["utm_content"] = "content"
            campaign = {keys[k]: v for k, v in params if k in keys}
        return params, referrer, campaign

    def _land(
        self,
        reason: str,
        path: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
        campaign_name: str | None = None,
    ) -> None:
        """First view of a session: page (web) or screen (app) with the traffic source."""
        plan, rng = self.plan, self.rng
        if self.device.app:
            self._view("/community" if rng.random() < 0.6 else "/members")
            return
        if campaign_name is None:
            campaign_name = rng.choice(_SOCIAL_CAMPAIGNS)
        if reason.startswith("email:"):
            _, idx, link_path = reason.split(":", 2)
            source, campaign_name = "newsletter", self.world.sends[int(idx)].name
            path = path or link_path
        elif reason == "first":
            source = plan.channel
            if source == "site":
                source = rng.choices(("organic", "direct", "google_ads"), (55, 25, 20))[0]
                campaign_name = rng.choice(("brand_search", "launch_lab_search"))
            elif source == "newsletter":
                campaign_name = rng.choice(self.world.sends).name if self.world.sends else "welcome"
        elif reason in ("drop", "promo"):
            social = (
                plan.channel
                if plan.channel in ("tiktok", "instagram")
                else rng.choice(("tiktok", "instagram"))
            )
            source = rng.choices((social, "direct", "newsletter"), (6, 3, 2 if plan.subscriber else 0))[0]
        else:
            other = "instagram" if plan.channel == "tiktok" else "tiktok"
            own = plan.channel if plan.channel in ("tiktok", "instagram") else "organic"
            source = rng.choices(("direct", own, "organic", other), (40, 30, 15, 15))[0]
        if source == "newsletter" and reason not in ("promo", "first") and not reason.startswith("email:"):
            campaign_name = rng.choice(self.world.sends).name if self.world.sends else "weekly"
        params, referrer, campaign = self._traffic(source, campaign_name)
        params.extend(extra)
        search = "?" + urlencode(params) if params else ""
        if path is None:
            path = self._landing_path()
        self._view(path, search=search, referrer=referrer, campaign=campaign)

    def _landing_path(self) -> str:
        rng, persona = self.rng, self.plan.persona
        if persona == _LURKER:
            return rng.choices((f"/blog/{rng.choice(_BLOG)}", "/", rng.choice(_COURSES).path), (6, 2, 2))[0]
        if persona == _DEAL:
            return rng.choice(("/shop", rng.choice(_SHOP_PRODUCTS).path))
        if persona == _GIFTING:
            return rng.choice(("/gifts", "/shop", "/", rng.choice(_GIFTABLE).path))
        if persona == _LOYALIST:
            return "/members" if self.subscribed else rng.choice(("/membership", "/", "/links"))
        if persona == _WEEKEND:
            return rng.choice(("/drops", "/shop", "/", "/links"))
        return rng.choice(("/", "/drops", "/community", "/links", "/members"))

    # ---- activities -----------------------------------------------------------------------------

    def _checkout(
        self,
        product: _Product,
        *,
        complete: bool = True,
        coupon: _Promo | None = None,
        welcome: bool = False,
        gift: str | None = None,
        drop: _Drop | None = None,
    ) -> None:
        rng, plan = self.rng, self.plan
        checkout_id = self._id("chk")
        self._view("/checkout", search=f"?product={product.product_id}")
        currency = plan.currency if plan.currency in ("USD", "EUR", "GBP", "CAD", "AUD") else "USD"
        price = product.price_cents
        self._track(
            "Checkout Started",
            {
                "checkout_id": checkout_id,
                "product_id": product.product_id,
                "product_type": product.product_type,
                "value": _money(price),
                "currency": currency,
            },
        )
        self._tick(10, 120)
        self._maybe_identify()
        discount = 0
        props: dict[str, Any] = {}
        if coupon is not None or welcome:
            code = coupon.code if coupon is not None else "WELCOME10"
            pct = coupon.pct if coupon is not None else 10
            discount = price * pct // 100
            self._track(
                "Coupon Applied",
                {
                    "checkout_id": checkout_id,
                    "coupon_id": code.lower(),
                    "coupon_name": code,
                    "discount": _money(discount),
                    "currency": currency,
                },
            )
            self._tick(5, 60)
            props = {"coupon": code, "discount": _money(discount)}
        if not complete:
            return
        order: dict[str, Any] = {
            "order_id": self._id("ord"),
            "checkout_id": checkout_id,
            "product_id": product.product_id,
            "product_name": product.name,
            "product_type": product.product_type,
            "revenue": _money(price - discount),
            "currency": currency,
        }
        order.update(props)
        if drop is not None:
            order["drop_id"] = drop.drop_id
        if gift is not None:
            order["gift"] = True
            order["gift_occasion"] = gift
            order["gift_message"] = rng.choice(_GIFT_NOTES)
        self._track("Order Completed", order)
        if product.product_type == "course" and product not in self.owned:
            self.owned.append(product)
        self._view("/checkout/thank-you", search=f"?order={order['order_id']}")

    def _drop_viewed(self, drop: _Drop) -> None:
        elapsed = max(0, self.t - drop.opens_ms) / (drop.closes_ms - drop.opens_ms)
        remaining = max(0, int(drop.inventory * (1 - min(1.0, elapsed) ** 0.5)))
        self._track(
            "Drop Viewed",
            {
                "drop_id": drop.drop_id,
                "product_id": drop.product.product_id,
                "name": drop.product.name,
                "price": _money(drop.product.price_cents),
                "release_at": _iso(drop.opens_ms),
                "inventory_remaining": remaining,
                "limited_edition": True,
            },
        )
        self._tick(10, 90)

    def _product_viewed(self, product: _Product) -> None:
        self._track(
            "Product Viewed",
            {
                "product_id": product.product_id,
                "name": product.name,
                "product_type": product.product_type,
                "price": _money(product.price_cents),
            },
        )
        self._tick(15, 180)

    def _lessons(self, n: int) -> None:
        rng = self.rng
        if not self.owned:
            self._view(rng.choice(_COURSES).path)
            return
        for _ in range(n):
            course = rng.choice(self.owned)
            done = self.progress.get(course.product_id, 0)
            if done >= _MODULES * _LESSONS_PER_MODULE:
                done = rng.randrange(_MODULES * _LESSONS_PER_MODULE)  # rewatch
                self.progress[course.product_id] = done
            module, lesson = divmod(done, _LESSONS_PER_MODULE)
            module_id = f"{course.product_id}_m{module + 1}"
            lesson_id = f"{module_id}_l{lesson + 1}"
            slug = course.path.rsplit("/", 1)[1]
            self._view(f"/members/{slug}/m{module + 1}/l{lesson + 1}")
            base = {"course_id": course.product_id, "module_id": module_id, "lesson_id": lesson_id}
            self._track("Lesson Started", dict(base, lesson_number=done + 1))
            duration = rng.randint(4, 25) * 60
            self.t += duration * 1000
            if rng.random() < 0.85:
                self._track("Lesson Completed", dict(base, duration_seconds=duration))
                self.progress[course.product_id] = done + 1
                if lesson + 1 == _LESSONS_PER_MODULE:
                    self._track("Module Completed", {"module_id": module_id, "course_id": course.product_id})
            else:
                break

    def _community(self, post: bool, comments: int) -> None:
        rng = self.rng
        self._view("/community")
        if post:
            self._view("/community/new")
            self._tick(60, 600)
            self._track(
                "Community Post Created",
                {
                    "post_id": self._id("post"),
                    "space": rng.choice(_COMMUNITY_SPACES),
                    "characters": rng.randint(20, 1800),
                    "has_media": rng.random() < 0.3,
                },
            )
        for _ in range(comments):
            post_id = self._id("post")
            self._view(f"/community/t/{post_id[5:]}")
            self._tick(20, 240)
            self._track(
                "Community Comment Created",
                {"comment_id": self._id("cmt"), "post_id": post_id, "space": rng.choice(_COMMUNITY_SPACES)},
            )

    def _quiz(self) -> None:
        rng = self.rng
        self.quizzed = True
        self._view("/quiz/creator-type")
        self._tick(60, 300)
        answers = {key: rng.choice(options) for key, options in _QUIZ_QUESTIONS}
        score = rng.randint(20, 100)
        self._track(
            "Quiz Completed",
            {
                "quiz_id": "creator_type_quiz",
                "answers": answers,
                "score": score,
                "result": _QUIZ_RESULTS[score % len(_QUIZ_RESULTS)],
            },
        )
        self._maybe_identify()  # results are emailed: the quiz is an email gate
        self._view("/quiz/creator-type/results")

    def _assessment(self) -> None:
        self.assessed = True
        self._view("/assessment/launch-readiness")
        self._tick(120, 600)
        self._track(
            "Assessment Completed",
            {"assessment_id": "launch_readiness", "score": self.rng.randint(0, 100), "questions": 12},
        )

    # ---- sessions -------------------------------------------------------------------------------

    def _session(self, at: int, reason: str) -> None:
        plan, rng = self.plan, self.rng
        self.t = max(at, self.t + 30_000)
        self.sessions += 1
        n = len(plan.devices)
        if n > 1 and (reason != "first" or rng.random() < 0.2):
            self.dev_idx = rng.choices(range(n), (3, 2, 1)[:n])[0]
            self.device = plan.devices[self.dev_idx]
        if self.device.app and reason in ("first", "gift", "promo", "drop"):
            self.dev_idx, self.device = 0, plan.devices[0]
        self.page, self.campaign = None, None
        if self.identified and self.dev_idx not in self.logged_in:
            self._login()
        handler = {
            _SUPERFAN: self._superfan,
            _WEEKEND: self._weekend,
            _LOYALIST: self._loyalist,
            _GIFTING: self._gifting,
            _LURKER: self._lurker,
            _DEAL: self._deal,
        }[plan.persona]
        handler(reason)

    def _superfan(self, reason: str) -> None:
        rng = self.rng
        if reason == "drop":
            drop = self.world.drops[self.drop_cursor - 1]
            self._land("drop", path=drop.product.path)
            self._drop_viewed(drop)
            if rng.random() < 0.85:
                self.bought_drops.add(drop.drop_id)
                self._checkout(drop.product, drop=drop)
            if rng.random() < 0.3:
                self._community(post=True, comments=0)
            return
        self._land(reason)
        r = rng.random()
        if r < 0.4:
            self._lessons(rng.randint(1, 3))
        elif r < 0.75:
            self._community(post=rng.random() < 0.35, comments=rng.randint(1, 3))
        else:
            self._view("/drops")
            for drop in self._open_drops()[:2]:
                self._drop_viewed(drop)
                if drop.drop_id not in self.bought_drops and rng.random() < 0.5:
                    self.bought_drops.add(drop.drop_id)
                    self._checkout(drop.product, drop=drop)
        if rng.random() < 0.05:
            product = rng.choice(_PLAYBOOKS + _COACHING + _COURSES)
            self._view(product.path)
            self._product_viewed(product)
            self._checkout(product)
        if self.identified and rng.random() < 0.1:
            self._group()
        if rng.random() < 0.25:
            self._community(post=False, comments=rng.randint(1, 2))

    def _weekend(self, reason: str) -> None:
        rng = self.rng
        self._land(reason)
        for _ in range(rng.randint(0, 2)):
            self._view(rng.choice(("/drops", "/shop", "/", f"/blog/{rng.choice(_BLOG)}")))
        drops = self._open_drops()
        if drops:
            for drop in drops[:2]:
                self._view(drop.product.path)
                self._drop_viewed(drop)
                if drop.drop_id not in self.bought_drops and rng.random() < 0.45:
                    self.bought_drops.add(drop.drop_id)
                    self._checkout(drop.product, drop=drop)
        else:
            past = [d for d in self.world.drops if d.closes_ms <= self.t]
            if past:
                drop = rng.choice(past)
                self._view(drop.product.path)
                self._drop_viewed(drop)
            else:
                self._product_viewed(rng.choice(_PLAYBOOKS))
        if rng.random() < 0.15:
            self._community(post=False, comments=1)

    def _loyalist(self, reason: str) -> None:
        plan, rng = self.plan, self.rng
        if not self.subscribed and plan.will_identify and (self.sessions > 1 or rng.random() < 0.6):
            self._land(reason, path="/membership")
            self._product_viewed(_MEMBERSHIP)
            self._checkout(_MEMBERSHIP, complete=False)
            self._maybe_identify()
            self.subscribed = True
            self.subscription_id = self._id("sub")
            self.owned = list(_COURSES)
            currency = plan.currency if plan.currency in ("USD", "EUR", "GBP", "CAD") else "USD"
            self._track(
                "Subscription Started",
                {
                    "subscription_id": self.subscription_id,
                    "plan_id": _MEMBERSHIP.product_id,
                    "plan": "inner_circle",
                    "revenue": _money(_MEMBERSHIP.price_cents),
                    "currency": currency,
                    "billing_interval": "month",
                },
            )
            self._push(self.t + 30 * _DAY_MS, "renew")
            self._view("/members")
            self._lessons(1)
            return
        self._land(reason)
        if not self.subscribed:
            for _ in range(rng.randint(1, 4)):
                self._view(rng.choice(("/membership", "/pricing", "/testimonials", "/faq")))
            return
        if rng.random() < 0.65:
            self._lessons(rng.randint(1, 4))
        if rng.random() < 0.45:
            self._community(post=rng.random() < 0.25, comments=rng.randint(0, 2))

    def _gifting(self, reason: str) -> None:
        plan, rng = self.plan, self.rng
        if reason == "gift" and not self.purchased:
            product = rng.choice(_GIFTABLE)
            drops = self._open_drops()
            if drops and rng.random() < 0.3:
                product = drops[0].product
            landing = rng.choice(("/gifts", product.path)) if self._room(9) else product.path
            self._land("first" if self.sessions == 1 else reason, path=landing)
            if self.page is not None and self.page["path"] != product.path:
                self._view(product.path)
            self._product_viewed(product)
            self.purchased = True
            drop = next((d for d in drops if d.product is product), None)
            self._checkout(product, gift=plan.gift_occasion, drop=drop)
            return
        self._land(reason)
        if not self.purchased:
            for _ in range(rng.randint(1, 4)):
                if not self._room(7):
                    return
                product = rng.choice(_GIFTABLE)
                self._view(product.path)
                if self._room(7):
                    self._product_viewed(product)
            return
        # Rare return visit after the gift: read a few pages and leave.
        if self.identified and rng.random() < 0.5:
            self._view("/account/orders")
        for _ in range(rng.randint(3, 8)):
            self._view(rng.choice(_RETURN_PATHS))

    def _lurker(self, reason: str) -> None:
        rng = self.rng
        self._land(reason)
        for _ in range(rng.randint(3, 10)):
            path = rng.choice(_LURKER_PATHS)
            self._view(path)
            if rng.random() < 0.15:
                product = next((p for p in _SHOP_PRODUCTS if p.path == path), None)
                if product is not None:
                    self._product_viewed(product)
        if not self.quizzed and (self.sessions > 1 or rng.random() < 0.4) and rng.random() < 0.7:
            self._quiz()
        elif self.quizzed and not self.assessed and rng.random() < 0.3:
            self._assessment()
        r = rng.random()
        if r < 0.01:
            product = rng.choice(_PLAYBOOKS)
            self._view(product.path)
            self._checkout(product)
        elif r < 0.05:
            self._checkout(rng.choice(_SHOP_PRODUCTS), complete=False)

    def _deal(self, reason: str) -> None:
        rng = self.rng
        promo = self._promo_at(self.t)
        product = rng.choice(_SHOP_PRODUCTS[:6])
        if promo is not None and rng.random() < 0.85:
            self._land(
                "promo",
                path=rng.choice(("/shop", product.path)),
                extra=(("coupon", promo.code),),
                campaign_name=promo.name,
            )
        else:
            self._land(reason)
        for _ in range(rng.randint(0, 2)):
            self._view(rng.choice(("/shop", "/pricing", rng.choice(_SHOP_PRODUCTS).path)))
        self._view(product.path)
        self._product_viewed(product)
        if promo is not None and promo.name not in self.used_promos and rng.random() < 0.6:
            self.used_promos.add(promo.name)
            self._checkout(product, coupon=promo)
        elif promo is None and not self.welcome_used and rng.random() < 0.12:
            self.welcome_used = True
            self._checkout(product, welcome=True)
        elif rng.random() < 0.35:
            checkout_id = self._id("chk")
            self._track(
                "Checkout Started",
                {
                    "checkout_id": checkout_id,
                    "product_id": product.product_id,
                    "product_type": product.product_type,
                    "value": _money(product.price_cents),
                    "currency": "USD",
                },
            )
            expired = [p for p in self.world.promos if p.ends_ms <= self.t]
            code = rng.choice(expired).code if expired else rng.choice(("SAVE50", "FREESHIP", "CREATOR100"))
            self._track(
                "Coupon Denied",
                {
                    "checkout_id": checkout_id,
                    "coupon_name": code,
                    "reason": "expired" if expired else "invalid",
                },
            )


def _buyer_stream(world: _World, plan: _Plan) -> Iterator[_Rec]:
    yield from _BuyerRun(world, plan).run()


# --------------------------------------------------------------------------------------------------
# Audience
# --------------------------------------------------------------------------------------------------


class Audience:
    """A seeded synthetic creator audience; see the module docstring."""

    def __init__(
        self,
        *,
        buyers: int = 5000,
        events: int = 200_000,
        seed: int = 7,
        start: datetime | None = None,
        days: int = 90,
        duplicate_rate: float = 0.01,
        malformed_rate: float = 0.004,
    ) -> None:
        if buyers < 1:
            raise ValueError("buyers must be >= 1")
        if events < 0:
            raise ValueError("events must be >= 0")
        if days < 1:
            raise ValueError("days must be >= 1")
        if not (0.0 <= duplicate_rate < 0.5 and 0.0 <= malformed_rate < 0.5):
            raise ValueError("duplicate_rate and malformed_rate must be in [0, 0.5)")
        if start is None:
            start = _DEFAULT_START
        elif start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._seed_key = f"offerloop-sim-v1:{seed}"
        self._events = events
        start_ms = _ms(start)
        self._world = _build_world(self._seed_key, start_ms, start_ms + days * _DAY_MS)

        n_malformed = round(events * malformed_rate)
        n_duplicates = round(events * duplicate_rate)
        if events > 0:  # the first message must be a normal one (a duplicate needs an original)
            n_duplicates = min(n_duplicates, events - 1)
            n_malformed = min(n_malformed, events - 1 - n_duplicates)
        else:
            n_duplicates = n_malformed = 0
        self._n_duplicates = n_duplicates
        self._n_malformed = n_malformed
        n_normal = events - n_duplicates - n_malformed

        rng = random.Random(f"{self._seed_key}:plan")
        self._plans = self._make_plans(rng, buyers)
        for plan, budget in zip(self._plans, _allocate(n_normal, self._plans), strict=True):
            self._finish_plan(rng, plan, budget)
        self.buyers: list[SyntheticBuyer] = [p.buyer for p in self._plans if p.buyer is not None]

        # Stream positions of duplicates (-1) and malformed messages (index into the malformed kinds).
        specials = rng.sample(range(1, events), n_duplicates + n_malformed) if events > 1 else []
        kinds = [i % len(_MALFORMED_KINDS) for i in range(n_malformed)]
        rng.shuffle(kinds)
        self._special: dict[int, int] = {}
        for i, pos in enumerate(specials):
            self._special[pos] = -1 if i >= n_malformed else i
        self._malformed_kinds = kinds
        self.malformed_message_ids: set[str] = {
            _rng_uuid(random.Random(f"{self._seed_key}:malformed:{i}")) for i in range(n_malformed)
        }
        self._stats: AudienceStats | None = None

    # ---- construction ---------------------------------------------------------------------------

    def _make_plans(self, rng: random.Random, buyers: int) -> list[_Plan]:
        world = self._world
        span = world.end_ms - world.start_ms
        # Exact channel mix (largest remainder), then shuffled: the mix is a property of the audience.
        quotas = [buyers * w for w in _CHANNEL_WEIGHTS]
        counts = [int(q) for q in quotas]
        for i in sorted(range(len(CHANNELS)), key=lambda i: (-(quotas[i] - counts[i]), i))[
            : buyers - sum(counts)
        ]:
            counts[i] += 1
        channels = [c for c, k in zip(CHANNELS, counts, strict=True) for _ in range(k)]
        rng.shuffle(channels)
        user_numbers = rng.sample(range(1, max(1_000_000, 10 * buyers)), buyers)
        occasions = _gift_occasions(world.start_ms, world.end_ms)
        zone_weights = [z[5] for z in _ZONES]
        plans: list[_Plan] = []
        for i, channel in enumerate(channels):
            persona = rng.choices(PERSONAS, _PERSONA_GIVEN_CHANNEL[channel])[0]
            zone, _, _, locales, currency, _ = rng.choices(_ZONES, zone_weights)[0]
            identify_p = _IDENTIFY_P[persona]
            if channel == "newsletter":
                identify_p = min(0.98, identify_p + 0.15)
            existing = rng.random() < _EXISTING_P.get(persona, 0.0)
            will_identify = existing or rng.random() < identify_p
            first = rng.choice(_FIRST_NAMES)
            last = rng.choice(_LAST_NAMES)
            phone: str | None = None
            if rng.random() < 0.35:
                if rng.random() < 0.85:
                    phone = f"+1{rng.choice(_AREA_CODES)}55501{rng.randint(0, 99):02d}"
                else:
                    phone = f"+447700900{rng.randint(100, 999)}"
            tiktok_p = 0.55 if channel == "tiktok" else 0.12
            insta_p = 0.55 if channel == "instagram" else 0.15
            tiktok_id = f"7{rng.randrange(10**17, 10**18)}" if rng.random() < tiktok_p else None
            instagram_id = f"1784{rng.randrange(10**12, 10**13)}" if rng.random() < insta_p else None
            # Gift timing: the two weeks before a holiday in (or just after) the window.
            gift_occasion, gift_ms = "birthday", world.start_ms + int(rng.random() * span)
            if occasions:
                gift_occasion, holiday, _ = rng.choices(occasions, [o[2] for o in occasions])[0]
                lo = max(world.start_ms + _DAY_MS, holiday - 14 * _DAY_MS)
                hi = min(world.end_ms - _DAY_MS, holiday - _DAY_MS)
                gift_ms = lo + int(rng.random() * max(_HOUR_MS, hi - lo))
            if persona == _GIFTING:
                first_seen = max(
                    world.start_ms, gift_ms - int(rng.choice((0.0, 0.0, 1.0)) * rng.random() * 9 * _DAY_MS)
                )
            elif existing:
                first_seen = world.start_ms + int(rng.random() * 3 * _DAY_MS)
            else:
                first_seen = world.start_ms + int(rng.random() ** 1.3 * 0.85 * span)
            if persona == _WEEKEND:  # collectors discover the shop on a weekend, too
                first_seen = _weekend_time(rng, zone, first_seen, world.end_ms)
            remaining_frac = (world.end_ms - first_seen) / span
            weight = _ACTIVITY[persona] * rng.lognormvariate(0.0, _ACTIVITY_SIGMA[persona])
            weight *= 1.3 if will_identify else 0.7
            if persona != _GIFTING:
                weight *= 0.3 + 0.7 * remaining_frac
            subscriber = channel == "newsletter" or rng.random() < _SUBSCRIBER_P[persona]
            plans.append(
                _Plan(
                    index=i,
                    persona=persona,
                    channel=channel,
                    zone=zone,
                    locale=rng.choice(locales),
                    currency=currency if rng.random() < 0.6 else "USD",
                    devices=_make_devices(rng, persona, channel),
                    first_seen_ms=first_seen,
                    weight=weight,
                    will_identify=will_identify,
                    existing=existing,
                    subscriber=subscriber,
                    user_id=f"u_{user_numbers[i]:06d}",
                    first_name=first,
                    last_name=last,
                    email=_make_email(rng, first, last),
                    phone=phone,
                    tiktok_id=tiktok_id,
                    instagram_id=instagram_id,
                    gift_occasion=gift_occasion,
                    gift_ms=gift_ms,
                    renew_ms=world.start_ms + int(rng.random() * 30 * _DAY_MS),
                )
            )
        # Unique emails: suffix clashes deterministically.
        seen: set[str] = set()
        for plan in plans:
            if plan.email in seen:
                local, _, domain = plan.email.partition("@")
                plan.email = f"{local}.{plan.index}@{domain}"
            seen.add(plan.email)
        return plans

    def _finish_plan(self, rng: random.Random, plan: _Plan, budget: int) -> None:
        plan.budget = budget
        persona = plan.persona
        if plan.will_identify and budget >= 2:
            if plan.existing:
                at = 0
            elif persona == _SUPERFAN:
                at = rng.randint(1, 4)
            elif persona == _LOYALIST:
                at = rng.randint(2, 8)
            elif persona == _GIFTING:
                at = budget - 1  # normally earlier: at checkout
            elif persona == _LURKER:
                at = int(budget * rng.uniform(0.3, 0.85))
            else:
                at = int(budget * rng.uniform(0.05, 0.6))
            plan.identify_at = min(budget - 1, max(0 if plan.existing else 1, at))
        else:
            plan.will_identify = False
            plan.identify_at = -1
            plan.existing = False
        identified = plan.will_identify
        width = max(5, len(str(len(self._plans) - 1)))
        plan.buyer = SyntheticBuyer(
            key=f"b{plan.index:0{width}d}",
            persona=persona,
            user_id=plan.user_id if identified else None,
            email=plan.email if identified else None,
            anonymous_ids=tuple(d.anonymous_id for d in plan.devices),
            channel=plan.channel,
            tiktok_id=plan.tiktok_id if identified else None,
            instagram_id=plan.instagram_id if identified else None,
        )

    # ---- output ---------------------------------------------------------------------------------

    def _malformed(self, i: int, now_ms: int) -> dict[str, Any]:
        rng = random.Random(f"{self._seed_key}:malformed:{i}")
        message_id = _rng_uuid(rng)  # same first draw as in __init__
        kind = _MALFORMED_KINDS[self._malformed_kinds[i]]
        plan = self._plans[rng.randrange(len(self._plans))]
        msg: dict[str, Any] = {
            "messageId": message_id,
            "type": "track",
            "event": rng.choice(("Product Viewed", "Order Completed", "Lesson Started", "Drop Viewed")),
            "anonymousId": _rng_uuid(rng),
            "properties": {"product_id": rng.choice(_SHOP_PRODUCTS).product_id},
            "context": {
                "library": dict(_LIB_JS),
                "userAgent": plan.devices[0].user_agent,
                "ip": plan.devices[0].ip,
            },
            "timestamp": _iso(now_ms),
            "sentAt": _iso(now_ms + rng.randint(10, 2000)),
        }
        if kind == "missing_type":
            del msg["type"]
        elif kind == "unknown_type":
            msg["type"] = rng.choice(("pageview", "purchase", "trak", "event", "click"))
        elif kind == "track_without_event":
            variant = rng.randrange(3)
            if variant == 0:
                del msg["event"]
            else:
                msg["event"] = "" if variant == 1 else None
        elif kind == "no_ids":
            del msg["anonymousId"]
            if rng.random() < 0.5:
                msg["userId"] = None
        elif kind == "bad_timestamp":
            msg["timestamp"] = rng.choice(("yesterday", "yesterday", "not-a-date", "2026-13-45T25:61:00Z"))
        elif kind == "properties_list":
            msg["properties"] = [msg["properties"], {"price": "49.00"}]
        elif kind == "oversized_properties":
            msg["properties"] = {"product_id": "pb_viral_hooks", "debug_dump": rng.randbytes(20_480).hex()}
        else:  # junk_id
            junk = rng.choice(_JUNK_IDS)
            del msg["anonymousId"]
            if rng.random() < 0.5:
                msg["userId"] = junk
            else:
                msg["anonymousId"] = junk
        return msg

    def _message(self, rec: _Rec) -> dict[str, Any]:
        """Render a record as a fresh Segment message dict (pure: same record, same message)."""
        t, buyer, seq, kind, fields, device, identified, page, campaign, context_traits = rec
        plan = self._plans[buyer]
        digest = hashlib.blake2b(f"{self._seed_key}:{buyer}:{seq}".encode(), digest_size=24).digest()
        bits = int.from_bytes(digest, "big")
        h = f"{(bits & _UUID_MASK & _UUID_CLEAR) | _UUID_SET:032x}"
        jitter = bits >> 128  # 64 more bits for the send delay
        msg: dict[str, Any] = {"messageId": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", "type": kind}
        for key, value in fields.items():
            msg[key] = _clone(value)
        if device < 0:
            msg["userId"] = plan.user_id
            msg["timestamp"] = _iso(t)
            msg["sentAt"] = _iso(t + 40 + jitter % 2460)
            msg["context"] = {"library": dict(_LIB_SERVER)}
            return msg
        dev = plan.devices[device]
        if identified:
            msg["userId"] = plan.user_id
        msg["anonymousId"] = dev.anonymous_id
        if dev.app:
            if jitter % 10:
                delay = 5000 + (jitter >> 8) % 25_000
            else:  # offline: the queue flushes minutes to hours later
                delay = 2 * _MIN_MS + (jitter >> 8) % (4 * _HOUR_MS)
            ctx: dict[str, Any] = {
                "library": dict(_LIB_IOS),
                "app": {"name": "Rowan Vale Community", "version": "2.3.1", "build": "231"},
                "device": {"type": "ios", "manufacturer": "Apple", "model": "iPhone15,2"},
                "os": {"name": "iOS", "version": "17.5.1"},
            }
        else:
            delay = 10 + jitter % 1500
            ctx = {"library": dict(_LIB_JS)}
            if page is not None:
                ctx["page"] = dict(page)
            if campaign is not None:
                ctx["campaign"] = dict(campaign)
        ctx["userAgent"] = dev.user_agent
        ctx["ip"] = dev.ip
        ctx["locale"] = plan.locale
        ctx["timezone"] = plan.zone
        if context_traits is not None:
            ctx["traits"] = _clone(context_traits)
        msg["context"] = ctx
        msg["timestamp"] = _iso(t + dev.skew_ms)
        msg["sentAt"] = _iso(t + delay + dev.skew_ms)
        return msg

    def _skew(self, rec: _Rec) -> int:
        """The clock error (ms) of the device that sends ``rec``; server-side messages have none."""
        return 0 if rec.device < 0 else self._plans[rec.buyer].devices[rec.device].skew_ms

    def _stream(self) -> Iterator[tuple[int, dict[str, Any], int]]:
        """(kind, message, sender's clock skew in ms): kind 0 = normal, 1 = duplicate, 2 = malformed."""
        merged = heapq.merge(*(_buyer_stream(self._world, p) for p in self._plans), key=itemgetter(0))
        srng = random.Random(f"{self._seed_key}:stream")
        recent: deque[_Rec] = deque(maxlen=4096)
        reservoir: list[_Rec] = []
        seen = 0
        now_ms = self._world.start_ms
        special = self._special
        render = self._message
        for pos in range(self._events):
            slot = special.get(pos)
            if slot is None:
                rec = next(merged)
                now_ms = rec.t
                recent.append(rec)
                seen += 1
                if len(reservoir) < 512:
                    reservoir.append(rec)
                else:
                    j = srng.randrange(seen)
                    if j < 512:
                        reservoir[j] = rec
                yield 0, render(rec), self._skew(rec)
            elif slot < 0:
                r = srng.random()
                if r < 0.45:  # re-sent within the same batch (usually)
                    original = recent[-1 - srng.randrange(min(len(recent), 30))]
                elif r < 0.75:
                    original = recent[-1 - srng.randrange(len(recent))]
                else:  # much later
                    original = reservoir[srng.randrange(len(reservoir))]
                yield 1, render(original), self._skew(original)
            else:
                yield 2, self._malformed(slot, now_ms), 0

    def messages(self, *, sent_at: Callable[[], datetime] | None = None) -> Iterator[dict[str, Any]]:
        """Every message in (send) time order, exactly ``events`` of them.

        ``sent_at``: the clock of a replay (see the module docstring); read as each message is yielded.
        """
        for _, msg, skew in self._stream():
            if sent_at is not None:
                _stamp(msg, _clock_ms(sent_at), skew)
            yield msg

    def batches(
        self, size: int = 100, *, sent_at: Callable[[], datetime] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Chunks of ``messages()``; each is the ``batch`` list of one Segment ``/v1/batch`` request.

        ``sent_at``: the clock of a replay (see the module docstring), read once per batch when it is
        complete, so yield each batch only when it is about to be sent.
        """
        for chunk in self.unsent_batches(size):
            yield _sent(chunk, sent_at)

    def unsent_batches(self, size: int = 100) -> Iterator[list[tuple[dict[str, Any], int]]]:
        """Chunks of ``messages()`` as (message, device clock skew in ms), without ``sentAt``: a replay
        can render the whole stream first and stamp each batch with ``stamp_sent`` as it sends it."""
        if size < 1:
            raise ValueError("size must be >= 1")
        chunk: list[tuple[dict[str, Any], int]] = []
        for _, msg, skew in self._stream():
            chunk.append((msg, skew))
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def stats(self) -> AudienceStats:
        """Counts from one streaming pass (cached); no message is kept."""
        if self._stats is None:
            by_type: dict[str, int] = {}
            events = duplicates = malformed = 0
            for kind, msg, _ in self._stream():
                events += 1
                if kind == 2:
                    malformed += 1
                    continue
                duplicates += kind
                by_type[msg["type"]] = by_type.get(msg["type"], 0) + 1
            by_channel = {c: 0 for c in CHANNELS}
            for b in self.buyers:
                by_channel[b.channel] += 1
            self._stats = AudienceStats(
                buyers=len(self.buyers),
                identified=sum(1 for b in self.buyers if b.user_id is not None),
                events=events,
                duplicates=duplicates,
                malformed=malformed,
                by_channel=by_channel,
                by_type=dict(sorted(by_type.items())),
            )
        return self._stats


def _clock_ms(clock: Callable[[], datetime]) -> int:
    now = clock()
    return _ms(now if now.tzinfo is not None else now.replace(tzinfo=UTC))  # naive: UTC


def _stamp(msg: dict[str, Any], now_ms: int, skew_ms: int) -> None:
    """Set ``sentAt`` to the real send time ``now_ms`` as read on a device ``skew_ms`` off."""
    msg["sentAt"] = _iso(now_ms + skew_ms)


def stamp_sent(chunk: list[tuple[dict[str, Any], int]], now: datetime) -> list[dict[str, Any]]:
    """The batch of an ``unsent_batches`` chunk sent at ``now``, as each device's clock reads it."""
    return _sent(chunk, lambda: now)


def _sent(
    chunk: list[tuple[dict[str, Any], int]], sent_at: Callable[[], datetime] | None
) -> list[dict[str, Any]]:
    if sent_at is not None:
        now_ms = _clock_ms(sent_at)
        for msg, skew in chunk:
            _stamp(msg, now_ms, skew)
    return [msg for msg, _ in chunk]
