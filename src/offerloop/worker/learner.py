"""Periodic learning: close expired outcome windows, then train every placement that has new rewards.

Runs as a thread inside `offerloop serve` (the embedded default); each pass owns its transactions.
One writer per workspace and placement is guaranteed by the learner lock taken inside `learn`.
"""

from __future__ import annotations

import threading
from typing import Any

from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.telemetry import log


class Learner:
    def __init__(self, db: Database, *, interval_s: float = 60.0) -> None:
        self.db = db
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="learner", daemon=True)

    def run_once(self) -> list[dict[str, Any]]:
        """One pass; returns what each trained placement learned."""
        with self.db.write() as session:
            for workspace_id in decisions_service.workspaces_with_expired_windows(session=session):
                decisions_service.close_windows(session=session, workspace_id=workspace_id)
        with self.db.read() as session:
            pending = decisions_service.placements_to_learn(session=session)
        results = []
        for workspace_id, placement in pending:
            try:  # one placement's failure is logged and retried; it never holds up another workspace's
                with self.db.write() as session:
                    result = decisions_service.learn(
                        session=session, workspace_id=workspace_id, placement=placement
                    )
            except Exception:
                log.exception("learning failed", workspace_id=workspace_id, placement=placement)
                continue
            results.append({"workspace_id": workspace_id, "placement": placement, **result})
        return results

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                for result in self.run_once():
                    log.info("learned", **result)
            except Exception:  # a failed pass is logged and retried at the next tick
                log.exception("learning pass failed")
