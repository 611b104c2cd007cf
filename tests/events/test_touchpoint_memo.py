"""The memoised touchpoint (``touchpoint_of``, ``touch_channel``) answers exactly what ``extract_touchpoint``
answers for the same event, junk included: the memo key holds everything the parser reads."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from offerloop.core.touchpoints import extract_touchpoint, touch_channel, touchpoint_of

URLS = [
    "https://shop.example.com/offer?utm_source=IG&utm_medium=paid+social&utm_campaign=drop",
    "https://shop.example.com/offer?gclid=abc&gclid=abd",
    "https://shop.example.com/a?utm_source={{source}}",
    "www.google.com/search?q=x",
    "https://l.instagram.com/",
    "https://shop.example.com/",
    "http://[::1",
    "",
    "   ",
]
# Values of every shape the parser meets: strings, junk scalars, containers where a string belongs.
VALUE = st.one_of(st.none(), st.sampled_from(URLS), st.integers(-2, 2), st.booleans(), st.just(["x"]))
CAMPAIGN = st.one_of(
    st.none(),
    st.just("tiktok"),
    st.dictionaries(
        st.sampled_from(["source", "medium", "name", "content", "term", "other"]),
        st.one_of(st.none(), st.sampled_from(["newsletter", "email", "CPC", " ", "{x}"]), st.integers(0, 1)),
        max_size=6,
    ),
)
OBJECT_KEYS = st.sampled_from(["url", "referrer", "path", "title"])
PAGE = st.one_of(st.none(), st.just(7), st.dictionaries(OBJECT_KEYS, VALUE, max_size=4))
PROPERTIES = st.one_of(st.none(), st.just("junk"), st.dictionaries(OBJECT_KEYS, VALUE, max_size=4))


@st.composite
def contexts(draw: st.DrawFn) -> Any:
    shape = draw(st.sampled_from(["none", "junk", "object"]))
    if shape == "none":
        return None
    if shape == "junk":
        return [1, 2]
    ctx: dict[str, Any] = {"library": {"name": "analytics.js"}}
    if draw(st.booleans()):
        ctx["page"] = draw(PAGE)
    if draw(st.booleans()):
        ctx["campaign"] = draw(CAMPAIGN)
    return ctx


@given(
    st.sampled_from(["page", "screen", "track", "identify", " Page ", 3]),
    PROPERTIES,
    contexts(),
)
def test_memoised_touchpoint_is_the_parsers_answer(event_type: Any, properties: Any, context: Any) -> None:
    expected = extract_touchpoint(event_type, properties, context)
    for _ in range(2):  # the second call answers from the memo
        assert touchpoint_of(event_type, properties, context) == expected
        assert touch_channel(event_type, properties, context) == (
            expected.channel if expected is not None else None
        )


def test_a_malformed_container_is_flagged_through_the_memo() -> None:
    url = "https://shop.example.com/?utm_source=newsletter"
    ok = touchpoint_of("page", {"url": url}, {"page": {"url": url}})
    junk = touchpoint_of("page", {"url": url}, {"page": {"url": url}, "campaign": "nope"})
    assert ok is not None and junk is not None
    assert ok.flags == ()
    assert junk.flags == ("malformed:context.campaign",)
    assert (ok.channel, junk.channel) == ("email", "email")
