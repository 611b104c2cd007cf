"""The grounding guard's numbers: stated in digits or in words, with what they count, and how often.

A rewrite may say "three" for "3" or "half an hour" for "30 minutes", but not a number the source does
not state, nor one moved to another thing it counts ("3 of the 5" -> "5 of the 3").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from offerloop.assembly.guard.text import LIST_MARKER, NUMBER, dedupe, stem

MAX_NUMBER_WORDS = 12  # a longer run of number words is read as several numbers

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
ORDINALS = {w: i for i, w in enumerate(
    ["second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth"], 2
)}  # fmt: skip
# Spans of time that state a number in one word ("every fortnight" for "every week"): new unless the
# source says the word or one of its numbers.
SPAN_WORDS = {
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


def frequencies(text: str) -> list[str]:
    """The rates ``text`` states, one word each ("per month", "a month", "every month" are all "monthly")."""
    out = []
    for m in _FREQUENCY.finditer(text):
        last = m.group(1).lower().split()[-1]
        out.append(_RATE_OF.get(last, last))
    return out


def hedges(text: str) -> list[str]:
    return [m.group(1).lower() for m in _HEDGE.finditer(text)]


_PERCENT_AFTER = re.compile(r"\s*(?:%|percent\b|per cent\b)", re.I)


def stated_numbers(text: str) -> tuple[list[str], set[str]]:
    """Numbers stated in ``text`` (digits and number words, normalised) and the weak ones it implies."""
    spans, weak = _number_spans(text)
    return [n for _, _, n in spans], weak


def _number_spans(text: str) -> tuple[list[tuple[int, int, str]], set[str]]:
    """``(start, end, value)`` of every number stated in ``text``, in order, and the weak ones it implies."""
    blanked = LIST_MARKER.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)
    found = [(m.start(), m.end(), _digits(m)) for m in NUMBER.finditer(blanked)]
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
        after = [stem(w) for w in after if w not in _UNIT_SKIP][:2]
        if after:
            out.append((value, (after[0], " ".join(after))))
    return out


def swapped(source: str, candidate: str) -> list[str]:
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
    return dedupe(out)


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
