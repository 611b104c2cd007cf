"""Rewriting one artifact's blocks: in parallel, within a deadline, behind a circuit breaker, cached,
and without ever sending the buyer's identifiers to the model.

- **Concurrency**: up to ``concurrency`` calls at once through one ``httpx.Client`` (a thread pool).
- **Deadline**: the whole artifact gets ``artifact_deadline_s``; a call never outlives it and a block
  not started by then keeps its original text (``error: deadline``).
- **Circuit breaker**: one per endpoint and model, shared by every artifact of the process. After
  ``breaker_failures`` consecutive failed calls (timeouts, refused connections, HTTP errors, malformed
  answers) it opens: for ``breaker_cooldown_s`` no call is made (``error: circuit_open``). Then one
  probe call is let through; its success closes the breaker, its failure opens it again.
- **Cache**: accepted rewrites of blocks that contain no buyer data, keyed by the sha256 of the block's
  text, the endpoint, the prompt hash (template, model, voice, temperature) and the guard's settings. It is a bounded
  LRU in this process, not a table: a rewrite is cheap to lose (a miss costs one call), holds no
  personal data by construction so it needs no erasure path, and needs no migration. Each process
  (``serve``, ``worker``) warms its own.
- **No buyer identifiers leave**: the buyer's name (and its parts), e-mail addresses, user id and
  free-text answers, in every form the template writes them (Markdown-escaped: ``Anne\\-Marie``) and
  with every e-mail address, URL and domain inside them on its own, are replaced by ``{{ buyer_N }}`` placeholders before the call (the prompt asks the
  model to copy placeholders and the guard rejects a rewrite that drops or invents one) and restored in
  the accepted text afterwards.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from offerloop.assembly.guard import addresses
from offerloop.assembly.template import inert_markdown, plain_value
from offerloop.assembly.voice import Rewriter, RewriterConfig, RewriteResult, prompt_hash

MIN_IDENTIFIER_LENGTH = 2


class CircuitBreaker:
    """Closed -> (``failures`` consecutive failures) -> open for ``cooldown_s`` -> one probe -> closed/open."""

    def __init__(
        self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = max(1, failures)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        """Whether a call may be made now (an open breaker past its cool-down lets one probe through)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._probing = True
            return True

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._consecutive, self._opened_at, self._probing = 0, None, False
                return
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                self._opened_at, self._probing = self._clock(), False


class RewriteCache:
    """A bounded, thread-safe LRU of accepted rewrites (buyer-free text only)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: str) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_caches: dict[int, RewriteCache] = {}
_registry_lock = threading.Lock()


def breaker_for(config: RewriterConfig) -> CircuitBreaker:
    """The process-wide breaker of one endpoint and model."""
    key = (config.base_url.rstrip("/"), config.model)
    with _registry_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = _breakers[key] = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
        return breaker


def cache_for(config: RewriterConfig) -> RewriteCache:
    """The process-wide cache of buyer-free rewrites (one per configured size)."""
    with _registry_lock:
        cache = _caches.get(config.cache_size)
        if cache is None:
            cache = _caches[config.cache_size] = RewriteCache(config.cache_size)
        return cache


def forget_process_state() -> None:
    """Drop every breaker and cache of this process (a loopback test server's port is reused later)."""
    with _registry_lock:
        _breakers.clear()
        _caches.clear()


def cache_key(markdown: str, config: RewriterConfig) -> str:
    """sha256 over the block's text, the endpoint, the prompt hash and the guard's settings."""
    material = json.dumps(
        [
            config.base_url.rstrip("/"),
            prompt_hash(config),
            config.min_similarity,
            sorted(config.allowed_domains),
            markdown,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


# -- buyer identifiers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    values: tuple[str, ...]  # placeholder i+1 stands for values[i]


def identifier_forms(identifiers: Iterable[str]) -> set[str]:
    """Every form in which a buyer value can appear in a block: as given, as the template writes it into
    Markdown (flattened and backslash-escaped, ``Anne\\-Marie``) or plain text, and each e-mail address,
    URL and domain inside it on its own (also escaped)."""
    forms: set[str] = set()
    for ident in identifiers:
        whole = [ident, plain_value(ident), *addresses(unicodedata.normalize("NFKC", ident))]
        for form in whole:
            forms |= {form.strip(), inert_markdown(form).strip()}
    return {f for f in forms if len(f) >= MIN_IDENTIFIER_LENGTH}


def redact(markdown: str, identifiers: Iterable[str]) -> Redacted:
    """``markdown`` with each identifier, in each of its forms (:func:`identifier_forms`; whole words,
    any case), replaced by ``{{ buyer_N }}``."""
    values: list[str] = []
    text = markdown
    for ident in sorted(identifier_forms(identifiers), key=len, reverse=True):
        pattern = re.compile(rf"(?<![\w@.+-]){re.escape(ident)}(?![\w@-])", re.IGNORECASE)

        def swap(m: re.Match[str]) -> str:
            literal = m.group(0)
            if literal not in values:
                values.append(literal)
            return f"{{{{ buyer_{values.index(literal) + 1} }}}}"

        text = pattern.sub(swap, text)
    return Redacted(text, tuple(values))


_BUYER_PLACEHOLDER = re.compile(r"\{\{\s*buyer_(\d+)\s*\}\}")


def restore(text: str, values: Sequence[str]) -> str:
    def back(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return values[n - 1] if 1 <= n <= len(values) else m.group(0)

    return _BUYER_PLACEHOLDER.sub(back, text) if values else text


# -- one artifact --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockRewrite:
    """What happened to one block: the text to render and everything provenance keeps."""

    text: str
    result: RewriteResult | None  # None when no call was made
    error: str | None
    cached: bool = False
    redacted: int = 0  # how many distinct buyer identifiers were replaced before sending

    @property
    def rewritten(self) -> bool:
        return self.cached or (self.result is not None and self.result.rewritten)


_ENDPOINT_OK = frozenset({None, "guard_rejected", "empty"})  # the model answered


def rewrite_all(
    texts: Sequence[str],
    config: RewriterConfig,
    *,
    identifiers: Iterable[str] = (),
    client_factory: Callable[[RewriterConfig], Rewriter] = Rewriter,
) -> list[BlockRewrite]:
    """Rewrite every text (in order) under one deadline, the endpoint's breaker and the cache."""
    deadline = time.monotonic() + config.artifact_deadline_s
    breaker, cache = breaker_for(config), cache_for(config)
    idents = [i for i in identifiers if i]

    with client_factory(config) as rewriter:

        def one(markdown: str) -> BlockRewrite:
            hidden = redact(markdown, idents)
            key = cache_key(markdown, config) if not hidden.values else None
            if key is not None and (hit := cache.get(key)) is not None:
                return BlockRewrite(hit, None, None, cached=True)
            if time.monotonic() >= deadline:
                return BlockRewrite(markdown, None, "deadline", redacted=len(hidden.values))
            if not breaker.allow():
                return BlockRewrite(markdown, None, "circuit_open", redacted=len(hidden.values))
            out = rewriter.rewrite(hidden.text, deadline=deadline)
            breaker.record(out.error in _ENDPOINT_OK)
            if not out.rewritten:
                # what provenance keeps of rejected candidates is restored too: the reviewer reads real text
                rejected = tuple((restore(t, hidden.values), r) for t, r in out.rejected)
                return BlockRewrite(markdown, replace(out, text=markdown, rejected=rejected), out.error,
                                    redacted=len(hidden.values))  # fmt: skip
            text = restore(out.text, hidden.values)
            if key is not None:
                cache.put(key, text)
            rejected = tuple((restore(t, hidden.values), r) for t, r in out.rejected)
            return BlockRewrite(
                text, replace(out, text=text, rejected=rejected), None, redacted=len(hidden.values)
            )

        workers = max(1, min(config.concurrency, len(texts)))
        if workers == 1:
            return [one(t) for t in texts]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voice") as pool:
            return list(pool.map(one, texts))


__all__ = [
    "BlockRewrite",
    "CircuitBreaker",
    "RewriteCache",
    "breaker_for",
    "cache_for",
    "forget_process_state",
    "identifier_forms",
    "redact",
    "restore",
    "rewrite_all",
]
