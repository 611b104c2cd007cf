"""The grounding guard: does a rewrite say what its source says, in other words, and nothing more?

Pure functions over two texts (no I/O but reading the shipped word list once). Each check names what it
found as ``kind:item``; the rewrite is accepted only when no check fires. The checks look for what a
language model invents or flips while sounding faithful: numbers (in digits or in words), links, domains
(also spelled out), names (also at a sentence start), negations, claims of outcomes and guarantees,
superlatives, quotes, placeholders, structure, drift and length.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources

MIN_LENGTH_RATIO = 0.5
MAX_LENGTH_RATIO = 1.8
# Beyond this ratio the rewrite is rejected on length alone, without reading it (bounds the work).
SKIM_LENGTH_RATIO = 4.0
MAX_REASON_ITEM = 80  # characters of an offending item quoted in a reason
MAX_NUMBER_WORDS = 12  # a longer run of number words is read as several numbers
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
_NUMBER = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
    r"(?:\s*(k\b|hundred\b|thousand\b|million\b|billion\b))?(\s*(?:%|percent\b|per cent\b))?",
    re.I,
)
_LIST_MARKER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.MULTILINE)
_TASK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX]\](?:\s|$)", re.MULTILINE)
_LINE_MARKER = re.compile(r"^\s*(?:(?:#{1,6}|>|[-*+]|\d+[.)])\s+)*(?:\[[ xX]\]\s+)?")
_SENTENCE_END = re.compile(r"[.!?:;\"\u201c\u201d(]")
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
_ABBREVIATIONS = frozenset(("dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "mt", "vs", "e", "g", "i"))

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

# Words too common to be names: they may be capitalised (title case, sentence starts) anywhere.
_COMMON_WORDS = """a about after again all also an and any are as at be because been before being both but by can
    could did do does doing don't each even every few first for from get gets getting give go going good
    had has have he her here hers him his how i if in into is it its just keep know last let like make
    many may me more most much must my need new next no not now of off on once one only or other our out
    over own pick plan read ready right same see set she should so some start step still such take than
    that the their them then there these they this those through time tip tips to today too try two under
    until up us use very want was way we week well were what when where which while who why will with
    would write yes yet you your yours join note remember check begin finish done next quick everyone
    someone anyone everybody somebody anybody nobody people others"""
_COMMON = frozenset(_COMMON_WORDS.split())
_CONTRACTIONS = (
    ("won't", "will not"),
    ("can't", "can not"),
    ("cannot", "can not"),
    ("n't", " not"),
    ("'ll", " will"),
    ("'re", " are"),
    ("'ve", " have"),
    ("'m", " am"),
)

# -- numbers written as words ----------------------------------------------------------------------

_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_MULTIPLIERS = {"k": 1000, **_SCALES}
# Words that may stand for a number without stating one ("pick one", "your first week", "once a
# week"): they confirm a number of the other text but are never counted as a new one.
_WEAK = {
    "one": 1, "once": 1, "single": 1, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
    "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "couple": 2, "pair": 2,
}  # fmt: skip
# Spans of time said in words: they confirm the number of the unit they replace ("half an hour" for
# "30 minutes", "a week" for "7 days"), never count as a new number.
_WEAK_SPANS = (
    (re.compile(r"\bhalf an? hour\b", re.I), ("30",)),
    (re.compile(r"\ba quarter of an hour\b", re.I), ("15",)),
    (re.compile(r"\b(?:an|one) hour\b", re.I), ("60",)),
    (re.compile(r"\b(?:a|one) week\b", re.I), ("7",)),
    (re.compile(r"\b(?:a|one) fortnight\b", re.I), ("14",)),
    (re.compile(r"\b(?:a|one) month\b", re.I), ("30", "4")),
    (re.compile(r"\b(?:a|one) year\b", re.I), ("12", "365", "52")),
)
# Ordinals state a number ("the fourth exercise" for "the first"); "first" is too common ("first, pick
# one") to count as one, so it stays weak.
_ORDINALS = {w: i for i, w in enumerate(
    ["second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth"], 2
)}  # fmt: skip
# Spans of time that state a number in one word ("every fortnight" for "every week"): new unless the
# source says the word or one of its numbers.
_SPAN_WORDS = {
    "fortnight": ("14", "2"), "fortnightly": ("14", "2"), "biweekly": ("14", "2"), "bimonthly": ("2",),
    "decade": ("10",), "decades": ("10",), "semester": ("6",), "quarterly": ("3",), "biannual": ("2",),
}  # fmt: skip
_NUMBER_WORD = re.compile(r"[a-z]+", re.I)
# How often something happens is a term of the offer ("3 monthly payments" → "3 weekly payments"): a rate
# word the source does not say is new.
_FREQUENCY = re.compile(
    r"\b(hourly|daily|nightly|weekly|monthly|yearly|annually|annual|per (?:hour|day|night|week|month|year)"
    r"|every (?:hour|day|night|week|month|year)|each (?:hour|day|night|week|month|year))\b",
    re.I,
)
# A rule softened into a tendency ("Never discount" → "Rarely discount"): hedges the source does not use.
_HEDGE = re.compile(r"\b(rarely|seldom|hardly ever|occasionally|sometimes|usually|mostly|often)\b", re.I)


_RATE_OF = {"hour": "hourly", "day": "daily", "night": "daily", "nightly": "daily", "week": "weekly",
             "month": "monthly", "year": "yearly", "annually": "yearly", "annual": "yearly"}  # fmt: skip


def _frequencies(text: str) -> list[str]:
    """The rates ``text`` states, one word each ("per month", "a month", "every month" are all "monthly")."""
    out = []
    for m in _FREQUENCY.finditer(text):
        last = m.group(1).lower().split()[-1]
        out.append(_RATE_OF.get(last, last))
    return out


def _hedges(text: str) -> list[str]:
    return [m.group(1).lower() for m in _HEDGE.finditer(text)]


_PERCENT_AFTER = re.compile(r"\s*(?:%|percent\b|per cent\b)", re.I)


def _numbers(text: str) -> tuple[list[str], set[str]]:
    """Numbers stated in ``text`` (digits and number words, normalised) and the weak ones it implies."""
    spans, weak = _number_spans(text)
    return [n for _, _, n in spans], weak


def _number_spans(text: str) -> tuple[list[tuple[int, int, str]], set[str]]:
    """``(start, end, value)`` of every number stated in ``text``, in order, and the weak ones it implies."""
    blanked = _LIST_MARKER.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)
    found = [(m.start(), m.end(), _digits(m)) for m in _NUMBER.finditer(blanked)]
    weak = {n for pattern, numbers in _WEAK_SPANS if pattern.search(text) for n in numbers}
    tokens = list(_NUMBER_WORD.finditer(text))
    words = [t.group(0).lower() for t in tokens]
    i = 0
    while i < len(tokens):
        run: list[int] = []
        for j in range(i, len(tokens)):
            if len(run) >= MAX_NUMBER_WORDS:
                break
            if run and not re.fullmatch(r"[ \t-]+", text[tokens[j - 1].end() : tokens[j].start()]):
                break
            word = words[j]
            if (
                word in _UNITS
                or word in _TENS
                or word in _SCALES
                or word in ("dozen", "twice")
                or (word == "and" and run and words[run[-1]] in _SCALES)
                or (
                    word in ("a", "an")
                    and not run
                    and j + 1 < len(tokens)
                    and words[j + 1] in (*_SCALES, "dozen")
                )
            ):
                run.append(j)
            else:
                break
        while run and words[run[-1]] in ("and", "a", "an"):
            run.pop()
        if not run:
            if words[i] in _WEAK:
                weak.add(str(_WEAK[words[i]]))
            i += 1
            continue
        said = [words[k] for k in run]
        pct = _PERCENT_AFTER.match(text, tokens[run[-1]].end())
        if said == ["one"] and not pct:
            weak.add("1")
        else:
            end = pct.end() if pct else tokens[run[-1]].end()
            found.append((tokens[run[0]].start(), end, f"{_word_value(said)}{'%' if pct else ''}"))
        i = run[-1] + 1
    return sorted(found), weak


# Words a number is said with that are not what it counts ("3 of the 5", "10 a day").
_UNIT_SKIP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "per",
        "each",
        "every",
        "and",
        "or",
        "more",
        "than",
        "about",
        "around",
        "over",
        "your",
        "my",
    ]
)
_CURRENCY_BEFORE = re.compile(r"[$\u20ac\u00a3\u00a5]\s?$")


def _attachments(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Each stated number with what it counts: ``$`` when a currency sign precedes it, else the next
    word and the next two content words (stemmed), so "3 monthly payments of $40" gives
    ``("3", ("monthly", "monthly payment"))`` and ``("40", ("$",))``."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for start, end, value in _number_spans(text)[0]:
        if _CURRENCY_BEFORE.search(text[max(0, start - 2) : start]):
            out.append((value, ("$",)))
            continue
        after = [w.lower() for w in re.findall(r"[^\W\d_]+", text[end : end + 80].split("\n", 1)[0])]
        after = [_stem(w) for w in after if w not in _UNIT_SKIP][:2]
        if after:
            out.append((value, (after[0], " ".join(after))))
    return out


def _swapped(source: str, candidate: str) -> list[str]:
    """Numbers of the source moved onto what another of its numbers counts ("40 monthly payments of $3"
    for "3 monthly payments of $40", "forty minutes planning, ten writing" for "10 … planning, 40 …")."""
    src = _attachments(source)
    stated = {value for value, _ in src}
    counts: dict[str, set[str]] = {}
    for value, keys in src:
        for key in keys:
            counts.setdefault(key, set()).add(value)
    out = []
    for value, keys in _attachments(candidate):
        if value not in stated:
            continue  # a number the source never states is reported as such
        for key in keys:
            if counts.get(key) and value not in counts[key]:
                out.append(f"{value} {key}")
                break
    return _dedupe(out)


def _word_value(words: list[str]) -> int:
    total = current = 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "twice":
            current += 2
        elif word == "dozen":
            current = max(current, 1) * 12
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def _digits(m: re.Match[str]) -> str:
    """``1,000`` -> ``1000``, ``1.50`` -> ``1.5``, ``10 %`` / ``ten percent`` -> ``10%``, ``3k`` -> ``3000``."""
    whole, frac, scale, pct = m.group(1).replace(",", ""), m.group(2) or "", m.group(3), m.group(4)
    try:
        number = Decimal(whole + frac)
    except InvalidOperation:  # pragma: no cover - the pattern only yields digits
        return whole + frac
    if scale:
        number *= _MULTIPLIERS[scale.lower()]
    value = format(number, "f")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value + ("%" if pct else "")


# -- vocabulary ------------------------------------------------------------------------------------


@functools.cache
def _vocabulary() -> frozenset[str]:
    """The lower-case English words of SCOWL size 50 (see data/WORDS_LICENSE.txt)."""
    data = resources.files("offerloop.assembly").joinpath("data/english_words.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


def _is_word(word: str) -> bool:
    w = word.lower().replace("\u2019", "'")
    vocab = _vocabulary()
    if w in vocab or _possessive(w) in vocab:
        return True
    if "-" in w:
        return all(part in vocab for part in w.split("-") if part)
    return False


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
    reasons += [f"number_swapped:{n}" for n in _swapped(src.text, cand.text)]
    reasons += [f"number:{n}" for n in _ordered(cand.ordinals, [*src.ordinals, *src.numbers, *src.weak])]
    reasons += [
        f"number:{w}" for w in cand.spans if w not in src.spans and not set(_SPAN_WORDS[w]) & src.all_numbers
    ]
    reasons += [f"url:{u}" for u in cand.urls if not _known_url(u, src, allowed)]
    reasons += [f"email:{e}" for e in _ordered(cand.emails, src.emails)]
    known_hosts = [*src.domains, *src.link_hosts]
    reasons += [f"domain:{d}" for d in _dedupe(cand.domains) if not _known_host(d, known_hosts, allowed)]
    reasons += [f"link:{s}" for s in _ordered(cand.spelled, src.spelled)]
    reasons += [f"name:{n}" for n in _novel_names(cand.text, src.words, _source_names(src.text))]
    reasons += [f"negation_removed:{p}" for p in _flipped(src.text, cand.text)]
    reasons += [f"negation_added:{p}" for p in _flipped(cand.text, src.text)]
    reasons += [f"frequency:{w}" for w in _ordered(_frequencies(cand.text), _frequencies(src.text))]
    reasons += [f"hedge:{w}" for w in _ordered(_hedges(cand.text), _hedges(src.text))]
    reasons += [f"quote:{q}" for q in _novel_quotes(cand.quotes, source)]
    if len(cand.blockquotes) > len(src.blockquotes):  # a testimonial line the source does not have
        reasons += [
            f"quote:{q}" for q in _novel_quotes(cand.blockquotes, source) if f"quote:{q}" not in reasons
        ]
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
        self.numbers, self.weak = _numbers(text)
        lowered = [w.lower() for w in _WORD.findall(text)]
        self.ordinals = _dedupe(str(_ORDINALS[w]) for w in lowered if w in _ORDINALS)
        self.spans = _dedupe(w for w in lowered if w in _SPAN_WORDS)
        self.weak |= {n for w in self.spans for n in _SPAN_WORDS[w]}
        self.all_numbers = set(self.numbers) | self.weak
        found = [
            (m.start(), key, m.group(0).lower()) for key, rx in _CLAIM_PATTERNS for m in rx.finditer(text)
        ]
        self.claims = [(key, match) for _, key, match in sorted(found)]
        self.text = text
        words = {w.lower() for w in _WORD.findall(raw)}
        self.words = words | {_possessive(w) for w in words}


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
    return _dedupe([*urls, *emails, *_DOMAIN.findall(_EMAIL.sub(" ", rest))])


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


def _possessive(word: str) -> str:
    return re.sub(r"['\u2019]s$", "", word)


def _ordered(items: Iterable[str], known: Iterable[str]) -> list[str]:
    seen = set(known)
    return _dedupe(i for i in items if i not in seen)


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- names -----------------------------------------------------------------------------------------


def _runs(text: str) -> Iterable[tuple[str, list[tuple[re.Match[str], bool]]]]:
    """Each line's runs of capitalised words, each word with whether it starts a sentence."""
    for raw_line in text.splitlines():
        line = _LINE_MARKER.sub("", raw_line)
        runs: list[list[tuple[re.Match[str], bool]]] = []
        prev: re.Match[str] | None = None
        for tok in _WORD.finditer(line):
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
            yield line, run


def _named_at_start(line: str, token: re.Match[str]) -> bool:
    """A sentence-start word used as someone's name: before an attribution verb ("Mark swears by
    this"), or a known name or brand before a verb ("Grace charged this", "Amazon prices this way")."""
    if _attribution(line, token):
        return True
    return token.group(0).lower() in _NAME_WORDS and bool(_VERB_AFTER.match(line, token.end()))


def _source_names(text: str) -> set[str]:
    """The capitalised words a source uses as names (mid-sentence, or named at a sentence start):
    only these license a name at a rewrite's sentence start ("mark your progress" does not license
    "Mark swears by this")."""
    names: set[str] = set()
    for line, run in _runs(text):
        for k, (tok, starts) in enumerate(run):
            if not starts or k > 0 or (len(run) == 1 and _named_at_start(line, tok)):
                names.add(_possessive(tok.group(0)))
    return names


def _novel_names(text: str, source_words: set[str], source_names: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Runs of capitalised words that name something the source never mentions.

    Mid-sentence, any capitalised word that is not common or in the source is a name. At a sentence
    (or line, or list item) start a lone word is a name when it is not an English word ("Oprah
    swears by this"), or when it is used as one (see :func:`_named_at_start`) and the source does not
    name it; a run of several capitalised words counts there too.
    """
    found: list[str] = []
    for line, run in _runs(text):
        at_start = run[0][1]
        first = run[0][0].group(0)
        if at_start and len(run) == 1 and _named_at_start(line, run[0][0]) and first.lower() not in _COMMON:
            if _possessive(first) not in source_names:
                found.append(first)
            continue
        if at_start and (_ordinary(first, source_words) or (len(run) == 1 and _is_word(first))):
            named = run[1:]  # an ordinary first word at a sentence start is just prose
        else:
            named = run
        if any(not _ordinary(tok.group(0), source_words) for tok, _ in named):
            found.append(line[named[0][0].start() : named[-1][0].end()])
    return _dedupe(found)


# Given names and brands that are also English words: at a sentence start before a verb they are names.
_NAME_WORDS = frozenset(
    [
        "grace",
        "mark",
        "bill",
        "will",
        "rose",
        "amber",
        "faith",
        "hope",
        "joy",
        "penny",
        "dawn",
        "june",
        "april",
        "may",
        "iris",
        "jack",
        "frank",
        "rich",
        "sue",
        "pat",
        "ruby",
        "jade",
        "olive",
        "violet",
        "holly",
        "ivy",
        "lily",
        "daisy",
        "heather",
        "hazel",
        "robin",
        "angel",
        "crystal",
        "summer",
        "autumn",
        "grant",
        "dean",
        "drew",
        "chase",
        "hunter",
        "gene",
        "carol",
        "don",
        "ray",
        "guy",
        "victor",
        "norm",
        "bob",
        "chip",
        "rob",
        "sandy",
        "rusty",
        "woody",
        "brook",
        "cliff",
        "glen",
        "dale",
        "lane",
        "reed",
        "wade",
        "miles",
        "max",
        "hunter",
        "sky",
        "river",
        "stone",
        "ash",
        "destiny",
        "misty",
        "melody",
        "harmony",
        "pearl",
        "ginger",
        "amazon",
        "apple",
        "notion",
        "slack",
        "square",
        "stripe",
        "ghost",
        "medium",
        "target",
        "zoom",
        "discord",
        "shopify",
        "canva",
        "kit",
        "teachable",
        "thinkific",
        "podia",
        "circle",
        "mighty",
        "buffer",
        "later",
        "loom",
        "basecamp",
    ]
)
# A verb right after a sentence-start word: third person ("prices", "swears") or past ("charged").
_VERB_AFTER = re.compile(
    r"[ \t]+(?:[a-z]+(?<!s)(?<!u)(?<!i)s|[a-z]+ed|made|said|sold|built|grew|paid|got|went|did)\b"
)


# Verbs that make the word before them someone's name ("Mark swears by this", "Notion recommends").
_ATTRIBUTION = re.compile(
    r"\s+(?:swears|swore|says|said|recommends|recommended|suggests|suggested|loves|loved|told|tells|"
    r"teaches|taught|uses|used|calls|called|believes|believed|wrote|writes|agrees|agreed|endorses)\b"
)


def _attribution(line: str, token: re.Match[str]) -> bool:
    return bool(_ATTRIBUTION.match(line, token.end()))


def _ordinary(word: str, source_words: set[str]) -> bool:
    w = word.lower()
    return (
        w in source_words
        or _possessive(w) in source_words
        or w in _COMMON
        or word == "I"
        or word.startswith(("I'", "I\u2019"))
    )


# -- negations -------------------------------------------------------------------------------------

_NEGATORS = frozenset(
    ["not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "nowhere"]
)
# Words that carry a negation's meaning in other words ("avoid posting" for "do not post").
_NEGATIVE_WORDS = """avoid avoiding stop skip refrain quit resist instead rather less fewer hardly rarely
    seldom lack fail forget unless against neglect ignore shun eschew clear away ditch drop"""
# Verbs that negate what follows them ("avoid discounting"): a rewrite must keep a negation on it.
_NEGATING_VERBS = frozenset(["avoid", "avoiding", "refrain", "skip", "skipping", "resist", "quit"])
# A negation of these is an affirmative ("don't forget to apologise", "never fail to reply").
_CANCELLING = frozenset(["forget", "fail", "neglect", "hesitate", "skip", "avoid", "stop", "miss", "ignore"])
_NEGATIVE = _NEGATORS | frozenset(_NEGATIVE_WORDS.split())
_FUNCTION_WORDS = """a an the is are was were be been being am to of it its this that these those your you yours my
    our their his her he she they we i and or but so as at in on for with by from just only really
    even do does did will would can could should may might must have has had one any some there
    here about all more very longer"""
_FUNCTION = frozenset(_FUNCTION_WORDS.split())
_SENTENCES = re.compile(r"[.!?;:\n]+")


def _words(text: str) -> list[list[str]]:
    """Sentences of lower-cased words with contractions expanded (``isn't`` -> ``is not``)."""
    lowered = text.lower().replace("\u2019", "'")
    for short, long in _CONTRACTIONS:
        lowered = lowered.replace(short, long)
    return [re.findall(r"[^\W_]+", s) for s in _SENTENCES.split(lowered)]


def _flipped(a: str, b: str) -> list[str]:
    """Negated phrases of ``a`` that ``b`` states without a negation (the same content words in order)."""
    raw_b = _words(b)  # negations are matched as written ("nothing", not its stem "noth")
    stems_b = [[_stem(w) for w in s] for s in raw_b]
    where: dict[str, list[tuple[int, int]]] = {}  # stem -> (sentence, position) in b
    for si, s in enumerate(stems_b):
        for j, w in enumerate(s):
            where.setdefault(w, []).append((si, j))
    out: list[str] = []
    decided: dict[tuple[str, ...], bool] = {}
    for sentence in _words(a):
        for i, word in enumerate(sentence):
            if word in _NEGATING_VERBS or (
                word == "stop" and i + 1 < len(sentence) and sentence[i + 1].endswith("ing")
            ):
                if set(sentence[max(0, i - 2) : i]) & _NEGATORS:
                    continue  # "never skip a reply" says to reply
            elif word not in _NEGATORS or (i + 1 < len(sentence) and sentence[i + 1] in _CANCELLING):
                continue  # not a negation, or "do not forget to", an affirmative
            scope = [w for w in sentence[i + 1 : i + 6] if w not in _FUNCTION and w not in _NEGATIVE][:2]
            if not scope or set(sentence[i + 1 : sentence.index(scope[-1], i + 1)]) & _NEGATIVE:
                continue  # nothing to align, or a double negative ("never skip a reply")
            key = tuple(_stem(w) for w in scope)
            if key not in decided:
                hits = [
                    (si, j)
                    for si, j in where.get(key[0], ())
                    if len(key) == 1 or key[1] in stems_b[si][j + 1 : j + 4]
                ]
                decided[key] = bool(hits) and not any(
                    _negated(raw_b[si][max(0, j - 4) : j]) for si, j in hits
                )
            if decided[key]:
                out.append(" ".join([word, *sentence[i + 1 : sentence.index(scope[-1], i + 1) + 1]]))
    return _dedupe(out)


def _negated(before: list[str]) -> bool:
    """Whether the words before a phrase negate it: a negative word that a negation does not cancel
    ("do not forget to" is affirmative)."""
    live = [w for w in before if w in _NEGATIVE]
    for k, w in enumerate(before[:-1]):
        nxt = before[k + 1]
        if w in _NEGATORS and nxt in _CANCELLING:
            live = [x for x in live if x not in (w, nxt)]
    return bool(live)


# -- quotes ----------------------------------------------------------------------------------------


def _novel_quotes(quotes: Iterable[str], source: str) -> list[str]:
    """Quoted passages whose words the source does not say, in that order."""
    said = " " + " ".join(w for s in _words(source) for w in s) + " "
    out = []
    for quote in quotes:
        words = [w for s in _words(quote) for w in s]
        if words and f" {' '.join(words)} " not in said:
            out.append(quote.strip())
    return _dedupe(out)


# -- similarity ------------------------------------------------------------------------------------


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


__all__ = ["GuardResult", "addresses", "guard"]
