"""The grounding guard: does a rewrite say what its source says, in other words, and nothing more?

Pure functions over two texts (no I/O but reading the shipped word list once). Each check names what it
found as ``kind:item``; the rewrite is accepted only when no check fires. The checks look for what a
language model invents or flips while sounding faithful: numbers (in digits or in words), links, domains
(also spelled out), names (also at a sentence start), negations, claims of outcomes and guarantees,
superlatives, quotes, placeholders, structure, drift and length.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from offerloop.assembly.guard.numbers import (
    ORDINALS,
    SPAN_WORDS,
    frequencies,
    hedges,
    stated_numbers,
    swapped,
)
from offerloop.assembly.guard.text import CONTRACTIONS, WORD, dedupe, possessive, stem
from offerloop.assembly.guard.words import flipped, novel_names, sentence_words, source_names

MIN_LENGTH_RATIO = 0.5
MAX_LENGTH_RATIO = 1.8
# Beyond this ratio the rewrite is rejected on length alone, without reading it (bounds the work).
SKIM_LENGTH_RATIO = 4.0
MAX_REASON_ITEM = 80  # characters of an offending item quoted in a reason
BIGRAM_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The grounding verdict: ``reasons`` holds ``kind:item`` strings naming each offending item."""

    ok: bool
    reasons: tuple[str, ...]
    similarity: float


_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]{}\"'`]*[^\s<>()\[\]{}\"'`.,;:!?]", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Any dotted name whose last label is 2-24 letters: new top-level domains (.coach, .academy) included.
_DOMAIN = re.compile(r"(?<![\w.@/-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?![\w-])", re.I)
_SPELLED_DOT = r"(?:\s*(?:\(dot\)|\[dot\]|\{dot\}|\bdot\b|\[\.\]|\(\.\)|\{\.\})\s*|[ \t]+\.[ \t]+)"
_SPELLED_SLASH = r"(?:\s+slash\s+|[ \t]*/[ \t]*)"
_SPELLED_LINK = re.compile(
    rf"\b([a-z0-9][a-z0-9-]*(?:{_SPELLED_DOT}[a-z0-9][a-z0-9-]*)*){_SPELLED_DOT}([a-z]{{2,24}})\b"
    rf"((?:{_SPELLED_SLASH}[a-z0-9][a-z0-9-]*)*)",
    re.I,
)
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.MULTILINE)
_TASK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX]\](?:\s|$)", re.MULTILINE)
_INNER_APOSTROPHE = r"(?:[^'\n]|(?<=\w)'(?=\w))"  # "don't" inside a single-quoted passage
_QUOTE = re.compile(
    r"\"([^\"\n]+)\"|\u201c([^\u201d\n]+)\u201d|(?<!\w)\u2018([^\u2019\n]*\s[^\u2019\n]*)\u2019(?!\w)"
    r"|\u201e([^\u201c\u201d\n]+)[\u201c\u201d]|\u00ab([^\u00bb\n]+)\u00bb|\u201a([^\u2018\u2019\n]+)[\u2018\u2019]"
    rf"|(?<![\w'])'(\w{_INNER_APOSTROPHE}*?\s{_INNER_APOSTROPHE}*?)'(?![\w'])"
)
_BLOCKQUOTE = re.compile(
    r"^ {0,3}(?:(?:[-*+]|\d+[.)])\s+)*>[ \t]?(.*)$", re.MULTILINE
)  # also "- > …" in a list
# Reported speech set in emphasis or code instead of quote marks ("One buyer told me *this changed everything*").
_SPOKEN = re.compile(
    r"\b(?:told (?:me|us)|says?|said|wrote|writes|put it|tells (?:me|us))[,:]?\s+"
    r"(?:\*{1,2}|_{1,2}|`)([^*_`\n]+?)(?:\*{1,2}|_{1,2}|`)",
    re.I,
)

_OUTCOME_OBJECT = (
    r"(?:\w+\s+){0,2}(?:revenue|income|sales|earnings|profits?|audience|followers|subscribers|list|"
    r"results|conversions?|traffic|growth|business|money|clients|customers|leads|engagement|reach)"
)
_CLAIMS: tuple[tuple[str, str], ...] = (
    ("guarantee", r"guarantee[ds]?"),
    ("promise", r"promise[ds]?"),
    ("proven", r"proven"),
    ("best", r"(?<!your )(?<!my )(?<!our )(?<!their )(?<!at )best(?:-selling)?|bestselling"),
    ("#1", r"#\s?1(?!\d)"),
    ("number one", r"number one|no\. ?1(?!\d)"),
    ("always", r"always"),
    ("never", r"never"),
    ("100%", r"100\s*(?:%|percent)"),
    ("risk-free", r"risk[- ]free|no risk|zero risk"),
    ("scientifically", r"scientific(?:ally)?|research shows|studies show"),
    ("clinically", r"clinical(?:ly)?"),
    ("certified", r"certified"),
    ("instant", r"instant(?:ly)?"),
    ("overnight", r"overnight"),
    ("effortless", r"effortless(?:ly)?"),
    ("foolproof", r"fool-?proof"),
    ("world-class", r"world[- ]class|award[- ]winning"),
    ("ultimate", r"ultimate"),
    ("unbeatable", r"unbeatable"),
    ("forever", r"forever"),
    ("certainty", r"definitely|certainly|without fail|sure to|bound to|every single time|works every time"),
    (
        "superlative",
        r"easiest|fastest|quickest|simplest|cheapest|greatest|biggest|smartest|the only|"
        r"most (?:effective|powerful|successful|popular|profitable|important)",
    ),
    (
        "outcome",
        rf"(?:doubl|tripl|quadrupl|multipl|skyrocket|explod|boost|maximi[sz]|10x)\w*\s+{_OUTCOME_OBJECT}",
    ),
    ("fold", r"\d+\s*x\b|(?:two|three|four|five|ten)[- ]?fold"),
    ("deadline", r"within (?:a|an|one|\d+|\w+) (?:days?|weeks?|months?|years?)|in (?:just|only) \w+ \w+"),
    ("crowd", r"(?:hundreds|thousands|millions) of"),
    (
        "universal",
        r"works? for (?:everyone|everybody|anyone|anybody|all of us)|(?:everyone|anyone) can do (?:it|this)",
    ),
    (
        "earnings",
        r"(?:made|make|makes|making|earn(?:ed|s|ing)?)\s+(?:millions|thousands|a fortune|six[- ]figures|"
        r"seven[- ]figures|a killing|bank)",
    ),
    (
        "growth",
        rf"(?:increas|grow|grew|rais|improv|lift)\w*\s+{_OUTCOME_OBJECT}\s+(?:fast|quickly|rapidly|every (?:day|week|month|year))",
    ),
    ("will grow", rf"will\s+(?:increase|grow|raise|improve|lift)\s+{_OUTCOME_OBJECT}"),
)
_CLAIM_PATTERNS = tuple((key, re.compile(rf"(?<!\w)(?:{rx})(?!\w)", re.I)) for key, rx in _CLAIMS)


# -- the guard -------------------------------------------------------------------------------------


def guard(
    source: str, candidate: str, *, min_similarity: float = 0.55, allowed_domains: Iterable[str] = ()
) -> GuardResult:
    """Check that ``candidate`` says what ``source`` says, in other words, and nothing more.

    Reasons come in this order, each ``kind:item``: ``number:40`` (a number the source does not state,
    in digits or words), ``number_missing:10``, ``url:…``, ``email:…``, ``domain:…`` (a domain in
    neither the source nor ``allowed_domains``), ``link:…`` (a spelled-out address, "site dot com slash
    kit"), ``name:Oprah``, ``negation_removed:…`` / ``negation_added:…``, ``quote:…`` (quoted words the
    source does not say), ``claim:…``, ``placeholder_missing:{{ x }}``, ``placeholder_new:{{ y }}``,
    ``headings:3->2``, ``tasks:4->3``, ``similarity:0.41``, ``length:2.10``.
    Similarity is the cosine of word unigram counts plus bigram counts at half weight, after
    lower-casing, expanding contractions and light suffix stemming (placeholders, links and addresses
    removed first).
    """
    ratio = len(candidate.strip()) / max(1, len(source.strip()))
    if ratio > SKIM_LENGTH_RATIO:
        return GuardResult(False, (f"length:{ratio:.2f}",), 0.0)
    src, cand = _Facts(source), _Facts(candidate)
    allowed = {d.lower().strip().removeprefix("www.") for d in allowed_domains if d and d.strip()}
    reasons: list[str] = []
    reasons += [f"number:{n}" for n in _ordered(cand.numbers, [*src.numbers, *src.weak])]
    reasons += [f"number_missing:{n}" for n in _ordered(src.numbers, [*cand.numbers, *cand.weak])]
    reasons += [f"number_swapped:{n}" for n in swapped(src.text, cand.text)]
    reasons += [f"number:{n}" for n in _ordered(cand.ordinals, [*src.ordinals, *src.numbers, *src.weak])]
    reasons += [
        f"number:{w}" for w in cand.spans if w not in src.spans and not set(SPAN_WORDS[w]) & src.all_numbers
    ]
    reasons += [f"url:{u}" for u in cand.urls if not _known_url(u, src, allowed)]
    reasons += [f"email:{e}" for e in _ordered(cand.emails, src.emails)]
    known_hosts = [*src.domains, *src.link_hosts]
    reasons += [f"domain:{d}" for d in dedupe(cand.domains) if not _known_host(d, known_hosts, allowed)]
    reasons += [f"link:{s}" for s in _ordered(cand.spelled, src.spelled)]
    reasons += [f"name:{n}" for n in novel_names(cand.text, src.words, source_names(src.text))]
    reasons += [f"negation_removed:{p}" for p in flipped(src.text, cand.text)]
    reasons += [f"negation_added:{p}" for p in flipped(cand.text, src.text)]
    reasons += [f"frequency:{w}" for w in _ordered(frequencies(cand.text), frequencies(src.text))]
    reasons += [f"hedge:{w}" for w in _ordered(hedges(cand.text), hedges(src.text))]
    reasons += [f"quote:{q}" for q in _novel_quotes(cand.quotes, source)]
    if len(cand.blockquotes) > len(src.blockquotes):  # a testimonial line the source does not have
        reasons += [
            f"quote:{q}" for q in _novel_quotes(cand.blockquotes, source) if f"quote:{q}" not in reasons
        ]
    src_claims = {key for key, _ in src.claims}
    reasons += dedupe(f"claim:{found}" for key, found in cand.claims if key not in src_claims)
    reasons += [f"placeholder_missing:{{{{ {p} }}}}" for p in _ordered(src.placeholders, cand.placeholders)]
    reasons += [f"placeholder_new:{{{{ {p} }}}}" for p in _ordered(cand.placeholders, src.placeholders)]
    for kind, pattern in (("headings", _HEADING), ("tasks", _TASK)):
        before, after = len(pattern.findall(source)), len(pattern.findall(candidate))
        if before != after:
            reasons.append(f"{kind}:{before}->{after}")
    similarity = round(_cosine(_shingles(src.text), _shingles(cand.text)), 4)
    if similarity < min_similarity:
        reasons.append(f"similarity:{similarity:.2f}")
    if not MIN_LENGTH_RATIO <= ratio <= MAX_LENGTH_RATIO:
        reasons.append(f"length:{ratio:.2f}")
    return GuardResult(not reasons, tuple(_clip(r) for r in reasons), similarity)


def _clip(reason: str) -> str:
    kind, _, item = reason.partition(":")
    return f"{kind}:{item[:MAX_REASON_ITEM]}…" if len(item) > MAX_REASON_ITEM else reason


class _Facts:
    """The checkable items of one text, and its prose with placeholders, links and addresses removed."""

    def __init__(self, raw: str) -> None:
        raw = unicodedata.normalize("NFKC", raw)  # a full-width dot is a dot, a ligature its letters
        self.blockquotes = [line for line in (m.group(1).strip() for m in _BLOCKQUOTE.finditer(raw)) if line]
        self.placeholders = [" ".join(p.split()) for p in _PLACEHOLDER.findall(raw)]
        text = _PLACEHOLDER.sub(" ", raw)
        self.quotes = [next(g for g in m.groups() if g is not None) for m in _QUOTE.finditer(text)]
        self.quotes += [m.group(1).strip() for m in _SPOKEN.finditer(text)]
        self.urls = [u.lower().rstrip("/") for u in _URL.findall(text)]
        text = _URL.sub(" ", text)
        self.emails = [e.lower() for e in _EMAIL.findall(text)]
        text = _EMAIL.sub(" ", text)
        self.domains = [d.lower().removeprefix("www.") for d in _DOMAIN.findall(text)]
        text = _DOMAIN.sub(" ", text)
        spelled = [m for m in _SPELLED_LINK.finditer(text) if _plausible_link(m)]
        self.spelled = [_spelled(m) for m in spelled]
        for m in reversed(spelled):
            text = text[: m.start()] + " " + text[m.end() :]
        self.link_hosts = {_host(u) for u in self.urls} | {e.split("@", 1)[1] for e in self.emails}
        self.numbers, self.weak = stated_numbers(text)
        lowered = [w.lower() for w in WORD.findall(text)]
        self.ordinals = dedupe(str(ORDINALS[w]) for w in lowered if w in ORDINALS)
        self.spans = dedupe(w for w in lowered if w in SPAN_WORDS)
        self.weak |= {n for w in self.spans for n in SPAN_WORDS[w]}
        self.all_numbers = set(self.numbers) | self.weak
        found = [
            (m.start(), key, m.group(0).lower()) for key, rx in _CLAIM_PATTERNS for m in rx.finditer(text)
        ]
        self.claims = [(key, match) for _, key, match in sorted(found)]
        self.text = text
        words = {w.lower() for w in WORD.findall(raw)}
        self.words = words | {possessive(w) for w in words}


# Top-level domains a dot between spaces must end in to be read as an address ("site . com"), so that
# a sentence end before a word ("Read it . Notion is next") is not one.
_SPACED_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "io",
        "co",
        "coach",
        "app",
        "dev",
        "me",
        "shop",
        "store",
        "blog",
        "info",
        "biz",
        "online",
        "site",
        "xyz",
        "academy",
        "studio",
        "ai",
        "uk",
        "us",
        "eu",
        "ca",
        "au",
        "de",
        "fr",
        "es",
        "it",
        "nl",
        "ly",
        "gg",
        "tv",
        "fm",
        "page",
        "link",
        "email",
        "club",
        "life",
        "tech",
    ]
)


def _plausible_link(m: re.Match[str]) -> bool:
    return not re.search(r"[ \t]\.[ \t]", m.group(0)) or m.group(2) in _SPACED_TLDS


def addresses(text: str) -> list[str]:
    """The URLs, e-mail addresses and domains written in ``text``, in that order (as written)."""
    urls = _URL.findall(text)
    rest = _URL.sub(" ", text)
    emails = _EMAIL.findall(rest)
    return dedupe([*urls, *emails, *_DOMAIN.findall(_EMAIL.sub(" ", rest))])


def _spelled(m: re.Match[str]) -> str:
    """``rowanvale dot com slash kit`` -> ``rowanvale.com/kit``."""
    host = re.sub(_SPELLED_DOT, ".", m.group(1), flags=re.I) + "." + m.group(2)
    path = "".join(
        "/" + part for part in re.findall(r"(?:slash\s+|/\s*)([a-z0-9-]+)", m.group(3) or "", re.I)
    )
    return (host + path).lower()


def _host(url: str) -> str:
    return re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/", 1)[0].split(":", 1)[0]


def _known_host(host: str, known: Iterable[str], allowed: set[str]) -> bool:
    host = host.removeprefix("www.")
    return host in set(known) or any(host == a or host.endswith("." + a) for a in allowed)


def _known_url(url: str, src: _Facts, allowed: set[str]) -> bool:
    return url in src.urls or _known_host(_host(url), (), allowed)


def _ordered(items: Iterable[str], known: Iterable[str]) -> list[str]:
    seen = set(known)
    return dedupe(i for i in items if i not in seen)


# -- quotes ----------------------------------------------------------------------------------------


def _novel_quotes(quotes: Iterable[str], source: str) -> list[str]:
    """Quoted passages whose words the source does not say, in that order."""
    said = " " + " ".join(w for s in sentence_words(source) for w in s) + " "
    out = []
    for quote in quotes:
        words = [w for s in sentence_words(quote) for w in s]
        if words and f" {' '.join(words)} " not in said:
            out.append(quote.strip())
    return dedupe(out)


# -- similarity ------------------------------------------------------------------------------------


def _shingles(text: str) -> dict[str, float]:
    """Unigram counts plus bigram counts at half weight (bigrams notice reordering and negation)."""
    lowered = text.lower().replace("\u2019", "'")
    for short, long in CONTRACTIONS:
        lowered = lowered.replace(short, long)
    words = [stem(w) for w in re.findall(r"[^\W_]+", lowered)]
    vector: dict[str, float] = dict(Counter(words))
    for a, b in itertools.pairwise(words):
        vector[f"{a} {b}"] = vector.get(f"{a} {b}", 0.0) + BIGRAM_WEIGHT
    return vector


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(weight * b.get(key, 0.0) for key, weight in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else (1.0 if not a and not b else 0.0)


__all__ = ["GuardResult", "addresses", "guard"]
