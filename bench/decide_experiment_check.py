"""What the policy-experiment check costs the decide path: the statement /v1/decide runs first on every call
(catalog version, policy version, and now the placement's policy experiment), timed with and without the
experiment column, interleaved, on a workspace with 200 actions and 50 experiments on other subjects.

    python bench/decide_experiment_check.py
    python bench/decide_experiment_check.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

No extra query either way: the check is one more scalar subquery of that statement (an index range scan on
experiments (workspace_id, subject, subject_id)).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import load_average, machine

from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.decisions import repository
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import ActionIn
from offerloop.experiments import service as experiments_service
from offerloop.experiments.schemas import ExperimentCreate
from offerloop.workspaces import service as workspace_service

OLD = repository._CATALOG_VERSION.add_columns(repository._POLICY_VERSION.scalar_subquery())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--calls", type=int, default=5000, help="statements per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = None
    url = args.database_url
    if url is None:
        tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        db = Database(engine)
        with db.write() as session:
            ws = workspace_service.create_workspace(session=session, name="bench-hooks").id
            decisions_service.upsert_actions(session=session, workspace_id=ws, actions=[
                ActionIn(key=f"a{i:03d}", kind="lesson", title=f"A {i}",
                         outcome={"event": "Lesson Completed", "window_days": 7}) for i in range(200)
            ])  # fmt: skip
            for i in range(50):
                experiments_service.create(session=session, workspace_id=ws, experiment_in=ExperimentCreate(
                    key=f"x{i}", subject="offer", subject_id=f"o{i}",
                    arms=[{"key": "a", "weight": 1}, {"key": "b", "weight": 1}],  # type: ignore[list-item]
                ))  # fmt: skip
        params = {"w": ws, "p": "home"}
        cpu: dict[str, list[float]] = {"without": [], "with": []}
        with db.read() as session:
            conn = session.connection()
            for _ in range(args.rounds):
                for name, stmt in (("without", OLD), ("with", repository._VERSIONS)):
                    start = time.process_time()
                    for _ in range(args.calls):
                        conn.execute(stmt, params).one()
                    cpu[name].append((time.process_time() - start) / args.calls * 1e6)
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load {load_average()}; {engine.dialect.name}"
        )
        for name, values in cpu.items():
            print(f"{name:>8} the experiment column: median {statistics.median(values):.1f} us CPU per statement "
                  f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
        engine.dispose()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
