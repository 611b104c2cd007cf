"""Fulfilment workers: threads that deliver paid orders' components (access grants, deliverables).

Tasks are rows, so they survive restarts and are shared by every process on the database. Payments in this
process wake the threads at once (after their commit); other processes' are found by polling.
"""

from __future__ import annotations

import threading

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database
from offerloop.telemetry import log

_wake = threading.Event()


def wake() -> None:
    _wake.set()


class FulfilmentWorkers:
    def __init__(self, db: Database, *, threads: int = 1, poll_s: float = 1.0) -> None:
        self.db = db
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"fulfil-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        _wake.set()
        for t in self._threads:
            t.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = checkout_service.run_fulfilment(db=self.db)
            except Exception:  # the loop must survive anything; each task records its own failure
                log.exception("fulfilment pass failed")
                done = []
            for order_id, component, status in done:
                log.info("fulfilment", order_id=order_id, component=component, status=status)
            if not done:
                _wake.wait(self.poll_s)
                _wake.clear()
