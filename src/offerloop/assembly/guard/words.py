"""The grounding guard's words: which capitalised words are names, and which statements are negated.

A name is a capitalised word that is not an ordinary English word in this place (sentence starts,
title case); a negation is flipped when a statement loses (or gains) its "not", in words or in meaning
("avoid posting" for "do not post").
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterable
from importlib import resources

from offerloop.assembly.guard.text import (
    ABBREVIATIONS,
    CONTRACTIONS,
    LINE_MARKER,
    SENTENCE_END,
    WORD,
    dedupe,
    possessive,
    stem,
)

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


# -- vocabulary ------------------------------------------------------------------------------------


@functools.cache
def _vocabulary() -> frozenset[str]:
    """The lower-case English words of SCOWL size 50 (see data/WORDS_LICENSE.txt)."""
    data = resources.files("offerloop.assembly").joinpath("data/english_words.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


def _is_word(word: str) -> bool:
    w = word.lower().replace("\u2019", "'")
    vocab = _vocabulary()
    if w in vocab or possessive(w) in vocab:
        return True
    if "-" in w:
        return all(part in vocab for part in w.split("-") if part)
    return False


# -- names -----------------------------------------------------------------------------------------


def _runs(text: str) -> Iterable[tuple[str, list[tuple[re.Match[str], bool]]]]:
    """Each line's runs of capitalised words, each word with whether it starts a sentence."""
    for raw_line in text.splitlines():
        line = LINE_MARKER.sub("", raw_line)
        runs: list[list[tuple[re.Match[str], bool]]] = []
        prev: re.Match[str] | None = None
        for tok in WORD.finditer(line):
            gap = line[prev.end() : tok.start()] if prev else ""
            if prev is not None and prev.group(0).lower() in ABBREVIATIONS and gap.startswith("."):
                gap = gap[1:]
            starts = prev is None or bool(SENTENCE_END.search(gap))
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


def source_names(text: str) -> set[str]:
    """The capitalised words a source uses as names (mid-sentence, or named at a sentence start):
    only these license a name at a rewrite's sentence start ("mark your progress" does not license
    "Mark swears by this")."""
    names: set[str] = set()
    for line, run in _runs(text):
        for k, (tok, starts) in enumerate(run):
            if not starts or k > 0 or (len(run) == 1 and _named_at_start(line, tok)):
                names.add(possessive(tok.group(0)))
    return names


def novel_names(text: str, source_words: set[str], source_names: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
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
            if possessive(first) not in source_names:
                found.append(first)
            continue
        if at_start and (_ordinary(first, source_words) or (len(run) == 1 and _is_word(first))):
            named = run[1:]  # an ordinary first word at a sentence start is just prose
        else:
            named = run
        if any(not _ordinary(tok.group(0), source_words) for tok, _ in named):
            found.append(line[named[0][0].start() : named[-1][0].end()])
    return dedupe(found)


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
        or possessive(w) in source_words
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


def sentence_words(text: str) -> list[list[str]]:
    """Sentences of lower-cased words with contractions expanded (``isn't`` -> ``is not``)."""
    lowered = text.lower().replace("\u2019", "'")
    for short, long in CONTRACTIONS:
        lowered = lowered.replace(short, long)
    return [re.findall(r"[^\W_]+", s) for s in _SENTENCES.split(lowered)]


def flipped(a: str, b: str) -> list[str]:
    """Negated phrases of ``a`` that ``b`` states without a negation (the same content words in order)."""
    raw_b = sentence_words(b)  # negations are matched as written ("nothing", not its stem "noth")
    stems_b = [[stem(w) for w in s] for s in raw_b]
    where: dict[str, list[tuple[int, int]]] = {}  # stem -> (sentence, position) in b
    for si, s in enumerate(stems_b):
        for j, w in enumerate(s):
            where.setdefault(w, []).append((si, j))
    out: list[str] = []
    decided: dict[tuple[str, ...], bool] = {}
    for sentence in sentence_words(a):
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
            key = tuple(stem(w) for w in scope)
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
    return dedupe(out)


def _negated(before: list[str]) -> bool:
    """Whether the words before a phrase negate it: a negative word that a negation does not cancel
    ("do not forget to" is affirmative)."""
    live = [w for w in before if w in _NEGATIVE]
    for k, w in enumerate(before[:-1]):
        nxt = before[k + 1]
        if w in _NEGATORS and nxt in _CANCELLING:
            live = [x for x in live if x not in (w, nxt)]
    return bool(live)
