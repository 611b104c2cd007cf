"""The live feed of a drop: one shared read of its status per change, fanned out to every viewer's stream.

A change (open, close, a unit held, sold or released) wakes the drop's streams (``delivery.live``) once it
commits. Each woken stream needs a status read after its wake-up; the first one reads and the others wait for
that read (one database read per change, not one per viewer). Streams also re-read on a timer, which covers
changes made by another process and the schedule's own turns (opens_at, closes_at).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from offerloop.delivery import live

POLL_S = 2.0  # a stream re-reads this often unwoken (a change made by another process: the CLI, a worker)
SHARE_S = 1.0  # a timer's re-read may use a status read this recently (one read per drop, not per viewer)
KEEP_ALIVE_S = 15.0  # a comment line this often when nothing changed (proxies close silent connections)


@dataclass
class _Shared:
    loop: asyncio.AbstractEventLoop
    status: dict[str, Any] | None = None
    read_at: float = 0.0  # monotonic time its read started
    pending: asyncio.Future[dict[str, Any]] | None = None
    pending_at: float = 0.0


_shared: dict[tuple[str, str], _Shared] = {}


async def status(
    topic: tuple[str, str], fresh_after: float, read: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """The drop's status from a read that started after ``fresh_after`` (monotonic), shared between streams."""
    loop = asyncio.get_running_loop()
    entry = _shared.get(topic)
    if entry is None or entry.loop is not loop:
        entry = _shared[topic] = _Shared(loop=loop)
    if entry.status is not None and entry.read_at >= fresh_after:
        return entry.status
    if entry.pending is not None and entry.pending_at >= fresh_after:
        return await asyncio.shield(entry.pending)
    future: asyncio.Future[dict[str, Any]] = loop.create_future()
    started = time.monotonic()
    entry.pending, entry.pending_at = future, started
    try:
        value = await read()
    except BaseException as exc:
        if entry.pending is future:
            entry.pending = None
        future.set_exception(exc)
        future.exception()  # retrieved: the waiters re-raise it, an unwaited future does not warn
        raise
    if started >= entry.read_at:
        entry.status, entry.read_at = value, started
    if entry.pending is future:
        entry.pending = None
    future.set_result(value)
    return value


def next_turn(state: dict[str, Any], now: datetime) -> float:
    """Seconds until the schedule changes the drop's state by itself (its opening or its end), capped at POLL_S."""
    waits = [POLL_S]
    for name in ("opens_at", "closes_at"):
        at = datetime.fromisoformat(state[name]).astimezone(UTC)
        if at > now:
            waits.append((at - now).total_seconds() + 0.01)
    return max(0.0, min(waits))


def newer(topic: tuple[str, str], read_at: float) -> dict[str, Any] | None:
    """A status another stream read after ``read_at`` (a change this stream may have missed), if any."""
    entry = _shared.get(topic)
    return entry.status if entry is not None and entry.read_at > read_at else None


async def wait(wake_topic: Any, timeout_s: float) -> bool:
    """Wait for a change of the drop (True) or the timer (False)."""
    return await live.wait(wake_topic, timeout_s)
