"""The optional voice rewriter: an atom's Markdown retold in the creator's voice by an LLM, kept honest.

The model sits behind an OpenAI-compatible endpoint (``POST {base_url}/chat/completions`` with
``model``, ``messages`` and ``temperature``; the text is ``choices[0].message.content``). Whatever it
returns goes through :func:`guard`, which rejects anything that invents facts (numbers, links, names,
claims), loses structure or drifts too far; on any failure the original Markdown is kept.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any

import httpx

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

MIN_LENGTH_RATIO = 0.5
MAX_LENGTH_RATIO = 1.8
MAX_RESPONSE_BYTES = 1_000_000
BIGRAM_WEIGHT = 0.5
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


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The grounding verdict: ``reasons`` holds ``kind:item`` strings naming each offending item."""

    ok: bool
    reasons: tuple[str, ...]
    similarity: float


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

    def rewrite(self, markdown: str) -> RewriteResult:
        """The rewrite if the model answers in time and the guard accepts it, else the original."""
        cfg = self.config
        if not markdown.strip():
            return RewriteResult(markdown, False, cfg.model, self.prompt_hash)
        deadline = time.monotonic() + cfg.timeout_s
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
                    verdict = guard(markdown, candidate, min_similarity=cfg.min_similarity)
                    if verdict.ok:
                        text = candidate + ("\n" if markdown.endswith("\n") else "")
                        return RewriteResult(text, True, cfg.model, self.prompt_hash, verdict)
                    error = "guard_rejected"
            if error not in RETRYABLE and not (error or "").startswith("http_5"):
                break
        return RewriteResult(markdown, False, cfg.model, self.prompt_hash, verdict, error)

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


# --- the grounding guard -----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]{}\"'`]*[^\s<>()\[\]{}\"'`.,;:!?]", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_TLDS = (
    "com|org|net|edu|gov|io|co|ai|app|dev|me|ly|tv|fm|gg|so|to|info|biz|xyz|site|online|shop|store|"
    "blog|tech|page|link|email|academy|school|courses|club|pro|uk|us|ca|au|de|fr|es|it|nl|be|ch|at|"
    "se|no|dk|fi|ie|pl|pt|eu|in|jp|br|nz|sg"
)
_DOMAIN = re.compile(rf"(?<![\w.@/-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})(?![\w-])", re.I)
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s*(?:%|percent\b|per cent\b))?", re.I)
_LIST_MARKER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.MULTILINE)
_TASK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX]\](?:\s|$)", re.MULTILINE)
_LINE_MARKER = re.compile(r"^\s*(?:(?:#{1,6}|>|[-*+]|\d+[.)])\s+)*(?:\[[ xX]\]\s+)?")
_SENTENCE_END = re.compile(r"[.!?:;]")
_ABBREVIATIONS = frozenset(("dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "mt", "vs", "e", "g", "i"))
_CLAIMS: tuple[tuple[str, str], ...] = (
    ("guarantee", r"guarantee[ds]?"),
    ("proven", r"proven"),
    ("best", r"best"),
    ("#1", r"#\s?1(?!\d)"),
    ("number one", r"number one|no\. ?1(?!\d)"),
    ("always", r"always"),
    ("never", r"never"),
    ("100%", r"100\s*(?:%|percent)"),
    ("risk-free", r"risk[- ]free|no risk|zero risk"),
    ("scientifically", r"scientific(?:ally)?"),
    ("clinically", r"clinical(?:ly)?"),
    ("certified", r"certified"),
    ("instant", r"instant(?:ly)?"),
    ("overnight", r"overnight"),
    ("effortless", r"effortless(?:ly)?"),
    ("foolproof", r"fool-?proof"),
    ("world-class", r"world[- ]class"),
    ("ultimate", r"ultimate"),
    ("unbeatable", r"unbeatable"),
    ("forever", r"forever"),
    ("superlative", r"easiest|fastest|cheapest|greatest|most effective|most powerful"),
)
_CLAIM_PATTERNS = tuple((key, re.compile(rf"(?<!\w){rx}(?!\w)", re.I)) for key, rx in _CLAIMS)
# Words too common to be names: they may be capitalised (title case, sentence starts) anywhere.
_COMMON_WORDS = """a about after again all also an and any are as at be because been before being both but by can
    could did do does doing don't each even every few first for from get gets getting give go going good
    had has have he her here hers him his how i if in into is it its just keep know last let like make
    many may me more most much must my need new next no not now of off on once one only or other our out
    over own pick plan read ready right same see set she should so some start step still such take than
    that the their them then there these they this those through time tip tips to today too try two under
    until up us use very want was way we week well were what when where which while who why will with
    would write yes yet you your yours join note remember check begin finish done next quick"""
_COMMON = frozenset(_COMMON_WORDS.split())
_CONTRACTIONS = (("n't", " not"), ("'ll", " will"), ("'re", " are"), ("'ve", " have"), ("'m", " am"))


def guard(source: str, candidate: str, *, min_similarity: float = 0.55) -> GuardResult:
    """Check that ``candidate`` says what ``source`` says, in other words, and nothing more.

    Reasons come in this order, each ``kind:item``: ``number:10000``, ``url:…``, ``email:…``,
    ``domain:…``, ``name:Dr. Smith``, ``claim:guaranteed``, ``placeholder_missing:{{ x }}``,
    ``placeholder_new:{{ y }}``, ``headings:3->2``, ``tasks:4->3``, ``similarity:0.41``, ``length:2.10``.
    Similarity is the cosine of word unigram counts plus bigram counts at half weight, after
    lower-casing, expanding contractions and light suffix stemming (placeholders, links and addresses
    removed first). Unigrams keep a faithful voice rewrite (split sentences, "you" for "they") near
    0.6-0.9; bigrams pull a text on the same topic that says something else down to 0.2-0.35.
    """
    src, cand = _Facts(source), _Facts(candidate)
    reasons: list[str] = []
    reasons += [f"number:{n}" for n in _ordered(cand.numbers, src.numbers)]
    reasons += [f"url:{u}" for u in _ordered(cand.urls, src.urls)]
    reasons += [f"email:{e}" for e in _ordered(cand.emails, src.emails)]
    reasons += [f"domain:{d}" for d in _ordered(cand.domains, [*src.domains, *src.link_hosts])]
    reasons += [f"name:{n}" for n in _novel_names(cand.text, src.words)]
    src_claims = {key for key, _ in src.claims}
    reasons += _dedupe(f"claim:{found}" for key, found in cand.claims if key not in src_claims)
    reasons += [f"placeholder_missing:{{{{ {p} }}}}" for p in _ordered(src.placeholders, cand.placeholders)]
    reasons += [f"placeholder_new:{{{{ {p} }}}}" for p in _ordered(cand.placeholders, src.placeholders)]
    for kind, pattern in (("headings", _HEADING), ("tasks", _TASK)):
        before, after = len(pattern.findall(source)), len(pattern.findall(candidate))
        if before != after:
            reasons.append(f"{kind}:{before}->{after}")
    similarity = round(_cosine(_shingles(src.text), _shingles(cand.text)), 4)
    if similarity < min_similarity:
        reasons.append(f"similarity:{similarity:.2f}")
    ratio = len(candidate.strip()) / max(1, len(source.strip()))
    if not MIN_LENGTH_RATIO <= ratio <= MAX_LENGTH_RATIO:
        reasons.append(f"length:{ratio:.2f}")
    return GuardResult(not reasons, tuple(reasons), similarity)


class _Facts:
    """The checkable items of one text, and its prose with placeholders, links and addresses removed."""

    def __init__(self, raw: str) -> None:
        self.placeholders = [" ".join(p.split()) for p in _PLACEHOLDER.findall(raw)]
        text = _PLACEHOLDER.sub(" ", raw)
        self.urls = [u.lower().rstrip("/") for u in _URL.findall(text)]
        text = _URL.sub(" ", text)
        self.emails = [e.lower() for e in _EMAIL.findall(text)]
        text = _EMAIL.sub(" ", text)
        self.domains = [d.lower().removeprefix("www.") for d in _DOMAIN.findall(text)]
        text = _DOMAIN.sub(" ", text)
        self.link_hosts = {_host(u) for u in self.urls} | {e.split("@", 1)[1] for e in self.emails}
        self.numbers = [_number(m) for m in _NUMBER.finditer(_LIST_MARKER.sub(r"\1", text))]
        found = [
            (m.start(), key, m.group(0).lower()) for key, rx in _CLAIM_PATTERNS for m in rx.finditer(text)
        ]
        self.claims = [(key, match) for _, key, match in sorted(found)]
        self.text = text
        words = {w.lower() for w in _WORD.findall(raw)}
        self.words = words | {_possessive(w) for w in words}


def _host(url: str) -> str:
    return re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/", 1)[0].split(":", 1)[0]


def _number(m: re.Match[str]) -> str:
    """``1,000`` -> ``1000``, ``1.50`` -> ``1.5``, ``10 %`` / ``10 percent`` -> ``10%``."""
    whole, frac, pct = m.group(1).replace(",", ""), m.group(2) or "", m.group(3)
    try:
        value = format(Decimal(whole + frac), "f")
    except InvalidOperation:  # pragma: no cover - the pattern only yields digits
        value = whole + frac
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value + ("%" if pct else "")


def _possessive(word: str) -> str:
    return re.sub(r"['\u2019]s$", "", word)


def _ordered(items: Iterable[str], known: Iterable[str]) -> list[str]:
    seen = set(known)
    return _dedupe(i for i in items if i not in seen)


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _novel_names(text: str, source_words: set[str]) -> list[str]:
    """Runs of capitalised words that name something the source never mentions.

    A lone capitalised word at a sentence (or line, or list item) start is ordinary prose and is let
    through; so are "I", common words and any word the source uses in any case. A run of several
    capitalised words counts even at a sentence start (its first word is dropped if ordinary).
    """
    found: list[str] = []
    for raw_line in text.splitlines():
        line = _LINE_MARKER.sub("", raw_line)
        tokens = list(_WORD.finditer(line))
        runs: list[list[tuple[re.Match[str], bool]]] = []
        prev: re.Match[str] | None = None
        for tok in tokens:
            gap = line[prev.end() : tok.start()] if prev else ""
            if prev is not None and prev.group(0).lower() in _ABBREVIATIONS and gap.startswith("."):
                gap = gap[1:]
            starts = prev is None or bool(_SENTENCE_END.search(gap))
            if tok.group(0)[0].isupper():
                if runs and runs[-1][-1][0] is prev and not gap.strip():
                    runs[-1].append((tok, starts))
                else:
                    runs.append([(tok, starts)])
            prev = tok
        for run in runs:
            at_start = run[0][1]  # a lone or ordinary first word at a sentence start is just prose
            named = (
                run[1:]
                if at_start and (len(run) == 1 or _ordinary(run[0][0].group(0), source_words))
                else run
            )
            if any(not _ordinary(tok.group(0), source_words) for tok, _ in named):
                found.append(line[named[0][0].start() : named[-1][0].end()])
    return _dedupe(found)


def _ordinary(word: str, source_words: set[str]) -> bool:
    w = word.lower()
    return (
        w in source_words
        or _possessive(w) in source_words
        or w in _COMMON
        or word == "I"
        or word.startswith(("I'", "I\u2019"))
    )


def _shingles(text: str) -> dict[str, float]:
    """Unigram counts plus bigram counts at half weight (bigrams notice reordering and negation)."""
    lowered = text.lower().replace("\u2019", "'")
    for short, long in _CONTRACTIONS:
        lowered = lowered.replace(short, long)
    words = [_stem(w) for w in re.findall(r"[^\W_]+", lowered)]
    vector: dict[str, float] = dict(Counter(words))
    for a, b in itertools.pairwise(words):
        vector[f"{a} {b}"] = vector.get(f"{a} {b}", 0.0) + BIGRAM_WEIGHT
    return vector


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(weight * b.get(key, 0.0) for key, weight in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else (1.0 if not a and not b else 0.0)


__all__: list[str] = [
    "GuardResult",
    "RewriteResult",
    "Rewriter",
    "RewriterConfig",
    "guard",
    "prompt_for",
    "prompt_hash",
]
