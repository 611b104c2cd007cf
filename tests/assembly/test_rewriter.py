"""Rewriting many blocks against real loopback servers: circuit breaker, artifact deadline, concurrency,
cache of buyer-free rewrites, and buyer identifiers that never reach the model. Counts, never durations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.assembly.test_voice import (
    OPENAI_502,
    Handler,
    Harness,
    atom_of,
    completion,
    faithful,
    hangs,
    reword,
    status,
)

from offerloop.assembly.rewriter import CircuitBreaker, RewriteCache, redact, restore, rewrite_all
from offerloop.assembly.voice import RewriterConfig

TEXTS = [f"Block 30 minutes on day {i} to write. Pick a topic and draft the outline." for i in range(1, 9)]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def config(base_url: str, **overrides: Any) -> RewriterConfig:
    values: dict[str, Any] = {"base_url": base_url, "model": "voice-test", "timeout_s": 5.0, "concurrency": 1,
                              "breaker_failures": 3, "breaker_cooldown_s": 600.0, "artifact_deadline_s": 30.0}  # fmt: skip
    return RewriterConfig(**{**values, **overrides})


def test_a_hung_rewriter_opens_the_breaker_after_n_timeouts(harness: Harness) -> None:
    fake = harness.serve(hangs)
    cfg = config(fake.base_url, timeout_s=0.2, breaker_failures=2)

    first = rewrite_all(TEXTS, cfg)

    assert len(fake.requests) == 2  # not 8: every later atom keeps its text without a call
    assert [b.error for b in first] == ["timeout", "timeout"] + ["circuit_open"] * 6
    assert [b.text for b in first] == TEXTS and not any(b.rewritten for b in first)
    # the breaker is the endpoint's, not the artifact's: the next artifact does not wait either
    second = rewrite_all(TEXTS[:3], cfg)
    assert len(fake.requests) == 2
    assert [b.error for b in second] == ["circuit_open"] * 3


def test_server_errors_open_the_breaker_and_a_guard_rejection_does_not(harness: Harness) -> None:
    failing = harness.serve(status(502, OPENAI_502))
    out = rewrite_all(TEXTS, config(failing.base_url, breaker_failures=3))
    assert len(failing.requests) == 3
    assert [b.error for b in out] == ["http_502"] * 3 + ["circuit_open"] * 5

    def invents(h: Handler, body: dict[str, Any]) -> None:
        h.reply(200, completion(atom_of(body) + " Oprah swears by it."))

    rejecting = harness.serve(invents)  # the model answers: the endpoint is healthy, the guard says no
    out = rewrite_all(TEXTS, config(rejecting.base_url, breaker_failures=2))
    assert len(rejecting.requests) == 8
    assert {b.error for b in out} == {"guard_rejected"}
    assert out[0].result is not None and out[0].result.rejected == (
        (TEXTS[0] + " Oprah swears by it.", ("name:Oprah",)),
    )


def test_the_artifact_deadline_bounds_every_call(harness: Harness) -> None:
    fake = harness.serve(hangs)
    cfg = config(fake.base_url, timeout_s=30.0, artifact_deadline_s=1.0, concurrency=2, breaker_failures=100)

    out = rewrite_all(TEXTS[:6], cfg)

    assert len(fake.requests) == 2  # the two calls in flight are cut at the deadline; the rest never start
    assert sorted(b.error or "" for b in out) == ["deadline"] * 4 + ["timeout"] * 2
    assert [b.text for b in out] == TEXTS[:6]


def test_calls_run_concurrently_up_to_the_bound(harness: Harness) -> None:
    gate = threading.Barrier(4, timeout=10)  # released only when 4 requests are in flight together
    lock = threading.Lock()
    in_flight = [0, 0]  # now, peak

    def together(h: Handler, body: dict[str, Any]) -> None:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            gate.wait()
            h.reply(200, completion(reword(atom_of(body))))
        except threading.BrokenBarrierError:
            h.reply(503, OPENAI_502)
        finally:
            with lock:
                in_flight[0] -= 1

    fake = harness.serve(together)
    out = rewrite_all(TEXTS, config(fake.base_url, concurrency=4))

    assert len(fake.requests) == 8 and in_flight[1] == 4
    assert all(b.rewritten for b in out)
    assert [b.text for b in out] == [reword(t) for t in TEXTS]


def test_buyer_free_rewrites_are_cached_and_buyer_text_is_not(harness: Harness) -> None:
    fake = harness.serve(faithful)
    cfg = config(fake.base_url)

    first = rewrite_all(TEXTS[:2], cfg)
    again = rewrite_all(TEXTS[:2], cfg)

    assert len(fake.requests) == 2
    assert [b.cached for b in first] == [False, False] and [b.cached for b in again] == [True, True]
    assert [b.text for b in again] == [b.text for b in first] == [reword(t) for t in TEXTS[:2]]
    # another voice is another rewrite
    rewrite_all(TEXTS[:1], config(fake.base_url, voice="dry"))
    assert len(fake.requests) == 3

    personal = "Block 30 minutes to write, Ana. Pick a topic, Ana."
    for _ in range(2):
        (out,) = rewrite_all([personal], cfg, identifiers=["Ana Lima", "Ana"])
        assert out.rewritten and not out.cached and out.redacted == 1
        assert out.text == "Set aside 30 minutes to write, Ana. Choose a topic, Ana."
    assert len(fake.requests) == 5


def test_the_buyer_name_never_reaches_the_model(harness: Harness) -> None:
    fake = harness.serve(faithful)
    text = "Ana Lima, block 30 minutes. Write to ana@example.org if you are stuck, Ana."

    (out,) = rewrite_all(
        [text], config(fake.base_url), identifiers=["Ana Lima", "Ana", "Lima", "ana@example.org"]
    )

    sent = atom_of(fake.requests[0].body)
    assert sent == "{{ buyer_2 }}, block 30 minutes. Write to {{ buyer_1 }} if you are stuck, {{ buyer_3 }}."
    assert "Ana" not in str(fake.requests[0].body) and "Lima" not in str(fake.requests[0].body)
    assert out.text == "Ana Lima, block 30 minutes. Write to ana@example.org if you are stuck, Ana."


def test_a_rewrite_that_drops_a_buyer_placeholder_is_rejected(harness: Harness) -> None:
    def drops(h: Handler, body: dict[str, Any]) -> None:
        h.reply(200, completion(atom_of(body).replace("{{ buyer_1 }}, ", "")))

    fake = harness.serve(drops)
    (out,) = rewrite_all(
        ["Ana, block 30 minutes to write today."], config(fake.base_url), identifiers=["Ana"]
    )
    assert (out.text, out.rewritten, out.error) == (
        "Ana, block 30 minutes to write today.",
        False,
        "guard_rejected",
    )
    assert out.result is not None
    assert out.result.rejected == (
        ("block 30 minutes to write today.", ("placeholder_missing:{{ buyer_1 }}",)),
    )


def test_circuit_breaker_half_open_lets_one_probe_through() -> None:
    now = [100.0]
    breaker = CircuitBreaker(2, 10.0, clock=lambda: now[0])
    breaker.record(False)
    assert breaker.allow() and breaker.state == "closed"
    breaker.record(False)
    assert (breaker.allow(), breaker.state) == (False, "open")
    now[0] += 10.0
    assert breaker.state == "half_open"
    assert breaker.allow() is True and breaker.allow() is False  # one probe at a time
    breaker.record(False)  # the probe failed: open again for a full cool-down
    assert (breaker.allow(), breaker.state) == (False, "open")
    now[0] += 10.0
    assert breaker.allow() is True
    breaker.record(True)
    assert (breaker.state, breaker.allow(), breaker.allow()) == ("closed", True, True)


def test_cache_is_bounded_lru() -> None:
    cache = RewriteCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    cache.put("c", "C")  # evicts b, the least recently used
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == ("A", None, "C", 2)
    RewriteCache(0).put("x", "X")


def test_redact_and_restore_round_trip() -> None:
    hidden = redact("Hi ANA, Anastasia is not you, ana. Mail ana@x.io.", ["Ana", "ana@x.io", " ", "A"])
    assert hidden.text == "Hi {{ buyer_2 }}, Anastasia is not you, {{ buyer_3 }}. Mail {{ buyer_1 }}."
    assert hidden.values == ("ana@x.io", "ANA", "ana")
    assert restore(hidden.text, hidden.values) == "Hi ANA, Anastasia is not you, ana. Mail ana@x.io."
    assert restore("{{ buyer_9 }}", hidden.values) == "{{ buyer_9 }}"
