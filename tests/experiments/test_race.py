"""First exposures under concurrency: threads assign the same buyers at once, each call in its own committed
transaction (PostgreSQL: concurrent inserts meeting on the exposure's key; SQLite: one writer at a time).
Every buyer ends with one exposure, one call saw it as the first, and all calls answered the same arm."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from tests.checkout.log import forget_queued_work

from offerloop.db.uow import Database
from offerloop.experiments import service
from offerloop.experiments.schemas import ExperimentCreate
from offerloop.workspaces import service as workspace_service

BUYERS = 30
CALLS_PER_BUYER = 3
THREADS = 6


def test_concurrent_first_exposures_store_one_arm_per_buyer(engine: Engine) -> None:
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="exposure race").id
        arms = [{"key": "control", "weight": 1}, {"key": "treatment", "weight": 1}]
        service.create(session=session, workspace_id=ws, experiment_in=ExperimentCreate.model_validate(
            {"key": "race", "subject": "policy", "subject_id": "home", "arms": arms}))  # fmt: skip
    try:
        start = threading.Barrier(THREADS)
        work = [f"byr_race{b:04d}" for b in range(BUYERS) for _ in range(CALLS_PER_BUYER)]

        def assign(buyer: str) -> tuple[str, str, bool]:
            if work.index(buyer) < THREADS:  # the first wave starts together
                start.wait(timeout=30)
            with db.write() as session:
                got = service.arm_for(session=session, workspace_id=ws, key="race", buyer_id=buyer)
            return buyer, got.arm, got.first_exposure

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(assign, work))
        with db.read() as session:
            out = service.get_results(session=session, workspace_id=ws, key="race")
        assert out.exposed == BUYERS
        for b in range(BUYERS):
            mine = [(arm, first) for buyer, arm, first in answers if buyer == f"byr_race{b:04d}"]
            assert len({arm for arm, _ in mine}) == 1
            assert sum(first for _, first in mine) == 1
            assert mine[0][0] == service.bucket(ws, "race", f"byr_race{b:04d}", arms)
    finally:
        forget_queued_work(db, ws)
