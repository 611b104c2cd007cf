"""Marketing touchpoints from Segment-spec events.

``extract_touchpoint`` turns one event's ``properties`` and ``context`` into a
normalised :class:`TouchpointData` (channel, UTM values, click id, referrer) for
attribution. Without ``utm_content``, the content is the platform post or video the
referrer URL names (``youtube:<id>``, ``tiktok:<id>`` …), when it names one. It is pure and total: junk input is flagged in ``flags`` instead of
raising, and nothing that was sent is silently dropped without a flag.

Flag names are ``<problem>:<field>``. Problems: ``malformed`` (wrong type or
unparseable URL), ``empty`` (blank after stripping), ``placeholder`` (unresolved
template such as ``{{campaign}}``), ``truncated`` (longer than 200 characters),
``duplicate`` (query parameter repeated with different values). Fields are
``utm_source``/``utm_medium``/``utm_campaign``/``utm_content``/``utm_term``, the
click id names, ``url``, ``referrer``, ``event_type``, ``properties``,
``context``, ``context.page`` and ``context.campaign``.

A JSON ``null`` is treated as "not sent" and is not flagged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

# dict first: events' JSON objects are dicts, and a check against the Mapping ABC alone costs ~5x.
_MAPPINGS = (dict, Mapping)

__all__ = ["CHANNELS", "TouchpointData", "extract_touchpoint", "touch_channel", "touchpoint_of"]

CHANNELS: tuple[str, ...] = ("search", "social", "email", "paid", "direct", "referral")

MAX_VALUE_LENGTH = 200
MAX_CLICK_ID_LENGTH = 255
MAX_HOST_LENGTH = 253  # the longest DNS name


@dataclass(frozen=True, slots=True)
class TouchpointData:
    channel: str
    source: str | None
    medium: str | None
    campaign: str | None
    content: str | None
    term: str | None
    click_id_type: str | None
    click_id: str | None
    referrer_host: str | None
    landing_url: str | None
    flags: tuple[str, ...]


# (TouchpointData attribute, URL query parameter, key in Segment's context.campaign)
_UTM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("source", "utm_source", "source"),
    ("medium", "utm_medium", "medium"),
    ("campaign", "utm_campaign", "name"),
    ("content", "utm_content", "content"),
    ("term", "utm_term", "term"),
)

# Order decides which id is reported when a URL carries several: paid ids first,
# because fbclid is appended to organic shares too and says the least.
_CLICK_IDS: tuple[str, ...] = ("gclid", "msclkid", "ttclid", "li_fat_id", "fbclid")
_PAID_CLICK_IDS = frozenset({"gclid", "msclkid", "ttclid", "li_fat_id"})
_CLICK_ID_SOURCES: dict[str, str] = {
    "gclid": "google",
    "msclkid": "bing",
    "ttclid": "tiktok",
    "li_fat_id": "linkedin",
    "fbclid": "facebook",
}

_SOURCE_ALIASES: dict[str, str] = {
    "ig": "instagram",
    "insta": "instagram",
    "instagram.com": "instagram",
    "l.instagram.com": "instagram",
    "fb": "facebook",
    "facebook.com": "facebook",
    "m.facebook.com": "facebook",
    "l.facebook.com": "facebook",
    "meta": "facebook",
    "tt": "tiktok",
    "tiktok.com": "tiktok",
    "vm.tiktok.com": "tiktok",
    "yt": "youtube",
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "tw": "twitter",
    "x": "twitter",
    "twitter.com": "twitter",
    "t.co": "twitter",
    "x.com": "twitter",
    "li": "linkedin",
    "lnkd.in": "linkedin",
    "linkedin.com": "linkedin",
    "goog": "google",
    "google.com": "google",
    "news letter": "newsletter",
    "news-letter": "newsletter",
    "news_letter": "newsletter",
}

_MEDIUM_ALIASES: dict[str, str] = {
    "cpc": "cpc",
    "ppc": "cpc",
    "paidsearch": "cpc",
    "paid_search": "cpc",
    "paid-search": "cpc",
    "paid search": "cpc",
    "paid_social": "paid_social",
    "paidsocial": "paid_social",
    "paid-social": "paid_social",
    "paid social": "paid_social",
    "e-mail": "email",
    "e_mail": "email",
    "mail": "email",
    "email": "email",
    "social": "social",
    "social-media": "social",
    "social_media": "social",
    "social media": "social",
    "organic_social": "social",
    "organic-social": "social",
    "referral": "referral",
    "ref": "referral",
}

_PAID_MEDIUMS = frozenset({"cpc", "paid_social", "display", "cpm", "paid", "cpv", "cpa", "retargeting"})
_EMAIL_MEDIUMS = frozenset({"email", "newsletter"})
_REFERRAL_MEDIUMS = frozenset({"referral", "affiliate"})

_SOCIAL_SOURCES = frozenset(
    {"instagram", "facebook", "tiktok", "youtube", "twitter", "linkedin", "pinterest", "reddit", "threads"}
)
_SEARCH_SOURCES = frozenset({"google", "bing", "duckduckgo", "yahoo", "yandex", "baidu", "ecosia"})
_EMAIL_SOURCES = frozenset(
    {
        "newsletter",
        "email",
        "substack",
        "convertkit",
        "kit",
        "mailchimp",
        "beehiiv",
        "buttondown",
        "klaviyo",
        "mailerlite",
        "sendgrid",
        "brevo",
        "sendinblue",
        "activecampaign",
        "constantcontact",
        "aweber",
        "hs_email",
        "gmail",
        "outlook",
        "yahoo_mail",
    }
)

# Registrable-domain suffix -> (normalised source, kind). Matched label-wise, longest
# suffix first, so "l.instagram.com" hits "instagram.com" but "evilinstagram.com" does not.
_HOST_SUFFIXES: dict[str, tuple[str, str]] = {
    "instagram.com": ("instagram", "social"),
    "facebook.com": ("facebook", "social"),
    "fb.com": ("facebook", "social"),
    "fb.me": ("facebook", "social"),
    "messenger.com": ("facebook", "social"),
    "tiktok.com": ("tiktok", "social"),
    "youtube.com": ("youtube", "social"),
    "youtu.be": ("youtube", "social"),
    "twitter.com": ("twitter", "social"),
    "t.co": ("twitter", "social"),
    "x.com": ("twitter", "social"),
    "linkedin.com": ("linkedin", "social"),
    "lnkd.in": ("linkedin", "social"),
    "pinterest.com": ("pinterest", "social"),
    "pin.it": ("pinterest", "social"),
    "reddit.com": ("reddit", "social"),
    "redd.it": ("reddit", "social"),
    "threads.net": ("threads", "social"),
    "threads.com": ("threads", "social"),
    "bing.com": ("bing", "search"),
    "duckduckgo.com": ("duckduckgo", "search"),
    "search.yahoo.com": ("yahoo", "search"),
    "baidu.com": ("baidu", "search"),
    "ecosia.org": ("ecosia", "search"),
    "mail.google.com": ("gmail", "email"),
    "outlook.live.com": ("outlook", "email"),
    "outlook.office.com": ("outlook", "email"),
    "outlook.office365.com": ("outlook", "email"),
    "mail.yahoo.com": ("yahoo_mail", "email"),
    # Android apps report referrers as android-app://<package>/.
    "com.google.android.gm": ("gmail", "email"),
    "com.google.android.googlequicksearchbox": ("google", "search"),
}

# google.* and yandex.* span many country TLDs. Only the bare/www host is search:
# docs.google.com or news.google.com are ordinary referrals.
_HOST_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"(?:www\.)?google\.[a-z]{2,3}(?:\.[a-z]{2})?"), "google", "search"),
    (re.compile(r"(?:www\.)?yandex\.[a-z]{2,3}(?:\.[a-z]{2})?"), "yandex", "search"),
)

# A post or video a visitor came from, read off the referrer's path when the link carried no utm_content:
# (host suffix, path pattern, query parameter holding the id or None). Ids keep their case (YouTube's are
# case-sensitive); the content value is "<platform>:<id>". Referrer policies often cut a referrer to its
# origin, so this finds the post only where the platform or app passes the whole URL.
_CONTENT_ID = r"([A-Za-z0-9_-]{1,64})"
_PLATFORM_CONTENT: tuple[tuple[str, str, re.Pattern[str], str | None], ...] = (
    ("youtube.com", "youtube", re.compile(r"/watch/?"), "v"),
    ("youtube.com", "youtube", re.compile(rf"/(?:shorts|live|embed)/{_CONTENT_ID}/?"), None),
    ("youtu.be", "youtube", re.compile(rf"/{_CONTENT_ID}/?"), None),
    ("tiktok.com", "tiktok", re.compile(r"/@[^/]{1,64}/(?:video|photo)/([0-9]{1,32})/?"), None),
    (
        "instagram.com",
        "instagram",
        re.compile(rf"/(?:[^/]{{1,64}}/)?(?:p|reel|reels|tv)/{_CONTENT_ID}/?"),
        None,
    ),
    ("twitter.com", "twitter", re.compile(r"/[^/]{1,64}/status/([0-9]{1,32})(?:/.*)?"), None),
    ("x.com", "twitter", re.compile(r"/[^/]{1,64}/status/([0-9]{1,32})(?:/.*)?"), None),
    ("threads.net", "threads", re.compile(rf"/@[^/]{{1,64}}/post/{_CONTENT_ID}/?"), None),
    ("threads.com", "threads", re.compile(rf"/@[^/]{{1,64}}/post/{_CONTENT_ID}/?"), None),
    (
        "facebook.com",
        "facebook",
        re.compile(rf"/(?:[^/]{{1,64}}/posts|reel|watch/live|videos)/{_CONTENT_ID}/?"),
        None,
    ),
    ("facebook.com", "facebook", re.compile(r"/watch/?"), "v"),
    ("reddit.com", "reddit", re.compile(r"/r/[^/]{1,64}/comments/([a-z0-9]{1,16})(?:/.*)?"), None),
    ("pinterest.com", "pinterest", re.compile(r"/pin/([0-9]{1,32})/?"), None),
    (
        "linkedin.com",
        "linkedin",
        re.compile(r"/feed/update/urn:li:(?:activity|share|ugcPost):([0-9]{1,32})/?"),
        None,
    ),
)
_QUERY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _platform_content(host: str, parts: SplitResult) -> str | None:
    """``"<platform>:<id>"`` of the post or video a referrer URL points at, or None."""
    labels = host.split(".")
    suffixes = {".".join(labels[start:]) for start in range(len(labels) - 1)}
    for suffix, platform, path_re, param in _PLATFORM_CONTENT:
        if suffix not in suffixes:
            continue
        matched = path_re.fullmatch(parts.path)
        if matched is None:
            continue
        if param is None:
            return f"{platform}:{matched.group(1)}"
        for key, value in parse_qsl(parts.query):
            if key == param and _QUERY_ID_RE.fullmatch(value):
                return f"{platform}:{value}"
    return None


_PLACEHOLDER_RE = re.compile(r"\{\{[^{}]*\}\}|\{[^{}]+\}|%%[^%]+%%|\[[^\[\]]+\]")
_WHITESPACE_RE = re.compile(r"\s+")


def _classify_host(host: str) -> tuple[str, str] | None:
    """Return (normalised source, kind) for a known social/search/email host."""
    for pattern, name, kind in _HOST_PATTERNS:
        if pattern.fullmatch(host):
            return name, kind
    labels = host.split(".")
    for start in range(len(labels) - 1):
        hit = _HOST_SUFFIXES.get(".".join(labels[start:]))
        if hit is not None:
            return hit
    return None


def _canonical_source(value: str) -> str:
    alias = _SOURCE_ALIASES.get(value)
    if alias is not None:
        return alias
    if "." in value and " " not in value:
        hit = _classify_host(value)
        if hit is not None:
            return hit[0]
    return value


def _as_mapping(value: object, field: str, flags: set[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, _MAPPINGS):
        return value
    flags.add(f"malformed:{field}")
    return {}


def _normalise(raw: object, field: str, flags: set[str], *, collapse: bool) -> str | None:
    """Clean one UTM value; None means absent (with the reason flagged)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        flags.add(f"malformed:{field}")
        return None
    value = raw.strip().lower()
    if collapse:
        # Source/medium are compared against alias tables, so doubly-encoded or
        # hand-typed separators ("paid+social", "paid%20social") must match too.
        value = _WHITESPACE_RE.sub(" ", value.replace("%20", " ").replace("+", " ")).strip()
    if not value:
        flags.add(f"empty:{field}")
        return None
    if _PLACEHOLDER_RE.search(value):
        flags.add(f"placeholder:{field}")
    if len(value) > MAX_VALUE_LENGTH:
        flags.add(f"truncated:{field}")
        value = value[:MAX_VALUE_LENGTH].rstrip()
    return value


def _clean_click_id(raw: str, field: str, flags: set[str]) -> str | None:
    value = raw.strip()
    if not value:
        flags.add(f"empty:{field}")
        return None
    if _PLACEHOLDER_RE.search(value):
        flags.add(f"placeholder:{field}")
    if len(value) > MAX_CLICK_ID_LENGTH:  # what the column holds; real click ids are far shorter
        flags.add(f"truncated:{field}")
        value = value[:MAX_CLICK_ID_LENGTH]
    return value


def _first_string(candidates: tuple[object, ...], field: str, flags: set[str]) -> str | None:
    """First usable string among candidates, returned unchanged; others are flagged."""
    for raw in candidates:
        if raw is None:
            continue
        if not isinstance(raw, str):
            flags.add(f"malformed:{field}")
            continue
        if not raw.strip():
            flags.add(f"empty:{field}")
            continue
        return raw
    return None


def _split(value: str) -> SplitResult | None:
    try:
        return urlsplit(value.strip())
    except ValueError:
        return None


def _host(parts: SplitResult) -> str | None:
    host = parts.hostname
    if not host:
        return None
    host = host.rstrip(".")
    return host or None


def _site(host: str | None) -> str | None:
    # www.example.com and example.com are the same site for "is this referrer internal".
    return host.removeprefix("www.") if host is not None else None


def _query_params(parts: SplitResult | None, flags: set[str]) -> dict[str, str]:
    if parts is None or not parts.query:
        return {}
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        grouped.setdefault(key.strip().lower(), []).append(value)
    params: dict[str, str] = {}
    for key, values in grouped.items():
        if len(set(values)) > 1 and (key.startswith("utm_") or key in _CLICK_IDS):
            flags.add(f"duplicate:{key}")
        params[key] = values[0]
    return params


def _referrer(raw: str, landing_host: str | None, flags: set[str]) -> tuple[str | None, str | None]:
    """The external referrer's host, and the platform post it points at (see ``_platform_content``)."""
    parts = _split(raw)
    if parts is not None and not parts.scheme and not parts.netloc and not raw.strip().startswith("/"):
        # Some SDKs send a bare "www.google.com/..." with no scheme.
        parts = _split("//" + raw.strip())
    if parts is None:
        flags.add("malformed:referrer")
        return None, None
    host = _host(parts)
    if host is None:
        return None, None
    if _WHITESPACE_RE.search(host) or len(host) > MAX_HOST_LENGTH:
        flags.add("malformed:referrer")
        return None, None
    if landing_host is not None and _site(host) == _site(landing_host):
        return None, None
    return host, _platform_content(host.lower(), parts)


def _channel(
    source: str | None,
    medium: str | None,
    click_id_type: str | None,
    referrer_kind: str | None,
    referrer_host: str | None,
    source_is_placeholder: bool,
) -> str:
    if click_id_type in _PAID_CLICK_IDS or medium in _PAID_MEDIUMS:
        return "paid"
    if medium in _EMAIL_MEDIUMS or source in _EMAIL_SOURCES or referrer_kind == "email":
        return "email"
    if medium == "social" or source in _SOCIAL_SOURCES or referrer_kind == "social":
        return "social"
    if referrer_kind == "search" or source in _SEARCH_SOURCES or medium == "organic":
        return "search"
    if (
        referrer_host is not None
        or medium in _REFERRAL_MEDIUMS
        or (source is not None and not source_is_placeholder)
    ):
        return "referral"
    return "direct"


def _may_carry_touch(event_type: object, properties: object, context: object) -> bool:
    """False when the event can have no touchpoint: not a page/screen, and none of the places a URL, a
    referrer or campaign values are read from is present (the fast path for most track events)."""
    if not isinstance(event_type, str) or event_type.strip().lower() in ("page", "screen"):
        return True
    if isinstance(properties, _MAPPINGS) and (
        properties.get("url") is not None or properties.get("referrer") is not None
    ):
        return True
    return isinstance(context, _MAPPINGS) and (
        context.get("page") is not None or context.get("campaign") is not None
    )


def extract_touchpoint(
    event_type: str,
    properties: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
) -> TouchpointData | None:
    """Extract the marketing touchpoint carried by one Segment-spec event.

    Returns None for non-page/screen events without any UTM value, click id or
    external referrer; page/screen events always yield a touchpoint ("direct"
    when nothing else is known).
    """
    if not _may_carry_touch(event_type, properties, context):
        return None
    flags: set[str] = set()
    if isinstance(event_type, str):
        kind = event_type.strip().lower()
    else:
        flags.add("malformed:event_type")
        kind = ""
    props = _as_mapping(properties, "properties", flags)
    ctx = _as_mapping(context, "context", flags)
    page = _as_mapping(ctx.get("page"), "context.page", flags)
    campaign_ctx = _as_mapping(ctx.get("campaign"), "context.campaign", flags)

    landing_url = _first_string((page.get("url"), props.get("url")), "url", flags)
    landing_parts: SplitResult | None = None
    if landing_url is not None:
        landing_parts = _split(landing_url)
        if landing_parts is None:
            flags.add("malformed:url")
    landing_host = _host(landing_parts) if landing_parts is not None else None
    query = _query_params(landing_parts, flags)

    utm: dict[str, str | None] = {}
    for attr, param, ctx_key in _UTM_FIELDS:
        collapse = attr in ("source", "medium")
        value = _normalise(query.get(param), param, flags, collapse=collapse)
        if value is None:
            # Context is consulted only when the URL gave nothing usable, so its
            # flags describe values that were actually candidates.
            value = _normalise(campaign_ctx.get(ctx_key), param, flags, collapse=collapse)
        utm[attr] = value

    click_id_type: str | None = None
    click_id: str | None = None
    for name in _CLICK_IDS:
        raw_id = query.get(name)
        if raw_id is None:
            continue
        cleaned = _clean_click_id(raw_id, name, flags)
        if cleaned is not None and click_id_type is None:
            click_id_type, click_id = name, cleaned

    raw_referrer = _first_string((page.get("referrer"), props.get("referrer")), "referrer", flags)
    referrer_host, referrer_content = (
        _referrer(raw_referrer, landing_host, flags) if raw_referrer is not None else (None, None)
    )
    referrer_hit = _classify_host(referrer_host) if referrer_host is not None else None
    referrer_kind = referrer_hit[1] if referrer_hit is not None else None

    has_signal = (
        any(value is not None for value in utm.values())
        or click_id_type is not None
        or referrer_host is not None
    )
    if not has_signal and kind not in ("page", "screen"):
        return None

    source = utm["source"]
    source_is_placeholder = source is not None and _PLACEHOLDER_RE.search(source) is not None
    if source is not None:
        source = _canonical_source(source)
    elif click_id_type in _PAID_CLICK_IDS:
        source = _CLICK_ID_SOURCES[click_id_type]
    elif referrer_hit is not None:
        # Instagram and Threads also append fbclid, so a known referrer beats it.
        source = referrer_hit[0]
    elif click_id_type is not None:
        source = _CLICK_ID_SOURCES[click_id_type]

    medium = utm["medium"]
    if medium is not None:
        medium = _MEDIUM_ALIASES.get(medium, medium)

    return TouchpointData(
        channel=_channel(source, medium, click_id_type, referrer_kind, referrer_host, source_is_placeholder),
        source=source,
        medium=medium,
        campaign=utm["campaign"],
        content=utm["content"] if utm["content"] is not None else referrer_content,
        term=utm["term"],
        click_id_type=click_id_type,
        click_id=click_id,
        referrer_host=referrer_host,
        landing_url=landing_url,
        flags=tuple(sorted(flags)),
    )


def _shape(value: object) -> int:
    """0 absent, 1 an object, 2 anything else (which ``extract_touchpoint`` flags as malformed)."""
    return 0 if value is None else 1 if isinstance(value, _MAPPINGS) else 2


_CAMPAIGN_KEYS = tuple(ctx_key for _, _, ctx_key in _UTM_FIELDS)


def touchpoint_of(event_type: object, properties: object, context: object) -> TouchpointData | None:
    """``extract_touchpoint``, memoised on exactly what it reads: the kind, which containers are objects (a
    malformed one is flagged), the URLs, the referrers and the five campaign values. A buyer's events repeat
    their page and campaign, so the identity stage and ``touch_channel`` parse each once."""
    # ``_may_carry_touch`` and ``_field``, inlined: this runs for every event in two consumers.
    props = properties if isinstance(properties, _MAPPINGS) else None
    ctx = context if isinstance(context, _MAPPINGS) else None
    url = props.get("url") if props is not None else None
    referrer = props.get("referrer") if props is not None else None
    page = ctx.get("page") if ctx is not None else None
    campaign = ctx.get("campaign") if ctx is not None else None
    if (
        url is None
        and referrer is None
        and page is None
        and campaign is None
        and isinstance(event_type, str)
        and event_type.strip().lower() not in ("page", "screen")
    ):
        return None
    page_map = page if isinstance(page, _MAPPINGS) else None
    campaign_map = campaign if isinstance(campaign, _MAPPINGS) else None
    key = (
        event_type, _shape(properties), _shape(context), _shape(page), _shape(campaign),
        page_map.get("url") if page_map is not None else None, url,
        page_map.get("referrer") if page_map is not None else None, referrer,
        *((campaign_map.get(k) for k in _CAMPAIGN_KEYS) if campaign_map is not None else ()),
    )  # fmt: skip
    try:
        hash(key)
    except TypeError:  # an unhashable value somewhere: no memo, the same answer
        return extract_touchpoint(event_type, properties, context)  # type: ignore[arg-type]
    return _touchpoint_of(key)


def touch_channel(event_type: object, properties: object, context: object) -> str | None:
    """``extract_touchpoint(...).channel`` (None without a touchpoint), memoised (see ``touchpoint_of``)."""
    touch = touchpoint_of(event_type, properties, context)
    return touch.channel if touch is not None else None


_MALFORMED = "malformed"  # stands in for a container that is not an object: flagged, read as empty


def _rebuilt(shape: object, fields: dict[str, object]) -> object:
    return None if shape == 0 else fields if shape == 1 else _MALFORMED


@lru_cache(maxsize=1 << 15)
def _touchpoint_of(key: tuple[object, ...]) -> TouchpointData | None:
    event_type, props, ctx, page, campaign, page_url, url, page_referrer, referrer, *values = key
    campaign_fields = dict(zip(_CAMPAIGN_KEYS, values, strict=False))
    page_fields = {"url": page_url, "referrer": page_referrer}
    ctx_fields = {"page": _rebuilt(page, page_fields), "campaign": _rebuilt(campaign, campaign_fields)}
    return extract_touchpoint(
        event_type,  # type: ignore[arg-type]
        _rebuilt(props, {"url": url, "referrer": referrer}),  # type: ignore[arg-type]
        _rebuilt(ctx, ctx_fields),  # type: ignore[arg-type]
    )
