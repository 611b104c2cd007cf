from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote_plus

import pytest

from offerloop.events.touchpoints import CHANNELS, TouchpointData, extract_touchpoint

LANDING = "https://shop.example.com/offer"


def tp(
    channel: str = "direct",
    *,
    source: str | None = None,
    medium: str | None = None,
    campaign: str | None = None,
    content: str | None = None,
    term: str | None = None,
    click_id_type: str | None = None,
    click_id: str | None = None,
    referrer_host: str | None = None,
    landing_url: str | None = None,
    flags: tuple[str, ...] = (),
) -> TouchpointData:
    return TouchpointData(
        channel=channel,
        source=source,
        medium=medium,
        campaign=campaign,
        content=content,
        term=term,
        click_id_type=click_id_type,
        click_id=click_id,
        referrer_host=referrer_host,
        landing_url=landing_url,
        flags=flags,
    )


def page_ctx(url: Any = None, referrer: Any = None, **campaign: Any) -> dict[str, Any]:
    page: dict[str, Any] = {}
    if url is not None:
        page["url"] = url
    if referrer is not None:
        page["referrer"] = referrer
    ctx: dict[str, Any] = {"page": page}
    if campaign:
        ctx["campaign"] = campaign
    return ctx


Row = tuple[str, Any, Any, Any, TouchpointData | None]

# (raw utm_source, normalised source, channel): every documented alias.
SOURCE_ALIASES: list[tuple[str, str, str]] = [
    ("ig", "instagram", "social"),
    ("insta", "instagram", "social"),
    ("instagram.com", "instagram", "social"),
    ("l.instagram.com", "instagram", "social"),
    ("fb", "facebook", "social"),
    ("facebook.com", "facebook", "social"),
    ("m.facebook.com", "facebook", "social"),
    ("l.facebook.com", "facebook", "social"),
    ("meta", "facebook", "social"),
    ("tt", "tiktok", "social"),
    ("tiktok.com", "tiktok", "social"),
    ("vm.tiktok.com", "tiktok", "social"),
    ("yt", "youtube", "social"),
    ("youtube.com", "youtube", "social"),
    ("youtu.be", "youtube", "social"),
    ("tw", "twitter", "social"),
    ("x", "twitter", "social"),
    ("twitter.com", "twitter", "social"),
    ("t.co", "twitter", "social"),
    ("x.com", "twitter", "social"),
    ("li", "linkedin", "social"),
    ("lnkd.in", "linkedin", "social"),
    ("linkedin.com", "linkedin", "social"),
    ("goog", "google", "search"),
    ("google.com", "google", "search"),
    ("news letter", "newsletter", "email"),
    ("news-letter", "newsletter", "email"),
    ("newsletter", "newsletter", "email"),
    ("substack", "substack", "email"),
    ("convertkit", "convertkit", "email"),
    ("mailchimp", "mailchimp", "email"),
    ("www.instagram.com", "instagram", "social"),
    ("pinterest", "pinterest", "social"),
    ("reddit", "reddit", "social"),
    ("threads", "threads", "social"),
]

# (raw utm_medium, normalised medium, channel): every documented alias.
MEDIUM_ALIASES: list[tuple[str, str, str]] = [
    ("cpc", "cpc", "paid"),
    ("ppc", "cpc", "paid"),
    ("paidsearch", "cpc", "paid"),
    ("paid_search", "cpc", "paid"),
    ("paid-search", "cpc", "paid"),
    ("paid search", "cpc", "paid"),
    ("paid_social", "paid_social", "paid"),
    ("paidsocial", "paid_social", "paid"),
    ("paid social", "paid_social", "paid"),
    ("display", "display", "paid"),
    ("cpm", "cpm", "paid"),
    ("paid", "paid", "paid"),
    ("e-mail", "email", "email"),
    ("mail", "email", "email"),
    ("email", "email", "email"),
    ("social", "social", "social"),
    ("social-media", "social", "social"),
    ("social_media", "social", "social"),
    ("organic_social", "social", "social"),
    ("referral", "referral", "referral"),
    ("ref", "referral", "referral"),
    ("affiliate", "affiliate", "referral"),
]


def _alias_rows() -> list[Row]:
    rows: list[Row] = []
    for raw, source, channel in SOURCE_ALIASES:
        url = f"{LANDING}?utm_source={quote_plus(raw)}"
        rows.append(
            (f"source-alias:{raw}", "page", None, page_ctx(url), tp(channel, source=source, landing_url=url))
        )
    for raw, medium, channel in MEDIUM_ALIASES:
        url = f"{LANDING}?utm_medium={quote_plus(raw)}"
        rows.append(
            (f"medium-alias:{raw}", "page", None, page_ctx(url), tp(channel, medium=medium, landing_url=url))
        )
    return rows


LONG = "a" * 250

ROWS: list[Row] = [
    *_alias_rows(),
    # --- nothing to attribute ------------------------------------------------------------
    ("page-nothing-direct", "page", {}, page_ctx(LANDING), tp(landing_url=LANDING)),
    ("screen-no-context-direct", "screen", None, None, tp()),
    ("track-nothing-none", "track", {"plan": "pro"}, page_ctx(LANDING), None),
    ("identify-nothing-none", "identify", {"email": "a@b.c"}, None, None),
    (
        "track-internal-referrer-none",
        "track",
        None,
        page_ctx(LANDING, "https://shop.example.com/pricing"),
        None,
    ),
    (
        "page-internal-referrer-direct",
        "page",
        None,
        page_ctx(LANDING, "https://shop.example.com/"),
        tp(landing_url=LANDING),
    ),
    (
        "page-www-variant-is-internal",
        "page",
        None,
        page_ctx(LANDING, "https://www.shop.example.com/blog"),
        tp(landing_url=LANDING),
    ),
    ("page-relative-referrer-internal", "page", None, page_ctx(LANDING, "/pricing"), tp(landing_url=LANDING)),
    ("page-about-blank-referrer", "page", None, page_ctx(LANDING, "about:blank"), tp(landing_url=LANDING)),
    # --- click ids ----------------------------------------------------------------------
    (
        "gclid-paid-google",
        "page",
        None,
        page_ctx(f"{LANDING}?gclid=Cj0KCQ_abc"),
        tp(
            "paid",
            source="google",
            click_id_type="gclid",
            click_id="Cj0KCQ_abc",
            landing_url=f"{LANDING}?gclid=Cj0KCQ_abc",
        ),
    ),
    (
        "msclkid-paid-bing",
        "track",
        None,
        page_ctx(f"{LANDING}?msclkid=9f8e"),
        tp(
            "paid",
            source="bing",
            click_id_type="msclkid",
            click_id="9f8e",
            landing_url=f"{LANDING}?msclkid=9f8e",
        ),
    ),
    (
        "ttclid-paid-tiktok",
        "page",
        None,
        page_ctx(f"{LANDING}?ttclid=E.C.P.xyz"),
        tp(
            "paid",
            source="tiktok",
            click_id_type="ttclid",
            click_id="E.C.P.xyz",
            landing_url=f"{LANDING}?ttclid=E.C.P.xyz",
        ),
    ),
    (
        "li_fat_id-paid-linkedin",
        "page",
        None,
        page_ctx(f"{LANDING}?li_fat_id=5b1c-77"),
        tp(
            "paid",
            source="linkedin",
            click_id_type="li_fat_id",
            click_id="5b1c-77",
            landing_url=f"{LANDING}?li_fat_id=5b1c-77",
        ),
    ),
    (
        "fbclid-alone-is-organic-social",
        "page",
        None,
        page_ctx(f"{LANDING}?fbclid=IwAR0x"),
        tp(
            "social",
            source="facebook",
            click_id_type="fbclid",
            click_id="IwAR0x",
            landing_url=f"{LANDING}?fbclid=IwAR0x",
        ),
    ),
    (
        "fbclid-with-instagram-referrer",
        "page",
        None,
        page_ctx(f"{LANDING}?fbclid=PAZXh0", "https://l.instagram.com/?u=x"),
        tp(
            "social",
            source="instagram",
            click_id_type="fbclid",
            click_id="PAZXh0",
            referrer_host="l.instagram.com",
            landing_url=f"{LANDING}?fbclid=PAZXh0",
        ),
    ),
    (
        "fbclid-with-paid-social-medium",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=fb&utm_medium=paid_social&fbclid=IwAR1"),
        tp(
            "paid",
            source="facebook",
            medium="paid_social",
            click_id_type="fbclid",
            click_id="IwAR1",
            landing_url=f"{LANDING}?utm_source=fb&utm_medium=paid_social&fbclid=IwAR1",
        ),
    ),
    (
        "gclid-keeps-explicit-source",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=yt&gclid=G1"),
        tp(
            "paid",
            source="youtube",
            click_id_type="gclid",
            click_id="G1",
            landing_url=f"{LANDING}?utm_source=yt&gclid=G1",
        ),
    ),
    (
        "gclid-beats-fbclid",
        "page",
        None,
        page_ctx(f"{LANDING}?fbclid=F1&gclid=G2"),
        tp(
            "paid",
            source="google",
            click_id_type="gclid",
            click_id="G2",
            landing_url=f"{LANDING}?fbclid=F1&gclid=G2",
        ),
    ),
    (
        "empty-gclid-flagged",
        "page",
        None,
        page_ctx(f"{LANDING}?gclid="),
        tp(landing_url=f"{LANDING}?gclid=", flags=("empty:gclid",)),
    ),
    ("empty-gclid-track-none", "track", None, page_ctx(f"{LANDING}?gclid=%20"), None),
    # --- referrers ----------------------------------------------------------------------
    (
        "google-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://www.google.com/"),
        tp("search", source="google", referrer_host="www.google.com", landing_url=LANDING),
    ),
    (
        "google-cctld-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://www.google.co.uk/search?q=offer"),
        tp("search", source="google", referrer_host="www.google.co.uk", landing_url=LANDING),
    ),
    (
        "uppercase-referrer-with-port",
        "page",
        None,
        page_ctx(LANDING, "HTTPS://WWW.Google.COM:443/"),
        tp("search", source="google", referrer_host="www.google.com", landing_url=LANDING),
    ),
    (
        "bing-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://www.bing.com/search?q=x"),
        tp("search", source="bing", referrer_host="www.bing.com", landing_url=LANDING),
    ),
    (
        "duckduckgo-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://duckduckgo.com/"),
        tp("search", source="duckduckgo", referrer_host="duckduckgo.com", landing_url=LANDING),
    ),
    (
        "yahoo-search-referrer",
        "page",
        None,
        page_ctx(LANDING, "https://uk.search.yahoo.com/search?p=x"),
        tp("search", source="yahoo", referrer_host="uk.search.yahoo.com", landing_url=LANDING),
    ),
    (
        "yandex-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://yandex.ru/search/?text=x"),
        tp("search", source="yandex", referrer_host="yandex.ru", landing_url=LANDING),
    ),
    (
        "baidu-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://www.baidu.com/link?url=x"),
        tp("search", source="baidu", referrer_host="www.baidu.com", landing_url=LANDING),
    ),
    (
        "ecosia-referrer-search",
        "page",
        None,
        page_ctx(LANDING, "https://www.ecosia.org/search?q=x"),
        tp("search", source="ecosia", referrer_host="www.ecosia.org", landing_url=LANDING),
    ),
    (
        "bare-referrer-without-scheme",
        "track",
        {"referrer": "www.bing.com/search?q=x"},
        None,
        tp("search", source="bing", referrer_host="www.bing.com"),
    ),
    (
        "google-docs-is-referral-not-search",
        "page",
        None,
        page_ctx(LANDING, "https://docs.google.com/document/d/1"),
        tp("referral", referrer_host="docs.google.com", landing_url=LANDING),
    ),
    (
        "gmail-referrer-email",
        "page",
        None,
        page_ctx(LANDING, "https://mail.google.com/"),
        tp("email", source="gmail", referrer_host="mail.google.com", landing_url=LANDING),
    ),
    (
        "android-gmail-app-referrer-email",
        "screen",
        {"referrer": "android-app://com.google.android.gm/"},
        None,
        tp("email", source="gmail", referrer_host="com.google.android.gm"),
    ),
    (
        "instagram-referrer-social",
        "page",
        None,
        page_ctx(LANDING, "https://l.instagram.com/?u=https%3A%2F%2Fshop.example.com"),
        tp("social", source="instagram", referrer_host="l.instagram.com", landing_url=LANDING),
    ),
    (
        "tco-referrer-social",
        "page",
        None,
        page_ctx(LANDING, "https://t.co/abc"),
        tp("social", source="twitter", referrer_host="t.co", landing_url=LANDING),
    ),
    (
        "pinterest-referrer-social",
        "page",
        None,
        page_ctx(LANDING, "https://www.pinterest.com/pin/1/"),
        tp(
            "social",
            source="pinterest",
            content="pinterest:1",
            referrer_host="www.pinterest.com",
            landing_url=LANDING,
        ),
    ),
    (
        "reddit-referrer-social",
        "page",
        None,
        page_ctx(LANDING, "https://out.reddit.com/t3_x"),
        tp("social", source="reddit", referrer_host="out.reddit.com", landing_url=LANDING),
    ),
    (
        "threads-referrer-social",
        "page",
        None,
        page_ctx(LANDING, "https://l.threads.net/?u=x"),
        tp("social", source="threads", referrer_host="l.threads.net", landing_url=LANDING),
    ),
    (
        "lookalike-domain-is-referral",
        "page",
        None,
        page_ctx(LANDING, "https://notinstagram.com/x"),
        tp("referral", referrer_host="notinstagram.com", landing_url=LANDING),
    ),
    (
        "external-blog-referral",
        "track",
        None,
        page_ctx(LANDING, "https://Blog.Partner.io/review"),
        tp("referral", referrer_host="blog.partner.io", landing_url=LANDING),
    ),
    (
        "utm-source-wins-over-referrer-source",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=partner", "https://www.google.com/"),
        tp(
            "search",
            source="partner",
            referrer_host="www.google.com",
            landing_url=f"{LANDING}?utm_source=partner",
        ),
    ),
    # --- channel precedence -------------------------------------------------------------
    (
        "email-medium-beats-social-source",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=facebook&utm_medium=email"),
        tp(
            "email",
            source="facebook",
            medium="email",
            landing_url=f"{LANDING}?utm_source=facebook&utm_medium=email",
        ),
    ),
    (
        "social-medium-unknown-source",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=mastodon&utm_medium=social"),
        tp(
            "social",
            source="mastodon",
            medium="social",
            landing_url=f"{LANDING}?utm_source=mastodon&utm_medium=social",
        ),
    ),
    (
        "unknown-source-is-referral",
        "track",
        None,
        page_ctx(f"{LANDING}?utm_source=podcast_xyz"),
        tp("referral", source="podcast_xyz", landing_url=f"{LANDING}?utm_source=podcast_xyz"),
    ),
    (
        "campaign-only-is-direct",
        "track",
        None,
        page_ctx(f"{LANDING}?utm_campaign=Launch"),
        tp(campaign="launch", landing_url=f"{LANDING}?utm_campaign=Launch"),
    ),
    # --- query vs context.campaign ------------------------------------------------------
    (
        "query-wins-over-context-campaign",
        "page",
        None,
        page_ctx(
            f"{LANDING}?utm_source=IG&utm_campaign=Spring",
            source="facebook",
            name="context-name",
            content="Hero",
        ),
        tp(
            "social",
            source="instagram",
            campaign="spring",
            content="hero",
            landing_url=f"{LANDING}?utm_source=IG&utm_campaign=Spring",
        ),
    ),
    (
        "context-campaign-only-screen",
        "screen",
        None,
        {"campaign": {"name": "Black Friday", "source": "Newsletter", "medium": "E-Mail", "term": "Deal"}},
        tp("email", source="newsletter", medium="email", campaign="black friday", term="deal"),
    ),
    (
        "identify-with-context-campaign",
        "identify",
        {"traits": {}},
        {"campaign": {"source": "tt", "medium": "paid social"}},
        tp("paid", source="tiktok", medium="paid_social"),
    ),
    (
        "empty-query-value-falls-back-to-context",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=", source="tt"),
        tp(
            "social",
            source="tiktok",
            landing_url=f"{LANDING}?utm_source=",
            flags=("empty:utm_source",),
        ),
    ),
    (
        "uppercase-query-keys",
        "page",
        None,
        page_ctx(f"{LANDING}?UTM_Source=Instagram&UTM_MEDIUM=Social"),
        tp(
            "social",
            source="instagram",
            medium="social",
            landing_url=f"{LANDING}?UTM_Source=Instagram&UTM_MEDIUM=Social",
        ),
    ),
    (
        "properties-url-and-referrer-fallback",
        "page",
        {"url": f"{LANDING}?utm_source=li", "referrer": "https://www.linkedin.com/feed/"},
        {"page": {}},
        tp(
            "social",
            source="linkedin",
            referrer_host="www.linkedin.com",
            landing_url=f"{LANDING}?utm_source=li",
        ),
    ),
    (
        "duplicate-query-param-first-wins",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_source=ig&utm_source=fb"),
        tp(
            "social",
            source="instagram",
            landing_url=f"{LANDING}?utm_source=ig&utm_source=fb",
            flags=("duplicate:utm_source",),
        ),
    ),
    # --- encoding and normalisation -----------------------------------------------------
    (
        "percent-and-plus-decoding",
        "page",
        None,
        page_ctx(
            f"{LANDING}?utm_source=%20%20IG%20&utm_medium=Paid%2BSocial"
            "&utm_campaign=Spring%20Sale%21&utm_term=running+shoes&utm_content=Hero%2DA"
        ),
        tp(
            "paid",
            source="instagram",
            medium="paid_social",
            campaign="spring sale!",
            content="hero-a",
            term="running shoes",
            landing_url=f"{LANDING}?utm_source=%20%20IG%20&utm_medium=Paid%2BSocial"
            "&utm_campaign=Spring%20Sale%21&utm_term=running+shoes&utm_content=Hero%2DA",
        ),
    ),
    (
        "double-encoded-medium-in-query",
        "page",
        None,
        page_ctx(f"{LANDING}?utm_medium=paid%2520search"),
        tp("paid", medium="cpc", landing_url=f"{LANDING}?utm_medium=paid%2520search"),
    ),
    (
        "context-literal-plus-and-whitespace-runs",
        "screen",
        None,
        {"campaign": {"source": "  News \t  Letter ", "medium": "social+media", "term": "a+b"}},
        tp("email", source="newsletter", medium="social", term="a+b"),
    ),
    (
        "truncated-values",
        "page",
        None,
        page_ctx(LANDING, source=LONG, name=LONG.upper()),
        tp(
            "referral",
            source="a" * 200,
            campaign="a" * 200,
            landing_url=LANDING,
            flags=("truncated:utm_campaign", "truncated:utm_source"),
        ),
    ),
    # --- malformed, empty, placeholder --------------------------------------------------
    (
        "placeholders-flagged-and-kept",
        "page",
        None,
        page_ctx(
            f"{LANDING}?utm_campaign=%7B%7Bcampaign%7D%7D&utm_content=%7Bcampaign_name%7D"
            "&utm_term=%25%25CAMPAIGN%25%25&utm_medium=%5Bcampaign%5D"
        ),
        tp(
            medium="[campaign]",
            campaign="{{campaign}}",
            content="{campaign_name}",
            term="%%campaign%%",
            landing_url=f"{LANDING}?utm_campaign=%7B%7Bcampaign%7D%7D&utm_content=%7Bcampaign_name%7D"
            "&utm_term=%25%25CAMPAIGN%25%25&utm_medium=%5Bcampaign%5D",
            flags=(
                "placeholder:utm_campaign",
                "placeholder:utm_content",
                "placeholder:utm_medium",
                "placeholder:utm_term",
            ),
        ),
    ),
    (
        "placeholder-source-is-not-referral",
        "track",
        None,
        {"campaign": {"source": "{{site_source_name}}", "name": "Q3_{{adset.name}}"}},
        tp(
            source="{{site_source_name}}",
            campaign="q3_{{adset.name}}",
            flags=("placeholder:utm_campaign", "placeholder:utm_source"),
        ),
    ),
    (
        "empty-values-flagged-absent",
        "page",
        None,
        page_ctx(LANDING, source="   ", medium="", name="\t", content=" ", term="\n"),
        tp(
            landing_url=LANDING,
            flags=(
                "empty:utm_campaign",
                "empty:utm_content",
                "empty:utm_medium",
                "empty:utm_source",
                "empty:utm_term",
            ),
        ),
    ),
    (
        "non-string-campaign-values",
        "page",
        None,
        page_ctx(LANDING, source=42, medium=["email"], name={"a": 1}, content=3.5, term=True),
        tp(
            landing_url=LANDING,
            flags=(
                "malformed:utm_campaign",
                "malformed:utm_content",
                "malformed:utm_medium",
                "malformed:utm_source",
                "malformed:utm_term",
            ),
        ),
    ),
    (
        "non-string-campaign-values-track-none",
        "track",
        None,
        {"campaign": {"source": 1, "medium": None}},
        None,
    ),
    (
        "unparseable-url",
        "page",
        None,
        page_ctx("http://[::1/x?utm_source=ig"),
        tp(landing_url="http://[::1/x?utm_source=ig", flags=("malformed:url",)),
    ),
    (
        "unparseable-referrer",
        "page",
        None,
        page_ctx(LANDING, "https://[bad/"),
        tp(landing_url=LANDING, flags=("malformed:referrer",)),
    ),
    (
        "non-string-url-falls-back-to-properties",
        "page",
        {"url": LANDING},
        page_ctx(12345, ["https://www.google.com/"]),
        tp(landing_url=LANDING, flags=("malformed:referrer", "malformed:url")),
    ),
    (
        "junk-properties-and-context-types",
        "page",
        ["not", "a", "dict"],
        "context-as-string",
        tp(flags=("malformed:context", "malformed:properties")),
    ),
    (
        "junk-page-and-campaign-types",
        "screen",
        7,
        {"page": "https://x", "campaign": [1, 2]},
        tp(flags=("malformed:context.campaign", "malformed:context.page", "malformed:properties")),
    ),
    (
        "junk-event-type-with-signal",
        None,
        None,
        page_ctx(f"{LANDING}?utm_source=ig"),
        tp(
            "social",
            source="instagram",
            landing_url=f"{LANDING}?utm_source=ig",
            flags=("malformed:event_type",),
        ),
    ),
    ("junk-event-type-without-signal", 3, None, page_ctx(LANDING), None),
    ("unknown-event-type-like-track", "group", None, None, None),
    (
        "event-type-case-insensitive",
        " Page ",
        None,
        None,
        tp(),
    ),
]


def test_table_is_large_enough() -> None:
    assert len(ROWS) >= 40
    assert len({row[0] for row in ROWS}) == len(ROWS), "row ids must be unique"


@pytest.mark.parametrize(
    ("event_type", "properties", "context", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_extract_touchpoint(
    event_type: Any, properties: Any, context: Any, expected: TouchpointData | None
) -> None:
    assert extract_touchpoint(event_type, properties, context) == expected


def test_channels_constant() -> None:
    assert CHANNELS == ("search", "social", "email", "paid", "direct", "referral")


def test_every_expected_channel_is_known_and_every_channel_is_covered() -> None:
    produced = {row[4].channel for row in ROWS if row[4] is not None}
    assert produced == set(CHANNELS)


def test_touchpoint_is_frozen() -> None:
    result = extract_touchpoint("page", None, None)
    assert result is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.channel = "paid"  # type: ignore[misc]


JUNK: list[Any] = [None, 0, 1.5, True, "", "   ", [], ["x"], {}, {"a": {"b": 1}}, b"bytes", object(), ("t",)]


@pytest.mark.parametrize("junk", JUNK, ids=lambda v: type(v).__name__ if type(v) is object else repr(v))
def test_junk_anywhere_never_raises(junk: Any) -> None:
    slots: list[dict[str, Any]] = [
        {"properties": junk},
        {"context": junk},
        {"context": {"page": junk}},
        {"context": {"campaign": junk}},
        {"context": {"page": {"url": junk, "referrer": junk}}},
        {"properties": {"url": junk, "referrer": junk}},
        {"context": {"campaign": dict.fromkeys(("name", "source", "medium", "term", "content"), junk)}},
    ]
    for event_type in ("page", "screen", "track", "identify", junk):
        for slot in slots:
            result = extract_touchpoint(event_type, slot.get("properties"), slot.get("context"))
            if result is not None:
                assert result.channel in CHANNELS
                assert list(result.flags) == sorted(set(result.flags))


# -- the post or video a visitor came from (platform content ids from the referrer) --------------------------


@pytest.mark.parametrize(
    ("referrer", "content"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42", "youtube:dQw4w9WgXcQ"),
        ("https://m.youtube.com/shorts/AbC_d-9xYz0", "youtube:AbC_d-9xYz0"),
        ("https://youtu.be/dQw4w9WgXcQ", "youtube:dQw4w9WgXcQ"),
        ("https://www.tiktok.com/@jane.creates/video/7301234567890123456", "tiktok:7301234567890123456"),
        ("https://www.instagram.com/reel/C1a2B3c4D5e/", "instagram:C1a2B3c4D5e"),
        ("https://www.instagram.com/p/C1a2B3c4D5e/", "instagram:C1a2B3c4D5e"),
        ("https://x.com/jane/status/1730000000000000000", "twitter:1730000000000000000"),
        ("https://www.threads.net/@jane/post/C1a2B3c4D5e", "threads:C1a2B3c4D5e"),
        ("https://www.reddit.com/r/creators/comments/18abcde/my_post/", "reddit:18abcde"),
        (
            "https://www.linkedin.com/feed/update/urn:li:activity:7130000000000000000/",
            "linkedin:7130000000000000000",
        ),
        ("https://www.facebook.com/watch/?v=1234567890", "facebook:1234567890"),
    ],
)
def test_a_referrer_naming_a_post_gives_its_platform_content_id(referrer: str, content: str) -> None:
    touch = extract_touchpoint("page", {"url": LANDING, "referrer": referrer}, {})
    assert touch is not None
    assert touch.content == content
    assert touch.channel == "social"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.youtube.com/",  # the platform, no post
        "https://www.youtube.com/watch?v=",  # an empty id
        "https://www.youtube.com/watch?v=a%20b",  # not an id
        "https://www.instagram.com/jane/",  # a profile
        "https://notyoutube.com/watch?v=dQw4w9WgXcQ",  # a look-alike host
        "https://www.tiktok.com/@jane/video/not-a-number",
    ],
)
def test_a_referrer_that_names_no_post_gives_no_content(referrer: str) -> None:
    touch = extract_touchpoint("page", {"url": LANDING, "referrer": referrer}, {})
    assert touch is not None
    assert touch.content is None


def test_utm_content_wins_over_the_referrers_post() -> None:
    touch = extract_touchpoint(
        "page", {"url": LANDING + "?utm_content=Launch-Reel", "referrer": "https://youtu.be/dQw4w9WgXcQ"}, {}
    )
    assert touch is not None
    assert touch.content == "launch-reel"


def test_an_internal_referrer_gives_no_content() -> None:
    touch = extract_touchpoint(
        "page",
        {"url": "https://youtube.com/x", "referrer": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
        {},
    )
    assert touch is not None
    assert touch.content is None
