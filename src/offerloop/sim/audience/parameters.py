"""Population parameters as data: the persona and channel mix, one row of behaviour parameters per persona,
local hour-of-day profiles and the time zones buyers live in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

PERSONAS: tuple[str, ...] = (
    "early_adopter_superfan",
    "weekend_collector",
    "subscription_loyalist",
    "gifting_guest",
    "lurker_researcher",
    "deal_seeker",
)
CHANNELS: tuple[str, ...] = ("tiktok", "instagram", "newsletter", "site")

_SUPERFAN, _WEEKEND, _LOYALIST, _GIFTING, _LURKER, _DEAL = PERSONAS

_CHANNEL_WEIGHTS: Final = (0.35, 0.30, 0.15, 0.20)

# P(persona | acquisition channel), columns in PERSONAS order.
_PERSONA_GIVEN_CHANNEL: Final[dict[str, tuple[float, ...]]] = {
    "tiktok": (0.12, 0.14, 0.08, 0.12, 0.28, 0.26),
    "instagram": (0.10, 0.18, 0.10, 0.16, 0.24, 0.22),
    "newsletter": (0.08, 0.08, 0.30, 0.06, 0.30, 0.18),
    "site": (0.04, 0.12, 0.14, 0.14, 0.36, 0.20),
}

# Local hour-of-day weights (0..23).
_EVENING: Final = (2, 1, 1, 0.5, 0.5, 0.5, 1, 3, 4, 4, 4, 4, 5, 5, 4, 4, 4, 5, 6, 7, 8, 8, 6, 4)
_NIGHT_OWL: Final = (6, 5, 4, 2, 1, 0.5, 0.5, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 8, 8, 8)
_BREAKS: Final = (1, 0.5, 0.5, 0.3, 0.3, 0.5, 2, 5, 5, 3, 3, 4, 7, 7, 3, 3, 3, 4, 6, 7, 7, 6, 4, 2)
_MORNING_EVENING: Final = (1, 0.5, 0.3, 0.3, 0.5, 2, 5, 7, 6, 4, 3, 3, 4, 3, 3, 3, 3, 4, 5, 6, 7, 6, 4, 2)


class PersonaParameters(NamedTuple):
    """One persona's behaviour parameters."""

    identify_p: float  # P(the buyer ever identifies); newsletter sign-ups add 0.15 (capped at 0.98)
    existing_p: float  # P(a customer from before the window, who identifies at once)
    activity: float  # median relative activity (the event budget is shared in proportion to it)
    activity_sigma: float  # log-normal spread of the activity between buyers
    min_budget: int  # events every buyer of the persona gets first
    session_events: float  # expected events per session (until the buyer's own sessions tell)
    subscriber_p: float  # P(on the newsletter list) outside the newsletter channel
    email_open_p: float  # P(opening a newsletter send)
    hours: tuple[float, ...]  # local hour-of-day weights of a session's start
    # When the buyer identifies, by event index: ("events", lo, hi) a uniform integer in [lo, hi];
    # ("share", lo, hi) a uniform share of the budget; ("last", 0, 0) with the budget's last event
    # (normally earlier: at checkout).
    identify_at: tuple[str, float, float]
    uses_app: bool  # later devices may be the community app
    joins_groups: bool  # may join a cohort or the community group on identifying


PERSONA_PARAMETERS: Final[Mapping[str, PersonaParameters]] = {
    _SUPERFAN: PersonaParameters(
        0.95, 0.6, 3.0, 0.6, 12, 6.0, 0.6, 0.7, _EVENING, ("events", 1, 4), True, True
    ),
    _WEEKEND: PersonaParameters(
        0.66, 0.0, 1.0, 0.8, 3, 5.0, 0.25, 0.3, _EVENING, ("share", 0.05, 0.6), False, False
    ),
    _LOYALIST: PersonaParameters(
        0.97, 0.4, 1.6, 0.6, 8, 6.0, 0.5, 0.55, _MORNING_EVENING, ("events", 2, 8), True, True
    ),
    _GIFTING: PersonaParameters(
        0.62, 0.0, 0.28, 0.35, 6, 5.0, 0.1, 0.15, _EVENING, ("last", 0, 0), False, False
    ),
    _LURKER: PersonaParameters(
        0.24, 0.0, 1.1, 0.9, 2, 8.0, 0.35, 0.5, _NIGHT_OWL, ("share", 0.3, 0.85), False, False
    ),
    _DEAL: PersonaParameters(
        0.56, 0.0, 0.8, 0.8, 3, 5.0, 0.4, 0.35, _BREAKS, ("share", 0.05, 0.6), False, False
    ),
}


class Zone(NamedTuple):
    """A time zone buyers live in; its UTC offsets come from the IANA database (see ``clock``)."""

    name: str  # IANA zone
    locales: tuple[str, ...]
    currency: str
    weight: float


_ZONES: Final[tuple[Zone, ...]] = (
    Zone("America/New_York", ("en-US",), "USD", 0.21),
    Zone("America/Chicago", ("en-US", "en-US", "es-US"), "USD", 0.12),
    Zone("America/Denver", ("en-US",), "USD", 0.04),
    Zone("America/Los_Angeles", ("en-US", "en-US", "es-US"), "USD", 0.15),
    Zone("America/Toronto", ("en-CA", "en-CA", "fr-CA"), "CAD", 0.05),
    Zone("America/Mexico_City", ("es-MX",), "MXN", 0.03),
    Zone("America/Sao_Paulo", ("pt-BR",), "BRL", 0.04),
    Zone("Europe/London", ("en-GB",), "GBP", 0.10),
    Zone("Europe/Berlin", ("de-DE", "de-DE", "en-DE"), "EUR", 0.05),
    Zone("Europe/Paris", ("fr-FR",), "EUR", 0.03),
    Zone("Europe/Madrid", ("es-ES",), "EUR", 0.02),
    Zone("Australia/Sydney", ("en-AU",), "AUD", 0.05),
    Zone("Asia/Kolkata", ("en-IN", "hi-IN"), "INR", 0.04),
    Zone("Asia/Manila", ("en-PH", "fil-PH"), "PHP", 0.04),
    Zone("Asia/Singapore", ("en-SG",), "SGD", 0.03),
)
