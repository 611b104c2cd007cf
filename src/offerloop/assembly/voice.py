"""The optional voice rewriter: an atom's Markdown retold in the creator's voice by an LLM, kept honest.

The model sits behind an OpenAI-compatible endpoint (``POST {base_url}/chat/completions`` with
``model``, ``messages`` and ``temperature``; the text is ``choices[0].message.content``). Whatever it
returns goes through :func:`guard`, which rejects anything that invents facts (numbers, links, names,
claims), loses structure or drifts too far; on any failure the original Markdown is kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from offerloop.assembly.guard import GuardResult, guard

SYSTEM_PROMPT_TEMPLATE = (
    "You rewrite short pieces of course content in a creator's voice.\n"
    "Voice: {voice}\n"
    "Rules:\n"
    "- Keep every fact: do not add numbers, names, links, e-mail addresses, promises or claims.\n"
    "- Keep the Markdown structure: the same headings and the same task-list items, in order.\n"
    "- Copy every {{{{ placeholder }}}} exactly as written.\n"
    "- Keep about the same length.\n"
    "Reply with the rewritten Markdown only, without a preamble or code fences."
)

MAX_RESPONSE_BYTES = 1_000_000
RETRYABLE = frozenset({"connect_error", "bad_response", "empty", "guard_rejected", "http_429"})


@dataclass(frozen=True, slots=True)
class RewriterConfig:
    """Where the model lives and how it should sound."""

    base_url: str  # e.g. "https://api.openai.com/v1"; "/chat/completions" is appended
    model: str
    voice: str = "warm, direct, second person, short sentences"
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 8.0  # overall budget of one rewrite() call, every attempt included
    temperature: float = 0.3
    max_attempts: int = 1
    min_similarity: float = 0.55
    # Domains a rewrite may name besides the atom's own (the creator's sites): the guard's fixed list.
    allowed_domains: tuple[str, ...] = ()
    # One artifact's rewriting (offerloop.assembly.rewriter): parallel calls, a deadline for all of
    # them, a circuit breaker shared by every artifact of the process, a cache of buyer-free rewrites.
    concurrency: int = 4
    artifact_deadline_s: float = 30.0
    breaker_failures: int = 3  # consecutive failed calls that open the breaker
    breaker_cooldown_s: float = 60.0  # how long an open breaker stops every call
    cache_size: int = 1024  # buyer-free rewrites kept in this process (0: no cache)


@dataclass(frozen=True, slots=True)
class RewriteResult:
    """What to render: the accepted rewrite, or the original text and a machine-readable reason."""

    text: str
    rewritten: bool
    model: str
    prompt_hash: str
    guard: GuardResult | None = None
    error: str | None = (
        None  # timeout | http_<status> | bad_response | connect_error | empty | guard_rejected
    )
    # Every candidate the guard turned down, with its reasons (kept for provenance and review).
    rejected: tuple[tuple[str, tuple[str, ...]], ...] = ()


def prompt_for(atom_markdown: str, config: RewriterConfig) -> list[dict[str, str]]:
    """The chat messages for one atom: the rules and voice as system, the Markdown as user."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT_TEMPLATE.format(voice=config.voice)},
        {"role": "user", "content": atom_markdown},
    ]


def prompt_hash(config: RewriterConfig) -> str:
    """Hex sha256 over the prompt template, model, voice and temperature (provenance of a rewrite)."""
    material = json.dumps([SYSTEM_PROMPT_TEMPLATE, config.model, config.voice, config.temperature])
    return hashlib.sha256(material.encode()).hexdigest()


class Rewriter:
    """Rewrites Markdown through one reused ``httpx.Client``; never raises for remote problems.

    Each :meth:`rewrite` has one deadline, ``timeout_s`` after it starts, shared by all attempts.
    httpx timeouts are per operation (a server trickling a byte at a time never trips them), so the
    request runs in a short-lived daemon thread the caller waits on for at most the time left; the
    thread itself also checks the deadline between body chunks and stops reading when it passes (only
    a server trickling its status line forever can keep that daemon thread, never the caller, waiting).
    """

    def __init__(self, config: RewriterConfig, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self.prompt_hash = prompt_hash(config)
        self._url = httpx.URL(config.base_url.rstrip("/") + "/chat/completions")
        headers = {"Accept": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._headers = headers
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=config.timeout_s)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Rewriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def rewrite(self, markdown: str, *, deadline: float | None = None) -> RewriteResult:
        """The rewrite if the model answers in time and the guard accepts it, else the original.
        ``deadline`` (a ``time.monotonic()`` value) can cut the call's own ``timeout_s`` short."""
        cfg = self.config
        if not markdown.strip():
            return RewriteResult(markdown, False, cfg.model, self.prompt_hash)
        deadline = min(time.monotonic() + cfg.timeout_s, deadline if deadline is not None else math.inf)
        rejected: list[tuple[str, tuple[str, ...]]] = []
        payload = {"model": cfg.model, "messages": prompt_for(markdown, cfg), "temperature": cfg.temperature}
        error: str | None = "timeout"
        verdict: GuardResult | None = None
        for _ in range(max(1, cfg.max_attempts)):
            if time.monotonic() >= deadline:
                error = "timeout"
                break
            content, error = self._call(payload, deadline)
            verdict = None
            if content is not None:
                candidate = _unfence(content, markdown).strip()
                if not candidate:
                    error = "empty"
                else:
                    verdict = _checked(markdown, candidate, cfg)
                    if verdict.ok:
                        text = candidate + ("\n" if markdown.endswith("\n") else "")
                        return RewriteResult(
                            text, True, cfg.model, self.prompt_hash, verdict, None, tuple(rejected)
                        )
                    rejected.append((candidate, verdict.reasons))
                    error = "guard_rejected"
            if error not in RETRYABLE and not (error or "").startswith("http_5"):
                break
        return RewriteResult(markdown, False, cfg.model, self.prompt_hash, verdict, error, tuple(rejected))

    def _call(self, payload: dict[str, Any], deadline: float) -> tuple[str | None, str | None]:
        """Run one request in a worker thread; give up on it when the deadline passes."""
        done = threading.Event()
        box: list[tuple[str | None, str | None] | BaseException] = []

        def work() -> None:
            try:
                box.append(self._post(payload, deadline))
            except BaseException as exc:  # surfaced in the caller's thread below
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="voice-rewriter", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            return None, "timeout"
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _post(self, payload: dict[str, Any], deadline: float) -> tuple[str | None, str | None]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "timeout"
        body = bytearray()
        try:
            with self._client.stream(
                "POST", self._url, json=payload, headers=self._headers, timeout=httpx.Timeout(remaining)
            ) as response:
                if not response.is_success:
                    return None, f"http_{response.status_code}"
                for chunk in response.iter_bytes():
                    if time.monotonic() > deadline:
                        return None, "timeout"
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        return None, "bad_response"
        except httpx.TimeoutException:
            return None, "timeout"
        except httpx.NetworkError:  # connect, read and write failures
            return None, "connect_error"
        except httpx.UnsupportedProtocol:
            return None, "connect_error"
        except httpx.HTTPError:  # protocol violations, undecodable content
            return None, "bad_response"
        if time.monotonic() > deadline:
            return None, "timeout"
        return _content(bytes(body))


def _checked(source: str, candidate: str, config: RewriterConfig) -> GuardResult:
    """The guard's verdict; a bug in it rejects the rewrite instead of failing the artifact's render."""
    try:
        return guard(
            source, candidate, min_similarity=config.min_similarity, allowed_domains=config.allowed_domains
        )
    except Exception as exc:  # the original text is always a safe answer
        return GuardResult(False, (f"guard_error:{type(exc).__name__}",), 0.0)


def _content(body: bytes) -> tuple[str | None, str | None]:
    """``choices[0].message.content`` of a chat-completions response, or the reason it has none."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, "bad_response"
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, "bad_response"
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None, "bad_response"
    content = message.get("content")
    if content is None:  # e.g. a refusal or a tool call
        return None, "empty"
    if isinstance(content, list):  # some compatible servers answer with content parts
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        content = "".join(p for p in parts if isinstance(p, str))
    if not isinstance(content, str):
        return None, "bad_response"
    return (content, None) if content.strip() else (None, "empty")


def _unfence(content: str, source: str) -> str:
    """Drop one code fence wrapped around the whole answer, unless the source itself starts with one."""
    m = re.fullmatch(r"\s*```[\w-]*[ \t]*\n(.*?)\n```\s*", content, re.DOTALL)
    return m.group(1) if m and not source.lstrip().startswith("```") else content


__all__: list[str] = [
    "GuardResult",
    "RewriteResult",
    "Rewriter",
    "RewriterConfig",
    "guard",
    "prompt_for",
    "prompt_hash",
]
