"""The simulator's catalog: lessons, modules, offers, coaching and prompts with their declared features."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from offerloop.ml.base import Action
from offerloop.sim.audience import PERSONAS

_SUPERFAN, _WEEKEND, _LOYALIST, _GIFTING, _LURKER, _DEAL = PERSONAS

KINDS: tuple[str, ...] = ("lesson", "module", "offer", "coaching", "prompt")
TOPICS: tuple[str, ...] = ("pricing", "growth", "launch", "email", "community", "content")
MERCH_TAGS: tuple[str, ...] = ("limited", "discount", "giftable", "early_access")
PRICE_BANDS: tuple[str, ...] = ("free", "low", "mid", "premium")
FORMATS: dict[str, tuple[str, ...]] = {
    "lesson": ("video", "article", "worksheet", "audio"),
    "module": ("video_course", "workbook", "audio_series"),
    "offer": ("course", "bundle", "drop", "membership", "template_pack"),
    "coaching": ("one_on_one", "group_call", "cohort", "office_hours"),
    "prompt": ("nudge", "quiz", "checklist", "challenge"),
}
_PREMIUM_FORMATS: Final = frozenset({"one_on_one", "cohort"})

MAX_CATALOG: Final = 200
_MAX_PRICE_MINOR: Final = 150_000  # the most expensive item: value 1.0


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One thing the engine can recommend. ``persona_fit`` is the creator's own (imperfect) targeting."""

    id: str
    kind: str  # lesson | module | offer | coaching | prompt
    tags: tuple[str, ...]  # topics (TOPICS) and merchandising flags (MERCH_TAGS)
    level: int  # 1 beginner .. 3 advanced
    format: str  # one of FORMATS[kind]
    price_band: str  # free | low | mid | premium
    persona_fit: tuple[str, ...]
    price_minor: int  # USD cents
    title: str = ""


_TOPIC_NAMES: Final = {
    "pricing": "Pricing",
    "growth": "Audience Growth",
    "launch": "Launches",
    "email": "Email",
    "community": "Community",
    "content": "Content Systems",
}
_LESSON_TITLES: Final[dict[str, tuple[str, ...]]] = {
    "pricing": (
        "Pricing Your First Digital Product", "Raise Your Prices Without Losing Buyers", "Tiered Offers 101",
        "Anchoring and Price Psychology", "Your Brand-Deal Rate Card", "Payment Plans That Don't Hurt",
    ),
    "growth": (
        "Hooks That Stop the Scroll", "Your First 1,000 Followers", "Collabs That Grow Both Audiences",
        "A Short-Form Video System", "The TikTok-to-Email Funnel", "Reading Your Analytics",
    ),
    "launch": (
        "The Launch Week Playbook", "Building a Pre-Launch Waitlist", "Writing a Sales Page That Converts",
        "Running a Launch Retrospective", "A Beta Launch With Ten Buyers", "Launch Emails, Day by Day",
    ),
    "email": (
        "A Welcome Sequence That Sells", "Subject Lines That Get Opened", "Segmenting Your List",
        "A Weekly Newsletter Routine", "Lead Magnets That Convert", "Cleaning a Cold List",
    ),
    "community": (
        "Running a Paid Community", "Community Rituals That Stick", "Moderation Without Burnout",
        "Onboarding New Members", "Live Events for Members", "Turning Members Into Advocates",
    ),
    "content": (
        "A Content Batching System", "Repurposing One Idea Ten Ways", "Your Notion Content Calendar",
        "Storytelling for Creators", "Filming on a Phone", "Beating Creator Burnout",
    ),
}  # fmt: skip
_PRICES: Final[dict[str, tuple[int, ...]]] = {
    "lesson": (900, 1200, 1900, 2900),
    "video_course": (4900, 7900, 9900, 14900),
    "workbook": (2900, 3900, 4900),
    "audio_series": (2900, 4900, 7900),
    "course": (9700, 14900, 19700, 29700, 49700),
    "bundle": (7900, 9900, 14900, 24900),
    "drop": (2500, 3500, 4900, 7900, 12000),
    "membership": (2900,),
    "template_pack": (1900, 2900, 3900, 4900),
    "one_on_one": (25000, 45000, 75000),
    "group_call": (19700, 29700, 45000),
    "cohort": (49700, 99700, 150000),
    "office_hours": (4900, 9900),
}
_KIND_WEIGHTS: Final = (0.34, 0.16, 0.30, 0.08, 0.12)  # KINDS order, for items beyond the core ones
_FORMAT_WEIGHTS: Final[dict[str, tuple[float, ...]]] = {
    "lesson": (0.45, 0.3, 0.15, 0.1),
    "module": (0.5, 0.3, 0.2),
    "offer": (0.25, 0.2, 0.25, 0.1, 0.2),
    "coaching": (0.35, 0.3, 0.15, 0.2),
    "prompt": (0.4, 0.2, 0.2, 0.2),
}
# Merchandising flags: P(flag | format).
_FLAG_P: Final[dict[str, dict[str, float]]] = {
    "video": {"early_access": 0.1},
    "article": {"early_access": 0.05},
    "worksheet": {"early_access": 0.05},
    "audio": {"early_access": 0.1},
    "video_course": {"early_access": 0.2},
    "workbook": {"early_access": 0.1, "giftable": 0.15},
    "audio_series": {"early_access": 0.15},
    "course": {"discount": 0.4, "giftable": 0.3, "early_access": 0.1},
    "bundle": {"giftable": 0.9, "limited": 0.2, "discount": 0.2},
    "drop": {"limited": 1.0, "early_access": 0.4, "giftable": 0.25},
    "membership": {"discount": 0.3},
    "template_pack": {"discount": 0.35, "giftable": 0.2},
    "one_on_one": {"limited": 0.3, "giftable": 0.1},
    "group_call": {"limited": 0.3, "early_access": 0.2},
    "cohort": {"limited": 0.5, "early_access": 0.2},
    "office_hours": {"limited": 0.2},
    "nudge": {"discount": 0.25},
    "quiz": {},
    "checklist": {},
    "challenge": {"limited": 0.15},
}
# The core of every catalog, so that even a small one has each persona's favourite kind of item:
# (kind, format, forced flags, free).
_CORE: Final[tuple[tuple[str, str, tuple[str, ...], bool], ...]] = (
    ("lesson", "video", (), True),
    ("module", "video_course", (), False),
    ("offer", "drop", ("limited",), False),
    ("offer", "bundle", ("giftable",), False),
    ("offer", "course", ("discount",), False),
    ("coaching", "one_on_one", (), False),
    ("lesson", "article", (), True),
    ("prompt", "quiz", (), True),
    ("offer", "membership", (), False),
    ("offer", "drop", ("limited", "early_access"), False),
    ("module", "workbook", (), False),
    ("offer", "template_pack", ("discount",), False),
)


def _price_band(price_minor: int) -> str:
    if price_minor <= 0:
        return "free"
    if price_minor < 5000:
        return "low"
    if price_minor < 20000:
        return "mid"
    return "premium"


def _declared_fit(kind: str, fmt: str, flags: set[str], band: str) -> set[str]:
    """What a creator would tag the item as being for (a rule of thumb, not the ground truth)."""
    fit: set[str] = set()
    if "limited" in flags:
        fit |= {_SUPERFAN, _WEEKEND}
    if "early_access" in flags or band == "premium":
        fit.add(_SUPERFAN)
    if "discount" in flags:
        fit.add(_DEAL)
    if "giftable" in flags:
        fit.add(_GIFTING)
    if kind == "module" or fmt == "membership":
        fit.add(_LOYALIST)
    if band == "free" and kind in ("lesson", "prompt"):
        fit.add(_LURKER)
    return fit


def _title(kind: str, fmt: str, topic: str, rng: random.Random, number: int) -> str:
    name = _TOPIC_NAMES[topic]
    lesson = rng.choice(_LESSON_TITLES[topic])
    if kind == "lesson":
        return {"video": lesson, "article": f"{lesson} (Guide)", "worksheet": f"{lesson}: Worksheet"}.get(
            fmt, f"{lesson} (Audio)"
        )
    if kind == "module":
        suffix = {"video_course": "", "workbook": " Workbook", "audio_series": " (Audio Series)"}[fmt]
        return f"{name} Module {number % 6 + 1}{suffix}"
    if kind == "offer":
        return {
            "course": f"{name} Masterclass",
            "bundle": f"{name} Starter Bundle",
            "drop": f"Creator Kit Vol. {number}: {name}",
            "membership": "Inner Circle Membership" if number == 1 else f"Inner Circle: {name} Track",
            "template_pack": f"{name} Template Pack",
        }[fmt]
    if kind == "coaching":
        return {
            "one_on_one": f"1:1 {name} Strategy Call",
            "group_call": f"Group Coaching: {name}",
            "cohort": f"Live Cohort: {name} Sprint",
            "office_hours": f"Office Hours: {name}",
        }[fmt]
    return {
        "nudge": f"Nudge: pick up '{lesson}'",
        "quiz": "Quiz: What Kind of Creator Are You?" if number == 1 else f"Quiz: Test Your {name} Know-How",
        "checklist": f"Checklist: {name}",
        "challenge": f"7-Day {name} Challenge",
    }[fmt]


def demo_catalog(n: int = 40, seed: int = 0) -> list[CatalogItem]:
    """A realistic catalog of ``n`` items (1..200) for a creator-business course; same seed, same list.

    The first twelve items cover every persona's favourite kind of item (a free lesson, a module, a
    limited drop, a giftable bundle, a discounted course, a 1:1 call, ...); the rest are drawn at random.
    """
    if not 1 <= n <= MAX_CATALOG:
        raise ValueError(f"n must be in 1..{MAX_CATALOG}")
    rng = random.Random(f"offerloop-catalog-v1:{seed}")
    items: list[CatalogItem] = []
    counts: dict[str, int] = {}
    titles: dict[str, int] = {}
    for i in range(n):
        if i < len(_CORE):
            kind, fmt, forced, free = _CORE[i]
        else:
            kind = rng.choices(KINDS, _KIND_WEIGHTS)[0]
            fmt = rng.choices(FORMATS[kind], _FORMAT_WEIGHTS[kind])[0]
            forced, free = (), kind == "prompt" or (kind == "lesson" and rng.random() < 0.75)
        topic = rng.choice(TOPICS)
        tags = [topic]
        if rng.random() < 0.25:
            other = rng.choice(TOPICS)
            if other != topic:
                tags.append(other)
        flags = set(forced)
        for flag, p in _FLAG_P[fmt].items():
            if rng.random() < p:
                flags.add(flag)
        if free:
            if kind != "prompt":
                flags.discard("discount")
            price = 0
        else:
            price = rng.choice(_PRICES["lesson" if kind == "lesson" else fmt])
            if "discount" in flags:
                price = max(100, round(price * 6 // 10, -2) - 100)
        if kind == "prompt":
            price = 0
        band = _price_band(price)
        if kind == "lesson":
            level = rng.choices((1, 2, 3), (0.5, 0.3, 0.2))[0]
        elif kind == "coaching":
            level = rng.choice((2, 3))
        elif kind == "prompt" or fmt in ("drop", "membership"):
            level = 1
        else:
            level = rng.choice((1, 2, 3))
        fit = _declared_fit(kind, fmt, flags, band)
        if rng.random() < 0.1 and fit:  # creators' tagging is imperfect
            fit.discard(rng.choice(sorted(fit)))
        if rng.random() < 0.1:
            fit.add(rng.choice(PERSONAS))
        counts[fmt] = counts.get(fmt, 0) + 1
        number = counts[fmt]
        title = _title(kind, fmt, topic, rng, number)
        titles[title] = titles.get(title, 0) + 1
        if titles[title] > 1:
            title = f"{title} (Part {titles[title]})"
        items.append(
            CatalogItem(
                id=f"{kind}-{topic}-{i + 1:03d}",
                kind=kind,
                tags=(*tags, *(f for f in MERCH_TAGS if f in flags)),
                level=level,
                format=fmt,
                price_band=band,
                persona_fit=tuple(p for p in PERSONAS if p in fit),
                price_minor=price,
                title=title,
            )
        )
    return items


def action_of(item: CatalogItem) -> Action:
    """The policy-facing view of an item: categorical kind/format/price band, level, indicators."""
    features: dict[str, float | int | str | bool] = {
        "kind": item.kind,
        "level": item.level,
        "format": item.format,
        "price_band": item.price_band,
    }
    for tag in item.tags:
        features[f"tag={tag}"] = 1.0
    for persona in item.persona_fit:
        features[f"fit={persona}"] = 1.0
    return Action(id=item.id, features=features)
