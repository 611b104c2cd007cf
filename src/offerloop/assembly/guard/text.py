"""What every check of the grounding guard reads a text with: words, numbers, list markers, stems."""

from __future__ import annotations

import re
from collections.abc import Iterable

NUMBER = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
    r"(?:\s*(k\b|hundred\b|thousand\b|million\b|billion\b))?(\s*(?:%|percent\b|per cent\b))?",
    re.I,
)


LIST_MARKER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.MULTILINE)


WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


LINE_MARKER = re.compile(r"^\s*(?:(?:#{1,6}|>|[-*+]|\d+[.)])\s+)*(?:\[[ xX]\]\s+)?")


SENTENCE_END = re.compile(r"[.!?:;\"\u201c\u201d(]")


ABBREVIATIONS = frozenset(("dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "mt", "vs", "e", "g", "i"))


CONTRACTIONS = (
    ("won't", "will not"),
    ("can't", "can not"),
    ("cannot", "can not"),
    ("n't", " not"),
    ("'ll", " will"),
    ("'re", " are"),
    ("'ve", " have"),
    ("'m", " am"),
)


def possessive(word: str) -> str:
    return re.sub(r"['\u2019]s$", "", word)


def dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def stem(word: str) -> str:
    for suffix in ("ing", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word
