"""A workspace's delivery rules (quiet hours, frequency caps, sender, open tracking) and the local-time
arithmetic they need: correct across daylight-saving changes because every local time goes through
``zoneinfo`` (the pinned ``tzdata`` package)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from offerloop.declarative import matching
from offerloop.delivery.email.compose import mailbox_problem
from offerloop.delivery.journeys.spec import Duration, Window

Channel = Literal["email", "push", "webhook", "inapp"]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (
        ZoneInfoNotFoundError,
        ValueError,
        OSError,
    ):  # OSError: a tzdata folder ("America"), a name too long
        raise ValueError(f"is not a time zone this server knows (tzdata), got {name!r}") from None
    return name


Zone = Annotated[
    str,
    matching(r"[A-Za-z_]+(/[A-Za-z0-9_+\-]+){0,2}|UTC", "an IANA time zone such as Europe/Paris"),
    AfterValidator(_known_zone),
]


class Cap(BaseModel):
    """At most ``max`` marketing messages per ``per`` (on one channel, or on all)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    max: int = Field(ge=0, le=10_000)
    per: Duration


def _cap(most: int, per: str) -> Cap:
    return Cap.model_validate({"max": most, "per": per})


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Marketing is sent only inside this local window (quiet hours are the rest of the day; start = end: the
    # whole day).
    send_window: Window = Window(start="08:00", end="21:00")
    default_timezone: Zone = "UTC"
    caps: dict[Channel, Cap] = Field(default_factory=lambda: {"email": _cap(1, "1d")})  # type: ignore[arg-type]
    overall_cap: Cap | None = Field(default_factory=lambda: _cap(3, "7d"))
    open_tracking: bool = False  # a pixel in e-mails; off by default (privacy, and Apple prefetches it)
    sender: str | None = Field(
        default=None, max_length=320, description="From header; default OFFERLOOP_MAIL_FROM"
    )

    @field_validator("sender")
    @classmethod
    def _one_mailbox(cls, value: str | None) -> str | None:
        problem = None if value is None else mailbox_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


DEFAULT_RULES: Final = Rules()


def known_zone(name: Any) -> ZoneInfo | None:
    """The IANA zone ``name``, or None when it is missing or unknown."""
    if isinstance(name, str) and 0 < len(name) <= 64:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as "America"
            return None
    return None


def zone(name: Any, fallback: str = "UTC") -> ZoneInfo:
    """The IANA zone ``name``, or ``fallback`` when it is missing or unknown."""
    return known_zone(name) or known_zone(fallback) or ZoneInfo("UTC")


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def at_local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``clock`` in ``tz``, as UTC. A time skipped by a spring-forward change is
    moved forward by the gap (02:30 on the change day is 03:30 summer time); a time that occurs twice in
    the autumn is its first occurrence."""
    # fold=0 (PEP 495): in a gap the offset from before the change applies, which lands after the gap;
    # of two occurrences, the first.
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def next_local(after: datetime, clock_text: str, tz: ZoneInfo) -> datetime:
    """The first instant strictly after ``after`` whose wall clock in ``tz`` reads ``clock_text``."""
    clock = _clock(clock_text)
    day = after.astimezone(tz).date()
    for offset in range(3):
        candidate = at_local(day + timedelta(days=offset), clock, tz)
        if candidate > after:
            return candidate
    raise AssertionError("a wall-clock time recurs within three days")  # pragma: no cover


def window_opens(now: datetime, window: Window, tz: ZoneInfo) -> datetime | None:
    """None if ``now`` is inside the local ``window``; otherwise when it next opens."""
    start, end = _clock(window.start), _clock(window.end)
    local = now.astimezone(tz)
    today = local.date()
    if start == end:
        return None  # the whole day
    for day in (today - timedelta(days=1), today):
        opens = at_local(day, start, tz)
        closes = at_local(day + timedelta(days=1) if end < start else day, end, tz)
        if opens <= now < closes:
            return None
    return next_local(now, window.start, tz)
