"""The voice rewriter against real loopback HTTP servers speaking the chat-completions shape, and the guard."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from offerloop.assembly.rewriter import forget_process_state
from offerloop.assembly.voice import (
    GuardResult,
    Rewriter,
    RewriterConfig,
    guard,
    prompt_for,
    prompt_hash,
)

ATOM = """## Plan your first week

Block 30 minutes each morning to write. Most creators publish 3 posts a week, so start with one.

- [ ] Pick a topic for {{ buyer_name }}
- [ ] Draft the outline
- [x] Read the 10% rule at https://example.org/rules

Questions? Email help@creator.io.
"""

FAITHFUL = """## Plan your first week

Set aside 30 minutes each morning to write. Most creators publish 3 posts a week, so begin with just one.

- [ ] Choose a topic for {{ buyer_name }}
- [ ] Sketch the outline
- [x] Read the 10% rule at https://example.org/rules

Questions? Email help@creator.io.
"""

INVENTION = "Join 10,000 students at example.com — guaranteed results from Dr. Smith."

Behaviour = Callable[["Handler", dict[str, Any]], None]


# --- fake OpenAI-compatible servers ------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    port: int  # the client's source port: the same one twice means a reused connection


@dataclass
class FakeLLM:
    behaviour: Behaviour
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client can reuse its connection
    fake: FakeLLM

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake.requests.append(Seen(self.path, headers, body, self.client_address[1]))
        try:
            self.fake.behaviour(self, body)
        except OSError:  # the client gave up (timeout tests): nothing left to say
            self.close_connection = True

    def reply(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def completion(content: Any) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "voice-test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def atom_of(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def reword(text: str) -> str:
    for old, new in (
        ("Block", "Set aside"),
        ("so start with", "so begin with just"),
        ("Pick a", "Choose a"),
        ("Draft the", "Sketch the"),
    ):
        text = text.replace(old, new)
    return text


def faithful(h: Handler, body: dict[str, Any]) -> None:
    h.reply(200, completion(reword(atom_of(body))))


def hallucinating(h: Handler, body: dict[str, Any]) -> None:
    h.reply(200, completion(atom_of(body).rstrip("\n") + "\n\n" + INVENTION + "\n"))


def drops_task(h: Handler, body: dict[str, Any]) -> None:
    h.reply(200, completion(atom_of(body).replace("- [ ] Draft the outline\n", "")))


def fenced(h: Handler, body: dict[str, Any]) -> None:
    h.reply(200, completion("```markdown\n" + reword(atom_of(body)) + "```"))


def hangs(h: Handler, body: dict[str, Any]) -> None:
    h.fake.release.wait()  # set at teardown
    h.close_connection = True


def trickles(interval: float, *, headers_too: bool = False) -> Behaviour:
    """Send a valid response one byte per ``interval`` (only the body, or from the status line on)."""

    def behaviour(h: Handler, body: dict[str, Any]) -> None:
        payload = completion(reword(atom_of(body)))
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        if not headers_too:
            h.wfile.write(head.encode())
            h.wfile.flush()
        stream = (head.encode() if headers_too else b"") + payload
        for i in range(len(stream)):
            if h.fake.release.wait(interval):
                break
            h.wfile.write(stream[i : i + 1])
            h.wfile.flush()
        h.close_connection = True

    return behaviour


def status(code: int, payload: bytes) -> Behaviour:
    return lambda h, body: h.reply(code, payload)


def sequence(*behaviours: Behaviour) -> Behaviour:
    """The n-th request gets the n-th behaviour (the last one repeats)."""
    calls = iter(range(10_000))

    def behaviour(h: Handler, body: dict[str, Any]) -> None:
        behaviours[min(next(calls), len(behaviours) - 1)](h, body)

    return behaviour


OPENAI_502 = json.dumps(
    {"error": {"message": "Bad gateway", "type": "server_error", "param": None, "code": None}}
).encode()


class Harness:
    def __init__(self) -> None:
        # a new fake server may get the port of an earlier test's: its cached rewrites must not answer
        forget_process_state()
        self.fakes: list[FakeLLM] = []
        self.rewriters: list[Rewriter] = []

    def serve(self, behaviour: Behaviour) -> FakeLLM:
        fake = FakeLLM(behaviour)
        handler = type("BoundHandler", (Handler,), {"fake": fake})
        fake.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True).start()
        self.fakes.append(fake)
        return fake

    def rewriter(self, fake: FakeLLM | str, **overrides: Any) -> Rewriter:
        base_url = fake if isinstance(fake, str) else fake.base_url
        config = RewriterConfig(
            **{"base_url": base_url, "model": "voice-test", "timeout_s": 5.0, **overrides}
        )
        rw = Rewriter(config)
        self.rewriters.append(rw)
        return rw

    def close(self) -> None:
        for fake in self.fakes:
            fake.release.set()
            assert fake.server is not None
            fake.server.shutdown()
            fake.server.server_close()
        for rw in self.rewriters:
            rw.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


# --- the rewriter ------------------------------------------------------------------------------


def test_faithful_rewrite_is_accepted_and_request_is_chat_completions(harness: Harness) -> None:
    fake = harness.serve(faithful)
    rw = harness.rewriter(fake)

    result = rw.rewrite(ATOM)

    assert result.text == FAITHFUL
    assert result.rewritten is True
    assert result.error is None
    assert result.model == "voice-test"
    assert result.prompt_hash == prompt_hash(rw.config)
    assert result.guard is not None and result.guard.ok and result.guard.reasons == ()
    [seen] = fake.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.body == {"model": "voice-test", "messages": prompt_for(ATOM, rw.config), "temperature": 0.3}
    assert seen.body["messages"][0]["role"] == "system"
    assert "warm, direct, second person, short sentences" in seen.body["messages"][0]["content"]
    assert seen.body["messages"][1] == {"role": "user", "content": ATOM}
    assert seen.headers["content-type"] == "application/json"
    assert "authorization" not in seen.headers


def test_one_client_is_reused_across_rewrites(harness: Harness) -> None:
    fake = harness.serve(faithful)
    rw = harness.rewriter(fake)

    assert rw.rewrite(ATOM).text == FAITHFUL
    assert rw.rewrite(ATOM).text == FAITHFUL

    first, second = fake.requests
    assert first.port == second.port


def test_api_key_is_sent_as_bearer_token(harness: Harness) -> None:
    fake = harness.serve(faithful)
    rw = harness.rewriter(fake, api_key="sk-test-123", model="other-model", temperature=0.7, voice="playful")

    result = rw.rewrite(ATOM)

    assert result.rewritten is True
    assert result.model == "other-model"
    [seen] = fake.requests
    assert seen.headers["authorization"] == "Bearer sk-test-123"
    assert seen.body["model"] == "other-model"
    assert seen.body["temperature"] == 0.7
    assert "Voice: playful" in seen.body["messages"][0]["content"]


def test_hallucination_is_rejected_and_original_kept(harness: Harness) -> None:
    rw = harness.rewriter(harness.serve(hallucinating))

    result = rw.rewrite(ATOM)

    assert result.text == ATOM
    assert result.rewritten is False
    assert result.error == "guard_rejected"
    assert result.guard is not None
    assert result.guard.reasons == (
        "number:10000",
        "domain:example.com",
        "name:Dr. Smith",
        "claim:guaranteed",
    )


def test_dropped_task_item_is_rejected(harness: Harness) -> None:
    rw = harness.rewriter(harness.serve(drops_task))

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error) == (ATOM, False, "guard_rejected")
    assert result.guard is not None and result.guard.reasons == ("tasks:3->2",)


def test_answer_wrapped_in_a_code_fence_is_unwrapped(harness: Harness) -> None:
    rw = harness.rewriter(harness.serve(fenced))

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error) == (FAITHFUL, True, None)


def test_hanging_server_times_out(harness: Harness) -> None:
    fake = harness.serve(hangs)
    rw = harness.rewriter(fake, timeout_s=0.3)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error, result.guard) == (ATOM, False, "timeout", None)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(trickles(1.0), id="body-1-byte-per-second"),
        # Faster than the per-operation read timeout: only the overall deadline can stop these.
        pytest.param(trickles(0.02), id="body-1-byte-per-20ms"),
        pytest.param(trickles(0.02, headers_too=True), id="status-line-1-byte-per-20ms"),
    ],
)
def test_trickling_server_times_out(harness: Harness, behaviour: Behaviour) -> None:
    rw = harness.rewriter(harness.serve(behaviour), timeout_s=0.3)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error, result.guard) == (ATOM, False, "timeout", None)


def test_bad_gateway_is_reported(harness: Harness) -> None:
    fake = harness.serve(status(502, OPENAI_502))
    rw = harness.rewriter(fake)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error, result.guard) == (ATOM, False, "http_502", None)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"choices": [{"message": {"content": "half', id="truncated-json"),
        pytest.param(b"<html>upstream error</html>", id="html"),
        pytest.param(b'{"object": "chat.completion"}', id="no-choices"),
        pytest.param(b'{"choices": []}', id="empty-choices"),
        pytest.param(b'{"choices": [{"message": "hi"}]}', id="message-not-object"),
        pytest.param(b'{"choices": [{"message": {"content": 42}}]}', id="content-not-text"),
        pytest.param(OPENAI_502, id="error-body-with-200"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="absurdly-nested"),
    ],
)
def test_malformed_response_is_bad_response(harness: Harness, payload: bytes) -> None:
    rw = harness.rewriter(harness.serve(status(200, payload)))

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error, result.guard) == (ATOM, False, "bad_response", None)


@pytest.mark.parametrize("content", ["", "   \n", None, "```\n\n```"])
def test_empty_content_is_reported(harness: Harness, content: str | None) -> None:
    rw = harness.rewriter(harness.serve(status(200, completion(content))))

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error, result.guard) == (ATOM, False, "empty", None)


def test_content_parts_are_joined(harness: Harness) -> None:
    parts = [{"type": "text", "text": FAITHFUL[:40]}, {"type": "text", "text": FAITHFUL[40:]}]
    rw = harness.rewriter(harness.serve(status(200, completion(parts))))

    assert rw.rewrite(ATOM).text == FAITHFUL


def test_refused_connection_is_connect_error(harness: Harness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rw = harness.rewriter(f"http://127.0.0.1:{port}/v1")

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error, result.guard) == (ATOM, False, "connect_error", None)


def test_retries_after_a_server_error_within_max_attempts(harness: Harness) -> None:
    fake = harness.serve(sequence(status(502, OPENAI_502), faithful))
    rw = harness.rewriter(fake, max_attempts=2)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error) == (FAITHFUL, True, None)
    assert len(fake.requests) == 2


def test_retries_after_a_rejected_rewrite(harness: Harness) -> None:
    fake = harness.serve(sequence(hallucinating, faithful))
    rw = harness.rewriter(fake, max_attempts=3)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error) == (FAITHFUL, True, None)
    assert len(fake.requests) == 2


def test_last_attempt_decides_when_all_fail(harness: Harness) -> None:
    fake = harness.serve(hallucinating)
    rw = harness.rewriter(fake, max_attempts=2)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error) == (ATOM, False, "guard_rejected")
    assert result.guard is not None and result.guard.reasons[0] == "number:10000"
    assert len(fake.requests) == 2


def test_client_errors_are_not_retried(harness: Harness) -> None:
    fake = harness.serve(status(400, b'{"error": {"message": "bad model", "type": "invalid_request_error"}}'))
    rw = harness.rewriter(fake, max_attempts=3)

    result = rw.rewrite(ATOM)

    assert (result.text, result.rewritten, result.error) == (ATOM, False, "http_400")
    assert len(fake.requests) == 1


def test_blank_markdown_is_not_sent(harness: Harness) -> None:
    fake = harness.serve(faithful)
    rw = harness.rewriter(fake)

    result = rw.rewrite("  \n")

    assert (result.text, result.rewritten, result.error, result.guard) == ("  \n", False, None, None)
    assert fake.requests == []


# --- prompt and config -------------------------------------------------------------------------


def test_prompt_hash_covers_template_model_voice_and_temperature_only() -> None:
    base = RewriterConfig(base_url="http://a/v1", model="m1", voice="warm")
    same = RewriterConfig(
        base_url="http://b/v1", model="m1", voice="warm", api_key="k", timeout_s=1, max_attempts=3
    )
    assert prompt_hash(base) == prompt_hash(same)
    assert len(prompt_hash(base)) == 64 and int(prompt_hash(base), 16) >= 0
    others = [
        RewriterConfig(base_url="http://a/v1", model="m2", voice="warm"),
        RewriterConfig(base_url="http://a/v1", model="m1", voice="dry"),
        RewriterConfig(base_url="http://a/v1", model="m1", voice="warm", temperature=0.9),
    ]
    assert len({prompt_hash(c) for c in [base, *others]}) == 4


def test_prompt_for_keeps_the_atom_verbatim_and_states_the_rules() -> None:
    config = RewriterConfig(base_url="http://a/v1", model="m", voice="calm, first person")
    system, user = prompt_for(ATOM, config)
    assert user == {"role": "user", "content": ATOM}
    assert system["role"] == "system"
    assert "Voice: calm, first person" in system["content"]
    assert "{{ placeholder }}" in system["content"]


def test_config_repr_hides_the_api_key() -> None:
    config = RewriterConfig(base_url="http://a/v1", model="m", api_key="sk-secret")
    assert "sk-secret" not in repr(config)
    assert (config.timeout_s, config.temperature, config.max_attempts, config.min_similarity) == (
        8.0,
        0.3,
        1,
        0.55,
    )


# --- the guard ---------------------------------------------------------------------------------

PROSE = (
    "Most beginners try to post on every platform at once. This spreads their attention thin and "
    "makes it hard to see what works. Choose one platform where your audience already spends time, "
    "and commit to it for a month."
)


@pytest.mark.parametrize(
    ("source", "candidate", "reasons"),
    [
        # numbers: normalised, digits only
        ("Save 1,000 dollars and 10% of your time.", "Save 1000 dollars and 10 % of your time.", ()),
        ("Save 10 percent of your time.", "Save 10% of your time.", ()),
        ("Rest for 1.50 hours.", "Rest for 1.5 hours.", ()),
        ("Write 10 lines a day.", "Write ten lines a day.", ()),
        ("Write ten lines a day.", "Write 10 lines a day.", ()),
        ("Write ten lines a day.", "Write forty lines a day.", ("number:40", "number_missing:10")),
        ("Save 1,000 dollars a year.", "Save 2,000 dollars a year.", ("number:2000", "number_missing:1000")),
        ("Cut costs by 10.", "Cut costs by 10%.", ("number:10%", "number_missing:10")),
        ("1. Draft it\n2. Edit it\n", "1. Draft it\n2. Edit it\n3. Ship it\n", ()),
        ("Read https://x.io/p/42 first.", "First read https://x.io/p/42 please.", ()),
        # links, addresses, domains
        (
            "Read the guide before you start the first lesson.",
            "Read the guide at https://evil.example.net/x first.",
            ("url:https://evil.example.net/x",),
        ),
        ("Read https://Creator.io/Start.", "Start with https://creator.io/start.", ()),
        ("Write to us with questions.", "Write to bob@mail.com with questions.", ("email:bob@mail.com",)),
        ("Sign up at https://creator.io/start today.", "Sign up at creator.io today.", ()),
        ("Sign up on the page today.", "Sign up at other.co today.", ("domain:other.co",)),
        ("Save notes.md in a folder.", "Save notes.md in one folder.", ()),
        # names
        ("Ask your coach about it.", "Ask Maria about it.", ("name:Maria",)),
        ("Ask maria about it.", "Ask Maria about it.", ()),
        ("Read https://x.io/a. Then open the app.", "Read https://x.io/a. Notion is next.", ()),
        ("Draft in a simple app.", "Draft in Notion daily.", ("name:Notion", "frequency:daily")),
        (
            "Draft in a simple app.",
            "Notion works well for drafts.",
            ("name:Notion",),
        ),  # a brand before a verb
        (
            "This tip works for most new writers.",
            "Jane Doe says this tip works for most writers.",
            ("name:Jane Doe",),
        ),
        ("Ask a doctor.", "Ask Dr. Smith.", ("name:Dr. Smith",)),
        (
            "Use a tool, e.g. a notebook.",
            "Use a tool, e.g. Notion, daily.",
            ("name:Notion", "frequency:daily"),
        ),
        ("Use keyword tools.", "Use SEO tools.", ("name:SEO",)),
        ("## Your first week\n\nI think you can.", "## Your First Week\n\nI think you can.", ()),
        ("Questions? Write to us.", "Questions? Just write to us.", ()),
        ("- [ ] Follow peers", "- [x] Follow peers", ()),
        # claims
        ("This works for most people.", "This is guaranteed to work for most people.", ("claim:guaranteed",)),
        ("Find a good way.", "Find the best way.", ("claim:best",)),
        ("Find the best way.", "Find the very best way.", ()),
        ("A great method.", "The #1 method.", ("number:1", "claim:#1")),
        ("Try it for free.", "Try it 100% risk-free.", ("number:100%", "claim:100%", "claim:risk-free")),
        (
            "It helps most people who try it.",
            "It is scientifically proven to help most people.",
            ("claim:scientifically", "claim:proven"),
        ),
        (
            "Post often and reply to comments.",
            "Always post often and never skip a reply.",
            ("claim:always", "claim:never"),
        ),
        # placeholders
        ("Hi {{ name }}, start here.", "Hi {{name}}, start here.", ()),
        (
            "Hi {{ name }}, start here.",
            "Hi {{ first_name }}, start here.",
            ("placeholder_missing:{{ name }}", "placeholder_new:{{ first_name }}"),
        ),
        ("Hi {{ name }}, start here now.", "Hi there, start here now.", ("placeholder_missing:{{ name }}",)),
        # structure
        (
            "# Start\n\nWrite daily.\n\n## Next\n\nEdit weekly.",
            "# Start\n\nWrite daily.\n\nNext, edit weekly.",
            ("headings:2->1",),
        ),
        ("Do this:\n\n- [ ] Write\n- [ ] Edit\n", "Do this:\n\n- [ ] Write\n- Edit\n", ("tasks:2->1",)),
        ("Do this:\n\n- [ ] Write\n", "Do this:\n\n- [ ] Write\n- [ ] Edit\n", ("tasks:1->2",)),
        # drift and length
        (PROSE, PROSE + " " + PROSE, ("length:2.00",)),
        (PROSE, "Commit to one platform.", ("similarity:0.44", "length:0.11")),
        (
            PROSE,
            "Posting is a skill. Write a short draft every day, then edit it the next morning before you "
            "publish. Over a month your drafts will get tighter and clearer.",
            ("frequency:daily", "similarity:0.22"),
        ),
    ],
)
def test_guard_reasons(source: str, candidate: str, reasons: tuple[str, ...]) -> None:
    result = guard(source, candidate, min_similarity=0.0 if len(source) < 150 else 0.55)
    assert result.reasons == reasons
    assert result.ok is (reasons == ())


def test_guard_accepts_a_voice_rewrite_of_prose() -> None:
    candidate = (
        "You might be tempted to post everywhere at once. Don't. It spreads your attention thin, and you "
        "can't tell what's working. Pick one platform where your audience already hangs out. Commit to it "
        "for a month."
    )
    result = guard(PROSE, candidate, min_similarity=0.55)
    assert result == GuardResult(True, (), result.similarity)
    assert 0.55 <= result.similarity < 0.7


def test_guard_identical_text_is_fully_similar() -> None:
    assert guard(ATOM, ATOM, min_similarity=0.55) == GuardResult(True, (), 1.0)


def test_guard_reports_the_hallucinated_atom_exactly() -> None:
    candidate = ATOM + "\n" + INVENTION + "\n"
    result = guard(ATOM, candidate, min_similarity=0.55)
    assert result.ok is False
    assert result.reasons == ("number:10000", "domain:example.com", "name:Dr. Smith", "claim:guaranteed")
