"""The body guard's fast path (orjson first, prefilters before the slow patterns) gives the verdict the plain
formulation gives: the same reason refused, or the same body let through, on generated JSON and junk."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from offerloop.api import guards
from offerloop.api.guards import MAX_JSON_DEPTH, _Invalid, check_body

# The formulation before the fast path, kept here as the reference.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _has_lone_surrogate(value: object) -> bool:
    """By walking the value: a string that UTF-8 cannot encode (a surrogate without its pair)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def reference(body: bytes) -> str | None:
    try:
        if b"\x00" in body:
            raise _Invalid("nul_character", "", "body")
        try:
            parsed = json.loads(body, parse_constant=guards._refuse_constant)
        except RecursionError:
            raise _Invalid("nesting_too_deep", "", "body") from None
        except ValueError:
            return None
        if _has_lone_surrogate(parsed):
            raise _Invalid("lone_surrogate", "", "body")
        if guards._NUL_ESCAPE.search(body):
            raise _Invalid("nul_character", "", "body")
        shape = _STRING.sub(b'""', body)
        for match in guards._LONG_NUMBER.finditer(shape):
            text = match.group().decode()
            if any(c in text for c in ".eE"):
                if float(text) in (float("inf"), float("-inf")):
                    raise _Invalid("number_out_of_range", "", "body")
            elif not guards._fits_int64(text):
                raise _Invalid("integer_out_of_range", "", "body")
        if guards._too_deep(shape):
            raise _Invalid("nesting_too_deep", "", "body")
    except _Invalid as bad:
        return bad.reason
    return None


def verdict(body: bytes) -> str | None:
    try:
        check_body(body)
    except _Invalid as bad:
        return bad.reason
    return None


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True)
)
texts = st.text(
    alphabet=st.sampled_from(["a", '"', "\\", "\x00", "é", "\ud800", "0", "e", "{", "]"]), max_size=12
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=400, derandomize=True)
@given(values)
def test_generated_json_gets_the_same_verdict(value: object) -> None:
    body = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    assert verdict(body) == reference(body)


@settings(max_examples=400, derandomize=True)
@given(
    st.binary(max_size=80), st.sampled_from([b"", b"NaN", b"1e999", b"99999999999999999999", b'"\\u0000"'])
)
def test_junk_gets_the_same_verdict(junk: bytes, piece: bytes) -> None:
    for body in (junk, b"[" + piece + b"]", b'{"a": ' + piece + b"}", junk + piece):
        assert verdict(body) == reference(body)


def test_the_edges_are_refused_by_both() -> None:
    cases = {
        b'{"x": NaN}': "number_out_of_range",
        b"[1e999]": "number_out_of_range",
        b"[123456789012345678901]": "integer_out_of_range",
        b'{"a": "b\\u0000"}': "nul_character",
        b'{"a": "b\\\\u0000"}': None,  # an escaped backslash, then the text u0000
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1): "nesting_too_deep",
        b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH: None,
        b"[" * 5000 + b"]" * 5000: "nesting_too_deep",
        b"not json": None,
        b'{"user_id": "\\ud83d", "placement": "home"}': "lone_surrogate",
        b'{"user_id": "\\ud83d\\ude00"}': None,  # a pair is one character
        b'{"\\udc00": 1}': "lone_surrogate",
    }
    for body, reason in cases.items():
        assert (verdict(body), reference(body)) == (reason, reason), body[:40]
