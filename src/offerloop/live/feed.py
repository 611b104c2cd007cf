"""The live feed of a drop: one watcher per drop reads its status when it changes and fans it out to every
viewer's stream (one database read per change, not one per viewer).

A change (open, close, a unit held, sold or released) wakes the watcher (``delivery.live``) once it commits.
The watcher also re-reads every POLL_S, which covers changes made by another process (the CLI, a worker) and
the schedule's own turns (opens_at, closes_at), for which it wakes on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import orjson

from offerloop.delivery import live
from offerloop.telemetry import log

POLL_S = 2.0  # the watcher re-reads this often unwoken (a change made by another process)
KEEP_ALIVE_S = (
    15.0  # a stream sends a comment line this often when nothing changed (proxies close silent ones)
)

Read = Callable[[], Awaitable[dict[str, Any]]]


class Watch:
    """One drop's status as last read (and its JSON, encoded once for every stream), its version, and an event
    set (and replaced) at every change and every KEEP_ALIVE_S, which is what the streams wait on."""

    def __init__(self, wake: Hashable, read: Read, status: dict[str, Any]) -> None:
        self.wake, self.read = wake, read
        self.version = 0
        self._set(status)
        self.changed = asyncio.Event()
        self.streams = 0
        self.task: asyncio.Task[None] | None = None

    def _set(self, status: dict[str, Any]) -> None:
        self.status, self.encoded = status, orjson.dumps(status)
        self.read_at = datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()

    def _fire(self) -> None:
        fired, self.changed = self.changed, asyncio.Event()
        fired.set()

    def publish(self, status: dict[str, Any]) -> None:
        if status == self.status:
            return
        self._set(status)
        self.version += 1
        self._fire()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        waiting = loop.create_task(live.wait(self.wake, next_turn(self.status, now)))
        keep_alive = loop.time() + KEEP_ALIVE_S
        try:
            while self.streams > 0:
                await waiting
                # the next wait is registered before this read: a change committed during the read wakes it
                waiting = loop.create_task(live.wait(self.wake, next_turn(self.status, datetime.now(UTC))))
                await asyncio.sleep(0)
                try:
                    self.publish(await self.read())
                except Exception as exc:  # a failed read (the database restarting): keep the last status
                    log.warning("live_drop_read_failed", error=str(exc)[:200])
                if loop.time() >= keep_alive:  # every stream wakes, sees no new version, sends a keep-alive
                    keep_alive = loop.time() + KEEP_ALIVE_S
                    self._fire()
        finally:
            waiting.cancel()

    async def next(self, version: int) -> bool:
        """Wait for a change (True: the status is newer than ``version``) or a keep-alive tick (False)."""
        if self.version == version:
            await self.changed.wait()
        return self.version != version


_watches: dict[tuple[asyncio.AbstractEventLoop, Hashable], Watch] = {}


def subscribe(topic: Hashable, wake: Hashable, read: Read, status: dict[str, Any]) -> Watch:
    """The drop's watch (started by its first stream, seeded with that stream's own read)."""
    loop = asyncio.get_running_loop()
    watch = _watches.get((loop, topic))
    if watch is None:
        watch = _watches[(loop, topic)] = Watch(wake, read, status)
    watch.streams += 1
    if watch.task is None or watch.task.done():
        watch.task = loop.create_task(watch.run())
    return watch


def unsubscribe(topic: Hashable, watch: Watch) -> None:
    """A stream ended; the last one of a drop stops its watcher."""
    watch.streams -= 1
    if watch.streams <= 0:
        loop = asyncio.get_running_loop()
        if _watches.get((loop, topic)) is watch:
            del _watches[(loop, topic)]
        if watch.task is not None:
            watch.task.cancel()


def next_turn(status: dict[str, Any], now: datetime) -> float:
    """Seconds until the schedule changes the drop's state by itself (opening, end), capped at POLL_S."""
    waits = [POLL_S]
    for name in ("opens_at", "closes_at"):
        at = datetime.fromisoformat(status[name]).astimezone(UTC)
        if at > now:
            waits.append((at - now).total_seconds() + 0.01)
    return max(0.0, min(waits))
