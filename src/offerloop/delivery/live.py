"""Wake-ups for Server-Sent Events streams: a thread that changes something (a worker sending an in-app
message, a creator changing a drop) calls :func:`notify`; every stream waiting on that topic in this process
wakes within one event-loop turn. Streams also re-read on a timer, which covers changes made by other
processes (a separate ``offerloop worker``)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Hashable

_lock = threading.Lock()
_waiters: dict[Hashable, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)


def notify(topic: Hashable) -> None:
    """Wake every stream of ``topic`` (safe from any thread)."""
    with _lock:
        waiting = list(_waiters.get(topic, ()))
    for loop, event in waiting:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # that loop has closed: its stream is gone
            continue


async def wait(topic: Hashable, timeout_s: float) -> bool:
    """Wait until ``topic`` is notified (True) or ``timeout_s`` passes (False)."""
    entry = (asyncio.get_running_loop(), asyncio.Event())
    with _lock:
        _waiters[topic].add(entry)
    try:
        await asyncio.wait_for(entry[1].wait(), timeout_s)
        return True
    except TimeoutError:
        return False
    finally:
        with _lock:
            found = _waiters.get(topic)
            if found is not None:
                found.discard(entry)
                if not found:
                    del _waiters[topic]


def waiting(topic: Hashable) -> int:
    with _lock:
        return len(_waiters.get(topic, ()))
